"""Saving and loading fitted models in a format that cannot run code when loaded.

A pickle can execute anything on ``pickle.load``; a model file shared between teams or
downloaded should not be able to. :func:`save` writes one zip archive:

- ``model.json``: the estimator's class name, hyper-parameters and fitted attributes as
  JSON (ids, curves, sizes), with every array replaced by a reference;
- ``arrays/<n>.npy``: the arrays and tensors, read back with ``allow_pickle=False``;
- ``checksums.json``: the SHA-256 of every other member, so a truncated, corrupted or
  edited file fails to load with a clear error instead of giving a different model.

:func:`load` only ever constructs skrec's own estimator classes, named in the file, from
plain values; torch modules are rebuilt from the hyper-parameters and filled with the
saved weights. Pickling still works as for any scikit-learn estimator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from .base import BaseRecommender
from .data.interactions import Interactions
from .utils.validation import check_params

FORMAT = "skrec-model"
FORMAT_VERSION = 1
_MANIFEST = "model.json"
_CHECKSUMS = "checksums.json"
_TYPE = "$type"
#: Attributes rebuilt after loading rather than stored: the faiss index (from the item
#: vectors) and models' own helpers listed in ``_rebuilt_on_load``.
_ALWAYS_REBUILT = ("_ann_index_",)


def save(model, path) -> Path:
    """Write ``model`` (fitted or not) to ``path`` in skrec's safe format.

    Parameters
    ----------
    model : skrec estimator
    path : str or path
        The file to write (conventionally ending in ``.skrec``); replaced atomically, so
        an interrupted save leaves any previous file intact.

    Returns
    -------
    Path of the written file.

    Examples
    --------
    >>> import tempfile, os, skrec
    >>> from skrec.datasets import make_interactions
    >>> X = make_interactions(n_users=40, n_items=20, random_state=0)
    >>> model = skrec.EASE(l2_reg=10.0).fit(X)
    >>> path = skrec.save(model, os.path.join(tempfile.mkdtemp(), "ease.skrec"))
    >>> (skrec.load(path).recommend([X.user_id[0]]) == model.recommend([X.user_id[0]])).all()
    np.True_
    """
    if not isinstance(model, BaseRecommender) or type(model).__name__ not in _classes():
        raise TypeError(
            f"skrec.save writes skrec's estimators; got {type(model).__name__}. Save other "
            "objects (pipelines, subclasses) with pickle or joblib."
        )
    writer = _Writer()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skrec_version": _skrec_version(),
        "model": writer.estimator(model),
    }
    members = {_MANIFEST: json.dumps(manifest, allow_nan=False).encode(), **writer.arrays}
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
            archive.writestr(_CHECKSUMS, json.dumps(checksums))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def load(path, *, device=None):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or path
    device : str, optional
        Move a torch model there (sets its ``device`` parameter). By default the saved
        ``device`` is used, or the CPU, with a warning, when this machine lacks it: a
        model saved on a GPU loads on a CPU-only machine.

    Raises
    ------
    ValueError
        The file is not a skrec model, was written by a newer format version, or is
        truncated, corrupted or modified.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise _corrupt(path, f"not a readable archive ({error})") from error
    if _MANIFEST not in members or _CHECKSUMS not in members:
        raise _corrupt(path, "it lacks model.json or checksums.json; is it a skrec model file?")
    try:
        checksums = json.loads(members.pop(_CHECKSUMS))
    except ValueError as error:
        raise _corrupt(path, "checksums.json is not valid JSON") from error
    if not isinstance(checksums, dict) or set(checksums) != set(members):
        raise _corrupt(path, "its members do not match its checksum list")
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != checksums[name]:
            raise _corrupt(path, f"the checksum of {name} does not match (modified or damaged)")
    try:
        manifest = json.loads(members[_MANIFEST])
    except ValueError as error:
        raise _corrupt(path, "model.json is not valid JSON") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _corrupt(path, "it is not a skrec model file")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in skrec model format {version!r}; this skrec "
            f"({_skrec_version()}) reads up to format {FORMAT_VERSION}. Upgrade skrec."
        )
    reader = _Reader(members, device)
    try:
        model = reader.estimator(manifest.get("model"))
    except _FormatError as error:
        raise _corrupt(path, str(error)) from error
    return model


class _FormatError(Exception):
    """A structural problem in a model file (reported as a ValueError by ``load``)."""


def _corrupt(path, reason: str) -> ValueError:
    return ValueError(f"Cannot load {path}: {reason}. Re-save the model from its source.")


def _classes() -> dict:
    import skrec

    return {name: getattr(skrec, name) for name in skrec.ESTIMATORS}


def _skrec_version() -> str:
    import skrec

    return skrec.__version__


class _Writer:
    """Encodes values as JSON, collecting arrays as .npy members (each array once)."""

    def __init__(self):
        self.arrays: dict[str, bytes] = {}
        self._refs: dict[int, str] = {}
        self._keep_alive: list = []  # ids stay unique while the writer lives

    def array(self, array: np.ndarray) -> str:
        ref = self._refs.get(id(array))
        if ref is None:
            ref = f"arrays/{len(self.arrays)}.npy"
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(array, order="C"), allow_pickle=False)  # keeps 0-d
            self.arrays[ref] = buffer.getvalue()
            self._refs[id(array)] = ref
            self._keep_alive.append(array)
        return ref

    def tensor(self, tensor: torch.Tensor) -> dict:
        tensor = tensor.detach().cpu()
        dtype = str(tensor.dtype).removeprefix("torch.")
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: stored widened, exactly
            tensor = tensor.float()
        return {_TYPE: "tensor", "dtype": dtype, "ref": self.array(tensor.numpy())}

    def estimator(self, model) -> dict:
        params = model.get_params(deep=False)
        skipped = set(_ALWAYS_REBUILT) | set(getattr(model, "_rebuilt_on_load", ()))
        state = {}
        for name, value in model.__dict__.items():
            if name in params or name in skipped:
                continue
            if isinstance(value, torch.nn.Module):
                if name != "module_":
                    raise TypeError(f"{type(model).__name__}.{name}: only module_ can be saved.")
                tensors = {k: self.tensor(v) for k, v in value.state_dict().items()}
                state[name] = {_TYPE: "module", "tensors": tensors}
                if model._architecture is not None:  # see TorchRecommender._architecture
                    state[name]["architecture"] = model._architecture
            else:
                state[name] = self.value(value, f"{type(model).__name__}.{name}")
        return {
            _TYPE: "estimator",
            "class": type(model).__name__,
            "params": {k: self.value(v, f"parameter {k}") for k, v in params.items()},
            "state": state,
        }

    def value(self, value, where: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return _float(value)
        if isinstance(value, np.generic) and value.dtype.kind in "biufM":
            return {_TYPE: "scalar", "dtype": value.dtype.str, "ref": self.array(np.array(value))}
        if isinstance(value, (list, tuple)):
            items = [self.value(v, where) for v in value]
            return items if isinstance(value, list) else {_TYPE: "tuple", "items": items}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {_TYPE: "dict", "items": {k: self.value(v, where) for k, v in value.items()}}
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "O":
                return {
                    _TYPE: "objects",
                    "shape": list(value.shape),
                    "items": [_plain(v, where) for v in value.ravel().tolist()],
                }
            return {_TYPE: "array", "ref": self.array(value)}
        if isinstance(value, torch.Tensor):
            return self.tensor(value)
        if isinstance(value, pd.Index):
            return {_TYPE: "index", "values": self.value(value.to_numpy(), where)}
        if sp.issparse(value):
            csr = value.tocsr()
            return {
                _TYPE: "sparse",
                "format": value.format,
                "shape": list(csr.shape),
                "parts": [self.value(a, where) for a in (csr.data, csr.indices, csr.indptr)],
            }
        if isinstance(value, Interactions):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            return {_TYPE: "interactions", "fields": self.value(fields, where)}
        if isinstance(value, torch.device):
            return {_TYPE: "device", "value": str(value)}
        if isinstance(value, os.PathLike):
            return {_TYPE: "path", "value": os.fspath(value)}
        if isinstance(value, np.random.RandomState):
            return {_TYPE: "random_state", "state": self.value(value.get_state(), where)}
        if isinstance(value, BaseRecommender) and type(value).__name__ in _classes():
            return self.estimator(value)
        raise TypeError(
            f"skrec.save cannot store {where} of type {type(value).__name__} safely; use "
            "pickle for this model."
        )


def _plain(value, where):
    """An item of an object array (raw ids): a JSON scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _float(value)
    raise TypeError(
        f"skrec.save cannot store {where}: it holds a {type(value).__name__} id; ids must be "
        "strings or numbers. Use pickle, or map the ids to strings before fitting."
    )


def _float(value: float):
    """A float as JSON: as is, or tagged where JSON has no literal for it (nan, inf)."""
    return value if math.isfinite(value) else {_TYPE: "float", "value": repr(value)}


class _Reader:
    """Decodes what :class:`_Writer` wrote; builds only plain values and skrec classes."""

    def __init__(self, members: dict[str, bytes], device=None):
        self.members = members
        self.device = device  # load(device=...): for the model and the models inside it

    def array(self, ref) -> np.ndarray:
        if not isinstance(ref, str) or ref not in self.members:
            raise _FormatError(f"it refers to a missing array {ref!r}")
        try:
            return np.load(io.BytesIO(self.members[ref]), allow_pickle=False)
        except ValueError as error:
            raise _FormatError(f"{ref} is not a plain array ({error})") from error

    def tensor(self, spec) -> torch.Tensor:
        dtype = getattr(torch, str(spec.get("dtype")), None)
        if not isinstance(dtype, torch.dtype):
            raise _FormatError(f"unknown tensor dtype {spec.get('dtype')!r}")
        return torch.from_numpy(self.array(spec.get("ref")).copy()).to(dtype)

    def estimator(self, spec):
        if not isinstance(spec, dict):
            raise _FormatError("its model entry is not a mapping")
        classes = _classes()
        name = spec.get("class")
        if name not in classes:
            raise _FormatError(f"it names the class {name!r}, which is not a skrec estimator")
        params = spec.get("params", {})
        if not isinstance(params, dict):
            raise _FormatError("the parameters are not a mapping")
        params = {key: self.value(value) for key, value in params.items()}
        if self.device is not None and "device" in params:
            params["device"] = self.device
        try:
            model = classes[name](**params)
            if hasattr(model, "_parameter_constraints"):
                check_params(model)
        except (TypeError, ValueError) as error:  # InvalidParameterError is a ValueError
            raise _FormatError(f"its parameters do not fit {name} ({error})") from error
        state = spec.get("state", {})
        if not isinstance(state, dict):
            raise _FormatError("the fitted state is not a mapping")
        module = None
        for key, value in state.items():
            if isinstance(value, dict) and value.get(_TYPE) == "module":
                module = value
                continue
            model.__dict__[key] = self.value(value)
        if module is not None:
            self.module(model, module)
        if "item_ids_" in model.__dict__:
            model._build_ann_index()
            after_load = getattr(model, "_after_load", None)
            if after_load is not None:
                after_load()
        return model

    def module(self, model, spec) -> None:
        """Rebuild ``model.module_`` from the hyper-parameters, then load the weights."""
        from .training import _GLOBAL_RNG_LOCK, _usable_device

        saved, current = spec.get("architecture"), model._architecture
        if saved != current:  # same weight names, another network: refuse, never mix
            raise ValueError(
                f"The file's {type(model).__name__} was fitted with the network "
                f"{saved or 'of an earlier skrec'!r}; this skrec ({_skrec_version()}) "
                f"builds {current or 'another one'!r}, and the weights would not mean "
                "the same. Refit the model with this skrec (its hyper-parameters are in "
                "the file's model.json)."
            )
        tensors = {k: self.tensor(v) for k, v in spec.get("tensors", {}).items()}
        try:
            with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):  # init draws weights
                module = model._build_module(model._train)
        except (TypeError, ValueError, AttributeError, RuntimeError) as error:
            raise _FormatError(f"its fitted state cannot build the network ({error})") from error
        try:
            module.load_state_dict(tensors, strict=True, assign=True)  # keeps saved dtypes
        except RuntimeError as error:
            reason = " ".join(str(error).split())[:300]
            raise _FormatError(f"the saved weights do not fit the model ({reason})") from error
        model.device_ = _usable_device(model.device, strict=False)
        model.module_ = module.to(model.device_).eval()

    def value(self, value):
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if not isinstance(value, dict):
            return value
        kind = value.get(_TYPE)
        try:
            return self._typed(kind, value)
        except (KeyError, TypeError, AttributeError) as error:
            raise _FormatError(f"a {kind!r} entry is malformed ({error})") from error

    def _typed(self, kind, value):
        if kind == "float":
            return float(value["value"])
        if kind == "scalar":
            return self.array(value["ref"])[()]
        if kind == "tuple":
            return tuple(self.value(v) for v in value["items"])
        if kind == "dict":
            return {k: self.value(v) for k, v in value["items"].items()}
        if kind == "array":
            return self.array(value["ref"])
        if kind == "objects":
            items = [self.value(v) for v in value["items"]]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(value["shape"])
        if kind == "tensor":
            return self.tensor(value)
        if kind == "index":
            return pd.Index(self.value(value["values"]))
        if kind == "sparse":
            data, indices, indptr = (self.value(v) for v in value["parts"])
            csr = sp.csr_matrix((data, indices, indptr), shape=tuple(value["shape"]))
            return csr.asformat(value["format"])
        if kind == "interactions":
            return Interactions(**self.value(value["fields"]))
        if kind == "device":
            return torch.device(value["value"])
        if kind == "path":
            return Path(value["value"])
        if kind == "random_state":
            random_state = np.random.RandomState()
            random_state.set_state(self.value(value["state"]))
            return random_state
        if kind == "estimator":
            return self.estimator(value)
        raise _FormatError(f"unknown entry type {kind!r}")
