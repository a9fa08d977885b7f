"""MXNet .params files: reading what MXNet 1.9.1 wrote, round trips, bad files, atomic writes."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import serialization as S
from tapegrad.serialization import ParamsFileError

# copies of ../shared/data/mxnet-params (written by real MXNet 1.9.1), kept with the tests so
# that they always run
PARAMS_DIR = Path(__file__).resolve().parent / "data" / "mxnet-params"

FILES = [
    "mlp_784_72_10.params",
    "dict_mixed_dtypes.params",
    "list_unnamed.params",
    "dense_prefixed.params",
]


def _expected() -> dict:
    return json.loads((PARAMS_DIR / "expected.json").read_text())


def _dtype_of(text: str) -> np.dtype:
    # expected.json writes either 'float32' or "<class 'numpy.float32'>"
    if text.startswith("<class"):
        text = text.split("'")[1].split(".")[-1]
    return np.dtype(text)


# ----------------------------------------------------------------------------- MXNet files


@pytest.mark.parametrize("fname", FILES)
def test_reads_mxnet_files_like_mxnet(fname):
    exp = _expected()[fname]
    loaded = mx.nd.load(str(PARAMS_DIR / fname))
    if isinstance(exp, list):
        assert isinstance(loaded, list) and len(loaded) == len(exp)
        pairs = list(zip(loaded, exp))
    else:
        assert isinstance(loaded, dict)
        assert list(loaded) == list(exp)  # same names, same order
        pairs = [(loaded[k], exp[k]) for k in exp]
    for arr, e in pairs:
        assert isinstance(arr, mx.nd.NDArray)
        assert arr.shape == tuple(e["shape"])
        assert arr.dtype == _dtype_of(e["dtype"])
        a = arr.asnumpy().astype(np.float64).ravel()
        if "values" in e:
            np.testing.assert_allclose(a, e["values"], rtol=1e-6, atol=0)
        else:
            np.testing.assert_allclose(a[:3], e["first"], rtol=1e-6)
            np.testing.assert_allclose(a.sum(), e["sum"], rtol=1e-5, atol=1e-5)


def test_mlp_file_forward_matches_mxnet_output():
    exp = _expected()["mlp_784_72_10.forward"]["output"]
    x = np.linspace(0, 1, 784).reshape(1, 784).astype(np.float32)
    # through the arrays alone
    p = mx.nd.load(str(PARAMS_DIR / "mlp_784_72_10.params"))
    h = mx.nd.tanh(mx.nd.dot(mx.nd.array(x), p["0.weight"].T) + p["0.bias"])
    out = mx.nd.dot(h, p["1.weight"].T) + p["1.bias"]
    np.testing.assert_allclose(out.asnumpy().ravel(), exp, rtol=1e-5, atol=1e-5)
    # through Gluon, as MXNet wrote it: HybridSequential(Dense(72, tanh), Dense(10))
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(72, activation="tanh"), mx.gluon.nn.Dense(10))
    net.load_parameters(str(PARAMS_DIR / "mlp_784_72_10.params"))
    np.testing.assert_allclose(net(mx.nd.array(x)).asnumpy().ravel(), exp, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fname", FILES)
def test_writer_reproduces_mxnet_bytes(fname):
    raw = (PARAMS_DIR / fname).read_bytes()
    arrays, names = S.loads_arrays(raw, fname)
    assert S.dumps_arrays(arrays, names) == raw


# ----------------------------------------------------------------------------- round trips

ALL_DTYPES = [
    "float32",
    "float64",
    "float16",
    "uint8",
    "int32",
    "int8",
    "int64",
    "bool",
    "int16",
    "uint16",
    "uint32",
    "uint64",
]


def test_round_trip_every_dtype_and_shape(tmp_path):
    rng = np.random.default_rng(0)
    data = {}
    for i, dt in enumerate(ALL_DTYPES):
        shape = [(3, 4), (5,), (2, 1, 3), (0, 4), (1,)][i % 5]
        a = (rng.standard_normal(shape) * 50).astype(dt)
        data[f"p{i}_{dt}"] = mx.nd.array(a, dtype=dt)
    path = tmp_path / "all.params"
    mx.nd.save(str(path), data)
    back = mx.nd.load(str(path))
    assert list(back) == list(data)
    for k, v in data.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k].asnumpy(), v.asnumpy())


def test_round_trip_list_single_and_empty(tmp_path):
    p = tmp_path / "x.params"
    mx.nd.save(str(p), [mx.nd.ones((2, 2)), mx.nd.arange(3)])
    back = mx.nd.load(str(p))
    assert isinstance(back, list) and [b.shape for b in back] == [(2, 2), (3,)]
    mx.nd.save(str(p), mx.nd.zeros((4,)))
    assert [b.shape for b in mx.nd.load(str(p))] == [(4,)]
    mx.nd.save(str(p), [])
    assert mx.nd.load(str(p)) == []


def test_zero_dim_arrays_use_v3(tmp_path):
    p = tmp_path / "s.params"
    S.save_arrays(p, [np.array(2.5, dtype=np.float32), np.ones((2,), np.float32)], ["s", "v"])
    raw = p.read_bytes()
    assert struct.unpack("<I", raw[24:28])[0] == 0xF993FACA  # V3: NumPy shape semantics
    back = mx.nd.load(str(p))
    assert back["s"].shape == () and float(back["s"].asnumpy()) == 2.5
    assert back["v"].shape == (2,)


def test_big_endian_input_is_written_little_endian():
    a = np.arange(4, dtype=">f4")
    arrays, _ = S.loads_arrays(S.dumps_arrays([a]))
    np.testing.assert_array_equal(arrays[0], [0, 1, 2, 3])


def test_bfloat16_is_read_as_float32():
    vals = np.array([1.0, -2.5, 3.0], dtype=np.float32)
    bf16 = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
    raw = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iii", 0xF993FAC9, 0, 1)
    raw += struct.pack("<q", 3) + struct.pack("<iii", 1, 0, 12) + bf16 + struct.pack("<Q", 0)
    arrays, names = S.loads_arrays(raw)
    assert arrays[0].dtype == np.float32 and arrays[0].tolist() == [1.0, -2.5, 3.0]


def test_legacy_array_layouts_are_read():
    body = np.arange(6, dtype="<f4").tobytes()
    # V1: uint32 magic, uint32 ndim, int64 dims
    v1 = struct.pack("<II", 0xF993FAC8, 2) + struct.pack("<qq", 2, 3)
    # pre-V1: the first uint32 is ndim, dims are uint32
    v0 = struct.pack("<I", 2) + struct.pack("<II", 3, 2)
    for head, shape in ((v1, (2, 3)), (v0, (3, 2))):
        raw = struct.pack("<QQQ", 0x112, 0, 1) + head + struct.pack("<iii", 1, 0, 0) + body
        raw += struct.pack("<Q", 0)
        arrays, _ = S.loads_arrays(raw)
        assert arrays[0].shape == shape and arrays[0].ravel().tolist() == list(range(6))


def test_save_rejects_bad_input(tmp_path):
    p = str(tmp_path / "bad.params")
    with pytest.raises(TypeError, match="keys must be str"):
        mx.nd.save(p, {1: mx.nd.ones((1,))})
    with pytest.raises(TypeError, match="complex64"):
        S.save_arrays(p, [np.ones(2, np.complex64)])
    with pytest.raises(TypeError, match="not an NDArray"):
        mx.nd.save(p, ["text"])
    assert not os.path.exists(p)


# ----------------------------------------------------------------------------- bad files


def _valid_bytes() -> bytes:
    return S.dumps_arrays(
        [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([7], dtype=np.int64)], ["w", "b"]
    )


def test_every_truncation_raises_params_file_error():
    raw = _valid_bytes()
    for cut in range(len(raw)):
        with pytest.raises(ParamsFileError):
            S.loads_arrays(raw[:cut], "cut.params")


def test_truncated_real_checkpoint(tmp_path):
    raw = (PARAMS_DIR / "mlp_784_72_10.params").read_bytes()
    for cut in (0, 7, 8, 23, 30, 60, 1000, len(raw) // 2, len(raw) - 20, len(raw) - 1):
        p = tmp_path / f"cut{cut}.params"
        p.write_bytes(raw[:cut])
        with pytest.raises(ParamsFileError, match=f"cut{cut}.params"):
            mx.nd.load(str(p))


def test_wrong_magic_and_garbage(tmp_path):
    p = tmp_path / "g.params"
    p.write_bytes(b"PK\x03\x04 this is a zip, not params" + bytes(64))
    with pytest.raises(ParamsFileError, match="wrong magic"):
        mx.nd.load(str(p))
    rng = np.random.default_rng(1)
    for n in (0, 1, 9, 100, 5000):
        with pytest.raises(ParamsFileError):
            S.loads_arrays(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
    # garbage after a valid list header
    for n in (4, 50, 5000):
        raw = struct.pack("<QQQ", 0x112, 0, 3) + rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        with pytest.raises(ParamsFileError):
            S.loads_arrays(raw)


def test_huge_claims_fail_fast_without_allocating():
    head = struct.pack("<QQ", 0x112, 0)
    with pytest.raises(ParamsFileError, match="claims"):
        S.loads_arrays(head + struct.pack("<Q", 2**62) + bytes(16))
    arr = struct.pack("<Iii", 0xF993FAC9, 0, 3) + struct.pack("<qqq", 2**40, 2**40, 2**40)
    arr += struct.pack("<iii", 1, 0, 0)
    with pytest.raises(ParamsFileError, match="needs"):
        S.loads_arrays(head + struct.pack("<Q", 1) + arr + bytes(64))
    bad_ndim = struct.pack("<Iii", 0xF993FAC9, 0, 1000)
    with pytest.raises(ParamsFileError, match="dimensions"):
        S.loads_arrays(head + struct.pack("<Q", 1) + bad_ndim + bytes(64))
    neg = struct.pack("<Iii", 0xF993FAC9, 0, 1) + struct.pack("<q", -5)
    with pytest.raises(ParamsFileError, match="negative"):
        S.loads_arrays(head + struct.pack("<Q", 1) + neg + bytes(64))
    name_len = _valid_bytes()[: -len(b"b") - 8] + struct.pack("<Q", 2**60)
    with pytest.raises(ParamsFileError):
        S.loads_arrays(name_len)


def test_unsupported_content_is_named():
    head = struct.pack("<QQQ", 0x112, 0, 1)
    sparse = struct.pack("<Ii", 0xF993FAC9, 1) + bytes(64)
    with pytest.raises(ParamsFileError, match="row_sparse"):
        S.loads_arrays(head + sparse)
    csr = struct.pack("<Ii", 0xF993FAC9, 2) + bytes(64)
    with pytest.raises(ParamsFileError, match="csr"):
        S.loads_arrays(head + csr)
    flag = struct.pack("<Iii", 0xF993FAC9, 0, 1) + struct.pack("<q", 1)
    flag += struct.pack("<iii", 1, 0, 99) + bytes(8)
    with pytest.raises(ParamsFileError, match="dtype flag 99"):
        S.loads_arrays(head + flag)
    none = struct.pack("<Iii", 0xF993FAC9, 0, 0) + bytes(64)
    with pytest.raises(ParamsFileError, match="uninitialized"):
        S.loads_arrays(head + none)
    names = S.dumps_arrays([np.zeros(1, np.float32)])[:-8] + struct.pack("<Q", 2)
    with pytest.raises(ParamsFileError, match="1 arrays but 2 names"):
        S.loads_arrays(names)
    bad_utf8 = S.dumps_arrays([np.zeros(1, np.float32)])[:-8]
    bad_utf8 += struct.pack("<QQ", 1, 2) + b"\xff\xfe"
    with pytest.raises(ParamsFileError, match="UTF-8"):
        S.loads_arrays(bad_utf8)


def test_random_byte_flips_never_crash():
    raw = bytearray(_valid_bytes())
    rng = np.random.default_rng(2)
    for _ in range(300):
        b = bytearray(raw)
        for pos in rng.integers(0, len(b), 3):
            b[pos] = int(rng.integers(0, 256))
        try:
            S.loads_arrays(bytes(b))
        except ParamsFileError:
            pass


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.params"):
        mx.nd.load(str(tmp_path / "nothere.params"))
    with pytest.raises(ParamsFileError, match="folder"):
        mx.nd.load(str(tmp_path))


# ----------------------------------------------------------------------------- atomic writes


def _no_temp_files(folder: Path) -> bool:
    return not [f for f in os.listdir(folder) if f.endswith("tmp")]


def test_failure_mid_write_keeps_old_file(tmp_path):
    p = tmp_path / "ckpt.params"
    mx.nd.save(str(p), {"w": mx.nd.ones((3,))})
    old = p.read_bytes()

    def half_then_crash(f):
        f.write(b"\x12\x01\x00\x00partial")
        raise RuntimeError("disk full (simulated)")

    with pytest.raises(RuntimeError, match="simulated"):
        S.atomic_write(p, half_then_crash)
    assert p.read_bytes() == old
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_os_failure_keeps_old_file(tmp_path, monkeypatch, where):
    p = tmp_path / "ckpt.params"
    mx.nd.save(str(p), {"w": mx.nd.ones((3,))})
    old = p.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(f"{where} failed (simulated)")

    monkeypatch.setattr(S.os, where, boom)
    with pytest.raises(OSError, match="simulated"):
        mx.nd.save(str(p), {"w": mx.nd.zeros((1000,))})
    monkeypatch.undo()
    assert p.read_bytes() == old
    assert _no_temp_files(tmp_path)
    assert mx.nd.load(str(p))["w"].asnumpy().tolist() == [1.0, 1.0, 1.0]


def test_save_replaces_and_keeps_permissions(tmp_path):
    p = tmp_path / "perm.params"
    mx.nd.save(str(p), [mx.nd.ones((1,))])
    os.chmod(p, 0o640)
    mx.nd.save(str(p), [mx.nd.zeros((2,))])
    assert (os.stat(p).st_mode & 0o777) == 0o640
    assert mx.nd.load(str(p))[0].shape == (2,)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mx.nd.save(str(tmp_path / "no" / "dir.params"), [mx.nd.ones((1,))])


# ----------------------------------------------------------------------------- trainer states


def test_states_container_round_trip():
    states = {
        0: (mx.nd.ones((2, 2)), None),
        3: mx.nd.arange(3),
        5: None,
        7: ((mx.nd.zeros((1,)), mx.nd.ones((2,))), 4),
    }
    buf = S.dumps_states({"optimizer_config": {"x": [1, 2.5, "a"]}}, states)
    # an ordinary NDArray-list file, no pickle
    assert buf[:8] == struct.pack("<Q", 0x112)
    arrays, names = S.loads_arrays(buf)
    assert names[0] == S.STATES_META_KEY and "state/7/1" in names
    meta, back = S.loads_states(buf)
    assert meta["optimizer_config"] == {"x": [1, 2.5, "a"]}
    assert back[0][1] is None and back[0][0].shape == (2, 2)
    assert back[3].asnumpy().tolist() == [0, 1, 2] and back[5] is None
    assert back[7][0][1].shape == (2,) and back[7][1] == 4


def test_states_loader_rejects_plain_params():
    with pytest.raises(ParamsFileError, match="not a trainer-states file"):
        S.loads_states(_valid_bytes(), "net.params")
