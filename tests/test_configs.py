"""The configurations shipped in skrec/configs build valid estimators."""

import json

import pytest
from sklearn.pipeline import Pipeline

from skrec.bench import CONFIG_DIR, load_config, make_model
from skrec.utils.validation import check_params

CONFIGS = sorted(CONFIG_DIR.glob("*.json"))
ENTRIES = [(path.stem, name) for path in CONFIGS for name in load_config(path.stem)]


def test_every_dataset_has_a_config():
    assert {p.stem for p in CONFIGS} >= {"ml-100k", "ml-1m", "ml-1m-ncf", "beauty"}


@pytest.mark.parametrize("dataset,name", ENTRIES, ids=[f"{d}:{n}" for d, n in ENTRIES])
def test_config_entry_builds_a_valid_estimator(dataset, name):
    model = make_model(name, load_config(dataset)[name])
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    check_params(final)  # a misspelt value or a wrong type fails here, not hours into a run


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_tuning_grids_name_parameters_of_their_model(path):
    specs = load_config(path.stem)
    for name, record in json.loads(path.read_text()).get("tuning", {}).items():
        if name in specs and "grid" in record:
            params = make_model(name, specs[name]).get_params()
            unknown = set(record["grid"]) - set(params)
            assert not unknown, f"{path.stem}: the tuning grid of {name} names {unknown}"
