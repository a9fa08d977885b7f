"""Hostile and damaged files: params files are read header first and incrementally (no
gigabytes read for a file that is not one), impossible shapes are named, gzip bombs in MNIST
folders stop at the size the IDX header declares, temporaries of saves killed with kill -9
are removed by the next save. Trainer-states files: test_trainer_states."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import gluon
from tapegrad import serialization as S
from tapegrad.gluon.data.vision import datasets as D
from tapegrad.serialization import ParamsFileError

TAPEGRAD_DIR = os.path.dirname(os.path.abspath(mx.__file__))


def _peak_bytes(fn):
    """Peak of Python/NumPy allocations while ``fn()`` runs (NumPy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# ----------------------------------------------------------------------------- params files


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")
def test_dev_zero_fails_at_its_header():
    def load():
        with pytest.raises(ParamsFileError, match="/dev/zero: wrong magic 0x0.*Fix:"):
            mx.nd.load("/dev/zero")

    assert _peak_bytes(load) < 1 << 20  # it was read whole (forever) before


def test_large_file_that_is_no_params_file_is_not_read_whole(tmp_path):
    p = tmp_path / "video.mp4"
    with open(p, "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42")
        f.truncate(300 << 20)  # 300 MB (sparse: no disk space used)

    def load():
        with pytest.raises(ParamsFileError, match="video.mp4: wrong magic"):
            mx.nd.load(str(p))
        with pytest.raises(ParamsFileError, match="video.mp4: wrong magic"):
            S.load_states(p)

    assert _peak_bytes(load) < 1 << 20


def test_array_claim_larger_than_the_file_fails_before_allocating(tmp_path):
    head = struct.pack("<QQQ", 0x112, 0, 1)
    arr = struct.pack("<Iii", 0xF993FAC9, 0, 2) + struct.pack("<qq", 1 << 20, 1 << 20)
    arr += struct.pack("<iii", 1, 0, 0)
    p = tmp_path / "claim.params"
    p.write_bytes(head + arr + bytes(1000))

    def load():
        with pytest.raises(ParamsFileError, match="claim.params: array 0.*needs 4398046511104"):
            mx.nd.load(str(p))

    assert _peak_bytes(load) < 1 << 20


def test_valid_file_is_read_without_a_second_copy(tmp_path):
    p = tmp_path / "big.params"
    w = np.arange(4 << 20, dtype=np.float32)  # 16 MB
    mx.nd.save(str(p), {"w": mx.nd.array(w)})
    out = {}

    def load():
        out["w"] = S.load_arrays(p)[0][0]

    peak = _peak_bytes(load)
    assert np.array_equal(out["w"], w)
    assert peak < w.nbytes * 1.25  # the array itself, not file bytes + a copy of them


@pytest.mark.parametrize("shape", [(0, 2**62), (2**40, 0, 2**40), (0, 2**63 - 1)])
def test_zero_sized_shape_beyond_the_address_space_names_the_file(tmp_path, shape):
    head = struct.pack("<QQQ", 0x112, 0, 1)
    arr = struct.pack("<Iii", 0xF993FAC9, 0, len(shape)) + struct.pack(f"<{len(shape)}q", *shape)
    arr += struct.pack("<iii", 1, 0, 0) + struct.pack("<Q", 0)
    p = tmp_path / "dims.params"
    p.write_bytes(head + arr)
    with pytest.raises(ParamsFileError, match=r"dims.params: array 0 has shape .*no array.*Fix:"):
        mx.nd.load(str(p))
    with pytest.raises(ParamsFileError, match="x.params: array 0 has shape"):
        S.loads_arrays(head + arr, "x.params")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need os.mkfifo (POSIX)")
def test_stream_input_of_unknown_length(tmp_path):
    good = S.dumps_arrays([np.arange(5, dtype=np.float64)], ["x"])
    for payload, expect in ((good, None), (good[:-3], "name 0"), (b"garbage!" * 100, "magic")):
        fifo = tmp_path / "pipe.params"
        os.mkfifo(fifo)

        def feed(data=payload, fifo=fifo):
            with open(fifo, "wb") as f:
                f.write(data)

        t = threading.Thread(target=feed)
        t.start()
        try:
            if expect is None:
                assert mx.nd.load(str(fifo))["x"].asnumpy().tolist() == [0, 1, 2, 3, 4]
            else:
                with pytest.raises(ParamsFileError, match=f"pipe.params: .*{expect}"):
                    mx.nd.load(str(fifo))
        finally:
            t.join(10)
            os.unlink(fifo)


# ----------------------------------------------------------------------------- MNIST files


class _CountingGzip(gzip.GzipFile):
    inflated = 0

    def read(self, size=-1):
        out = super().read(size)
        type(self).inflated += len(out)
        return out


def _idx_images(n, rows=28, cols=28):
    return struct.pack(">IIII", 0x803, n, rows, cols)


def test_gzip_bomb_stops_at_the_size_the_header_declares(tmp_path, monkeypatch):
    declared = 2 * 28 * 28
    raw = gzip.compress(_idx_images(2) + bytes(64 << 20), compresslevel=1)  # inflates to 64 MB
    assert len(raw) < 1 << 20
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(raw)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">II", 0x801, 2) + bytes(2))
    )
    monkeypatch.setattr(D.gzip, "GzipFile", _CountingGzip)
    _CountingGzip.inflated = 0

    def load():
        with pytest.raises(D.DatasetFileError, match="MNIST: .*train-images.*more data than its "):
            gluon.data.vision.MNIST(root=str(tmp_path))

    peak = _peak_bytes(load)
    assert _CountingGzip.inflated <= 16 + declared + 1
    assert peak < 4 << 20


def test_idx_header_is_checked_before_the_data(tmp_path, monkeypatch):
    # a header that declares more than any file of the dataset: refused without reading on
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx_images(60000, 28000, 28000) + bytes(1 << 20))
    )
    monkeypatch.setattr(D.gzip, "GzipFile", _CountingGzip)
    _CountingGzip.inflated = 0
    with pytest.raises(D.DatasetFileError, match="t10k-images.*declares 60000 images.*Fix:"):
        gluon.data.vision.FashionMNIST(root=str(tmp_path), train=False)
    assert _CountingGzip.inflated == 16
    # a wrong magic is named at the header, the data is never inflated
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">II", 0x801, 5) + bytes(1 << 20))
    )
    _CountingGzip.inflated = 0
    with pytest.raises(D.DatasetFileError, match="wrong IDX magic 0x00000801"):
        gluon.data.vision.FashionMNIST(root=str(tmp_path), train=False)
    assert _CountingGzip.inflated == 16
    # raw files: extra bytes after the declared data
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_images(1) + bytes(28 * 28 + 5))
    with pytest.raises(D.DatasetFileError, match="more data than its IDX header declares"):
        gluon.data.vision.FashionMNIST(root=str(tmp_path), train=False)


# -------------------------------------------------------------------- kill -9 during a save

_CHILD = """
import os, sys, time
sys.path.insert(0, {root!r})
from tapegrad import serialization as S
def write(f):
    f.write(b"x" * 100000)
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
S.atomic_write({path!r}, write)
"""


def _start_writer(path: Path) -> subprocess.Popen:
    root = str(Path(TAPEGRAD_DIR).parent)
    code = textwrap.dedent(_CHILD.format(root=root, path=str(path)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def _temporaries(folder: Path) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(".tapegrad-tmp"))


@pytest.mark.skipif(os.name != "posix", reason="kill -9 and process ids: POSIX only")
def test_next_save_removes_temporaries_of_killed_writers(tmp_path):
    path = tmp_path / "ckpt.params"
    mx.nd.save(str(path), {"w": mx.nd.ones((3,))})
    old = path.read_bytes()
    for _ in range(3):  # three saves killed mid-write; each one removes its predecessor's file
        proc = _start_writer(path)
        proc.kill()  # SIGKILL: no clean-up runs
        proc.wait()
        left = _temporaries(tmp_path)
        assert len(left) == 1 and left[0].startswith(".ckpt.params.")
        assert f"-{proc.pid}-" in left[0]
    assert path.read_bytes() == old  # the target was never touched
    # a writer that is still alive keeps its temporary
    alive = _start_writer(path)
    try:
        assert [f"-{alive.pid}-" in f for f in _temporaries(tmp_path)] == [True]
        mx.nd.save(str(path), {"w": mx.nd.zeros((2,))})
        assert [f"-{alive.pid}-" in f for f in _temporaries(tmp_path)] == [True]
        assert mx.nd.load(str(path))["w"].shape == (2,)
    finally:
        alive.kill()
        alive.wait()
    mx.nd.save(str(path), {"w": mx.nd.zeros((2,))})
    assert _temporaries(tmp_path) == []
    # other files next to it are left alone
    (tmp_path / ".other.params.x.tapegrad-tmp").write_bytes(b"1")
    (tmp_path / "ckpt.params.bak").write_bytes(b"2")
    mx.nd.save(str(path), {"w": mx.nd.zeros((2,))})
    assert sorted(os.listdir(tmp_path)) == [
        ".other.params.x.tapegrad-tmp",
        "ckpt.params",
        "ckpt.params.bak",
    ]


def test_concurrent_save_in_another_thread_keeps_its_temporary(tmp_path):
    path = tmp_path / "t.params"
    started, release = threading.Event(), threading.Event()
    errors = []

    def slow(f):
        f.write(S.dumps_arrays([np.ones(3, np.float32)], ["slow"]))
        started.set()
        release.wait(10)

    def run():
        try:
            S.atomic_write(path, slow)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    mx.nd.save(str(path), {"fast": mx.nd.ones((1,))})  # must not remove the thread's file
    release.set()
    t.join(10)
    assert errors == []
    assert list(mx.nd.load(str(path))) == ["slow"]
    assert _temporaries(tmp_path) == []
