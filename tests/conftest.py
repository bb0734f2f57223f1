import os
from pathlib import Path

import pytest

from skrec.datasets import make_interactions


def data_folder(name: str) -> Path:
    """The shared dataset folder ``name``; skips the test when SKREC_DATA lacks it."""
    home = os.environ.get("SKREC_DATA")
    if not home or not (Path(home) / name).is_dir():
        pytest.skip(f"dataset folder {name!r} not available (set SKREC_DATA)")
    return Path(home) / name


@pytest.fixture(scope="session")
def interactions():
    """Small synthetic interaction table shared by fast tests."""
    return make_interactions(n_users=120, n_items=60, mean_events=12, random_state=0)
