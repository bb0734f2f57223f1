"""Faults of real processes: a fit killed with SIGKILL resumes from its checkpoint to the
same model; a fit stopped with Ctrl-C (SIGINT) keeps its last complete epoch."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import skrec

MAX_ITER = 30
#: The Ctrl-C run is always interrupted, so its bound only has to be out of reach: a
#: parent starved of CPU on a loaded machine may send the signal many epochs late.
UNREACHED = 10_000

SCRIPT = """
import json, signal, sys, warnings
# Ctrl-C raises KeyboardInterrupt here even when the test runner was started in the
# background by a shell, whose children inherit SIGINT ignored (Python then leaves it so).
signal.signal(signal.SIGINT, signal.default_int_handler)
import skrec
from skrec.datasets import make_interactions

checkpoint_dir, out, max_iter = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = make_interactions(n_users=300, n_items=80, mean_events=20, random_state=0)
model = skrec.SASRec(
    max_len=20, n_factors=16, batch_size=8, max_iter=max_iter, random_state=0, device="cpu",
    checkpoint_dir=None if checkpoint_dir == "-" else checkpoint_dir,
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model.fit(X)
skrec.save(model, out)
print(json.dumps({"n_iter": model.n_iter_, "warnings": [str(w.message) for w in caught]}))
"""


def _run(tmp_path, *args, **popen):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    command = [sys.executable, "-c", SCRIPT, *map(str, args)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen
    )


def _finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _checkpoint_epoch(folder) -> int:
    files = list(folder.glob("SASRec-*.pt"))
    if not files:
        return 0
    try:  # written atomically (os.replace), so a read sees a whole file or the previous one
        return int(torch.load(files[0], map_location="cpu", weights_only=True)["epoch"])
    except FileNotFoundError:
        return 0


def _wait_for_epoch(process, folder, epoch, timeout=120):
    deadline = time.monotonic() + timeout
    while _checkpoint_epoch(folder) < epoch:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the fit ended or stalled before epoch {epoch}: {process.stderr.read()}")
        time.sleep(0.01)


def _same_model(a, b):
    assert a.loss_curve_ == b.loss_curve_
    state = b.module_.state_dict()
    for name, value in a.module_.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)


def test_a_killed_fit_resumes_from_its_checkpoint_to_the_same_model(tmp_path):
    whole = _run(tmp_path, "-", tmp_path / "whole.skrec", MAX_ITER)
    checkpoints = tmp_path / "checkpoints"
    killed = _run(tmp_path, checkpoints, tmp_path / "never.skrec", MAX_ITER)
    _wait_for_epoch(killed, checkpoints, 3)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    reached = _checkpoint_epoch(checkpoints)
    assert 3 <= reached < MAX_ITER, "the kill must land mid-fit"
    assert not (tmp_path / "never.skrec").exists()

    resumed = _finish(_run(tmp_path, checkpoints, tmp_path / "resumed.skrec", MAX_ITER))
    assert resumed["n_iter"] == MAX_ITER
    _finish(whole)
    _same_model(skrec.load(tmp_path / "resumed.skrec"), skrec.load(tmp_path / "whole.skrec"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_ends_fit_with_the_last_complete_epoch(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    stopped = _run(tmp_path, checkpoints, tmp_path / "stopped.skrec", UNREACHED)
    _wait_for_epoch(stopped, checkpoints, 3)
    stopped.send_signal(signal.SIGINT)
    result = _finish(stopped)
    n_iter = result["n_iter"]
    assert 3 <= n_iter < UNREACHED
    assert any(f"keeps the weights of epoch {n_iter}" in w for w in result["warnings"])
    # the model equals a fit that was asked for exactly that many epochs
    _finish(_run(tmp_path, "-", tmp_path / "exact.skrec", n_iter))
    stopped_model = skrec.load(tmp_path / "stopped.skrec")
    _same_model(stopped_model, skrec.load(tmp_path / "exact.skrec"))
    users = np.arange(20)
    assert stopped_model.recommend(users).shape == (20, 10)
