"""How large the local channel's query should be: the longer side SIFT sees of what is searched.

    python benchmarks/bench_query_side.py [--data ../shared/data] [--sides 1024,640,560,480,400]

The local channel alone, default settings but ``query_side``, side by side on Oxford 1k
(the 10 official queries, each its box; Revisited medium and hard) and UKBench56 (whole
640x480 photos). The database is indexed once per benchmark (``query_side`` is a search
setting), so only the queries change. The planar covers (whole 640-px phone photos) are
measured by ``bench_planar.py --variants "default: Hamming pairing and votes;votes, query
at 640 px (before);..."``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench_vocabulary import oxford_row, ukbench_ns
from common import DEFAULT_DATA, markdown_table, save

from lookalike import LocalChannelConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sides", default="1024,640,560,480,400")
    args = parser.parse_args()
    rows = []
    for side in map(int, args.sides.split(",")):
        config = LocalChannelConfig(query_side=side)
        row = {"query_side": side, **oxford_row(args.data, config),
               "ukbench_ns": ukbench_ns(args.data, config)}
        print(row, flush=True)
        rows.append(row)
    columns = ["query_side", "oxford_map", "roxford_medium_map", "roxford_hard_map",
               "ukbench_ns", "oxford_query_ms"]
    print(markdown_table(rows, columns))
    save("query_side", {"search": "LocalChannelConfig defaults but query_side",
                        "oxford": "1,008-image subset, 10 official queries with boxes; "
                                  "Revisited medium/hard on the same collection",
                        "ukbench": "56 images, whole photos"}, rows)


if __name__ == "__main__":
    main()
