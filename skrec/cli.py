"""The ``skrec`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .bench import PROTOCOLS, leaderboard, run_bench, write_results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skrec", description="skrec recommender toolbox")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench",
        help="fit models on a dataset and print a leaderboard",
        description="Fit models on a dataset with a protocol; print a leaderboard and write "
        "results.csv, results.json and results.png.",
    )
    bench.add_argument(
        "--dataset",
        default="synthetic",
        help="synthetic (default), ml-100k, ml-1m, beauty, a .csv path (protocol "
        "leave-last-out); ml-1m-ncf (--protocol ncf); diginetica (--protocol session); "
        "ml-100k with --protocol ratings",
    )
    bench.add_argument(
        "--models",
        default="Popular,Random",
        help="comma-separated model names (default: Popular,Random)",
    )
    bench.add_argument("--protocol", default="leave-last-out", choices=PROTOCOLS)
    bench.add_argument("--k", type=int, default=10)
    bench.add_argument("--out", default="bench_out", help="output folder (default: bench_out)")
    bench.add_argument(
        "--config",
        default=None,
        help="JSON of model parameters (default: skrec/configs/<dataset>.json)",
    )
    bench.add_argument("--data-home", default=None, help="dataset folder (default: $SKREC_DATA)")
    bench.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of --dataset synthetic (models take theirs from the config)",
    )
    bench.add_argument(
        "--checkpoint-dir",
        default=None,
        help="torch models save their training state there after each epoch; a rerun of "
        "the same command resumes where an interrupted one stopped",
    )
    bench.add_argument(
        "--baseline",
        default=None,
        help="one of --models: also report each model's paired per-user difference from "
        "it, with a 95%% interval",
    )
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bench":
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        out = Path(args.out)
        if out.exists() and not out.is_dir():  # found before any model is fitted
            print(
                f"skrec bench: error: --out {args.out!r} is a file; name a folder.", file=sys.stderr
            )
            return 2
        try:
            records = run_bench(
                args.dataset,
                models,
                protocol=args.protocol,
                k=args.k,
                config=args.config,
                data_home=args.data_home,
                random_state=args.random_state,
                checkpoint_dir=args.checkpoint_dir,
                baseline=args.baseline,
                verbose=not args.quiet,
            )
        except (ValueError, OSError, TypeError) as exc:  # OSError: files, downloads
            print(f"skrec bench: error: {exc}", file=sys.stderr)
            return 2
        print(f"dataset={args.dataset} protocol={args.protocol} k={args.k}")
        print(leaderboard(records))
        for path in write_results(records, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
