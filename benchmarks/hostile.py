"""Hostile input for every estimator, in full: how each case ended, per estimator.

The case families and the hypothesis strategies live with the CI suite,
``tests/test_hostile.py``, which tries a bounded sample of them on every run; this script
imports that module and runs every named case plus ``--examples`` generated ones per
strategy, over every estimator of ``skrec.ESTIMATORS``:

- ``tables``: the named interaction tables (empty, NaN ids, huge ids, odd containers...);
- ``generated tables``, ``valid tables``: hypothesis-generated tables;
- ``parameters``: every constrained hyper-parameter set to every one of ``BAD_VALUES``;
- ``requests``, ``generated requests``: recommend/predict/similar_items on a fitted model;
- ``tables as history/predict`` (named and generated): every table given to a fitted
  model as ``history=`` and to ``predict``.

Each case ends in a clean fit (or answer), a clear error, or a crash; a crash is anything
else (a traceback from inside torch/numpy/pandas, a hang, a wrong answer, a model
changed by a failed fit). It prints a Markdown table per estimator, then one per family,
then every crash; ``--out`` also writes them as JSON. The exit status is 1 when any case
crashed. Run it from the repository root::

    python benchmarks/hostile.py --examples 200 --out hostile.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import given, settings  # noqa: E402

from tests import test_hostile as hostile  # noqa: E402

FAMILIES = (
    "tables",
    "generated tables",
    "valid tables",
    "parameters",
    "requests",
    "generated requests",
    "tables as history/predict",
    "generated tables as history/predict",
)
KINDS = (hostile.CLEAN, hostile.ERROR, hostile.CRASH)


def generated(strategy, n: int) -> list:
    """``n`` examples of ``strategy``, the same on every run (derandomized)."""
    examples = []

    @settings(hostile.CI_SETTINGS, max_examples=n)
    @given(strategy)
    def collect(example):
        examples.append(example)

    collect()
    return examples


def cases_of(name: str, family: str, pool: dict) -> list:
    if family == "tables":
        return hostile.TABLE_CASES
    if family == "parameters":
        return hostile.param_cases(name)
    if family == "requests":
        return [case for case in hostile.REQUEST_CASES if case.applies(name)]
    if family == "tables as history/predict":
        return hostile.table_requests(hostile.TABLE_CASES)
    if family == "generated tables as history/predict":
        return hostile.table_requests(pool["generated tables"])
    return pool[family]


def run(names: list[str], n_examples: int) -> dict:
    pool = {
        "generated tables": generated(hostile.tables(), n_examples),
        "valid tables": generated(hostile.valid_tables(), n_examples),
        "generated requests": generated(hostile.requests(), n_examples),
    }
    counts = {name: {family: Counter() for family in FAMILIES} for name in names}
    crashes = []
    for name in names:
        start = time.perf_counter()
        for family in FAMILIES:
            for case in cases_of(name, family, pool):
                key = (name, case.name)
                if key in hostile.ABORTS:  # would take this process down
                    outcome = hostile.Outcome(hostile.CRASH, "not run: aborts the process")
                else:
                    outcome = case.run(name)
                counts[name][family][outcome.kind] += 1
                if outcome.kind == hostile.CRASH:
                    known = hostile.KNOWN_CRASHES.get(key)
                    crashes.append(
                        {
                            "estimator": name,
                            "family": family,
                            "case": case.name,
                            "detail": outcome.detail,
                            "known": known,
                        }
                    )
        seconds = time.perf_counter() - start
        total = sum(counts[name].values(), Counter())
        print(f"{name}: {sum(total.values())} cases in {seconds:.1f} s", file=sys.stderr)
    return {"counts": counts, "crashes": crashes}


def _row(label: str, counter: Counter) -> str:
    cells = [str(sum(counter[k] for k in KINDS))] + [str(counter[k]) for k in KINDS]
    return f"| {label} | " + " | ".join(cells) + " |"


def markdown(result: dict, n_examples: int) -> str:
    counts, crashes = result["counts"], result["crashes"]
    header = "| {} | cases | clean fit / answer | clear error | crash |\n|---|---:|---:|---:|---:|"
    lines = [
        f"Hostile input per estimator ({n_examples} generated examples per strategy).",
        "",
        header.format("estimator"),
    ]
    grand = Counter()
    for name, families in counts.items():
        total = sum(families.values(), Counter())
        grand += total
        lines.append(_row(name, total))
    lines.append(_row("**all**", grand))
    lines += ["", header.format("family (all estimators)")]
    for family in FAMILIES:
        lines.append(_row(family, sum((counts[n][family] for n in counts), Counter())))
    lines += ["", f"Crashes: {len(crashes)}."]
    for crash in crashes:
        known = f" Known: {crash['known']}" if crash["known"] else ""
        lines.append(
            f"- {crash['estimator']} / {crash['family']} / `{crash['case'][:120]}`: "
            f"{crash['detail'][:300]}{known}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="generated examples per strategy")
    parser.add_argument("--estimators", nargs="*", default=hostile.NAMES)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run(args.estimators, args.examples)
    print(markdown(result, args.examples))
    if args.out is not None:
        payload = {
            "examples_per_strategy": args.examples,
            "seconds": round(time.perf_counter() - start, 1),
            "estimators": {
                name: {
                    family: {kind: counter[kind] for kind in KINDS}
                    for family, counter in families.items()
                }
                for name, families in result["counts"].items()
            },
            "crashes": result["crashes"],
        }
        args.out.write_text(json.dumps(payload, indent=2, default=str))
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
