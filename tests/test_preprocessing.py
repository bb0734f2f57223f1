import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from skrec.preprocessing import Binarize, Deduplicate, KCoreFilter


def test_binarize_keeps_ratings_at_threshold():
    X = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 3], "weight": [5, 3, 4]})
    out = Binarize(threshold=4).fit_transform(X)
    assert out.item_id.tolist() == [1, 3] and out.weight.tolist() == [1.0, 1.0]
    assert Binarize(4, keep_weight=True).fit_transform(X).weight.tolist() == [5, 4]
    with pytest.raises(ValueError, match="'rating' column"):
        Binarize(column="rating").fit_transform(X)


def test_binarize_takes_signed_ratings_and_checks_them_on_both_paths():
    """Ratings of either sign (thumbs, -10..10) are what Binarize is for; the filters
    before it must let them through too."""
    X = pd.DataFrame(
        {"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 3], "weight": [7.5, -3.2, -9, 4]}
    )
    out = Binarize(threshold=0.0).fit_transform(X)
    assert sorted(zip(out.user_id, out.item_id)) == [(1, 1), (2, 3)]
    assert len(KCoreFilter(1, 1).fit_transform(X)) == len(Deduplicate().fit_transform(X)) == 4
    fitted = Binarize(0.0).fit(X)
    with pytest.raises(ValueError, match="NaN"):  # used to drop the row silently
        fitted.transform(X.assign(weight=[5, np.nan, 4, 4]))
    with pytest.raises(TypeError, match="'weight' of X must be numeric"):
        fitted.transform(X.assign(weight=list("abcd")))
    for bad in (np.nan, np.inf, True, "4"):
        with pytest.raises(ValueError, match="'threshold' parameter of Binarize"):
            Binarize(bad).fit(X)
    with pytest.raises(ValueError, match="'keep_weight' parameter of Binarize"):
        Binarize(keep_weight="no").fit(X)
    with pytest.raises(ValueError, match="'column' parameter of Binarize"):
        Binarize(column=3).fit(X)
    with pytest.raises(ValueError, match="'threshold' parameter"):  # checked at transform too
        fitted.set_params(threshold=np.nan).transform(X)


def test_kcore_warns_when_max_iter_ends_before_the_k_core():
    X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 4, 4], "item_id": [1, 2, 1, 3, 3, 1, 2]})
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        KCoreFilter(2, 2, max_iter=1).fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KCoreFilter(2, 2, max_iter=3).fit_transform(X)  # enough passes: no warning
    with pytest.raises(ValueError, match="min_user_events"):
        KCoreFilter(True, 2).fit(X)
    array = X.to_numpy()  # both paths return a DataFrame
    assert isinstance(KCoreFilter(1, 1).fit(array).transform(array), pd.DataFrame)
    assert isinstance(KCoreFilter(1, 1).fit_transform(array), pd.DataFrame)


def test_kcore_is_iterated_to_a_fixed_point():
    # user 3 has 1 event; dropping it leaves item 3 with 1 event, which must go too,
    # and then user 2 has a single event left.
    X = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 4, 4], "item_id": [1, 2, 1, 3, 3, 1, 2]})
    out = KCoreFilter(min_user_events=2, min_item_events=2).fit_transform(X)
    assert sorted(zip(out.user_id, out.item_id)) == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert KCoreFilter(2, 2).fit(X).transform(X) is X  # scoring-time no-op
    with pytest.raises(ValueError, match="removed every event"):
        KCoreFilter(10, 10).fit_transform(X)
    with pytest.raises(ValueError, match="min_user_events"):
        KCoreFilter(-1).fit_transform(X)


def test_deduplicate_keeps_last_in_time():
    X = pd.DataFrame(
        {
            "user_id": [1, 1, 1],
            "item_id": [7, 7, 8],
            "timestamp": [5, 2, 3],
            "weight": [1.0, 2.0, 3.0],
        }
    )
    assert Deduplicate().fit_transform(X).weight.tolist() == [1.0, 3.0]
    assert Deduplicate(keep="first").fit_transform(X).weight.tolist() == [2.0, 3.0]


def test_deduplicate_keeps_the_input_order_whatever_the_index():
    """Without a timestamp the input order is the time order; index labels (reversed,
    repeated after a concat) must not reorder it."""
    X = pd.DataFrame({"user_id": [1, 1, 1, 1], "item_id": [5, 6, 5, 7]}, index=[3, 2, 1, 1])
    assert Deduplicate().fit_transform(X).item_id.tolist() == [6, 5, 7]
    assert Deduplicate(keep="first").fit_transform(X).item_id.tolist() == [5, 6, 7]


def test_deduplicate_orders_date_text_as_dates():
    """ "9 Jan" is before "10 Jan" as a date, after it as text."""
    X = pd.DataFrame(
        {
            "user_id": [1, 1],
            "item_id": [7, 7],
            "timestamp": ["2023-01-10", "2023-1-9"],
            "weight": [1.0, 2.0],
        }
    )
    assert Deduplicate().fit_transform(X).weight.tolist() == [1.0]
