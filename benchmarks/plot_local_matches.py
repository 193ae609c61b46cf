"""Draw why the local channel matched: the query, its top matches and the inlier lines.

    python benchmarks/plot_local_matches.py [--data ../shared/data] [--query 0] \
        [--out docs/images/local_matches.png]

Searches the Oxford subset (indexed by ``bench_local.py quality``, or indexed now)
with one official query box, and writes a PNG: the query on the left with its
box, each of the top verified matches on the right, and a line for every inlier
correspondence that RANSAC kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import DEFAULT_DATA, ROOT
from PIL import Image, ImageDraw

from lookalike import LocalChannelConfig, SearchResult
from lookalike.eval.datasets import load_oxford
from lookalike.eval.settings import EvalSettings, build_collection

HEIGHT = 300  # every panel is scaled to this height
COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


def panel(path: str | Path) -> tuple[Image.Image, float]:
    image = Image.open(path).convert("RGB")
    scale = HEIGHT / image.height
    return image.resize((round(image.width * scale), HEIGHT)), scale


def draw(query: Path, box: tuple[float, float, float, float], results: list[SearchResult],
         out: Path) -> None:
    left, query_scale = panel(query)
    panels = [panel(result.path) for result in results]
    width = left.width + sum(image.width for image, _ in panels) + 10 * len(panels)
    canvas = Image.new("RGB", (width, HEIGHT + 24), "white")
    canvas.paste(left, (0, 24))
    pen = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = (coordinate * query_scale for coordinate in box)
    pen.rectangle([x0, y0 + 24, x1, y1 + 24], outline=(255, 215, 0), width=3)
    pen.text((4, 4), "query (box)", fill="black")
    x = left.width + 10
    for rank, (result, (image, scale)) in enumerate(zip(results, panels, strict=True)):
        canvas.paste(image, (x, 24))
        local = result.evidence.as_dict().get("local", {})
        pen.text((x + 4, 4), f"#{rank + 1}: {local.get('inliers', 0)} inliers", fill="black")
        colour = COLOURS[rank % len(COLOURS)]
        for qx, qy, mx, my in local.get("matches", []):
            pen.line([(qx * query_scale, qy * query_scale + 24), (x + mx * scale, my * scale + 24)],
                     fill=colour, width=1)
        x += image.width + 10
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--query", type=int, default=0, help="which official query")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "local_matches.png")
    args = parser.parse_args()
    dataset = load_oxford(args.data / "oxford5k_subset")
    query = dataset.queries[args.query]
    if query.box is None:
        raise SystemExit(f"{query.path}: expected a query with a box")
    settings = EvalSettings(channel="local", configs={"local": LocalChannelConfig()})
    collection, _ = build_collection(dataset.name, dataset.database, settings)
    with collection:
        # The query image itself is in the database; show the other views.
        results = [result for result in collection.search(query.path, k=args.top + 1,
                                                          channel="local", box=query.box)
                   if Path(result.path).name != query.path.name][: args.top]
    draw(query.path, query.box, results, args.out)
    for result in results:
        print(result.rank, result.score, result.reason, result.path)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
