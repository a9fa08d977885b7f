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
  MXNet does. A file is read incrementally, header first (a file that is not a params file
  fails after 8 bytes, whatever its size; devices and pipes are read as streams), and every
  length is checked against the bytes that are left before anything is read or allocated, so
  a truncated, garbage or hostile file raises :class:`ParamsFileError`, never a crash, a hang
  or a huge allocation. Each array is read straight into its own memory.
* Writing: V2 arrays (what MXNet 1.x writes outside NumPy-shape mode), or V3 for every array
  when one of them is 0-dimensional (V2 cannot express shape ``()``; MXNet reads such a file
  inside ``mx.np_shape(True)``). All dtypes above except bfloat16.
* Writes are atomic: the bytes go to a temporary file in the same folder, which is flushed,
  fsync'ed and then renamed over the target (``os.replace``). A failure at any point leaves
  the previous file untouched and removes the temporary file. A process killed mid-write
  cannot remove it; the next save to the same path removes such leftovers (see
  :func:`atomic_write`).

Trainer states use the same container (see :func:`save_states` / :func:`load_states`): the
optimizer's settings as JSON stored in a uint8 array named ``__tapegrad_states__.json``,
every optimizer state array under a structured name ``state/<index>/<position>``, and after
the names (where MXNet ignores bytes) a CRC-32 of the file. Loading checks all of it and
names the file and the entry of anything wrong.

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
import socket
import stat
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
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
#: Version of the trainer-states format written: 2 adds the structural names of the
#: parameters and the checksum trailer (version 1 files are still read).
STATES_VERSION = 2


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

_CHUNK = 1 << 24  # read streams of unknown length 16 MiB at a time
#: Trailer of tapegrad's trainer-states files (after the names, where MXNet ignores bytes):
#: this tag, then the CRC-32 of every byte before the trailer (uint32 little-endian).
_CRC_TAG = b"TGCRC32\x00"
_CRC_LEN = len(_CRC_TAG) + 4


class _Reader:
    """Bounds-checked little-endian reader over bytes in memory or over an open file.

    A file is read incrementally: only the bytes asked for, after each claimed length has
    been checked against the bytes the file has (for a regular file), so a huge or endless
    input that is not a params file fails at its header. ``crc`` (when not ``None``) is the
    running CRC-32 of every byte read.
    """

    __slots__ = ("buf", "f", "pos", "size", "source", "crc")

    def __init__(
        self,
        source: str,
        buf: bytes | memoryview | None = None,
        f: IO[bytes] | None = None,
        size: int | None = None,
        crc: bool = False,
    ) -> None:
        self.source = source
        self.f = f
        self.buf = memoryview(buf) if buf is not None else None
        self.size = len(self.buf) if self.buf is not None else size
        self.pos = 0
        self.crc = 0 if crc else None

    def left(self) -> int:
        """Bytes left (a very large number for a stream of unknown length)."""
        return sys.maxsize if self.size is None else self.size - self.pos

    def fail(self, msg: str, fix: str | None = None) -> ParamsFileError:
        fix = fix or (
            "the file is truncated or is not an MXNet/tapegrad NDArray file; save it again "
            "(mx.nd.save / net.save_parameters) or restore it from a good copy"
        )
        where = f"at byte {self.pos}" + ("" if self.size is None else f" of {self.size}")
        return ParamsFileError(f"{self.source}: {msg} ({where}). Fix: {fix}.")

    def _short(self, n: int, got: int, what: str) -> ParamsFileError:
        return self.fail(f"{what} needs {n} bytes but the file ends after {got}")

    def take(self, n: int, what: str) -> bytes | memoryview:
        if n < 0 or n > self.left():
            raise self.fail(f"{what} needs {n} bytes but only {self.left()} are left")
        if self.buf is not None:
            out: bytes | memoryview = self.buf[self.pos : self.pos + n]
        elif n <= _CHUNK:
            out = self.f.read(n)
            if len(out) != n:
                raise self._short(n, len(out), what)
        else:  # a stream of unknown length: never ask for more than arrives
            parts, got = [], 0
            while got < n:
                part = self.f.read(min(_CHUNK, n - got))
                if not part:
                    raise self._short(n, got, what)
                parts.append(part)
                got += len(part)
            out = b"".join(parts)
        self.pos += n
        if self.crc is not None:
            self.crc = zlib.crc32(out, self.crc)
        return out

    def values(self, n: int, dt: np.dtype, what: str) -> np.ndarray:
        """``n`` values of ``dt`` as a new 1-d array (own, writable, aligned memory)."""
        nbytes = n * dt.itemsize
        if nbytes > self.left():
            raise self.fail(f"{what} needs {nbytes} bytes but only {self.left()} are left")
        if self.buf is not None or self.size is None:
            return np.frombuffer(self.take(nbytes, what), dtype=dt).copy()
        out = np.empty(n, dtype=dt)  # straight from the file into the array: no second copy
        view = memoryview(out.view(np.uint8))
        got = 0
        while got < nbytes:
            k = self.f.readinto(view[got:])
            if not k:
                raise self._short(nbytes, got, what)
            got += k
        self.pos += nbytes
        if self.crc is not None:
            self.crc = zlib.crc32(view, self.crc)
        return out

    def rest(self, limit: int) -> bytes:
        """Up to ``limit`` of the bytes that follow (not counted in ``crc``)."""
        if self.buf is not None:
            return bytes(self.buf[self.pos : self.pos + limit])
        return self.f.read(limit)

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
        dt, itemsize = np.dtype("<u2"), 4  # widened to float32
    else:
        dt = _FLAG_TO_DTYPE.get(flag)
        if dt is None:
            raise r.fail(
                f"array {i} has unknown dtype flag {flag} (known: 0-12)",
                "this is not a file MXNet 1.x wrote; check the file",
            )
        itemsize = dt.itemsize
    n = 1
    for d in shape:
        n *= d
    kind = "bfloat16" if flag == _BF16_FLAG else dt.name
    raw = r.values(n, dt, f"array {i}: {n} values of {kind}")
    # NumPy refuses a shape whose non-zero dimensions multiply past the address space, even
    # with a zero among them, as in (0, 2**62): no file MXNet wrote has one
    nonzero = 1
    for d in shape:
        nonzero *= d or 1
    if nonzero * itemsize > sys.maxsize:
        raise r.fail(
            f"array {i} has shape {shape}, which no array can have (its non-zero dimensions "
            "multiply past the address space)"
        )
    if flag == _BF16_FLAG:
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return raw.astype(dt.newbyteorder("="), copy=False).reshape(shape)


def _read_array(r: _Reader, i: int) -> np.ndarray:
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
            r.pos -= 4
            raise r.fail(f"array {i} starts with 0x{magic:08X}, which is no known array magic")
        fmt = f"<{magic}I"
        dims = struct.unpack(fmt, r.take(4 * magic, f"array {i}: shape"))
        shape = tuple(int(d) for d in dims)
        if not shape:
            raise r.fail(
                f"array {i} is an uninitialized MXNet NDArray (no shape)",
                "save only arrays that hold data",
            )
    r.i32(f"array {i}: device type")
    r.i32(f"array {i}: device id")
    flag = r.i32(f"array {i}: dtype flag")
    return _read_payload(r, i, shape, flag)


def _parse(r: _Reader) -> tuple[list[np.ndarray], list[str]]:
    """Header, arrays and names; the header is checked before anything else is read."""
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
    return _parse(_Reader(source, buf=buf))


@contextlib.contextmanager
def _open_reader(path: str, what: str, crc: bool = False) -> Iterator[_Reader]:
    """A :class:`_Reader` over the file ``path`` (``what`` names the kind in errors)."""
    try:
        f = open(path, "rb")  # noqa: SIM115  (closed below)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no such {what}. Fix: check the path (current folder: {os.getcwd()})."
        ) from None
    except IsADirectoryError:
        raise ParamsFileError(
            f"{path}: is a folder, not a {what}. Fix: pass the path of the file itself."
        ) from None
    with f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise ParamsFileError(
                f"{path}: is a folder, not a {what}. Fix: pass the path of the file itself."
            )
        # a device or a pipe (/dev/zero) has no size: read it as a stream
        size = st.st_size if stat.S_ISREG(st.st_mode) else None
        yield _Reader(path, f=f, size=size, crc=crc)


def load_arrays(fname: str | os.PathLike) -> tuple[list[np.ndarray], list[str]]:
    """Read an NDArray-list file into NumPy arrays and names (no NDArrays involved).

    The file is read incrementally, header first: a file that is not a params file fails
    after its first 8 bytes, and each array is read straight into its own memory.

    Raises:
        FileNotFoundError: no such file (the message names it).
        ParamsFileError: the file is damaged or not a params file.
    """
    path = os.fspath(fname)
    with _open_reader(path, "parameter file") as r:
        return _parse(r)


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


_TMP_SUFFIX = ".tapegrad-tmp"
_TMP_ACTIVE: set[str] = set()  # this process's temporaries being written (other threads)
_TMP_LOCK = threading.Lock()


def _host_tag() -> str:
    """A short tag of this machine: temporaries of writers on other hosts (a shared folder)
    are never removed, since their process ids mean nothing here."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _tmp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.{_host_tag()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        return True  # (Windows: os.kill would terminate the process, not probe it)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or we cannot tell: keep its file
    return True


def _remove_stale_temporaries(path: str, folder: str) -> None:
    """Remove the temporaries that earlier saves to ``path`` left behind when their process
    was killed (``kill -9``, power loss): ``.<name>.<host>-<pid>-<random>.tapegrad-tmp``
    files of this host whose process is gone. Temporaries of live writers are kept."""
    prefix = _tmp_prefix(path)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        name = e.name
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        pid_text = name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            with _TMP_LOCK:
                stale = e.path not in _TMP_ACTIVE
        else:
            stale = not _pid_alive(pid)
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(e.path)


def atomic_write(fname: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file in the target's folder,
    which is flushed, fsync'ed and renamed over ``fname``. On any error the temporary file is
    removed and the previous ``fname`` (if any) is left untouched.

    The temporary is named ``.<name>.<host>-<pid>-<random>.tapegrad-tmp``. A process killed
    mid-write (``kill -9``) cannot remove it; the next save to the same path removes every
    such leftover whose process is gone.

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
    _remove_stale_temporaries(path, folder)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    with _TMP_LOCK:  # registered before it exists: no other thread can take it for stale
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_tmp_prefix(path)}{os.getpid()}-", suffix=_TMP_SUFFIX, dir=folder
        )
        _TMP_ACTIVE.add(tmp)
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
    finally:
        with _TMP_LOCK:
            _TMP_ACTIVE.discard(tmp)
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


_MAX_STATE_DEPTH = 8  # optimizer states are an array or a short tuple of them
_STATES_FIX = (
    "the file is damaged or was not written by Trainer.save_states; save the trainer states "
    "again or restore the file from a good copy"
)


def states_error(source: str, entry: str, msg: str, fix: str | None = None) -> ParamsFileError:
    """The error for a bad entry of a trainer-states file: names the file and the entry."""
    return ParamsFileError(f"{source}: entry '{entry}': {msg}. Fix: {fix or _STATES_FIX}.")


def _unflatten_state(
    spec: Any, arrays: list, used: set, source: str, entry: str, depth: int = 0
) -> Any:
    if spec is None:
        return None
    if depth > _MAX_STATE_DEPTH:
        raise states_error(source, entry, f"states nested deeper than {_MAX_STATE_DEPTH} levels")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise states_error(source, entry, f"damaged state description {_short(spec)}")
    ((kind, v),) = spec.items()
    if kind == "seq" and isinstance(v, list):
        return tuple(
            _unflatten_state(s, arrays, used, source, f"{entry}[{j}]", depth + 1)
            for j, s in enumerate(v)
        )
    if kind == "array":
        if type(v) is not int or not 0 <= v < len(arrays):
            raise states_error(source, entry, f"refers to a missing array {_short(v)}")
        if v in used:
            raise states_error(source, entry, f"refers to array {v} a second time")
        used.add(v)
        return arrays[v]
    if kind == "value" and isinstance(v, (bool, int, float, str)):
        return v
    raise states_error(source, entry, f"damaged state description {_short(spec)}")


def _short(v: Any, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dumps_states(meta: dict, states: Mapping[int, Any]) -> bytes:
    """Encode optimizer states (``index -> state``) and JSON-able ``meta`` as file bytes.

    The result is an ordinary NDArray-list file: the JSON lives in a uint8 array named
    ``__tapegrad_states__.json`` and the arrays of state ``i`` are named ``state/<i>/<k>``.
    After the names (where MXNet ignores bytes) comes a CRC-32 of everything before it, so a
    damaged file (a flipped bit) is detected when it is loaded.
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
    doc["version"] = STATES_VERSION
    doc["layout"] = layout
    try:
        text = json.dumps(doc, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"save_states: the optimizer settings cannot be stored as JSON ({e})."
            " Fix: use numbers, strings and lists for optimizer attributes."
        ) from None
    blob = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    body = dumps_arrays([blob, *arrays], [STATES_META_KEY, *names])
    return body + _CRC_TAG + struct.pack("<I", zlib.crc32(body))


def _decode_states(r: _Reader) -> tuple[dict, dict[int, Any]]:
    """Read and check a trainer-states file: container, checksum, JSON and layout."""
    source = r.source
    arrays, names = _parse(r)
    tail = r.rest(_CRC_LEN + 1)
    has_crc = len(tail) == _CRC_LEN and tail.startswith(_CRC_TAG)
    if has_crc and struct.unpack("<I", tail[len(_CRC_TAG) :])[0] != r.crc:
        raise ParamsFileError(
            f"{source}: checksum mismatch: the file changed after it was written (a damaged "
            "disk, a flipped bit, an edit or a partial copy). Fix: restore the file from a "
            "good copy, or save the trainer states again."
        )
    if STATES_META_KEY not in names:
        raise ParamsFileError(
            f"{source}: not a trainer-states file (no {STATES_META_KEY} entry; it looks like a "
            "parameter file). Fix: pass the file written by trainer.save_states, and load "
            "parameters with net.load_parameters."
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise states_error(source, dup, "appears twice")
    by_name = dict(zip(names, arrays))
    blob = by_name.pop(STATES_META_KEY)
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise states_error(
            source, STATES_META_KEY, f"holds {blob.dtype} of shape {blob.shape}, not UTF-8 text"
        )
    try:
        doc = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        what = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise states_error(source, STATES_META_KEY, f"damaged description ({what})") from None
    if not isinstance(doc, dict) or doc.get("format") != "tapegrad-trainer-states":
        raise ParamsFileError(
            f"{source}: not a tapegrad trainer-states file. Fix: pass the "
            "file written by trainer.save_states."
        )
    version = doc.get("version")
    if type(version) is not int or not 1 <= version <= STATES_VERSION:
        raise states_error(
            source,
            "version",
            f"format version {_short(version)} is not one this tapegrad reads (1 to "
            f"{STATES_VERSION})",
            "load it with the tapegrad version that wrote it, or save the states again",
        )
    if version >= 2 and not has_crc:
        raise ParamsFileError(
            f"{source}: the checksum at the end of the file is missing or damaged (the file "
            "was cut short, appended to or altered). Fix: restore the file from a good copy, "
            "or save the trainer states again."
        )
    layout = doc.pop("layout", {})
    if not isinstance(layout, dict):
        raise states_error(source, "layout", f"is a {type(layout).__name__}, not a mapping")
    _check_params_entry(doc.get("params"), source)
    cfg = doc.get("optimizer_config")
    if cfg is not None and not isinstance(cfg, dict):
        raise states_error(source, "optimizer_config", f"is a {type(cfg).__name__}, not a mapping")
    states: dict[int, Any] = {}
    claimed: set[str] = set()
    for key, spec in layout.items():
        if not (key.isdigit() and str(int(key)) == key):
            raise states_error(source, f"layout.{key}", "is not a parameter index")
        local = []
        k = 0
        while f"state/{key}/{k}" in by_name:
            claimed.add(f"state/{key}/{k}")
            local.append(by_name[f"state/{key}/{k}"])
            k += 1
        used: set[int] = set()
        state = _unflatten_state(spec, local, used, source, f"layout.{key}")
        if len(used) != len(local):
            raise states_error(
                source, f"state/{key}/{len(used)}", "is not referred to by the layout"
            )
        states[int(key)] = _to_ndarrays(state)
    extra = [n for n in by_name if n not in claimed]
    if extra:
        raise states_error(source, extra[0], "is not part of any optimizer state")
    return doc, states


def _to_ndarrays(state: Any) -> Any:
    if isinstance(state, np.ndarray):
        return _to_ndarray(state)
    if isinstance(state, tuple):
        return tuple(_to_ndarrays(s) for s in state)
    return state


def _check_params_entry(params: Any, source: str) -> None:
    """The Trainer's list of parameters: ``[{"name", "shape", "key"}]`` (key: version 2)."""
    if params is None:
        return
    if not isinstance(params, list):
        raise states_error(source, "params", f"is a {type(params).__name__}, not a list")
    for j, p in enumerate(params):
        entry = f"params[{j}]"
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise states_error(source, entry, f"is not a parameter description: {_short(p)}")
        if "key" in p and not isinstance(p["key"], str):
            raise states_error(source, entry + ".key", f"is not a string: {_short(p['key'])}")
        shape = p.get("shape")
        if shape is not None and not (
            isinstance(shape, list)
            and len(shape) <= _MAX_NDIM
            and all(type(d) is int and d >= 0 for d in shape)
        ):
            raise states_error(source, entry + ".shape", f"is not a shape: {_short(shape)}")


def loads_states(buf: bytes | memoryview, source: str = "<bytes>") -> tuple[dict, dict[int, Any]]:
    """Decode what :func:`dumps_states` wrote: ``(meta, {index: state})``.

    Everything is checked (the checksum, the JSON and how it refers to the arrays); a bad
    file raises :class:`ParamsFileError` naming ``source`` and the entry. What the states
    mean for an optimizer and its parameters is checked by the Trainer.
    """
    return _decode_states(_Reader(source, buf=buf, crc=True))


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
    """Read a file written by :func:`save_states`: ``(meta, {index: state})``, reading it
    incrementally and checking it as :func:`loads_states` does.

    Raises:
        FileNotFoundError: no such file.
        ParamsFileError: not a trainer-states file, or damaged.
    """
    path = os.fspath(fname)
    with _open_reader(path, "trainer-states file", crc=True) as r:
        return _decode_states(r)
