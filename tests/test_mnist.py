"""MNIST: the bundled data, the IDX loader's checks, and a short training run of the demo."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.gluon.data import DataLoader
from tapegrad.gluon.data.vision import MNIST, DatasetFileError, FashionMNIST
from tapegrad.gluon.data.vision.datasets import BUNDLED_MNIST

BUNDLED = Path(BUNDLED_MNIST)
FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def _readme_counts(split: str) -> list[int]:
    """Class counts as written in the bundled README (the dataset's documentation)."""
    text = (BUNDLED / "README.md").read_text()
    m = re.search(split + r" \[([0-9, ]+)\]", text)
    assert m, "the bundled README lost its class counts"
    return [int(v) for v in m.group(1).split(",")]


def test_bundled_files_license_and_checksums():
    readme = (BUNDLED / "README.md").read_text()
    assert "Creative Commons Attribution-Share Alike 3.0" in readme
    assert "LeCun" in readme
    lic = (BUNDLED / "LICENSE").read_text()
    assert "CC BY-SA 3.0" in lic and "LeCun" in lic
    sums = dict(line.split()[::-1] for line in (BUNDLED / "SHA256SUMS").read_text().splitlines())
    for f in FILES:
        assert hashlib.sha256((BUNDLED / f).read_bytes()).hexdigest() == sums[f]


@pytest.mark.parametrize("train,n,split", [(True, 60000, "train"), (False, 10000, "test")])
def test_mnist_shapes_dtypes_and_class_counts(train, n, split):
    ds = MNIST(train=train)
    assert len(ds) == n
    img, label = ds[0]
    assert isinstance(img, mx.nd.NDArray)
    assert img.shape == (28, 28, 1) and img.dtype == np.uint8
    assert isinstance(label, np.int32)
    assert np.bincount(ds._label, minlength=10).tolist() == _readme_counts(split)
    assert int(img.asnumpy().max()) > 200  # real pixels, not zeros


def test_mnist_transform_and_loader_batches():
    seen = []
    ds = MNIST(train=False, transform=lambda x, y: (seen.append(1) or x.astype("float32") / 255, y))
    x, y = ds[3]
    assert x.dtype == np.float32 and float(x.asnumpy().max()) <= 1.0 and seen == [1]
    plain = MNIST(train=False)
    xb, yb = next(iter(DataLoader(plain, batch_size=5)))
    assert xb.shape == (5, 28, 28, 1) and xb.dtype == np.uint8 and yb.dtype == np.int32
    for i in range(5):  # the batch path gives what the samples give
        np.testing.assert_array_equal(xb.asnumpy()[i], plain[i][0].asnumpy())
        assert yb.asnumpy()[i] == plain[i][1]


def _copy_test_split(dst: Path, raw: bool = False) -> None:
    for f in FILES[2:]:
        data = (BUNDLED / f).read_bytes()
        if raw:
            (dst / f[:-3]).write_bytes(gzip.decompress(data))
        else:
            (dst / f).write_bytes(data)


def test_raw_and_gzipped_files_load_the_same(tmp_path):
    _copy_test_split(tmp_path, raw=True)
    raw = MNIST(root=str(tmp_path), train=False)
    ref = MNIST(train=False)
    np.testing.assert_array_equal(raw._data.asnumpy(), ref._data.asnumpy())
    np.testing.assert_array_equal(raw._label, ref._label)


def test_missing_file_is_named_with_the_fix(tmp_path):
    _copy_test_split(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetFileError, match="t10k-labels-idx1-ubyte.gz.*Fix:.*root=None"):
        MNIST(root=str(tmp_path), train=False)
    with pytest.raises(DatasetFileError, match="train-images-idx3-ubyte"):
        MNIST(root=str(tmp_path), train=True)


def test_corrupt_files_are_refused(tmp_path):
    _copy_test_split(tmp_path)
    name = "t10k-labels-idx1-ubyte.gz"
    good = (tmp_path / name).read_bytes()
    # a damaged byte inside the gzip stream
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(bad))
    with pytest.raises(DatasetFileError, match=name):
        MNIST(root=str(tmp_path), train=False)
    # a truncated download
    (tmp_path / name).write_bytes(good[: len(good) // 3])
    with pytest.raises(DatasetFileError, match=name):
        MNIST(root=str(tmp_path), train=False)
    # a well-formed file with one changed label: only the checksum can tell
    (tmp_path / name).unlink()
    raw = bytearray(gzip.decompress(good))
    raw[100] = (raw[100] + 1) % 10
    (tmp_path / name[:-3]).write_bytes(bytes(raw))
    with pytest.raises(DatasetFileError, match="MD5"):
        MNIST(root=str(tmp_path), train=False)
    # not an IDX labels file at all
    (tmp_path / name[:-3]).write_bytes(b"hello world, this is not MNIST")
    with pytest.raises(DatasetFileError, match="magic"):
        MNIST(root=str(tmp_path), train=False)


def test_sha256sums_beside_the_files_are_checked(tmp_path):
    _copy_test_split(tmp_path)
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  t10k-images-idx3-ubyte.gz\n")
    with pytest.raises(DatasetFileError, match="SHA-256"):
        MNIST(root=str(tmp_path), train=False)


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    n, r, c = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, n, r, c) + images.astype(np.uint8).tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()
    )


def test_fashion_mnist_reads_idx_files_and_checks_them(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 28, 28))
    labels = np.array([0, 9, 3, 3, 1, 5])
    _write_idx(tmp_path, "t10k", imgs, labels)
    ds = FashionMNIST(root=str(tmp_path), train=False)
    assert len(ds) == 6 and ds[1][0].shape == (28, 28, 1) and int(ds[1][1]) == 9
    np.testing.assert_array_equal(ds[2][0].asnumpy()[..., 0], imgs[2])
    _write_idx(tmp_path, "t10k", imgs, np.array([0, 9, 3, 3, 1, 12]))
    with pytest.raises(DatasetFileError, match="label 12"):
        FashionMNIST(root=str(tmp_path), train=False)
    _write_idx(tmp_path, "t10k", imgs, labels[:5])
    with pytest.raises(DatasetFileError, match="6 images but.*5 labels"):
        FashionMNIST(root=str(tmp_path), train=False)
    with pytest.raises(DatasetFileError, match="train-images-idx3-ubyte.*Fashion-MNIST"):
        FashionMNIST(root=str(tmp_path), train=True)
    # an official-looking .gz name with other contents fails its published checksum
    gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gzip.compress(struct.pack(">II", 0x801, 6) + labels.astype(np.uint8).tobytes()))
    with pytest.raises(DatasetFileError, match="MD5"):
        FashionMNIST(root=str(tmp_path), train=False)


# ----------------------------------------------------------------------------- the demo


def _demo_args(**kw) -> argparse.Namespace:
    from tapegrad.demos import mnist as demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args([])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_short_mnist_training_beats_88_percent(tmp_path, capsys):
    """5,000 training images, 3 epochs: the 784-72-10 tanh net must reach >= 88% on the
    full 10,000-image test set (it gets about 90-91%) within a few seconds."""
    from tapegrad.demos import mnist as demo

    save = tmp_path / "net.params"
    rc = demo.run(_demo_args(epochs=3, limit=5000, save=str(save), no_progress=True))
    out = capsys.readouterr().out
    assert rc == 0
    acc = float(re.search(r"test accuracy: ([0-9.]+)%", out).group(1))
    assert acc >= 88.0, out
    # the saved parameters reproduce the reported accuracy
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(72, activation="tanh"), mx.gluon.nn.Dense(10))
    net.load_parameters(str(save))
    test = MNIST(train=False)
    x = test._data.asnumpy().reshape(-1, 784).astype(np.float32) / 255
    pred = net(mx.nd.array(x)).asnumpy().argmax(axis=1)
    assert float((pred == test._label).mean()) * 100 == pytest.approx(acc, abs=0.01)


def test_demo_plot_needs_matplotlib(tmp_path, capsys, monkeypatch):
    from tapegrad.demos import mnist as demo

    png = tmp_path / "w.png"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    rc = demo.run(_demo_args(epochs=1, limit=10, plot=str(png)))
    assert rc == 2 and not png.exists()
    assert "matplotlib" in capsys.readouterr().err


def test_demo_plot_draws_png(tmp_path):
    pytest.importorskip("matplotlib")
    from tapegrad.demos import mnist as demo

    png = tmp_path / "w.png"
    assert demo.run(_demo_args(epochs=1, limit=200, plot=str(png), no_progress=True)) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_is_registered_with_the_cli():
    from tapegrad import cli

    assert "mnist" in cli._demos()
