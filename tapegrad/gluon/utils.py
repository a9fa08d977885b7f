"""``gluon.utils``: splitting batches over devices, gradient clipping, file checks and
downloads, as MXNet 1.9's.

>>> import tapegrad as mx
>>> from tapegrad.gluon import utils
>>> [x.shape for x in utils.split_data(mx.nd.ones((5, 2)), 2, even_split=False)]
[(3, 2), (2, 2)]
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import urllib.parse
import urllib.request
import uuid
import warnings
from typing import Any

import numpy as np

from .. import autograd
from .. import ndarray as nd
from ..base import TapegradError

__all__ = [
    "split_data",
    "split_and_load",
    "clip_global_norm",
    "check_sha1",
    "download",
    "replace_file",
    "shape_is_known",
    "DownloadError",
]


class DownloadError(TapegradError, OSError):
    """A file could not be downloaded (no network, a missing ``file://`` source, a bad
    checksum); the message names the URL, the destination and the fix."""


def split_data(
    data: nd.NDArray, num_slice: int, batch_axis: int = 0, even_split: bool = True
) -> list[nd.NDArray]:
    """Split ``data`` into ``num_slice`` slices along ``batch_axis`` (always a list). With
    ``even_split`` the size must be divisible; otherwise the first slices get one more.

    >>> import tapegrad as mx
    >>> [x.shape for x in split_data(mx.nd.ones((4, 3)), 2)]
    [(2, 3), (2, 3)]
    """
    if not isinstance(num_slice, int) or isinstance(num_slice, bool) or num_slice < 1:
        raise ValueError(
            f"split_data: num_slice must be a positive int, got {num_slice!r}. Fix: pass the "
            "number of devices, e.g. len(ctx_list)."
        )
    shape = tuple(data.shape)
    if not -len(shape) <= batch_axis < len(shape):
        raise ValueError(
            f"split_data: data of shape {shape} has no axis batch_axis={batch_axis}. Fix: "
            "pass the axis that holds the samples."
        )
    size = shape[batch_axis]
    if even_split and size % num_slice != 0:
        raise ValueError(
            f"data with shape {shape} cannot be evenly split into {num_slice} slices along "
            f"axis {batch_axis}. Use a batch size that's multiple of {num_slice} or set "
            "even_split=False to allow uneven partitioning of data."
        )
    n_each, extras = divmod(size, num_slice)
    sizes = [0] + extras * [n_each + 1] + (num_slice - extras) * [n_each]
    points = np.cumsum(sizes)
    if batch_axis % len(shape) == 0:
        return [data[int(points[i]) : int(points[i + 1])] for i in range(num_slice)]
    return [
        nd.slice_axis(data, axis=batch_axis, begin=int(points[i]), end=int(points[i + 1]))
        for i in range(num_slice)
    ]


def split_and_load(
    data: Any, ctx_list: list, batch_axis: int = 0, even_split: bool = True
) -> list[nd.NDArray]:
    """Split ``data`` into ``len(ctx_list)`` slices along ``batch_axis`` and put slice ``i``
    on ``ctx_list[i]``. With one context the whole batch comes back (no copy).

    >>> import tapegrad as mx
    >>> x = mx.nd.ones((4, 3))
    >>> split_and_load(x, [mx.cpu()])[0] is x
    True
    """
    if not isinstance(ctx_list, (list, tuple)) or not ctx_list:
        raise ValueError(
            f"split_and_load: ctx_list must be a non-empty list of contexts, got "
            f"{ctx_list!r}. Fix: pass e.g. [mx.cpu()]."
        )
    if not isinstance(data, nd.NDArray):
        data = nd.array(data, ctx=ctx_list[0])
    if len(ctx_list) == 1:
        return [data.as_in_context(ctx_list[0])]
    slices = split_data(data, len(ctx_list), batch_axis, even_split)
    return [s.as_in_context(c) for s, c in zip(slices, ctx_list)]


def clip_global_norm(arrays: list, max_norm: float, check_isfinite: bool = True) -> Any:
    """Rescale the NDArrays ``arrays`` in place so that their global 2-norm
    (``sqrt(sum of squares of every element)``) is at most ``max_norm``; returns the norm
    before clipping (a float; an NDArray of shape (1,) when ``check_isfinite`` is False).

    As in MXNet the scale is ``min(max_norm / (norm + 1e-8), 1)``, and a NaN or infinite
    norm gives a warning (the arrays then hold NaN).

    >>> import tapegrad as mx
    >>> g = [mx.nd.array([3.0]), mx.nd.array([4.0])]
    >>> clip_global_norm(g, 1.0), [round(float(x.asscalar()), 4) for x in g]
    (5.0, [0.6, 0.8])
    """
    if not isinstance(arrays, (list, tuple)) or not arrays:
        raise ValueError(
            "clip_global_norm: arrays must be a non-empty list of NDArrays (e.g. the "
            "gradients [p.grad() for p in params.values()])."
        )
    for i, a in enumerate(arrays):
        if not isinstance(a, nd.NDArray):
            raise TypeError(
                f"clip_global_norm: arrays[{i}] is a {type(a).__name__}, not an NDArray. Fix: "
                "pass the NDArrays to clip (they are changed in place)."
            )
    dtype = np.dtype(arrays[0].dtype)
    total = np.zeros((), dtype=dtype)
    for a in arrays:
        x = np.asarray(a).reshape(-1)
        total = total + np.dot(x, x).astype(dtype)
    total_norm = np.sqrt(total)
    if check_isfinite and not math.isfinite(float(total_norm)):
        warnings.warn(
            UserWarning("nan or inf is detected. Clipping results will be undefined."),
            stacklevel=2,
        )
    # a non-finite norm was warned about above; NumPy need not warn again for each array
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"), autograd.pause():
        scale = np.minimum(np.asarray(max_norm, dtype=dtype) / (total_norm + dtype.type(1e-8)), 1)
        for a in arrays:
            a *= float(scale) if a.dtype == dtype else scale.astype(a.dtype)
    if check_isfinite:
        return float(total_norm)
    return nd.array(np.reshape(total_norm, (1,)), dtype=dtype)


def check_sha1(filename: str, sha1_hash: str) -> bool:
    """Whether the SHA-1 of the file's content is ``sha1_hash`` (hexadecimal)."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    with open(filename, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha1.update(block)
    return sha1.hexdigest() == sha1_hash


def replace_file(src: str, dst: str) -> None:
    """Move ``src`` over ``dst`` atomically (``src`` is removed if that fails)."""
    try:
        os.replace(src, dst)
    except OSError as e:
        try:
            os.remove(src)
        except OSError:
            pass
        raise OSError(
            f"Moving downloaded temp file - {src}, to {dst} failed ({e}). Please retry the "
            "download."
        ) from None


def _fetch(url: str, dst: str) -> None:
    """Copy ``url`` into ``dst`` (a ``file://`` URL is read locally)."""
    parts = urllib.parse.urlparse(url)
    if parts.scheme == "file":
        src = urllib.request.url2pathname(parts.path)
        with open(src, "rb") as f, open(dst, "wb") as out:
            shutil.copyfileobj(f, out)
        return
    with urllib.request.urlopen(url, timeout=30) as r, open(dst, "wb") as out:  # noqa: S310
        status = getattr(r, "status", 200)
        if status != 200:
            raise OSError(f"HTTP status {status}")
        shutil.copyfileobj(r, out)


def download(
    url: str,
    path: str | None = None,
    overwrite: bool = False,
    sha1_hash: str | None = None,
    retries: int = 5,
    verify_ssl: bool = True,
) -> str:
    """Download ``url`` and return the local file name, as MXNet's ``gluon.utils.download``.

    Nothing is fetched when the file exists already (and matches ``sha1_hash`` when given)
    unless ``overwrite``. ``file://`` URLs are copied from the local disk, so data placed
    beforehand works without a network. The file appears atomically; a failure raises
    :class:`DownloadError` naming the URL, the destination and how to provide the file.

    Args:
        url: the address (``http(s)://`` or ``file://``).
        path: the destination file, or a folder (an existing one, or a path ending in
            ``/``: the URL's file name is kept); default: the URL's file name in the current
            folder.
        overwrite: download even when the file exists.
        sha1_hash: the expected SHA-1 (hexadecimal) of the content.
        retries: attempts after the first failure.
        verify_ssl: accepted for compatibility (certificates are always verified).
    """
    if path is None:
        fname = url.split("/")[-1]
        if not fname:
            raise DownloadError(
                f"download: cannot make a file name from the URL {url!r}. Fix: pass path=..."
            )
    else:
        path = os.path.expanduser(path)
        is_dir = os.path.isdir(path) or path.endswith(("/", os.sep))
        fname = os.path.join(path, url.split("/")[-1]) if is_dir else path
    if retries < 0:
        raise ValueError(f"download: retries must be >= 0, got {retries}")
    if not verify_ssl:
        warnings.warn(
            "Unverified HTTPS request is being made (verify_ssl=False). Adding certificate "
            "verification is strongly advised.",
            stacklevel=2,
        )
    if not overwrite and os.path.exists(fname):
        if not sha1_hash or check_sha1(fname, sha1_hash):
            return fname
    dirname = os.path.dirname(os.path.abspath(fname))
    os.makedirs(dirname, exist_ok=True)
    last: Exception | None = None
    for _ in range(retries + 1):
        tmp = f"{fname}.{uuid.uuid4()}"
        try:
            _fetch(url, tmp)
            if sha1_hash and not check_sha1(tmp, sha1_hash):
                raise DownloadError(
                    f"download: {url} was fetched but its content does not have SHA-1 "
                    f"{sha1_hash}. Fix: check the URL, or place the right file at {fname}."
                )
            replace_file(tmp, fname)
            return fname
        except DownloadError:
            _remove(tmp)
            raise
        except (OSError, ValueError) as e:
            _remove(tmp)
            last = e
            if urllib.parse.urlparse(url).scheme == "file":
                break  # a local file does not appear by retrying
    raise DownloadError(
        f"download: could not get {url} into {fname} ({last}). Fix: check the network, or "
        f"place the file at {fname} yourself (download then uses it), or pass a file:// URL "
        "of a local copy."
    ) from last


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def shape_is_known(shape: Any) -> bool:
    """Whether ``shape`` is completely known: not None, and no dimension 0 (MXNet's legacy
    shape semantics, where 0 means unknown and ``()`` is an unknown shape).

    >>> shape_is_known((2, 3)), shape_is_known((2, 0)), shape_is_known(None)
    (True, False, False)
    """
    if shape is None:
        return False
    if len(shape) == 0:
        return False
    for d in shape:
        if d == 0:
            return False
        if d < 0:
            raise ValueError(
                f"shape_is_known: shape dimension size cannot be less than 0, while received "
                f"{d} in {tuple(shape)}"
            )
    return True


def _get_repo_url() -> str:
    """The base URL of the Gluon model and dataset repository (``MXNET_GLUON_REPO``)."""
    repo = os.environ.get(
        "MXNET_GLUON_REPO", "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
    )
    return repo if repo.endswith("/") else repo + "/"


def _get_repo_file_url(namespace: str, filename: str) -> str:
    """The URL of ``filename`` in ``namespace`` of the Gluon repository."""
    return f"{_get_repo_url()}{namespace}/{filename}"


def _brief_print_list(lst: Any, limit: int = 7) -> str:
    """At most ``limit`` elements of ``lst``, quoted."""
    lst = list(lst)
    if len(lst) > limit:
        return (
            _brief_print_list(lst[: limit // 2], limit)
            + ", ..., "
            + _brief_print_list(lst[-limit // 2 :], limit)
        )
    return ", ".join(f"'{i}'" for i in lst)
