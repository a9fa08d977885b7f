"""Helpers for tests and tutorials (``mx.test_utils``), as MXNet 1.9's.

MXNet's ``check_numeric_gradient`` takes a Symbol; tapegrad has none, so it takes a Python
function of NDArrays (or a Block) instead, with the same checks.

>>> import tapegrad as mx
>>> mx.test_utils.list_gpus()
[]
>>> mx.test_utils.almost_equal(mx.nd.array([1.0]).asnumpy(), [1.00001])
True
"""

from __future__ import annotations

import gzip
import numbers
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

from . import autograd
from . import ndarray as nd
from .base import TapegradError
from .context import Context, current_context

__all__ = [
    "default_context",
    "set_default_context",
    "default_dtype",
    "default_rtols",
    "default_atols",
    "default_numeric_eps",
    "get_atol",
    "get_rtol",
    "get_tolerance",
    "get_tols",
    "random_arrays",
    "random_uniform_arrays",
    "random_sample",
    "rand_ndarray",
    "rand_shape_2d",
    "rand_shape_3d",
    "rand_shape_nd",
    "same",
    "almost_equal",
    "assert_almost_equal",
    "assert_allclose",
    "assert_almost_equal_ignore_nan",
    "assert_exception",
    "retry",
    "numeric_grad",
    "check_numeric_gradient",
    "list_gpus",
    "download",
    "get_mnist",
    "get_mnist_ubyte",
    "get_mnist_iterator",
    "same_array",
    "GradientCheckError",
]


class GradientCheckError(TapegradError, TypeError):
    """``check_numeric_gradient`` was given something it cannot differentiate."""


def default_context() -> Context:
    """The context tests run on: the current default context (``cpu(0)``)."""
    return current_context()


def set_default_context(ctx: Context) -> None:
    """Make ``ctx`` the default context of this thread (as MXNet's test helper does)."""
    Context._default_ctx.value = ctx


def default_dtype() -> type:
    """float32, the default dtype of test data."""
    return np.float32


def default_rtols() -> dict:
    """Default relative tolerances per dtype (MXNet's table)."""
    tol = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-5}
    for t in (np.bool_, np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64):
        tol[np.dtype(t)] = 0
    return tol


def default_atols() -> dict:
    """Default absolute tolerances per dtype (MXNet's table)."""
    tol = {np.dtype(np.float16): 1e-1, np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-20}
    for t in (np.bool_, np.int8, np.uint8, np.int32, np.uint32, np.int64, np.uint64):
        tol[np.dtype(t)] = 0
    return tol


def default_numeric_eps() -> dict:
    """Default finite-difference steps per dtype (powers of two, as in MXNet)."""
    return {
        np.dtype(np.float16): 1.0 / 2**6,
        np.dtype(np.float32): 1.0 / 2**9,
        np.dtype(np.float64): 1.0 / 2**14,
    }


def _dtype_of(dat: Any) -> np.dtype:
    if isinstance(dat, numbers.Number):
        return np.asarray(dat).dtype
    dt = getattr(dat, "dtype", None)
    return np.dtype(dt) if dt is not None else np.asarray(dat).dtype


def get_tolerance(dat: Any, tol: Any, default_tol: dict) -> float:
    """``tol`` itself when it is a number, else its (or the default table's) entry for the
    dtype of ``dat``."""
    if isinstance(tol, numbers.Number):
        return tol
    dtype = _dtype_of(dat)
    tol = {} if tol is None else tol
    if dtype in tol:
        return tol[dtype]
    return default_tol.get(dtype, 0)


def get_tols(x: Any, y: Any, rtol: Any, atol: Any) -> tuple[float, float]:
    """The larger of the tolerances for ``x`` and ``y``."""
    rtol = max(get_tolerance(x, rtol, default_rtols()), get_tolerance(y, rtol, default_rtols()))
    atol = max(get_tolerance(x, atol, default_atols()), get_tolerance(y, atol, default_atols()))
    return rtol, atol


def get_atol(atol: float | None = None, dtype: Any = np.float64) -> float:
    """``atol``, or the default for ``dtype``."""
    return default_atols()[np.dtype(dtype)] if atol is None else atol


def get_rtol(rtol: float | None = None, dtype: Any = np.float64) -> float:
    """``rtol``, or the default for ``dtype``."""
    return default_rtols()[np.dtype(dtype)] if rtol is None else rtol


def random_arrays(*shapes: tuple) -> Any:
    """Standard-normal float32 NumPy arrays of the given shapes (one array for one shape),
    from NumPy's global generator."""
    arrays = [
        np.array(np.random.randn(), dtype=default_dtype())
        if len(s) == 0
        else np.random.randn(*s).astype(default_dtype())
        for s in shapes
    ]
    return arrays[0] if len(arrays) == 1 else arrays


def random_uniform_arrays(
    *shapes: tuple, low: float = 0.0, high: float = 1.0, dtype: Any = None
) -> list[np.ndarray]:
    """Uniform NumPy arrays of the given shapes."""
    dtype = default_dtype() if dtype is None else dtype
    return [np.random.uniform(low, high, size=s).astype(dtype) for s in shapes]


def random_sample(population: list, k: int) -> list:
    """``k`` elements of ``population`` in random order."""
    if not 0 <= k <= len(population):
        raise ValueError(f"random_sample: k={k} is not in [0, {len(population)}]")
    copy = list(population)
    np.random.shuffle(copy)
    return copy[:k]


def rand_ndarray(
    shape: tuple,
    stype: str = "default",
    density: float | None = None,
    dtype: Any = None,
    modifier_func: Callable | None = None,
    shuffle_csr_indices: bool = False,
    distribution: Any = None,
    ctx: Context | None = None,
) -> nd.NDArray:
    """A random standard-normal NDArray of ``shape`` (float32 unless ``dtype``)."""
    if stype != "default":
        raise ValueError(
            f"rand_ndarray: stype={stype!r}: tapegrad stores every array densely. Fix: use "
            "stype='default'."
        )
    return nd.array(random_arrays(tuple(shape)), dtype=dtype)


def rand_shape_2d(dim0: int = 10, dim1: int = 10, allow_zero_size: bool = False) -> tuple:
    """A random 2-D shape with sizes in [1, dim] ([0, dim] with ``allow_zero_size``)."""
    low = 0 if allow_zero_size else 1
    return np.random.randint(low, dim0 + 1), np.random.randint(low, dim1 + 1)


def rand_shape_3d(
    dim0: int = 10, dim1: int = 10, dim2: int = 10, allow_zero_size: bool = False
) -> tuple:
    """A random 3-D shape."""
    low = 0 if allow_zero_size else 1
    return (
        np.random.randint(low, dim0 + 1),
        np.random.randint(low, dim1 + 1),
        np.random.randint(low, dim2 + 1),
    )


def rand_shape_nd(num_dim: int, dim: int = 10, allow_zero_size: bool = False) -> tuple:
    """A random shape of ``num_dim`` dimensions, each in [1, dim]."""
    low = 0 if allow_zero_size else 1
    return tuple(np.random.randint(low, dim + 1, size=num_dim))


def _np(a: Any) -> Any:
    return a.asnumpy() if hasattr(a, "asnumpy") else a


def same(a: Any, b: Any) -> bool:
    """Whether two arrays have the same shape and values."""
    return bool(np.array_equal(_np(a), _np(b)))


def same_array(array1: nd.NDArray, array2: nd.NDArray) -> bool:
    """Whether two NDArrays share their memory (a change of one shows in the other)."""
    return bool(np.shares_memory(np.asarray(array1), np.asarray(array2)))


def almost_equal(
    a: Any,
    b: Any,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = False,
    use_broadcast: bool = True,
) -> bool:
    """``np.allclose`` with MXNet's default tolerances (rtol 1e-5, atol 1e-20 when not
    given: the float64 defaults, as MXNet uses here)."""
    a, b = _np(a), _np(b)
    if not use_broadcast and np.shape(a) != np.shape(b):
        return False
    return bool(np.allclose(a, b, rtol=get_rtol(rtol), atol=get_atol(atol), equal_nan=equal_nan))


def _max_violation(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple:
    with np.errstate(invalid="ignore"):
        absdiff = np.where(np.equal(a, b), 0, np.abs(a - b))
        violation = absdiff / (atol + rtol * np.abs(b) + 1e-20)
    loc = int(np.nanargmax(violation)) if np.size(violation) else 0
    idx = tuple(int(i) for i in np.unravel_index(loc, np.shape(violation)))
    return idx, float(np.nanmax(violation)) if np.size(violation) else 0.0


def assert_almost_equal(
    a: Any,
    b: Any,
    rtol: Any = None,
    atol: Any = None,
    names: tuple = ("a", "b"),
    equal_nan: bool = False,
    use_broadcast: bool = True,
    mismatches: tuple = (10, 10),
) -> None:
    """Raise ``AssertionError`` unless ``a`` and ``b`` (NDArrays, NumPy arrays or numbers)
    are equal within ``rtol``/``atol`` (numbers, or dicts dtype -> tolerance; by default
    MXNet's per-dtype tables, the looser of the two arrays' dtypes). The message gives the
    largest violation and where it is.

    >>> import tapegrad as mx
    >>> assert_almost_equal(mx.nd.array([1.0, 2.0]), [1.0, 2.00001])
    >>> try:
    ...     assert_almost_equal(mx.nd.array([1.0, 2.0]), [1.0, 2.1], names=('out', 'ref'))
    ... except AssertionError as e:
    ...     print(str(e).splitlines()[0].split(". ")[1])
    Location of maximum error: (1,), out=2.00000000, ref=2.10000000
    """
    rtol, atol = get_tols(a, b, rtol, atol)
    a, b = np.asarray(_np(a)), np.asarray(_np(b))
    if not use_broadcast and a.shape != b.shape:
        raise AssertionError(f"a.shape = {a.shape} and b.shape = {b.shape} are not equal")
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        np.testing.assert_equal(a, b)
        return
    try:
        if np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan):
            return
    except ValueError as e:  # shapes that do not broadcast
        raise AssertionError(
            f"{names[0]} of shape {a.shape} and {names[1]} of shape {b.shape} cannot be "
            f"compared: {e}"
        ) from None
    a_b, b_b = np.broadcast_arrays(a, b)
    idx, rel = _max_violation(a_b.astype(np.float64), b_b.astype(np.float64), rtol, atol)
    where = (
        f" Location of maximum error: {idx}, {names[0]}={a_b[idx]:.8f}, {names[1]}={b_b[idx]:.8f}"
        if idx != ()
        else ""
    )
    bad = ~np.isclose(a_b, b_b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    raise AssertionError(
        f"Error {rel:f} exceeds tolerance rtol={rtol:e}, atol={atol:e}.{where}\n"
        f"{int(bad.sum())} of {bad.size} elements differ.\n"
        f" {names[0]}: {np.array2string(a, threshold=8)}\n {names[1]}: "
        f"{np.array2string(b, threshold=8)}"
    )


def assert_allclose(a: Any, b: Any, rtol: float = 1e-07, atol: float = 0, equal_nan: bool = True):
    """``assert_almost_equal`` with NumPy's ``assert_allclose`` defaults."""
    assert_almost_equal(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def assert_almost_equal_ignore_nan(
    a: Any, b: Any, rtol: Any = None, atol: Any = None, names: tuple = ("a", "b")
) -> None:
    """``assert_almost_equal`` where a NaN in either array matches anything."""
    a, b = np.copy(_np(a)), np.copy(_np(b))
    mask = np.logical_or(np.isnan(a), np.isnan(b))
    a[mask] = 0
    b[mask] = 0
    assert_almost_equal(a, b, rtol, atol, names)


def assert_exception(f: Callable, exception_type: type, *args: Any, **kwargs: Any) -> None:
    """Raise ``AssertionError`` unless ``f(*args, **kwargs)`` raises ``exception_type``.

    >>> assert_exception(int, ValueError, 'x')
    """
    try:
        f(*args, **kwargs)
    except exception_type:
        return
    raise AssertionError(
        f"assert_exception: {getattr(f, '__name__', f)!s} did not raise {exception_type.__name__}"
    )


def retry(n: int) -> Callable:
    """Decorator: run a stochastic test up to ``n`` times until it passes."""
    if n <= 0:
        raise ValueError(f"retry: n must be positive, got {n}")

    def decorate(f: Callable) -> Callable:
        def wrapper(*args: Any, **kwargs: Any) -> None:
            for i in range(n):
                try:
                    f(*args, **kwargs)
                    return
                except AssertionError:
                    if i == n - 1:
                        raise

        wrapper.__name__ = getattr(f, "__name__", "wrapper")
        return wrapper

    return decorate


# --------------------------------------------------------------------------- gradients


def _call(fn: Callable, args: list, kwargs: dict) -> Any:
    out = fn(*args, **kwargs)
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise GradientCheckError(
                f"check_numeric_gradient: the function returned {len(out)} outputs; it needs "
                "exactly one. Fix: return one NDArray (e.g. the output you want to check)."
            )
        out = out[0]
    if not isinstance(out, nd.NDArray):
        raise GradientCheckError(
            f"check_numeric_gradient: the function returned a {type(out).__name__}, not an "
            "NDArray. Fix: return the NDArray output of the computation."
        )
    return out


def _location(who: str, location: Any, dtype: Any) -> tuple[list, list, dict]:
    """``(names, arrays, is_keyword)`` from a list or dict of arrays."""
    if isinstance(location, dict):
        names = list(location)
        values = [location[k] for k in names]
        keyword = True
    elif isinstance(location, (list, tuple)):
        names = [str(i) for i in range(len(location))]
        values = list(location)
        keyword = False
    else:
        raise GradientCheckError(
            f"{who}: location must be a list or a dict of arrays, got "
            f"{type(location).__name__}. Fix: pass [x, y] or {{'x': x}}."
        )
    arrays = [np.array(_np(v), dtype=dtype) for v in values]
    return names, arrays, keyword


def numeric_grad(
    fn: Callable,
    location: Any,
    eps: float = 1e-4,
    use_forward_train: bool = True,
    dtype: Any = np.float32,
    proj: np.ndarray | None = None,
) -> dict:
    """Central finite differences of ``sum(fn(*location) * proj)`` with respect to each
    floating-point input (``proj`` of ones by default): ``{name: gradient}``."""
    names, arrays, keyword = _location("numeric_grad", location, dtype)

    def value(arrs: list) -> np.ndarray:
        inputs = [nd.array(a, dtype=dtype) for a in arrs]
        args, kwargs = ([], dict(zip(names, inputs))) if keyword else (inputs, {})
        with autograd.pause(train_mode=use_forward_train):
            out = _call(fn, args, kwargs).asnumpy()
        return out if proj is None else out * proj

    grads = {}
    for k, v in zip(names, arrays):
        if np.dtype(v.dtype).kind != "f":
            continue
        g = np.zeros(v.shape, dtype=dtype)
        flat, gflat = v.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps / 2.0
            f_p = value(arrays)
            flat[i] = old - eps / 2.0
            f_n = value(arrays)
            flat[i] = old
            gflat[i] = (f_p - f_n).sum() / eps
        grads[k] = g
    return grads


def check_numeric_gradient(
    sym: Callable,
    location: Any,
    aux_states: Any = None,
    numeric_eps: float | None = None,
    rtol: Any = None,
    atol: Any = None,
    grad_nodes: Any = None,
    use_forward_train: bool = True,
    ctx: Context | None = None,
    grad_stype_dict: dict | None = None,
    dtype: Any = np.float32,
) -> None:
    """Check the gradients autograd computes for ``sym`` against finite differences, as
    MXNet's ``check_numeric_gradient``: the output is multiplied by a random projection
    (entries in [0.1, 1.1)) and summed; the gradient of that with respect to every input
    (or those named in ``grad_nodes``) is compared with central differences of step
    ``numeric_eps`` (by default 2**-9 in float32, 2**-14 in float64).

    Args:
        sym: a function of NDArrays returning one NDArray, or a Block (tapegrad has no
            Symbols). With a dict ``location`` it is called with keyword arguments.
        location: the inputs: a list (positional) or dict (keyword) of arrays.
        grad_nodes: names to check (for a list ``location``: ``'0'``, ``'1'``, ...); a dict
            name -> grad_req checks ``'write'`` and ``'null'`` (no gradient expected).
        rtol, atol: tolerances (default: MXNet's tables for ``dtype``).
        dtype: float16, float32 or float64.

    Raises ``AssertionError`` naming the input whose gradients differ.

    >>> import tapegrad as mx
    >>> check_numeric_gradient(lambda x: mx.nd.tanh(x) * x, [np.array([0.3, -0.5])],
    ...                        dtype=np.float64)
    """
    who = "check_numeric_gradient"
    if not callable(sym):
        raise GradientCheckError(
            f"{who}: tapegrad has no Symbols; pass a function of NDArrays (or a Block) "
            f"instead of a {type(sym).__name__}. Fix: e.g. lambda x: mx.nd.tanh(x)."
        )
    if aux_states is not None:
        raise GradientCheckError(
            f"{who}: aux_states belong to Symbols; a function keeps its own state. Fix: "
            "leave aux_states out."
        )
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)):
        raise GradientCheckError(f"{who}: dtype must be float16, float32 or float64, got {dtype}")
    names, arrays, keyword = _location(who, location, dtype)
    if grad_nodes is None:
        grad_req = dict.fromkeys(names, "write")
    elif isinstance(grad_nodes, dict):
        grad_req = {str(k): v for k, v in grad_nodes.items()}
    else:
        grad_req = dict.fromkeys((str(k) for k in grad_nodes), "write")
    for k, req in grad_req.items():
        if k not in names:
            raise GradientCheckError(
                f"{who}: grad_nodes names '{k}', which is not one of the inputs {names}. Fix: "
                "name inputs by their keys (a dict location) or positions ('0', '1', ...)."
            )
        if req not in ("write", "null"):
            raise GradientCheckError(
                f"{who}: grad_req {req!r} for '{k}' is not supported; use 'write' or 'null'"
            )

    inputs = [nd.array(a, dtype=dtype) for a in arrays]
    for k, x in zip(names, inputs):
        if grad_req.get(k) == "write":
            x.attach_grad()
    args, kwargs = ([], dict(zip(names, inputs))) if keyword else (inputs, {})
    with autograd.record(train_mode=use_forward_train):
        out = _call(sym, args, kwargs)
    proj = (np.random.rand(*out.shape) + 0.1).astype(dtype)
    out.backward(nd.array(proj, dtype=out.dtype))
    eps = get_tolerance(out, numeric_eps, default_numeric_eps())
    if dtype in (np.dtype(np.float32), np.dtype(np.float16)) and eps < 1e-5:
        raise GradientCheckError(f"{who}: numeric_eps={eps} is too small for {dtype}")
    fd = numeric_grad(
        sym,
        dict(zip(names, arrays)) if keyword else arrays,
        eps=eps,
        use_forward_train=use_forward_train,
        dtype=dtype,
        proj=proj,
    )
    for k, x in zip(names, inputs):
        req = grad_req.get(k)
        if req == "write":
            assert_almost_equal(fd[k], x.grad, rtol, atol, (f"NUMERICAL_{k}", f"BACKWARD_{k}"))


# --------------------------------------------------------------------------- data


def list_gpus() -> list[int]:
    """The GPU ids: ``[]``, tapegrad runs on the CPU."""
    from .context import num_gpus

    return list(range(num_gpus()))


def download(
    url: str, fname: str | None = None, dirname: str | None = None, overwrite: bool = False,
    retries: int = 5,
) -> str:  # fmt: skip
    """Download ``url`` to ``fname`` (in ``dirname``) unless the file exists; see
    :func:`tapegrad.gluon.utils.download` (``file://`` URLs and existing files need no
    network)."""
    from .gluon.utils import download as _download

    if fname is None:
        fname = url.split("/")[-1]
    if dirname is not None:
        fname = os.path.join(dirname, fname)
    return _download(url, path=fname, overwrite=overwrite, retries=retries)


def _bundled(name: str) -> str:
    from .gluon.data.vision.datasets import BUNDLED_MNIST

    return os.path.join(BUNDLED_MNIST, name + ".gz")


def get_mnist() -> dict:
    """MNIST as MXNet's ``get_mnist()`` returns it, from the copy bundled with tapegrad (no
    download): ``train_data`` (60000, 1, 28, 28) and ``test_data`` (10000, 1, 28, 28)
    float32 in [0, 1] (divided by 255), ``train_label``/``test_label`` int8.

    >>> m = get_mnist()
    >>> m['train_data'].shape, m['test_label'].dtype, int(m['test_label'][0])
    ((60000, 1, 28, 28), dtype('int8'), 7)
    """
    from .gluon.data.vision import MNIST

    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = MNIST(train=train)
        images = np.asarray(ds._data)
        out[f"{split}_data"] = images.reshape(images.shape[0], 1, 28, 28).astype(np.float32) / 255
        out[f"{split}_label"] = ds._label.astype(np.int8)
    return {k: out[k] for k in ("train_data", "train_label", "test_data", "test_label")}


def get_mnist_ubyte() -> None:
    """Write the four MNIST IDX files (uncompressed) into ``./data``, as MXNet's helper does
    after downloading them; here they come from the bundled copy."""
    os.makedirs("data", exist_ok=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        dst = os.path.join("data", name)
        if os.path.exists(dst):
            continue
        from . import serialization

        def write(f: Any, src: str = _bundled(name)) -> None:
            with gzip.open(src, "rb") as g:
                shutil.copyfileobj(g, f)

        serialization.atomic_write(dst, write)


def get_mnist_iterator(
    batch_size: int, input_shape: tuple, num_parts: int = 1, part_index: int = 0
) -> tuple:
    """``(train, val)`` MNISTIters (flat unless ``input_shape`` has 3 dimensions), from the
    bundled MNIST."""
    from .io import MNISTIter

    flat = len(input_shape) != 3
    train = MNISTIter(
        image="train-images-idx3-ubyte", label="train-labels-idx1-ubyte",
        input_shape=input_shape, batch_size=batch_size, shuffle=True, flat=flat,
        num_parts=num_parts, part_index=part_index,
    )  # fmt: skip
    val = MNISTIter(
        image="t10k-images-idx3-ubyte", label="t10k-labels-idx1-ubyte",
        input_shape=input_shape, batch_size=batch_size, flat=flat, num_parts=num_parts,
        part_index=part_index,
    )  # fmt: skip
    return train, val
