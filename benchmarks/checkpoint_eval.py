"""Test figure of a `skrec bench` fit that is still training: its best epoch so far.

A bench fit run with ``--checkpoint-dir`` saves its state after every epoch, including
the weights of the best epoch on the validation event. This script copies such a
checkpoint to a scratch folder (the running fit keeps writing its own), fits the same
configured model with ``max_iter`` set to the checkpoint's last epoch (the loop then
resumes at the end, restores the best epoch's weights and trains nothing) and scores
the P1 test event. The figure is an interim one: the running fit may still find a
better epoch.

    SKREC_DATA=../shared/data python benchmarks/checkpoint_eval.py ml-1m BERT4Rec \\
        CKPT_DIR/BERT4Rec-<fingerprint>.pt
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from skrec.bench import _prepare, _summary, load_config, make_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("model", help="a model name of the dataset's bench config")
    parser.add_argument("checkpoint", type=Path)
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    scratch = Path(tempfile.mkdtemp())
    try:
        shutil.copy(args.checkpoint, scratch / args.checkpoint.name)
        model = make_model(args.model, load_config(args.dataset).get(args.model))
        if not args.checkpoint.name.startswith(f"{type(model).__name__}-"):
            raise SystemExit(f"{args.checkpoint.name} is not a {type(model).__name__} checkpoint.")
        # A checkpoint of other settings or data would not be picked up, and the fit
        # would train from scratch: pass the one the running bench fit writes.
        model.set_params(checkpoint_dir=str(scratch), max_iter=int(state["epoch"]))
        ((train, y, run),) = _prepare(args.dataset, "leave-last-out", None, 0)
        model.fit(train, y)
        if model.training_seconds_ != state["seconds"]:
            raise SystemExit(
                "The fit trained instead of resuming: the checkpoint is not this fit's."
            )
        result = run(model, 10, {})
    finally:
        shutil.rmtree(scratch)
    print(
        f"{args.dataset} {args.model}: epoch {state['epoch']}, best epoch {state['best_epoch']} "
        f"(validation NDCG@10 {state['best_score']:.4f}), {state['seconds']:,.0f} s of training"
    )
    for name, per_user in result.items():
        mean, half = _summary(np.asarray(per_user, dtype=float))  # as skrec bench reports
        print(f"  test {name}: {mean:.4f} ± {half:.4f}")


if __name__ == "__main__":
    main()
