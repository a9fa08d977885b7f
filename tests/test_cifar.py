"""CIFAR-10 / CIFAR-100 from their binary batches (gluon.data.vision), as MXNet 1.9 reads them:
images (32, 32, 3) uint8 in HWC order, labels int32; nothing is downloaded."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tapegrad as mx
from tapegrad.gluon.data.vision import CIFAR10, CIFAR100, DatasetFileError

RNG = np.random.default_rng(0)


def _write(path: str, labels: list, images: np.ndarray) -> None:
    """Records: the label bytes, then the image as three 32x32 channel planes."""
    rec = np.concatenate([np.asarray(labels, dtype=np.uint8), images.reshape(len(images), -1)], 1)
    with open(path, "wb") as f:
        f.write(rec.astype(np.uint8).tobytes())


def _planes(n: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def test_cifar10_reads_the_batches_in_mxnets_layout(tmp_path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    train = []
    for i in range(1, 6):
        img = _planes(3)
        _write(str(folder / f"data_batch_{i}.bin"), [[i], [i + 1], [0]], img)
        train.append(img)
    test_img = _planes(2)
    _write(str(folder / "test_batch.bin"), [[9], [4]], test_img)

    ds = CIFAR10(root=str(tmp_path))
    assert len(ds) == 15
    img, label = ds[4]  # batch 2, second record
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and label.dtype == np.int32
    np.testing.assert_array_equal(img.asnumpy(), train[1][1].transpose(1, 2, 0))
    assert int(label) == 3
    test = CIFAR10(root=str(tmp_path), train=False)
    assert [int(test[i][1]) for i in range(2)] == [9, 4]
    np.testing.assert_array_equal(test[1][0].asnumpy()[5, 7], test_img[1][:, 5, 7])
    # the DataLoader batches them like MXNet's
    x, y = next(iter(mx.gluon.data.DataLoader(test, batch_size=2)))
    assert x.shape == (2, 32, 32, 3) and y.asnumpy().tolist() == [9, 4]


def test_cifar100_fine_and_coarse_labels(tmp_path) -> None:
    img = _planes(2)
    _write(str(tmp_path / "train.bin"), [[3, 71], [19, 5]], img)  # files directly in root
    coarse = CIFAR100(root=str(tmp_path))
    fine = CIFAR100(root=str(tmp_path), fine_label=True)
    assert [int(coarse[i][1]) for i in range(2)] == [3, 19]
    assert [int(fine[i][1]) for i in range(2)] == [71, 5]
    np.testing.assert_array_equal(fine[0][0].asnumpy(), img[0].transpose(1, 2, 0))


def test_missing_damaged_and_foreign_files_are_refused_with_the_fix(tmp_path) -> None:
    with pytest.raises(DatasetFileError, match=r"CIFAR10: file data_batch_1.bin not found.*unpack"):
        CIFAR10(root=str(tmp_path))
    with open(tmp_path / "test_batch.bin", "wb") as f:
        f.write(b"\0" * 3000)
    with pytest.raises(DatasetFileError, match="3000 bytes, not a whole number of 3073-byte"):
        CIFAR10(root=str(tmp_path), train=False)
    _write(str(tmp_path / "test_batch.bin"), [[10]], _planes(1))
    with pytest.raises(DatasetFileError, match=r"label 10 is outside 0..9"):
        CIFAR10(root=str(tmp_path), train=False)
    _write(str(tmp_path / "test.bin"), [[20, 1]], _planes(1))
    with pytest.raises(DatasetFileError, match=r"CIFAR100: label 20 is outside 0..19"):
        CIFAR100(root=str(tmp_path), train=False)
    assert int(CIFAR100(root=str(tmp_path), fine_label=True, train=False)[0][1]) == 1


def test_default_root_is_mxnets(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MXNET_HOME", str(tmp_path))
    with pytest.raises(DatasetFileError) as e:
        CIFAR10(train=False)
    want = os.path.join(str(tmp_path), "datasets", "cifar10", "cifar-10-batches-bin")
    assert want in str(e.value)
