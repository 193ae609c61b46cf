#!/usr/bin/env bash
# Train the generic vocabulary tree that ships in src/lookalike/local/vocabularies/.
# Needs network once, to fetch three public image sets from GitHub (2,500 photos, ~350 MB).
# A new tree gets a new id: add it next to the old one and point GENERIC.json at it; never
# delete a shipped tree, since collections record the id of the tree their words come from.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${WORK:-/tmp/generic_vocab}"
mkdir -p "$work/src/imagenet" "$work/src/imagen" "$work/src/bsds500"
fetch() { [ -d "$work/$1" ] || git clone --quiet --depth 1 "https://github.com/$2" "$work/$1"; }
fetch imagenet-sample-images EliSchwartz/imagenet-sample-images
fetch imagen ajschumacher/imagen
fetch BSDS500 BIDS/BSDS500
cp "$work"/imagenet-sample-images/*.JPEG "$work/src/imagenet/"
cp "$work"/imagen/imagen/*.jpg "$work/src/imagen/"
cp -r "$work"/BSDS500/BSDS500/data/images/{train,val,test} "$work/src/bsds500/"
find "$work/src" -name 'Thumbs.db' -delete
.venv/bin/lookalike vocabulary "$work/src" --out "$work/generic.npz" --max-images 2500 \
    --compact --json
