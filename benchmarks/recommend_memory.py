"""Peak memory of ``recommend`` and ``evaluate`` as the number of users grows, on Beauty.

Models are fitted once (briefly: the weights' values do not change the memory), saved
with ``skrec.save``, and each measurement runs in a fresh process that loads the model,
warms up on 100 users, and records the peak resident memory above its level before the
call (the kernel's high-water mark). Streaming users in chunks means 40,226 users (all of Beauty)
should cost at most 1.2x the peak of 4,000 users. Children run with glibc's
MALLOC_MMAP_THRESHOLD_ fixed at 1 MiB, so freed blocks return to the system and the peak
is what the call holds, not what the allocator happened to keep.

    SKREC_DATA=../shared/data python benchmarks/recommend_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import skrec
from skrec.bench import PeakMemory
from skrec.datasets import load_beauty
from skrec.model_selection import evaluate

MODELS = {
    "Popular": lambda: skrec.Popular(),
    "ALS": lambda: skrec.ALS(n_factors=64, max_iter=2, random_state=0),
    "SASRec": lambda: skrec.SASRec(max_len=50, loss="bce", max_iter=1, random_state=0),
}
SIZES = (4000, None)  # None: every user


def child(path: str, n_users: int, what: str) -> dict:
    model = skrec.load(path)
    users = np.asarray(model.user_ids_)
    users = users if n_users <= 0 else users[:n_users]
    rng = np.random.default_rng(0)
    test = pd.DataFrame(
        {
            "user_id": users,
            "item_id": model.item_ids_[rng.integers(0, len(model.item_ids_), len(users))],
        }
    )
    model.recommend(users[:100])  # warm-up: thread pools, lazy allocations
    evaluate(model, test.head(100))
    started = time.perf_counter()
    with KernelPeak() as peak:
        if what == "recommend":
            model.recommend(users, k=10)
        else:
            evaluate(model, test, metrics=("ndcg", "hr"), k=10)
    return {"peak_mb": peak.peak_mb, "seconds": time.perf_counter() - started, "users": len(users)}


class KernelPeak(PeakMemory):
    """Peak resident memory above the starting level as the kernel counts it (Linux:
    the high-water mark VmHWM, reset through /proc/self/clear_refs), so no short spike
    is missed on a busy machine; falls back to sampling elsewhere."""

    @staticmethod
    def _status(field: str) -> float:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise OSError(field)

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # reset the high-water mark to the current RSS
            self._start = self._status("VmRSS")
            self._kernel = True
        except OSError:
            self._kernel = False
            return super().__enter__()
        return self

    def __exit__(self, *exc):
        if not self._kernel:
            return super().__exit__(*exc)
        self.peak_mb = self._status("VmHWM") - self._start
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--child", nargs=3, metavar=("PATH", "N_USERS", "WHAT"))
    args = parser.parse_args()
    if args.child:
        path, n_users, what = args.child
        print(json.dumps(child(path, int(n_users), what)))
        return
    X = load_beauty().interactions
    print(
        f"Beauty: {X.user_id.nunique():,} users, {X.item_id.nunique():,} items, {len(X):,} events"
    )
    print(f"torch threads: {torch.get_num_threads()}")
    try:
        skrec.EASE().fit(X)
    except MemoryError as error:
        print(f"EASE refuses: {error}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            tick = time.perf_counter()
            model = MODELS[name]().fit(X)
            path = skrec.save(model, Path(folder) / f"{name}.skrec")
            print(f"{name}: fitted in {time.perf_counter() - tick:.0f} s")
            for what in ("recommend", "evaluate"):
                peaks = []
                for size in SIZES:
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", str(path), str(size or 0), what],
                        capture_output=True,
                        text=True,
                        check=False,
                        env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20)},
                    )
                    if out.returncode:
                        raise RuntimeError(f"{name} {what} {size}: {out.stderr[-2000:]}")
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    peaks.append(result)
                small, large = peaks
                rows.append(
                    {
                        "model": name,
                        "call": what,
                        "peak_mb_4k": round(small["peak_mb"], 1),
                        "users_all": large["users"],
                        "peak_mb_all": round(large["peak_mb"], 1),
                        "ratio": round(large["peak_mb"] / small["peak_mb"], 2),
                        "seconds_all": round(large["seconds"], 2),
                    }
                )
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
