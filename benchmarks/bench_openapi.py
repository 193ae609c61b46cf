"""The HTTP API against its OpenAPI document, at length: schemathesis with every check.

    python benchmarks/bench_openapi.py [--examples 1000] [--seeds 1 2 3] [--save]

The same run as tests/test_openapi_contract.py (the app in-process over six images with
the ``thumbnail`` extractor, the write token sent, every phase and every check on), with
many more examples per operation and one run per seed. Prints the cases, the unique
failures by kind and the 5xx answers of each run; ``--save`` writes
``results/openapi.json``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import ROOT, markdown_table, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="per operation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--save", action="store_true", help="write results/openapi.json")
    args = parser.parse_args()
    # The run itself lives with the test, so that both check the same contract.
    sys.path.insert(0, str(ROOT / "tests"))
    from test_openapi_contract import contract_app, contract_collection, run_contract

    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            app = contract_app(contract_collection(Path(folder)))
            report = run_contract(app, examples=args.examples, seed=seed)
        print(f"seed {seed}: {report.summary()}", flush=True)
        for line in report.failures + report.errors:
            print("  ", line)
        server_errors = sum(1 for line in report.failures if "(status 5" in line)
        rows.append({"seed": seed, "examples per operation": args.examples,
                     "cases": report.cases, "failures": len(report.failures),
                     "5xx": server_errors, "errors": len(report.errors),
                     "seconds": round(report.seconds, 1),
                     "by kind": dict(report.kinds)})
    columns = ["seed", "examples per operation", "cases", "failures", "5xx", "errors", "seconds"]
    print(markdown_table(rows, columns))
    if args.save:
        print(save("openapi", {"examples": args.examples, "seeds": args.seeds}, rows))


if __name__ == "__main__":
    main()
