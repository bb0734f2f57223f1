"""Peak memory of one full cross-entropy training step on Beauty (54,542 items).

The same SASRec batch (the latest 50 events of ``--batch-sizes`` users) goes through
``skrec.nn.losses.full_softmax`` (item chunks of at most 2^25 logits, what the models
use; in float32 and with ``logits_dtype="bfloat16"``) and through the naive loss on the
dense (positions x items) logits tensor. Each
step runs in a fresh process; its peak resident memory above the start of the step is
sampled every 5 ms, forward and backward included.

    SKREC_DATA=../shared/data python benchmarks/softmax_memory.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from skrec import SASRec
from skrec.bench import PeakMemory
from skrec.datasets import fetch_interactions


def measure(step_name: str, batch_size: int) -> dict:
    X = fetch_interactions("beauty")
    model = SASRec(max_len=50, batch_size=batch_size, random_state=0, device="cpu")
    model._run = lambda *args, **kwargs: (0, 0)  # fit builds the module; no epochs
    model.fit(X)
    module = model.module_.eval()  # no dropout: both steps compute the same loss
    prepared = model._prepare(model._train)
    batch = next(model._batches(prepared, module, torch.Generator().manual_seed(0)))
    where = batch["targets"] > 0

    def chunked():
        return model._loss(module, batch)

    def chunked_bf16():
        model.set_params(logits_dtype="bfloat16")
        return model._loss(module, batch)

    def dense():
        logits = module(batch["inputs"])[where] @ module.item_weight().T
        return F.cross_entropy(logits, batch["targets"][where] - 1)

    step = {"chunked": chunked, "dense": dense, "bf16": chunked_bf16}[step_name]
    start = time.perf_counter()
    with PeakMemory() as memory:
        loss = step()
        loss.backward()
    return {
        "positions": int(where.sum()),
        "n_items": module.n_items,
        "loss": float(loss.detach()),
        "peak_mb": memory.peak_mb,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="128,512,1024")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    print(
        "batch  positions  dense logits MiB | chunked: peak MiB  s | dense: peak MiB  s | "
        "chunked bf16: peak MiB  s | loss chunked / dense / bf16"
    )
    for batch_size in map(int, args.batch_sizes.split(",")):
        out = {}
        for step in ("chunked", "dense", "bf16"):
            child = [sys.executable, __file__, "--child", step, str(batch_size)]
            done = subprocess.run(child, capture_output=True, text=True)
            if done.returncode != 0:
                out[step] = {"peak_mb": float("nan"), "seconds": float("nan"), "loss": None}
                lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
                print(f"{step} step at batch {batch_size} failed: {lines[-1]}")
                out[step]["positions"] = out.get("chunked", {}).get("positions", 0)
                out[step]["n_items"] = 54542
                continue
            out[step] = json.loads(done.stdout.strip().splitlines()[-1])
        c, d, b = out["chunked"], out["dense"], out["bf16"]
        logits_mb = c["positions"] * c["n_items"] * 4 / 2**20
        print(
            f"{batch_size:5d}  {c['positions']:9,d}  {logits_mb:16,.0f} | "
            f"{c['peak_mb']:17,.0f} {c['seconds']:3.1f} | {d['peak_mb']:15,.0f} "
            f"{d['seconds']:3.1f} | {b['peak_mb']:22,.0f} {b['seconds']:3.1f} | "
            f"{c['loss']:.5f} / {d['loss']:.5f} / {b['loss']:.5f}"
        )


if __name__ == "__main__":
    main()
