"""Synthetic interactions and loaders for public recommendation datasets.

The loaders read a local copy from ``data_home`` or the ``SKREC_DATA`` environment
variable, laid out one folder per dataset (the layout of skrec's shared data folder).
Where a dataset has a public, checksummed source, a missing copy is downloaded into
``data_home`` (default ``~/skrec_data``) and verified; offline, the error names the
variable to set. MovieLens and Frappe may not be redistributed: skrec ships none of
their files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import numbers
import os
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "fetch_interactions",
    "get_data_home",
    "load_beauty",
    "load_diginetica_sample",
    "load_frappe",
    "load_ml_100k",
    "load_ml_1m",
    "load_ml_1m_ncf",
    "load_ml_1m_seq",
    "make_interactions",
]


# --------------------------------------------------------------------- synthetic
def make_interactions(
    n_users: int = 500,
    n_items: int = 200,
    *,
    n_factors: int = 8,
    mean_events: int = 20,
    min_events: int = 5,
    sequential_strength: float = 0.5,
    popularity_skew: float = 0.5,
    temperature: float = 2.0,
    random_state=None,
) -> pd.DataFrame:
    """Synthetic implicit feedback with latent-factor and sequential structure.

    Each user has a latent taste vector; each item a latent vector and a Zipf-like
    popularity. A user's events are drawn one after another without repeats: with
    probability ``sequential_strength`` the next item is the current item's fixed
    successor (a random permutation of the catalog), otherwise it is drawn from the
    softmax of taste, popularity and ``temperature``. So a latent-factor model beats
    ``Popular``, and an order-aware model beats an order-blind one.

    Parameters
    ----------
    n_users, n_items : int, default=500, 200
    n_factors : int, default=8
        Dimension of the latent tastes.
    mean_events : int, default=20
        Mean number of events per user (Poisson, at least ``min_events``). A user has
        at most ``n_items // 2`` events (no repeats), which caps both on small catalogs.
    min_events : int, default=5
    sequential_strength : float in [0, 1], default=0.5
    popularity_skew : float, default=0.5
        Exponent of the Zipf popularity prior (0: flat).
    temperature : float, default=2.0
        Scale of the taste logits; larger is more personal.
    random_state : int, RandomState or None

    Returns
    -------
    DataFrame with columns ``user_id``, ``item_id`` (ints from 0), ``timestamp`` (int
    seconds; per-user increasing, interleaved across users).

    Examples
    --------
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=20, n_items=30, random_state=0)
    >>> list(X.columns)
    ['user_id', 'item_id', 'timestamp']
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_factors", n_factors)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"make_interactions: {name} must be an integer; got {value!r}.")
    if n_users < 2 or n_items < 2 or n_factors < 1:
        raise ValueError("make_interactions needs n_users >= 2, n_items >= 2, n_factors >= 1.")
    if not 0 <= sequential_strength <= 1:
        raise ValueError(f"sequential_strength must be in [0, 1]; got {sequential_strength}.")
    for name, value in (("popularity_skew", popularity_skew), ("temperature", temperature)):
        if not np.isfinite(value):
            raise ValueError(f"make_interactions: {name} must be finite; got {value!r}.")
    rng = check_random_state(random_state)
    users = rng.normal(size=(n_users, n_factors)) / np.sqrt(n_factors)
    items = rng.normal(size=(n_items, n_factors))
    popularity = -popularity_skew * np.log1p(rng.permutation(n_items))
    successor = rng.permutation(n_items)
    max_len = max(1, min(n_items - 1, n_items // 2))
    lengths = np.clip(
        min_events + rng.poisson(max(mean_events - min_events, 0), n_users), 1, max_len
    )

    rows_user, rows_item = [], []
    chunk = max(1, 2**22 // n_items)
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        logits = temperature * users[start:stop] @ items.T + popularity  # (B, I)
        seen = np.zeros(logits.shape, dtype=bool)
        current = np.full(stop - start, -1)
        for step in range(lengths[start:stop].max()):
            active = np.flatnonzero(lengths[start:stop] > step)
            gumbel = logits[active] - np.log(-np.log(rng.random_sample((len(active), n_items))))
            gumbel[seen[active]] = -np.inf
            choice = gumbel.argmax(1)
            follow = (current[active] >= 0) & (rng.random_sample(len(active)) < sequential_strength)
            nxt = successor[np.maximum(current[active], 0)]
            follow &= ~seen[active, nxt]
            choice = np.where(follow, nxt, choice)
            seen[active, choice] = True
            current[active] = choice
            rows_user.append(active + start)
            rows_item.append(choice)
    user = np.concatenate(rows_user)
    item = np.concatenate(rows_item)
    order = np.argsort(user, kind="stable")  # per user, events stay in drawing order
    user, item = user[order], item[order]
    starts = rng.randint(0, 10**6, n_users)
    gaps = rng.randint(1, 3600, len(user))
    first = np.r_[True, user[1:] != user[:-1]]
    group = np.cumsum(first) - 1
    cum = np.cumsum(gaps)
    timestamp = starts[user] + cum - (cum - gaps)[first][group]
    return pd.DataFrame({"user_id": user, "item_id": item, "timestamp": timestamp.astype(np.int64)})


# ------------------------------------------------------------------ local data
_SOURCES = {
    # folder: {file: (sha256, url or None)}
    "ml-100k": {
        "u.data": ("06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490", "zip"),
        "u.item": ("553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701", "zip"),
        "u.user": ("f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c", "zip"),
        # the five official rating splits, read by load_ml_100k as ``folds``
        "u1.base": ("ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a", "zip"),
        "u1.test": ("18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950", "zip"),
        "u2.base": ("6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e", "zip"),
        "u2.test": ("4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3", "zip"),
        "u3.base": ("afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d", "zip"),
        "u3.test": ("0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d", "zip"),
        "u4.base": ("219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca", "zip"),
        "u4.test": ("7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9", "zip"),
        "u5.base": ("a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485", "zip"),
        "u5.test": ("351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634", "zip"),
    },
    "ml-1m": {
        "ratings_user_item.csv.gz": (
            "e2e0e423bf540bb0af5c6efb74aa1c9163dd90ab7c9b8c2e5186e83f03aeb8d0",
            None,
        ),
        "users.dat": ("1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3", None),
        "movies.dat": ("0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9", None),
    },
    "ml-1m-seq": {
        "ml-1m.txt": ("b725f3acb3986fe3130bffd1e77a74d182a1f51799567a236dbd60270f95b0a2", None),
    },
    "ml-1m-ncf": {
        "ml-1m.test.rating": (
            "231ae11eb060b643a8c58c063cd17ffc743b54f569afb073d1abb6cf126b88b5",
            "https://raw.githubusercontent.com/hexiangnan/neural_collaborative_filtering/"
            "4aab159e81c44b062c091bdaed0ab54ac632371f/Data/ml-1m.test.rating",
        ),
        "ml-1m.test.negative": (
            "127853228a76b7d21c0481e8ef8d00dd009cd5c88670dbdd9e9debfdb9f93de4",
            "https://raw.githubusercontent.com/hexiangnan/neural_collaborative_filtering/"
            "4aab159e81c44b062c091bdaed0ab54ac632371f/Data/ml-1m.test.negative",
        ),
        "ml-1m.train.pairs.reconstructed.tsv.gz": (
            "8c1ca8d39d27c7baef5a06485dcc4aa55aded890da034140440c04d0163afa61",
            None,
        ),
    },
    "amazon-beauty-bert4rec": {
        "beauty.txt": (
            "f480b7a7403852342ffd8f9809bb30697dd669be31813d0e204b698fec86ef49",
            "https://raw.githubusercontent.com/FeiSun/BERT4Rec/"
            "615eaf2004abecda487a38d5b0c72f3dcfcae5b3/data/beauty.txt",
        ),
    },
    "frappe-raw": {
        "Mobile_Frappe.zip": (
            "4adc616de57170f282397f6e6e30215f97fa7ad1b7f40bd12ef5dceaaf3e9b4e",
            "https://raw.githubusercontent.com/irecsys/CARSKit/"
            "0a1789fb0804b067cabd223c4b8fd8b4d2f6e881/context-aware_data_sets/Mobile_Frappe.zip",
        ),
    },
    "diginetica-sample": {
        "sample_train-item-views.csv": (
            "98da96e05c87ef12b739e4bfd9bc7b4864106ee77371f1db9eb4413e3f78d37e",
            "https://raw.githubusercontent.com/CRIPAC-DIG/SR-GNN/"
            "e21cfa431f74c25ae6e4ae9261deefe11d1cb488/datasets/sample_train-item-views.csv",
        ),
    },
}
_ML_100K_ZIP = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"


def get_data_home(data_home=None) -> Path:
    """``data_home``, else ``$SKREC_DATA``, else ``~/skrec_data``."""
    return Path(data_home or os.environ.get("SKREC_DATA") or Path.home() / "skrec_data")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URLs)
        return response.read()


def _folder(name: str, data_home=None, download: bool = True) -> Path:
    """The folder of dataset ``name`` with all its files, downloading what is missing."""
    folder = get_data_home(data_home) / name
    missing = [f for f in _SOURCES[name] if not (folder / f).exists()]
    if not missing:
        return folder
    hint = (
        f"Dataset '{name}' was not found under {folder} (missing {missing}). Point the "
        f"SKREC_DATA environment variable (or data_home=) at a folder holding '{name}/'."
    )
    if not download or any(_SOURCES[name][f][1] is None for f in missing):
        raise FileNotFoundError(hint + " skrec cannot download these files; place them there.")
    try:
        payloads = {}
        if name == "ml-100k":
            archive = zipfile.ZipFile(io.BytesIO(_download(_ML_100K_ZIP)))
            payloads = {f: archive.read(f"ml-100k/{f}") for f in missing}
        else:
            payloads = {f: _download(_SOURCES[name][f][1]) for f in missing}
    except OSError as exc:
        raise FileNotFoundError(hint + f" Downloading failed ({exc}); are you offline?") from exc
    for f, payload in payloads.items():
        if _sha256(payload) != _SOURCES[name][f][0]:
            raise OSError(f"Checksum mismatch for downloaded {name}/{f}; refusing to use it.")
    folder.mkdir(parents=True, exist_ok=True)
    for f, payload in payloads.items():
        (folder / f).write_bytes(payload)
    return folder


def _user_item_lines(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=" ", header=None, names=["user_id", "item_id"], dtype=np.int64)
    return frame.assign(timestamp=np.arange(len(frame), dtype=np.int64))


def load_ml_100k(data_home=None, download: bool = True) -> Bunch:
    """MovieLens 100K: 100,000 ratings of 1,682 movies by 943 users, with features.

    Returns a Bunch with ``interactions`` (``user_id, item_id, weight`` = rating 1-5,
    ``timestamp`` = unix seconds, in file order), ``user_features`` (age, gender, occupation,
    zip code), ``item_features`` (title, release date and 19 genre flags) and ``folds``:
    the five official (``u1.base``, ``u1.test``) ... (``u5.base``, ``u5.test``) rating
    splits, each table like ``interactions``.
    """
    folder = _folder("ml-100k", data_home, download)
    ratings = pd.read_csv(
        folder / "u.data",
        sep="\t",
        header=None,
        names=["user_id", "item_id", "weight", "timestamp"],
    )
    users = pd.read_csv(
        folder / "u.user",
        sep="|",
        header=None,
        names=["user_id", "age", "gender", "occupation", "zip_code"],
    )
    genres = [
        "unknown",
        "action",
        "adventure",
        "animation",
        "childrens",
        "comedy",
        "crime",
        "documentary",
        "drama",
        "fantasy",
        "film_noir",
        "horror",
        "musical",
        "mystery",
        "romance",
        "sci_fi",
        "thriller",
        "war",
        "western",
    ]
    items = pd.read_csv(
        folder / "u.item",
        sep="|",
        header=None,
        encoding="latin-1",
        names=["item_id", "title", "release_date", "video_release_date", "url", *genres],
    ).drop(columns=["video_release_date", "url"])
    columns = ["user_id", "item_id", "weight", "timestamp"]
    folds = [
        tuple(
            pd.read_csv(folder / f"u{fold}.{part}", sep="\t", header=None, names=columns)
            for part in ("base", "test")
        )
        for fold in range(1, 6)
    ]
    return Bunch(
        interactions=ratings,
        user_features=users,
        item_features=items,
        folds=folds,
        name="ml-100k",
    )


def load_ml_1m(data_home=None, download: bool = True) -> Bunch:
    """MovieLens 1M (user, movie) pairs, without ratings or timestamps, with features."""
    folder = _folder("ml-1m", data_home, download)
    pairs = pd.read_csv(folder / "ratings_user_item.csv.gz")
    users = pd.read_csv(
        folder / "users.dat",
        sep="::",
        engine="python",
        header=None,
        names=["user_id", "gender", "age", "occupation", "zip_code"],
    )
    items = pd.read_csv(
        folder / "movies.dat",
        sep="::",
        engine="python",
        header=None,
        encoding="latin-1",
        names=["item_id", "title", "genres"],
    )
    return Bunch(interactions=pairs, user_features=users, item_features=items, name="ml-1m")


def load_ml_1m_seq(data_home=None, download: bool = True) -> Bunch:
    """MovieLens 1M as the sequences of the SASRec/BERT4Rec papers (``ml-1m.txt``).

    ``interactions`` has ``user_id, item_id, timestamp`` where ``timestamp`` is the
    line number: each user's events are in time order.
    """
    folder = _folder("ml-1m-seq", data_home, download)
    return Bunch(interactions=_user_item_lines(folder / "ml-1m.txt"), name="ml-1m")


def load_beauty(data_home=None, download: bool = True) -> Bunch:
    """Amazon Beauty as preprocessed for BERT4Rec (40,226 users, 54,542 items, in order)."""
    folder = _folder("amazon-beauty-bert4rec", data_home, download)
    return Bunch(interactions=_user_item_lines(folder / "beauty.txt"), name="beauty")


def load_ml_1m_ncf(data_home=None, download: bool = True, order: str = "file") -> Bunch:
    """The NCF leave-one-out benchmark on MovieLens 1M (He et al. 2017).

    Returns a Bunch with ``train`` (``user_id, item_id``), ``test`` (``user_id,
    item_id, weight, timestamp``, one row per user) and ``negatives`` (int array of
    shape (n_test, 99): each test user's listed negative items, aligned with ``test``).

    The training pairs come without timestamps, in the order of MovieLens'
    ``ratings.dat``, which is not time order within a user. ``order="time"`` adds a
    ``timestamp`` column that puts each user's pairs in time order: the line of the pair
    in the SASRec/BERT4Rec file ``ml-1m-seq/ml-1m.txt`` (whose users' events are in time
    order; it needs that folder too), and -1 for the 593 pairs of the items that file
    drops (fewer than 5 ratings), which thus count as the oldest. The two files number
    users and items differently; the correspondence is recovered from the data alone
    (:func:`_seq_order_of_ncf_pairs`). With it, a user's last training pair is their
    latest, as the test pair is their latest event: a validation event held out by
    ``LeaveLastOut`` then mirrors the test split.
    """
    if order not in ("file", "time"):
        raise ValueError(f"order must be 'file' or 'time'; got {order!r}.")
    folder = _folder("ml-1m-ncf", data_home, download)
    with gzip.open(folder / "ml-1m.train.pairs.reconstructed.tsv.gz", "rt") as handle:
        train = pd.read_csv(handle, sep="\t", header=None, names=["user_id", "item_id"])
    test = pd.read_csv(
        folder / "ml-1m.test.rating",
        sep="\t",
        header=None,
        names=["user_id", "item_id", "weight", "timestamp"],
    )
    lines = (folder / "ml-1m.test.negative").read_text().split("\n")
    negatives = np.array([line.split("\t")[1:] for line in lines if line], dtype=np.int64)
    if order == "time":
        sequences = load_ml_1m_seq(data_home, download).interactions
        pairs = pd.concat([train, test[["user_id", "item_id"]]], ignore_index=True)
        line = _seq_order_of_ncf_pairs(pairs, sequences)[: len(train)]
        train = train.assign(timestamp=line)
    return Bunch(train=train, test=test, negatives=negatives, name="ml-1m-ncf")


def _signatures(frame: pd.DataFrame, key: str, members: str) -> pd.Series:
    """One hash per ``key`` of the sorted ``members`` it occurs with (a set's fingerprint)."""
    return frame.groupby(key)[members].agg(lambda s: hash(tuple(np.sort(s.to_numpy()))))


def _unique_match(left: pd.Series, right: pd.Series) -> dict:
    """Map the index of ``left`` to that of ``right`` where a value occurs exactly once in each."""
    left = left[~left.duplicated(keep=False)]
    right = right[~right.duplicated(keep=False)]
    inverse = pd.Series(right.index, index=right.to_numpy())
    shared = left[left.isin(inverse.index)]
    return dict(zip(shared.index, inverse.loc[shared.to_numpy()].to_numpy(), strict=True))


def _seq_order_of_ncf_pairs(pairs: pd.DataFrame, sequences: pd.DataFrame) -> np.ndarray:
    """The line in ``ml-1m.txt`` of each (user, item) pair of the NCF files; -1 if absent.

    Both files hold MovieLens 1M, numbered differently (NCF: user - 1, items by first
    appearance in ``ratings.dat``; SASRec: its own order, items with fewer than 5
    ratings dropped). Items whose rating count is unique in both files are matched by
    count; users by the set of those items they rated; then every item by the set of
    its users. Each step must be one-to-one, or the files are not what is expected.
    """
    seq_items = _unique_match(sequences.groupby("item_id").size(), pairs.groupby("item_id").size())
    seeds = sequences[sequences.item_id.isin(seq_items)]
    seeds = seeds.assign(item_id=seeds.item_id.map(seq_items))
    users = _unique_match(
        _signatures(seeds, "user_id", "item_id"),
        _signatures(pairs[pairs.item_id.isin(seeds.item_id.unique())], "user_id", "item_id"),
    )
    if len(users) != sequences.user_id.nunique():
        raise ValueError("ml-1m.txt and the NCF files do not hold the same users.")
    mapped = sequences.assign(user_id=sequences.user_id.map(users))
    items = _unique_match(
        _signatures(mapped, "item_id", "user_id"), _signatures(pairs, "item_id", "user_id")
    )
    if len(items) != mapped.item_id.nunique():
        raise ValueError("ml-1m.txt's items could not all be matched to the NCF files'.")
    mapped = mapped.assign(item_id=mapped.item_id.map(items), line=np.arange(len(mapped)))
    found = pairs.merge(
        mapped[["user_id", "item_id", "line"]], on=["user_id", "item_id"], how="left"
    )
    return found["line"].fillna(-1).to_numpy(np.int64)


def load_frappe(data_home=None, download: bool = True) -> Bunch:
    """Frappe context-aware app usage log (Baltrunas et al. 2015).

    Returns a Bunch with ``log`` (the 96,203 rows of ``frappe.csv``: user, item, cnt
    and the context columns) and ``item_features`` (``meta.csv``).
    """
    folder = _folder("frappe-raw", data_home, download)
    with zipfile.ZipFile(folder / "Mobile_Frappe.zip") as archive:
        log = pd.read_csv(archive.open("Mobile_Frappe/frappe/frappe.csv"), sep="\t")
        items = pd.read_csv(archive.open("Mobile_Frappe/frappe/meta.csv"), sep="\t")
    return Bunch(log=log, item_features=items, name="frappe")


def load_diginetica_sample(data_home=None, download: bool = True) -> Bunch:
    """The DIGINETICA item-view sample (session-based recommendation).

    ``interactions`` has ``user_id`` = session id, ``item_id`` and ``timestamp`` (event
    date in nanoseconds plus the in-session time offset, so order within a session holds).
    """
    folder = _folder("diginetica-sample", data_home, download)
    raw = pd.read_csv(folder / "sample_train-item-views.csv", sep=";")
    day = pd.to_datetime(raw["eventdate"]).to_numpy().astype("datetime64[ns]").astype(np.int64)
    interactions = pd.DataFrame(
        {
            "user_id": raw["session_id"].to_numpy(),
            "item_id": raw["item_id"].to_numpy(),
            "timestamp": day + raw["timeframe"].to_numpy(dtype=np.int64),
        }
    )
    return Bunch(interactions=interactions, raw=raw, name="diginetica-sample")


_BY_NAME = {
    # P1 treats every rating as an implicit event: the rating column is left out.
    "ml-100k": lambda h: load_ml_100k(h).interactions.drop(columns="weight"),
    "ml-1m": lambda h: load_ml_1m_seq(h).interactions,
    "beauty": lambda h: load_beauty(h).interactions,
    "diginetica": lambda h: load_diginetica_sample(h).interactions,
}


def fetch_interactions(name: str, data_home=None, random_state=0) -> pd.DataFrame:
    """The interaction table of a named dataset, or of a CSV file.

    Names: ``synthetic`` (``make_interactions`` with 1,000 users and 300 items), ``ml-100k``,
    ``ml-1m`` (the sequences), ``beauty``, ``diginetica``; anything ending in ``.csv``
    is read as a table with ``user_id``, ``item_id`` (and optional ``timestamp``,
    ``weight``) columns.
    """
    if name == "synthetic":
        return make_interactions(n_users=1000, n_items=300, random_state=random_state)
    if name in _BY_NAME:
        return _BY_NAME[name](data_home)
    if name == "frappe":
        raise ValueError(
            "frappe is a CTR dataset (context features, labels), not a plain interaction "
            "table; load it with load_frappe(). Its benchmark protocol 'ctr' comes with the "
            "feature-crossing models."
        )
    if str(name).endswith(".csv"):
        return pd.read_csv(name)
    if name == "ml-1m-ncf":
        raise ValueError(
            "ml-1m-ncf comes as train pairs with listed test negatives: evaluate it with "
            "the NCF protocol (skrec bench --dataset ml-1m-ncf --protocol ncf), or load it "
            "with skrec.datasets.load_ml_1m_ncf."
        )
    raise ValueError(
        f"Unknown dataset {name!r}; use one of {['synthetic', *_BY_NAME]} or a .csv path."
    )
