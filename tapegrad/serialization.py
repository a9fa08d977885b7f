"""Checkpoints in MXNet 1.x's binary NDArray-list format (the ``.params`` files).

``save(fname, data)`` and ``load(fname)`` read and write the format of MXNet's
``mx.nd.save`` / ``mx.nd.load`` (C++ ``NDArray::Save`` / ``NDArray::Load`` in
``src/ndarray/ndarray.cc``), so checkpoints move both ways between tapegrad and MXNet.
Nothing here can execute code from a file: no pickle, anywhere.

The format, all integers little-endian::

    uint64 0x112                 list magic (kMXAPINDArrayListMagic)
    uint64 0                     reserved
    uint64 N                     number of arrays, then N arrays:
        uint32 0xF993FAC9        array magic, V2 (V3 = 0xF993FACA: NumPy shape semantics)
        int32  stype             0 = dense (1 row_sparse and 2 csr are refused)
        int32  ndim, int64 dim[ndim]
        int32  dev_type, int32 dev_id        (ignored when reading; written as cpu(0))
        int32  type_flag         0 f32, 1 f64, 2 f16, 3 u8, 4 i32, 5 i8, 6 i64, 7 bool,
                                 8 i16, 9 u16, 10 u32, 11 u64, 12 bf16
        raw data                 prod(dim) * itemsize bytes, C order
    uint64 K                     number of names (0 for a list, N for a dict), then K names:
        uint64 length, bytes     UTF-8

What is supported, exactly:

* Reading: dense arrays of every dtype above (bfloat16 is widened to float32, which NumPy can
  hold exactly), array versions V1, V2, V3 and the pre-V1 legacy layout, any device tag. An
  array with an unknown shape (an uninitialized MXNet NDArray) and sparse storage
  (row_sparse, csr) are refused with a clear error. Bytes after the names are ignored, as
  MXNet does. Every length is checked against the bytes that are left before anything is read
  or allocated, so a truncated or garbage file raises :class:`ParamsFileError`, never a crash,
  a hang or a huge allocation.
* Writing: V2 arrays (what MXNet 1.x writes outside NumPy-shape mode), or V3 for every array
  when one of them is 0-dimensional (V2 cannot express shape ``()``; MXNet reads such a file
  inside ``mx.np_shape(True)``). All dtypes above except bfloat16.
* Writes are atomic: the bytes go to a temporary file in the same folder, which is flushed,
  fsync'ed and then renamed over the target (``os.replace``). A failure at any point leaves
  the previous file untouched and removes the temporary file.

Trainer states use the same container (see :func:`save_states` / :func:`load_states`): the
optimizer's settings as JSON stored in a uint8 array named ``__tapegrad_states__.json``, and
every optimizer state array under a structured name ``state/<index>/<position>``.

>>> import os, tempfile, numpy as np
>>> import tapegrad as mx
>>> path = os.path.join(tempfile.mkdtemp(), "w.params")
>>> mx.serialization.save(path, {"w": mx.nd.ones((2, 3))})
>>> d = mx.serialization.load(path)
>>> sorted(d), d["w"].shape
(['w'], (2, 3))
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import numpy as np

from .base import TapegradError

__all__ = [
    "ParamsFileError",
    "save",
    "load",
    "save_arrays",
    "load_arrays",
    "loads_arrays",
    "dumps_arrays",
    "atomic_write",
    "save_states",
    "load_states",
    "dumps_states",
    "loads_states",
    "LIST_MAGIC",
]

#: First 8 bytes of an NDArray-list file.
LIST_MAGIC = 0x112
_V1_MAGIC = 0xF993FAC8
_V2_MAGIC = 0xF993FAC9
_V3_MAGIC = 0xF993FACA
_MAX_NDIM = 32  # MXNet's TShape limit; a larger ndim can only come from a damaged file

# mshadow type flags <-> NumPy dtypes (little-endian).
_FLAG_TO_DTYPE: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
    8: np.dtype("<i2"),
    9: np.dtype("<u2"),
    10: np.dtype("<u4"),
    11: np.dtype("<u8"),
}
_BF16_FLAG = 12
_DTYPE_TO_FLAG: dict[np.dtype, int] = {dt.newbyteorder("="): f for f, dt in _FLAG_TO_DTYPE.items()}
_STYPE_NAMES = {1: "row_sparse", 2: "csr"}

#: Key of the JSON entry in a Trainer-states file.
STATES_META_KEY = "__tapegrad_states__.json"


class ParamsFileError(TapegradError, ValueError):
    """A ``.params`` file that is not a valid MXNet NDArray-list file (truncated, damaged,
    not a params file at all) or holds something tapegrad cannot represent (sparse arrays).
    The message names the file, the byte offset and the fix.

    >>> import tapegrad as mx
    >>> try:
    ...     mx.serialization.loads_arrays(b"not a params file", source="x.params")
    ... except mx.serialization.ParamsFileError as e:
    ...     print(str(e).split(":")[0])
    x.params
    """


# --------------------------------------------------------------------------- reading


class _Reader:
    """Bounds-checked little-endian reader over an in-memory buffer."""

    __slots__ = ("buf", "pos", "source")

    def __init__(self, buf: bytes | memoryview, source: str) -> None:
        self.buf = memoryview(buf)
        self.pos = 0
        self.source = source

    def left(self) -> int:
        return len(self.buf) - self.pos

    def fail(self, msg: str, fix: str | None = None) -> ParamsFileError:
        fix = fix or (
            "the file is truncated or is not an MXNet/tapegrad NDArray file; save it again "
            "(mx.nd.save / net.save_parameters) or restore it from a good copy"
        )
        return ParamsFileError(
            f"{self.source}: {msg} (at byte {self.pos} of {len(self.buf)}). Fix: {fix}."
        )

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.left():
            raise self.fail(f"{what} needs {n} bytes but only {self.left()} are left")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def i32(self, what: str) -> int:
        return struct.unpack("<i", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]


def _read_shape(r: _Reader, i: int, dim_bytes: int, signed_ndim: bool) -> tuple[int, ...] | None:
    """One TShape: ndim then dims. ``None`` for an unknown shape (ndim -1 in V3)."""
    ndim = r.i32(f"array {i}: ndim") if signed_ndim else r.u32(f"array {i}: ndim")
    if ndim == -1:
        return None
    if ndim < 0 or ndim > _MAX_NDIM:
        raise r.fail(f"array {i} claims {ndim} dimensions (at most {_MAX_NDIM} are possible)")
    fmt = f"<{ndim}{'q' if dim_bytes == 8 else 'I'}"
    dims = struct.unpack(fmt, r.take(dim_bytes * ndim, f"array {i}: shape"))
    for d in dims:
        if d < 0:
            raise r.fail(f"array {i} has a negative dimension in shape {tuple(dims)}")
    return tuple(int(d) for d in dims)


def _read_payload(r: _Reader, i: int, shape: tuple[int, ...], flag: int) -> np.ndarray:
    """Context, type flag already read by the caller; reads the raw data of one array."""
    if flag == _BF16_FLAG:
        n = int(np.prod(shape, dtype=object)) if shape else 1
        raw = r.take(2 * n, f"array {i}: {n} bfloat16 values")
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    dt = _FLAG_TO_DTYPE.get(flag)
    if dt is None:
        raise r.fail(
            f"array {i} has unknown dtype flag {flag} (known: 0-12)",
            "this is not a file MXNet 1.x wrote; check the file",
        )
    n = int(np.prod(shape, dtype=object)) if shape else 1
    raw = r.take(n * dt.itemsize, f"array {i}: {n} values of {dt.name}")
    arr = np.frombuffer(raw, dtype=dt).copy()  # copy: own, writable, aligned memory
    return arr.astype(dt.newbyteorder("="), copy=False).reshape(shape)


def _read_array(r: _Reader, i: int) -> np.ndarray:
    start = r.pos
    magic = r.u32(f"array {i}: magic")
    if magic in (_V2_MAGIC, _V3_MAGIC):
        v3 = magic == _V3_MAGIC
        stype = r.i32(f"array {i}: storage type")
        if stype != 0:
            name = _STYPE_NAMES.get(stype)
            if name:
                raise r.fail(
                    f"array {i} uses {name} (sparse) storage, which tapegrad does not support",
                    "convert it to dense storage in MXNet before saving (arr.tostype('default'))",
                )
            raise r.fail(f"array {i} has unknown storage type {stype}")
        shape = _read_shape(r, i, 8, signed_ndim=True)
        if shape is None or (not v3 and len(shape) == 0):
            raise r.fail(
                f"array {i} is an uninitialized MXNet NDArray (no shape)",
                "save only arrays that hold data",
            )
    elif magic == _V1_MAGIC:
        shape = _read_shape(r, i, 8, signed_ndim=False)
    else:
        # pre-V1 legacy layout: the magic is the ndim, dims are uint32
        if magic > _MAX_NDIM:
            r.pos = start
            raise r.fail(f"array {i} starts with 0x{magic:08X}, which is no known array magic")
        r.pos = start
        shape = _read_shape(r, i, 4, signed_ndim=False)
        if not shape:
            raise r.fail(
                f"array {i} is an uninitialized MXNet NDArray (no shape)",
                "save only arrays that hold data",
            )
    r.i32(f"array {i}: device type")
    r.i32(f"array {i}: device id")
    flag = r.i32(f"array {i}: dtype flag")
    return _read_payload(r, i, shape, flag)


def loads_arrays(
    buf: bytes | memoryview, source: str = "<bytes>"
) -> tuple[list[np.ndarray], list[str]]:
    """Parse the bytes of an NDArray-list file into NumPy arrays and names.

    Args:
        buf: the whole file's bytes.
        source: the name used in error messages (the file name).

    Returns:
        ``(arrays, names)``; ``names`` is empty for a file saved from a list.

    >>> import numpy as np
    >>> from tapegrad.serialization import dumps_arrays, loads_arrays
    >>> arrays, names = loads_arrays(dumps_arrays([np.arange(3, dtype=np.int32)], ["a"]))
    >>> names, arrays[0].tolist(), arrays[0].dtype
    (['a'], [0, 1, 2], dtype('int32'))
    """
    r = _Reader(buf, source)
    if r.left() < 8:
        raise r.fail(f"the file has {r.left()} bytes, too short for an NDArray file header")
    magic = r.u64("header")
    if magic != LIST_MAGIC:
        r.pos = 0
        raise r.fail(
            f"wrong magic 0x{magic:X}: an MXNet NDArray file starts with 0x{LIST_MAGIC:X}",
            "pass a file written by mx.nd.save, save_parameters or tapegrad's save",
        )
    r.u64("reserved field")
    count = r.u64("number of arrays")
    if count > r.left() // 4:  # every array needs at least its 4-byte magic
        raise r.fail(f"the header claims {count} arrays, more than the file can hold")
    arrays = [_read_array(r, i) for i in range(count)]
    nnames = r.u64("number of names")
    if nnames not in (0, count):
        raise r.fail(f"the file has {count} arrays but {nnames} names")
    names: list[str] = []
    for i in range(nnames):
        n = r.u64(f"length of name {i}")
        raw = r.take(n, f"name {i}")
        try:
            names.append(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            raise r.fail(f"name {i} is not valid UTF-8") from None
    return arrays, names


def load_arrays(fname: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """Read an NDArray-list file into NumPy arrays and names (no NDArrays involved).

    Raises:
        FileNotFoundError: no such file (the message names it).
        ParamsFileError: the file is damaged or not a params file.
    """
    path = os.fspath(fname)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no such parameter file. Fix: check the path (current folder: {os.getcwd()})."
        ) from None
    except IsADirectoryError:
        raise ParamsFileError(
            f"{path}: is a folder, not a parameter file. Fix: pass the path of a .params file."
        ) from None
    return loads_arrays(buf, source=path)


def load(fname: str | os.PathLike) -> dict[str, Any] | list[Any]:
    """Load NDArrays saved by MXNet's ``mx.nd.save`` or by :func:`save`.

    Returns a ``dict`` name -> NDArray when the file has names, else a ``list`` of
    NDArrays, like MXNet. Each array keeps the dtype it was saved with.

    >>> import os, tempfile
    >>> import tapegrad as mx
    >>> p = os.path.join(tempfile.mkdtemp(), "l.params")
    >>> mx.serialization.save(p, [mx.nd.zeros((2,)), mx.nd.ones((1, 2))])
    >>> [a.shape for a in mx.serialization.load(p)]
    [(2,), (1, 2)]
    """
    arrays, names = load_arrays(fname)
    nds = [_to_ndarray(a) for a in arrays]
    if names:
        return dict(zip(names, nds))
    return nds


# --------------------------------------------------------------------------- writing


def _as_numpy(x: Any, what: str) -> np.ndarray:
    """Raw NumPy data of an NDArray or an array-like, C-contiguous."""
    if isinstance(x, np.ndarray):
        a = x
    elif hasattr(x, "asnumpy"):
        a = x.asnumpy()
    else:
        raise TypeError(
            f"save: {what} is a {type(x).__name__}, not an NDArray. Fix: pass NDArrays "
            "(mx.nd.array(value)) in a list or a dict name -> NDArray."
        )
    return a if a.flags.c_contiguous else np.array(a, order="C")  # keeps 0-d arrays 0-d


def _encode_array(out: list, a: np.ndarray, v3: bool, what: str) -> None:
    dt = a.dtype.newbyteorder("=")
    flag = _DTYPE_TO_FLAG.get(dt)
    if flag is None:
        known = ", ".join(sorted({d.name for d in _FLAG_TO_DTYPE.values()}))
        raise TypeError(
            f"save: {what} has dtype {a.dtype}, which the MXNet format cannot store. Fix: cast "
            f"it (x.astype('float32')) to one of: {known}."
        )
    out.append(struct.pack("<Ii", _V3_MAGIC if v3 else _V2_MAGIC, 0))
    out.append(struct.pack(f"<i{a.ndim}q", a.ndim, *a.shape))
    out.append(struct.pack("<iii", 1, 0, flag))  # cpu(0), dtype flag
    le = a.astype(dt.newbyteorder("<"), copy=False)
    out.append(le.tobytes(order="C"))


def dumps_arrays(arrays: Sequence[Any], names: Sequence[str] | None = None) -> bytes:
    """Encode arrays (NDArrays or NumPy arrays) and optional names as file bytes.

    >>> import numpy as np
    >>> from tapegrad.serialization import dumps_arrays
    >>> dumps_arrays([np.zeros(1, np.float32)])[:8] == (0x112).to_bytes(8, "little")
    True
    """
    names = list(names or [])
    if names and len(names) != len(arrays):
        raise ValueError(f"save: {len(arrays)} arrays but {len(names)} names")
    np_arrays = [
        _as_numpy(a, f"array {names[i]!r}" if names else f"item {i}") for i, a in enumerate(arrays)
    ]
    v3 = any(a.ndim == 0 for a in np_arrays)
    out: list = [struct.pack("<QQQ", LIST_MAGIC, 0, len(np_arrays))]
    for i, a in enumerate(np_arrays):
        _encode_array(out, a, v3, f"array {names[i]!r}" if names else f"item {i}")
    out.append(struct.pack("<Q", len(names)))
    for n in names:
        b = n.encode("utf-8")
        out.append(struct.pack("<Q", len(b)))
        out.append(b)
    return b"".join(out)


def _split(data: Any) -> tuple[list, list[str]]:
    """``data`` (NDArray, list or dict) -> (arrays, names)."""
    if isinstance(data, Mapping):
        names = []
        for k in data:
            if not isinstance(k, str):
                raise TypeError(
                    f"save: dict keys must be str, got {k!r} ({type(k).__name__}). "
                    "Fix: use parameter names as keys."
                )
            names.append(k)
        return [data[k] for k in names], names
    if isinstance(data, (list, tuple)):
        return list(data), []
    if hasattr(data, "asnumpy") or isinstance(data, np.ndarray):
        return [data], []
    raise TypeError(
        f"save: data must be an NDArray, a list of NDArrays or a dict str -> "
        f"NDArray, got {type(data).__name__}."
    )


def save_arrays(
    fname: str | os.PathLike, arrays: Sequence[Any], names: Sequence[str] | None = None
) -> None:
    """Atomically write arrays (NDArrays or NumPy arrays) with optional names."""
    payload = dumps_arrays(arrays, names)
    atomic_write(fname, lambda f: f.write(payload))


def save(fname: str | os.PathLike, data: Any) -> None:
    """Save an NDArray, a list of NDArrays or a dict str -> NDArray in MXNet's format.

    The file can be read by :func:`load` and by MXNet's ``mx.nd.load``. The write is atomic:
    an error or a crash mid-way leaves any previous file intact.

    >>> import os, tempfile
    >>> import tapegrad as mx
    >>> p = os.path.join(tempfile.mkdtemp(), "d.params")
    >>> mx.serialization.save(p, {"a": mx.nd.arange(3)})
    >>> mx.serialization.load(p)["a"].asnumpy().tolist()
    [0.0, 1.0, 2.0]
    """
    arrays, names = _split(data)
    save_arrays(fname, arrays, names)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def atomic_write(fname: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file in the target's folder,
    which is flushed, fsync'ed and renamed over ``fname``. On any error the temporary file is
    removed and the previous ``fname`` (if any) is left untouched.

    >>> import os, tempfile
    >>> from tapegrad.serialization import atomic_write
    >>> p = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> atomic_write(p, lambda f: f.write(b"hello"))
    >>> open(p, "rb").read()
    b'hello'
    """
    path = os.fspath(fname)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{path}: folder {folder} does not exist. Fix: create it first (os.makedirs)."
        )
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # make the rename itself durable (POSIX; best effort elsewhere)
    with contextlib.suppress(OSError, AttributeError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# --------------------------------------------------------------------------- NDArrays


def _to_ndarray(a: np.ndarray) -> Any:
    """Wrap a NumPy array as a tapegrad NDArray keeping its dtype."""
    from . import ndarray as _nd  # late import: the engine imports this module's users

    return _nd.array(a, dtype=a.dtype)


# --------------------------------------------------------------------------- trainer states


def _flatten_state(state: Any, arrays: list) -> Any:
    """Structure of an optimizer state as JSON; its arrays are appended to ``arrays``."""
    if state is None:
        return None
    if isinstance(state, (list, tuple)):
        return {"seq": [_flatten_state(s, arrays) for s in state]}
    if hasattr(state, "asnumpy") or isinstance(state, np.ndarray):
        arrays.append(state)
        return {"array": len(arrays) - 1}
    if isinstance(state, (bool, int, float, str)):
        return {"value": state}
    raise TypeError(
        f"save_states: cannot store an optimizer state of type "
        f"{type(state).__name__}; states must be NDArrays, tuples/lists of them, "
        "None or plain numbers."
    )


def _unflatten_state(spec: Any, arrays: list, source: str) -> Any:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ParamsFileError(
            f"{source}: damaged state description {spec!r}. Fix: save the trainer states again."
        )
    if "seq" in spec:
        return tuple(_unflatten_state(s, arrays, source) for s in spec["seq"])
    if "array" in spec:
        k = spec["array"]
        if not isinstance(k, int) or not 0 <= k < len(arrays):
            raise ParamsFileError(
                f"{source}: state refers to a missing array {k!r}. Fix: save "
                "the trainer states again."
            )
        return arrays[k]
    if "value" in spec:
        return spec["value"]
    raise ParamsFileError(
        f"{source}: damaged state description {spec!r}. Fix: save the trainer states again."
    )


def dumps_states(meta: dict, states: Mapping[int, Any]) -> bytes:
    """Encode optimizer states (``index -> state``) and JSON-able ``meta`` as file bytes.

    The result is an ordinary NDArray-list file: the JSON lives in a uint8 array named
    ``__tapegrad_states__.json`` and the arrays of state ``i`` are named ``state/<i>/<k>``.
    """
    names: list[str] = []
    arrays: list = []
    layout = {}
    for idx, st in states.items():
        local: list = []
        layout[str(int(idx))] = _flatten_state(st, local)
        for k, a in enumerate(local):
            names.append(f"state/{int(idx)}/{k}")
            arrays.append(a)
    doc = dict(meta)
    doc["format"] = "tapegrad-trainer-states"
    doc["version"] = 1
    doc["layout"] = layout
    try:
        text = json.dumps(doc, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"save_states: the optimizer settings cannot be stored as JSON ({e})."
            " Fix: use numbers, strings and lists for optimizer attributes."
        ) from None
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return dumps_arrays([blob, *arrays], [STATES_META_KEY, *names])


def loads_states(buf: bytes | memoryview, source: str = "<bytes>") -> tuple[dict, dict[int, Any]]:
    """Decode what :func:`dumps_states` wrote: ``(meta, {index: state})``."""
    arrays, names = loads_arrays(buf, source)
    if STATES_META_KEY not in names:
        raise ParamsFileError(
            f"{source}: not a trainer-states file (no {STATES_META_KEY} entry; it looks like a "
            "parameter file). Fix: pass the file written by trainer.save_states, and load "
            "parameters with net.load_parameters."
        )
    by_name = dict(zip(names, arrays))
    try:
        doc = json.loads(by_name.pop(STATES_META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParamsFileError(
            f"{source}: damaged trainer-states description ({e}). Fix: save "
            "the trainer states again."
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != "tapegrad-trainer-states":
        raise ParamsFileError(
            f"{source}: not a tapegrad trainer-states file. Fix: pass the "
            "file written by trainer.save_states."
        )
    layout = doc.pop("layout", {})
    if not isinstance(layout, dict):
        raise ParamsFileError(
            f"{source}: damaged trainer-states layout. Fix: save the trainer states again."
        )
    states: dict[int, Any] = {}
    for key, spec in layout.items():
        local = []
        k = 0
        while f"state/{key}/{k}" in by_name:
            local.append(_to_ndarray(by_name[f"state/{key}/{k}"]))
            k += 1
        try:
            idx = int(key)
        except ValueError:
            raise ParamsFileError(
                f"{source}: bad state index {key!r}. Fix: save the trainer states again."
            ) from None
        states[idx] = _unflatten_state(spec, local, source)
    return doc, states


def save_states(fname: str | os.PathLike, meta: dict, states: Mapping[int, Any]) -> None:
    """Atomically write optimizer states (``index -> state``) and JSON-able ``meta``
    (see :func:`dumps_states` for the layout).

    >>> import os, tempfile
    >>> import tapegrad as mx
    >>> from tapegrad.serialization import save_states, load_states
    >>> p = os.path.join(tempfile.mkdtemp(), "t.states")
    >>> save_states(p, {"optimizer": "sgd"}, {0: (mx.nd.ones((2,)), None)})
    >>> meta, states = load_states(p)
    >>> meta["optimizer"], states[0][0].shape, states[0][1]
    ('sgd', (2,), None)
    """
    payload = dumps_states(meta, states)
    atomic_write(fname, lambda f: f.write(payload))


def load_states(fname: str | os.PathLike) -> tuple[dict, dict[int, Any]]:
    """Read a file written by :func:`save_states`: ``(meta, {index: state})``.

    Raises:
        ParamsFileError: not a trainer-states file, or damaged.
    """
    path = os.fspath(fname)
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no such trainer-states file. Fix: check the path "
            f"(current folder: {os.getcwd()})."
        ) from None
    return loads_states(buf, source=path)
