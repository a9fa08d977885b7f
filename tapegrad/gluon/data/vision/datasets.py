"""MNIST and Fashion-MNIST from their IDX files, CIFAR-10 and CIFAR-100 from their binary
batches (``gluon.data.vision``), as MXNet 1.9.

A sample is ``(image, label)``: the image a ``uint8`` NDArray of shape ``(28, 28, 1)``, the
label a NumPy ``int32`` scalar, exactly as MXNet returns them. ``transform(image, label)``,
when given, is applied on access.

Files are read gzipped (``name.gz``) or raw (``name``), from ``root``. ``MNIST(root=None)``
uses the copy of MNIST shipped inside tapegrad (``tapegrad/datasets/mnist``, with its
license notice). Every file is verified: the MD5 of the uncompressed IDX data for MNIST (the
canonical sums), the SHA-256 of ``.gz`` files listed in a ``SHA256SUMS`` file beside them,
the MD5 of the official Fashion-MNIST ``.gz`` files, and always the IDX header, sizes and
label range. A missing or damaged file raises :class:`DatasetFileError` naming it and the
fix. Nothing is downloaded.

>>> from tapegrad.gluon.data.vision import MNIST
>>> test = MNIST(train=False)
>>> len(test), test[0][0].shape, test[0][0].dtype, test[0][1].dtype
(10000, (28, 28, 1), <class 'numpy.uint8'>, dtype('int32'))
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ....base import TapegradError
from ..dataset import Dataset

__all__ = [
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "CIFAR100",
    "DatasetFileError",
    "read_idx",
    "BUNDLED_MNIST",
]

#: Folder of the MNIST copy shipped with tapegrad.
BUNDLED_MNIST = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "datasets",
    "mnist",
)

_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_MAX_BYTES = 1 << 31  # no IDX file of these datasets is anywhere near 2 GiB

# canonical MD5 sums of the *uncompressed* MNIST IDX files (valid for .gz and raw copies)
_MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# MD5 sums of the official Fashion-MNIST .gz files (Zalando Research)
_FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

_CACHE: dict = {}


class DatasetFileError(TapegradError, OSError):
    """A dataset file is missing, damaged or not in the expected format."""


def _data_dir() -> str:
    return os.path.expanduser(os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet")))


def _sha256sums(folder: str) -> dict:
    path = os.path.join(folder, "SHA256SUMS")
    sums = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    sums[parts[1].lstrip("*")] = parts[0].lower()
    except OSError:
        pass
    return sums


def _find(root: str, name: str, dataset: str, fix: str) -> str:
    for cand in (name + ".gz", name):
        p = os.path.join(root, cand)
        if os.path.isfile(p):
            return p
    raise DatasetFileError(
        f"{dataset}: file {name}.gz (or the uncompressed {name}) not found in {root}. Fix: {fix}"
    )


_CHUNK = 1 << 20


def _read_upto(stream: Any, n: int) -> bytes:
    """Up to ``n`` bytes of ``stream`` (fewer only at its end), asked for in chunks so that
    memory follows what arrives."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(_CHUNK, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _file_digest(path: str, algo: str) -> str:
    h = hashlib.new(algo, usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _idx_header(head: bytes, kind: str, source: str) -> tuple[int, int, int, int]:
    """``(n, rows, cols, data size)`` from the header bytes of an IDX ``kind`` file."""
    want = _IMAGES_MAGIC if kind == "images" else _LABELS_MAGIC
    hdr = 16 if kind == "images" else 8
    if len(head) < hdr:
        raise DatasetFileError(
            f"{source}: {len(head)} bytes is too short for an IDX {kind} "
            "header. Fix: replace the file with a good copy."
        )
    magic, n = struct.unpack(">II", head[:8])
    if magic != want:
        raise DatasetFileError(
            f"{source}: wrong IDX magic 0x{magic:08X} (expected "
            f"0x{want:08X} for {kind}). Fix: check that this is the {kind} "
            "file of the dataset and replace it with a good copy."
        )
    rows, cols = struct.unpack(">II", head[8:16]) if kind == "images" else (1, 1)
    return n, rows, cols, n * rows * cols


def _read_bytes(path: str, kind: str, dataset: str, fix: str) -> bytes:
    """The uncompressed bytes of an IDX file (gzip detected by its magic bytes).

    The header is read and checked first, then exactly the number of bytes it declares
    (plus one, to detect more): a file whose content inflates far beyond its header (a gzip
    bomb) fails after that many bytes, without inflating the rest."""
    hdr = 16 if kind == "images" else 8
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            with gzip.GzipFile(fileobj=f) if gz else contextlib.nullcontext(f) as stream:
                head = _read_upto(stream, hdr)
                try:
                    n, rows, cols, size = _idx_header(head, kind, path)
                except DatasetFileError as e:
                    raise DatasetFileError(f"{dataset}: {e} ({fix})") from None
                if size > _MAX_BYTES:
                    raise DatasetFileError(
                        f"{dataset}: {path} declares {n} {kind} of {rows}x{cols} ({size} bytes), "
                        f"far more than an IDX file of this dataset holds. Fix: {fix}"
                    )
                body = _read_upto(stream, size + 1)
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, DatasetFileError):
            raise
        raise DatasetFileError(
            f"{dataset}: cannot read {path}: it is damaged or truncated ({e}). Fix: {fix}"
        ) from None
    if len(body) > size:
        raise DatasetFileError(
            f"{dataset}: {path} holds more data than its IDX header declares ({size} bytes of "
            f"{kind}); it is damaged or not this dataset's file. Fix: {fix}"
        )
    return head + body


def read_idx(data: bytes, kind: str, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes: ``kind='images'`` gives ``(n, rows, cols)`` uint8, ``'labels'``
    gives ``(n,)`` uint8. Every size is checked against the bytes present.

    >>> import struct
    >>> from tapegrad.gluon.data.vision.datasets import read_idx
    >>> read_idx(struct.pack('>II', 0x801, 3) + bytes([1, 2, 3]), 'labels').tolist()
    [1, 2, 3]
    """
    hdr = 16 if kind == "images" else 8
    n, rows, cols, size = _idx_header(data[:hdr], kind, source)
    if len(data) - hdr != size:
        raise DatasetFileError(
            f"{source}: the header announces {size} bytes of {kind} but "
            f"the file holds {len(data) - hdr}; it is truncated or damaged. "
            "Fix: replace it with a good copy."
        )
    arr = np.frombuffer(data, dtype=np.uint8, offset=hdr)
    return arr.reshape(n, rows, cols) if kind == "images" else arr


class _IDXDataset(Dataset):
    """Images and labels read from the four IDX files of an MNIST-like dataset."""

    _name = ""
    _num_classes = 10
    _train = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    _test = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    def __init__(self, root: str | None, train: bool, transform: Callable | None) -> None:
        self._train_flag = train
        self._transform = transform
        self._root = self._resolve_root(root)
        images, labels = self._load()
        from ....ndarray import NDArray

        if images.ndim == 3:  # grey: one channel axis, last (HWC, as MXNet)
            images = images.reshape(images.shape + (1,))
        self._data = NDArray(images)
        self._label = labels.astype(np.int32)

    # -- subclasses: where the files are, how to get them, what checksums are known
    def _resolve_root(self, root: str | None) -> str:
        raise NotImplementedError

    def _fix(self) -> str:
        raise NotImplementedError

    def _verify(self, path: str, name: str, raw: bytes) -> None:
        """Checksums known for this file (raise DatasetFileError on a mismatch)."""
        sums = _sha256sums(os.path.dirname(path))
        base = os.path.basename(path)
        if base in sums:
            digest = _file_digest(path, "sha256")
            if digest != sums[base]:
                raise DatasetFileError(
                    f"{self._name}: {path} is corrupt: its SHA-256 is {digest}, SHA256SUMS "
                    f"says {sums[base]}. Fix: {self._fix()}"
                )

    def _read(self, name: str, kind: str) -> np.ndarray:
        path = _find(self._root, name, self._name, self._fix())
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, type(self).__name__)
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        raw = _read_bytes(path, kind, self._name, self._fix())
        try:
            arr = read_idx(raw, kind, path)
        except DatasetFileError as e:
            raise DatasetFileError(f"{self._name}: {e} ({self._fix()})") from None
        self._verify(path, name, raw)
        arr.setflags(write=False)
        _CACHE[key] = arr
        return arr

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        img_name, lab_name = self._train if self._train_flag else self._test
        images = self._read(img_name, "images")
        labels = self._read(lab_name, "labels")
        if images.shape[0] != labels.shape[0]:
            raise DatasetFileError(
                f"{self._name}: {img_name} holds {images.shape[0]} images but {lab_name} "
                f"holds {labels.shape[0]} labels. Fix: {self._fix()}"
            )
        if labels.size and int(labels.max()) >= self._num_classes:
            raise DatasetFileError(
                f"{self._name}: {lab_name} holds label {int(labels.max())}, outside 0.."
                f"{self._num_classes - 1}. Fix: {self._fix()}"
            )
        return images, labels

    def __len__(self) -> int:
        return int(self._label.shape[0])

    def __getitem__(self, idx: int) -> Any:
        if self._transform is not None:
            return self._transform(self._data[idx], self._label[idx])
        return self._data[idx], self._label[idx]

    def _get_batch(self, indices: list) -> Any:
        """DataLoader's fast path: the default-collated batch, when there is no transform."""
        if self._transform is not None:
            return None
        from ....ndarray import NDArray

        idx = np.asarray(indices, dtype=np.int64)
        return [NDArray(np.asarray(self._data._data)[idx]), NDArray(self._label[idx])]

    def __repr__(self) -> str:
        split = "train" if self._train_flag else "test"
        return f"{type(self).__name__}({split}, {len(self)} samples, root={self._root!r})"


class MNIST(_IDXDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey.

    Args:
        root: folder holding the four IDX files (gzipped or raw). ``None`` (default) uses
            the copy bundled with tapegrad.
        train: the training set (True) or the test set.
        transform: ``fn(image, label) -> sample`` applied on access.

    The MNIST database is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, under
    the Creative Commons Attribution-Share Alike 3.0 license (see the README beside the
    bundled files).

    >>> from tapegrad.gluon.data.vision import MNIST
    >>> img, label = MNIST(train=False)[0]
    >>> img.shape, int(label)
    ((28, 28, 1), 7)
    """

    _name = "MNIST"

    def __init__(
        self, root: str | None = None, train: bool = True, transform: Callable | None = None
    ) -> None:
        super().__init__(root, train, transform)

    def _resolve_root(self, root: str | None) -> str:
        return BUNDLED_MNIST if root is None else os.path.expanduser(os.fspath(root))

    def _fix(self) -> str:
        return (
            "put the four MNIST files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz or raw) in that folder, "
            "e.g. copies of the ones bundled with tapegrad in "
            + BUNDLED_MNIST
            + ", or pass root=None to use the bundled copy."
        )

    def _verify(self, path: str, name: str, raw: bytes) -> None:
        super()._verify(path, name, raw)
        want = _MNIST_MD5.get(name)
        if want is not None:
            digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            if digest != want:
                raise DatasetFileError(
                    f"MNIST: {path} is corrupt or not the original MNIST file: the MD5 of its "
                    f"uncompressed data is {digest}, the canonical one is {want}. Fix: "
                    f"{self._fix()}"
                )


class FashionMNIST(_IDXDataset):
    """Fashion-MNIST (Zalando Research): 28x28 grey images of 10 kinds of clothing, same
    layout as MNIST. Not bundled: put its four IDX files (``.gz`` or raw) in ``root``,
    by default ``$MXNET_HOME/datasets/fashion-mnist`` (``~/.mxnet/datasets/fashion-mnist``),
    MXNet's location. The official ``.gz`` files are checked against their published MD5
    sums; every file's IDX structure is checked.

    Args:
        root: folder holding the files (``None``: the default above).
        train: the training set (True) or the test set.
        transform: ``fn(image, label) -> sample`` applied on access.
    """

    _name = "FashionMNIST"

    def __init__(
        self, root: str | None = None, train: bool = True, transform: Callable | None = None
    ) -> None:
        super().__init__(root, train, transform)

    def _resolve_root(self, root: str | None) -> str:
        if root is None:
            return os.path.join(_data_dir(), "datasets", "fashion-mnist")
        return os.path.expanduser(os.fspath(root))

    def _fix(self) -> str:
        return (
            "download the four Fashion-MNIST files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) from the Fashion-MNIST repository of Zalando "
            f"Research into {self._root} (or pass root= the folder that has them)."
        )

    def _verify(self, path: str, name: str, raw: bytes) -> None:
        super()._verify(path, name, raw)
        base = os.path.basename(path)
        want = _FASHION_GZ_MD5.get(base)
        if want is not None:
            digest = _file_digest(path, "md5")
            if digest != want:
                raise DatasetFileError(
                    f"FashionMNIST: {path} is corrupt or not the official file: its MD5 is "
                    f"{digest}, the published one is {want}. Fix: {self._fix()} A file you "
                    "compressed yourself has another checksum: keep it uncompressed instead "
                    "(its IDX structure is still checked)."
                )


class _CIFAR(_IDXDataset):
    """Records of the CIFAR binary version: ``label bytes`` then a 3x32x32 image (channel
    planes), read into MXNet's layout: images ``(N, 32, 32, 3)`` uint8, labels int32."""

    _folder = ""  # the folder the binary archive unpacks to
    _label_bytes = 1

    def _resolve_root(self, root: str | None) -> str:
        if root is None:
            return os.path.join(_data_dir(), "datasets", self._name.lower())
        return os.path.expanduser(os.fspath(root))

    def _files(self) -> tuple:
        return self._train if self._train_flag else self._test

    def _fix(self) -> str:
        return (
            f"unpack the binary version of {self._name} (its files {', '.join(self._train)} "
            f"and {', '.join(self._test)}) into {os.path.join(self._root, self._folder)} "
            "(or pass root= a folder that has them). Nothing is downloaded."
        )

    def _read_records(self, name: str) -> np.ndarray:
        path = None
        for folder in (os.path.join(self._root, self._folder), self._root):
            if os.path.isfile(os.path.join(folder, name)):
                path = os.path.join(folder, name)
                break
        if path is None:
            raise DatasetFileError(f"{self._name}: file {name} not found. Fix: {self._fix()}")
        size = self._label_bytes + 3 * 32 * 32
        n = os.path.getsize(path)
        if n == 0 or n % size or n > _MAX_BYTES:
            raise DatasetFileError(
                f"{self._name}: {path} has {n} bytes, not a whole number of {size}-byte "
                f"records: it is damaged or not a {self._name} binary batch. Fix: {self._fix()}"
            )
        with open(path, "rb") as f:
            return np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, size)

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        recs = [self._read_records(name) for name in self._files()]
        rec = np.concatenate(recs) if len(recs) > 1 else recs[0]
        k = self._label_bytes
        images = rec[:, k:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = rec[:, self._label_column()].astype(np.int32)
        if int(labels.max()) >= self._num_classes:
            raise DatasetFileError(
                f"{self._name}: label {int(labels.max())} is outside 0..{self._num_classes - 1}"
                f": the files are damaged or of another dataset. Fix: {self._fix()}"
            )
        return np.ascontiguousarray(images), labels

    def _label_column(self) -> int:
        return 0


class CIFAR10(_CIFAR):
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, of 10 classes (Alex
    Krizhevsky, 2009). Not bundled: unpack its binary version (``cifar-10-binary.tar.gz``)
    into ``root``, by default ``$MXNET_HOME/datasets/cifar10`` (``~/.mxnet/datasets/cifar10``),
    MXNet's location; the files may sit in ``root/cifar-10-batches-bin`` or in ``root``.
    Samples are ``(image, label)``: a ``uint8`` NDArray of shape ``(32, 32, 3)`` and an
    ``int32`` label, as MXNet returns them.

    Args:
        root: folder of the files (``None``: the default above).
        train: the five training batches (True) or the test batch.
        transform: ``fn(image, label) -> sample`` applied on access.
    """

    _name = "CIFAR10"
    _folder = "cifar-10-batches-bin"
    _train = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
    _test = ("test_batch.bin",)

    def __init__(
        self, root: str | None = None, train: bool = True, transform: Callable | None = None
    ) -> None:
        super().__init__(root, train, transform)


class CIFAR100(_CIFAR):
    """CIFAR-100: 50,000 training and 10,000 test colour images, 32x32, of 100 classes in
    20 superclasses. Not bundled: unpack its binary version (``cifar-100-binary.tar.gz``)
    into ``root``, by default ``$MXNET_HOME/datasets/cifar100``; the files may sit in
    ``root/cifar-100-binary`` or in ``root``.

    Args:
        root: folder of the files (``None``: the default above).
        fine_label: the 100 classes (True) or the 20 superclasses (False, MXNet's default).
        train: the training set (True) or the test set.
        transform: ``fn(image, label) -> sample`` applied on access.
    """

    _name = "CIFAR100"
    _folder = "cifar-100-binary"
    _label_bytes = 2
    _train = ("train.bin",)
    _test = ("test.bin",)

    def __init__(
        self,
        root: str | None = None,
        fine_label: bool = False,
        train: bool = True,
        transform: Callable | None = None,
    ) -> None:
        self._fine = bool(fine_label)
        self._num_classes = 100 if self._fine else 20
        super().__init__(root, train, transform)

    def _label_column(self) -> int:
        return 1 if self._fine else 0
