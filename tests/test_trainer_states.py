"""Trainer-states files: every entry checked (crafted, damaged, wrong types, wrong shapes),
all-or-nothing loads, a checksum, states matched to parameters by structure."""

from __future__ import annotations

import json
import re
import struct
import zlib

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon
from tapegrad import serialization as S
from tapegrad.gluon.trainer import TrainerError
from tapegrad.optimizer import OptimizerError
from tapegrad.serialization import ParamsFileError

# ----------------------------------------------------------------------------- trainer states


def _trained(tmp_path, name="sgd", kw=None, sched=None):
    a = gluon.Parameter("a", shape=(2,))
    b = gluon.Parameter("b", shape=(3,))
    for p in (a, b):
        p.initialize(init=mx.init.One())
    kw = dict(kw or {"learning_rate": 0.1, "momentum": 0.9})
    if sched is not None:
        kw["lr_scheduler"] = sched
    tr = gluon.Trainer([a, b], name, kw)
    for _ in range(2):
        with autograd.record():
            loss = (a.data() * mx.nd.array([1.0, 2.0])).sum() + (b.data() ** 2).sum()
        loss.backward()
        tr.step(1)
    path = tmp_path / "t.states"
    tr.save_states(str(path))
    return tr, path


def _rewrite(path, change, out):
    """Load a states file, let ``change(doc, states)`` edit it, write it with a valid checksum
    (as someone crafting a file would)."""
    meta, states = S.load_states(path)
    meta.pop("format")
    meta.pop("version")
    change(meta, states)
    out.write_bytes(S.dumps_states(meta, states))
    return out


def _trainer_view(tr):
    return (
        type(tr.optimizer),
        dict(vars(tr.optimizer)),
        tr.learning_rate,
        {
            i: [x.asnumpy().copy() for x in (s if isinstance(s, tuple) else (s,))]
            for i, s in tr._updaters[0].states.items()
        },
    )


def _unchanged(tr, view):
    now = _trainer_view(tr)
    assert now[0] is view[0] and now[2] == view[2]
    assert now[1].keys() == view[1].keys()
    for k in view[1]:
        assert now[1][k] is view[1][k] or now[1][k] == view[1][k], k
    assert now[3].keys() == view[3].keys()
    for i in view[3]:
        for x, y in zip(now[3][i], view[3][i]):
            np.testing.assert_array_equal(x, y)


def test_scheduler_that_would_loop_forever_is_refused(tmp_path):
    sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5)
    tr, path = _trained(tmp_path, sched=sched)

    def step_zero(meta, states):
        meta["optimizer_config"]["lr_scheduler"]["attrs"]["step"] = 0

    bad = _rewrite(path, step_zero, tmp_path / "loop.states")
    view = _trainer_view(tr)
    sched_before = dict(vars(sched))
    with pytest.raises(ParamsFileError) as info:
        tr.load_states(str(bad))
    msg = str(info.value)
    assert "loop.states" in msg and "optimizer_config.lr_scheduler.attrs" in msg
    assert "'step' must be an int >= 1, got 0" in msg and "Fix:" in msg
    _unchanged(tr, view)
    assert vars(sched) == sched_before and tr.optimizer.lr_scheduler is sched


def _set(path_keys, value):
    def change(meta, states):
        d = meta
        for k in path_keys[:-1]:
            d = d[k]
        d[path_keys[-1]] = value

    return change


BAD_ENTRIES = [
    (("optimizer_config", "attrs", "lr"), "fast", "optimizer_config.attrs.lr"),
    (("optimizer_config", "attrs", "lr"), float("nan"), "optimizer_config.attrs.lr"),
    (("optimizer_config", "attrs", "lr"), -1.0, "optimizer_config.attrs.lr"),
    (("optimizer_config", "attrs", "momentum"), float("inf"), "optimizer_config.attrs.momentum"),
    (("optimizer_config", "attrs", "num_update"), 2.5, "optimizer_config.attrs.num_update"),
    (("optimizer_config", "attrs", "lazy_update"), 3, "optimizer_config.attrs.lazy_update"),
    (("optimizer_config", "attrs", "learning_rate"), 1.0, "optimizer_config.attrs.learning_rate"),
    (("optimizer_config", "attrs", "update"), 1, "optimizer_config.attrs.update"),
    (("optimizer_config", "attrs", "__class__"), "x", "optimizer_config.attrs.__class__"),
    (("optimizer_config", "attrs", "param_dict"), {}, "optimizer_config.attrs.param_dict"),
    (("optimizer_config", "attrs"), [1, 2], "optimizer_config.attrs"),
    (("optimizer_config", "counts"), "x", "optimizer_config.counts"),
    (("optimizer_config", "counts"), [[0, [[0, -3]]]], "optimizer_config.counts[0]"),
    (("optimizer_config", "counts"), [[0, [[0, 1], [0, 2]]]], "optimizer_config.counts[0]"),
    (("optimizer_config", "lr_mult"), [[0, "big"]], "optimizer_config.lr_mult"),
    (("optimizer_config", "idx2name"), [["a", "b"]], "optimizer_config.idx2name"),
    (("optimizer_config", "lr_scheduler"), 5, "optimizer_config.lr_scheduler"),
    (("optimizer_config", "surprise"), 1, "optimizer_config.surprise"),
    (("optimizer_config", "optimizer"), 7, "optimizer_config.optimizer"),
    (("optimizer_config",), [], "optimizer_config"),
    (("params",), {"a": 1}, "params"),
    (("params",), [{"name": 3}], "params[0]"),
    (("params",), [{"name": "a", "key": "a", "shape": [-2]}, {"name": "b"}], "params[0].shape"),
]


@pytest.mark.parametrize(
    "keys,value,entry", BAD_ENTRIES, ids=[e[2] + "=" + repr(e[1])[:12] for e in BAD_ENTRIES]
)
def test_bad_entry_is_named_and_changes_nothing(tmp_path, keys, value, entry):
    tr, path = _trained(tmp_path)
    bad = _rewrite(path, _set(keys, value), tmp_path / "bad.states")
    view = _trainer_view(tr)
    with pytest.raises(ParamsFileError) as info:
        tr.load_states(str(bad))
    msg = str(info.value)
    assert "bad.states" in msg and f"'{entry}'" in msg and "Fix:" in msg, msg
    _unchanged(tr, view)


def _parts(path):
    """The arrays of a states file by name, and its JSON description."""
    arrays, names = S.loads_arrays(path.read_bytes()[:-12])
    by = dict(zip(names, arrays))
    return by, json.loads(by[S.STATES_META_KEY].tobytes())


def _write_parts(path, by, doc, crc=True):
    items = dict(by)
    items[S.STATES_META_KEY] = np.frombuffer(json.dumps(doc).encode(), np.uint8)
    body = S.dumps_arrays(list(items.values()), list(items))
    path.write_bytes(body + (b"TGCRC32\x00" + struct.pack("<I", zlib.crc32(body)) if crc else b""))
    return path


def test_layout_damage_is_named(tmp_path):
    tr, path = _trained(tmp_path)
    by, doc = _parts(path)
    out = tmp_path / "l.states"
    for layout, entry in (
        ({"0": {"array": 5}, "1": {"array": 0}}, "layout.0"),
        ({"0": {"bogus": 1}, "1": {"array": 0}}, "layout.0"),
        ({"0": {"array": 0, "value": 1}, "1": {"array": 0}}, "layout.0"),
        ({"x": {"array": 0}, "1": {"array": 0}}, "layout.x"),
        ({"0": {"seq": [{"array": 0}, {"array": 0}]}, "1": {"array": 0}}, "layout.0[1]"),
        ({"0": None, "1": {"array": 0}}, "state/0/0"),
        ({"9": {"array": 0}, "1": {"array": 0}}, "layout.9"),
    ):
        with pytest.raises(ParamsFileError, match=f"l.states: entry '{re.escape(entry)}'.*Fix:"):
            tr.load_states(str(_write_parts(out, by, dict(doc, layout=layout))))
    deep: object = {"array": 0}
    for _ in range(20):
        deep = {"seq": [deep]}
    with pytest.raises(ParamsFileError, match="entry 'layout.0.*nested deeper"):
        tr.load_states(str(_write_parts(out, by, dict(doc, layout={"0": deep, "1": {"array": 0}}))))
    extra = dict(by, **{"extra/thing": np.zeros(1, np.float32)})
    with pytest.raises(ParamsFileError, match="entry 'extra/thing': is not part of"):
        tr.load_states(str(_write_parts(out, extra, doc)))
    with pytest.raises(ParamsFileError, match="entry 'version': format version 99.*Fix:"):
        tr.load_states(str(_write_parts(out, by, dict(doc, version=99))))
    with pytest.raises(ParamsFileError, match="entry 'layout': is a list"):
        tr.load_states(str(_write_parts(out, by, dict(doc, layout=[]))))


def test_deeply_nested_json_is_a_params_file_error(tmp_path):
    text = b'{"format": "tapegrad-trainer-states", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    body = S.dumps_arrays([np.frombuffer(text, np.uint8)], [S.STATES_META_KEY])
    p = tmp_path / "deep.states"
    p.write_bytes(body + b"TGCRC32\x00" + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(
        ParamsFileError, match="deep.states: entry '__tapegrad_states__.json': .*nested"
    ):
        S.load_states(p)


@pytest.mark.parametrize(
    "change,pattern",
    [
        (lambda s: s.__setitem__(0, mx.nd.zeros((5,))), r"'a'.*shape \(2,\).*shape \(5,\)"),
        (
            lambda s: s.__setitem__(0, mx.nd.zeros((2,), dtype="int32")),
            "'a'.*dtype float32.*dtype int32",
        ),
        (lambda s: s.__setitem__(1, None), "'b'.*expected a state.*none"),
        (lambda s: s.__setitem__(1, (s[1], s[1])), "'b'.*expected an array.*\\("),
    ],
    ids=["shape", "int-dtype", "missing", "tuple"],
)
def test_states_that_do_not_fit_the_optimizer_are_refused(tmp_path, change, pattern):
    tr, path = _trained(tmp_path)
    bad = _rewrite(path, lambda m, s: change(s), tmp_path / "fit.states")
    view = _trainer_view(tr)
    with pytest.raises(ParamsFileError, match=pattern) as info:
        tr.load_states(str(bad))
    assert "fit.states: entry 'layout." in str(info.value) and "Fix:" in str(info.value)
    _unchanged(tr, view)


def test_failed_load_is_all_or_nothing(tmp_path):
    tr, path = _trained(tmp_path)

    def lr_and_unknown_scheduler(meta, states):
        meta["optimizer_config"]["attrs"]["lr"] = 999.0
        meta["optimizer_config"]["lr_scheduler"] = {"class": "NoSuchScheduler", "attrs": {}}

    bad = _rewrite(path, lr_and_unknown_scheduler, tmp_path / "lr.states")
    view = _trainer_view(tr)
    with pytest.raises(OptimizerError, match="lr.states: .*NoSuchScheduler.*Fix:"):
        tr.load_states(str(bad))
    assert tr.learning_rate == 0.1
    _unchanged(tr, view)
    # and through the Updater API
    upd = tr._updaters[0]
    with pytest.raises(OptimizerError, match="NoSuchScheduler"):
        upd.set_states(bad.read_bytes())
    assert upd.optimizer.lr == 0.1
    _unchanged(tr, view)


def test_checksum_detects_a_flipped_bit(tmp_path):
    tr, path = _trained(tmp_path)
    raw = bytearray(path.read_bytes())
    view = _trainer_view(tr)
    momentum = raw.find(tr._updaters[0].states[0].asnumpy().tobytes())
    assert momentum > 0
    # in the JSON text, in a state array's data, in the names, in the checksum itself
    for pos in (60, momentum + 1, len(raw) - 20, len(raw) - 2):
        flipped = bytearray(raw)
        flipped[pos] ^= 0x04
        p = tmp_path / "flip.states"
        p.write_bytes(bytes(flipped))
        with pytest.raises(ParamsFileError, match="flip.states: checksum mismatch.*Fix:"):
            tr.load_states(str(p))
    (tmp_path / "cut.states").write_bytes(bytes(raw[:-12]))
    with pytest.raises(ParamsFileError, match="cut.states: the checksum at the end .* missing"):
        tr.load_states(str(tmp_path / "cut.states"))
    (tmp_path / "more.states").write_bytes(bytes(raw) + b"x")
    with pytest.raises(ParamsFileError, match="more.states: the checksum at the end"):
        tr.load_states(str(tmp_path / "more.states"))
    _unchanged(tr, view)
    tr.load_states(str(path))  # the intact file loads
    # MXNet ignores bytes after the names: the file is still an ordinary NDArray file
    arrays, names = S.load_arrays(path)
    assert S.STATES_META_KEY in names


def test_version_1_files_still_load(tmp_path):
    tr, path = _trained(tmp_path)
    by, doc = _parts(path)
    doc["version"] = 1
    for p in doc["params"]:
        del p["key"]  # version 1 recorded names and shapes, and had no checksum
    old = _write_parts(tmp_path / "v1.states", by, doc, crc=False)
    before = tr._updaters[0].states[0].asnumpy().copy()
    tr._updaters[0].states[0][:] = 0
    tr.load_states(str(old))
    np.testing.assert_array_equal(tr._updaters[0].states[0].asnumpy(), before)
    # a version 1 file matches by name: other names are refused, not guessed
    c = gluon.Parameter("c", shape=(2,))
    b = gluon.Parameter("b", shape=(3,))
    for p in (c, b):
        p.initialize()
    with pytest.raises(TrainerError, match="v1.states: .*'a' \\(name .*version 1"):
        gluon.Trainer([c, b], "sgd", {"momentum": 0.9}).load_states(str(old))


# ----------------------------------------------------------------------------- structure


def _mlp():
    net = gluon.nn.Sequential()
    net.add(
        gluon.nn.Dense(4, in_units=4), gluon.nn.Dense(4, in_units=4), gluon.nn.Dense(4, in_units=4)
    )
    net.initialize(mx.init.Xavier())
    return net


def _train_net(net, steps=2):
    tr = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    x = mx.nd.array(np.linspace(-1, 1, 8).reshape(2, 4))
    for _ in range(steps):
        with autograd.record():
            loss = (net(x) ** 2).sum()
        loss.backward()
        tr.step(2)
    return tr


def _momentum_by_position(tr, net):
    """The momentum of each parameter, in the network's structural order."""
    where = {id(p): i for i, p in enumerate(tr._params)}
    return [
        tr._updaters[0].states[where[id(p)]].asnumpy()
        for p in net._collect_params_with_prefix().values()
    ]


def test_states_follow_the_structure_not_the_automatic_names(tmp_path):
    scope = gluon.nn.Sequential()  # a name scope: its automatic numbers start at 0
    with scope.name_scope():
        net = _mlp()  # dense0..dense2
        _mlp(), _mlp()
        again = _mlp()  # the same network built again: dense9..dense11
    tr = _train_net(net)
    path = tmp_path / "s.states"
    tr.save_states(str(path))
    saved = _momentum_by_position(tr, net)
    names = [p.name for p in again.collect_params().values()]
    assert names[0].endswith("dense9_weight") and names[-1].endswith("dense11_bias")
    tr2 = gluon.Trainer(again.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    # the sorted-name indices do not follow the network's order here
    order = [tr2._params.index(p) for p in again._collect_params_with_prefix().values()]
    assert order != sorted(order)
    tr2.load_states(str(path))
    for x, y in zip(saved, _momentum_by_position(tr2, again)):
        np.testing.assert_array_equal(x, y)


def _scoped(nested):
    """Three Dense layers in name scopes; with ``nested`` the third sits in an inner
    Sequential (the same shapes, another structure)."""
    net = gluon.nn.Sequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(4, in_units=4), gluon.nn.Dense(4, in_units=4))
        if nested:
            inner = gluon.nn.Sequential()
            with inner.name_scope():
                inner.add(gluon.nn.Dense(4, in_units=4))
            net.add(inner)
        else:
            net.add(gluon.nn.Dense(4, in_units=4))
    net.initialize()
    return net


def test_states_of_another_structure_are_refused(tmp_path):
    tr = _train_net(_scoped(False))
    path = tmp_path / "s.states"
    tr.save_states(str(path))
    _scoped(False)  # another network in between: other automatic names, same structure
    tr_same = gluon.Trainer(_scoped(False).collect_params(), "sgd", {"momentum": 0.9})
    tr_same.load_states(str(path))
    tr2 = gluon.Trainer(_scoped(True).collect_params(), "sgd", {"momentum": 0.9})
    view = _trainer_view(tr2)
    with pytest.raises(TrainerError) as info:
        tr2.load_states(str(path))
    msg = str(info.value)
    assert "s.states: the states of parameter 'sequential" in msg
    assert "structural name 'sequential0_dense2_" in msg and "no parameter here" in msg
    assert "sequential0_sequential0_dense0_weight" in msg and "Fix:" in msg
    _unchanged(tr2, view)


def test_structural_names():
    from tapegrad.gluon.trainer import _structural_names

    a = ["sequential4_dense9_weight", "sequential4_dense9_bias", "sequential4_dense10_weight"]
    b = ["sequential0_dense0_weight", "sequential0_dense0_bias", "sequential0_dense1_weight"]
    assert _structural_names(a) == _structural_names(b) == b
    # names without numbers, LSTM-style parts and plain numbers are kept apart
    names = ["w", "lstm3_l0_i2h_weight", "lstm3_l1_i2h_weight", "layer_1_bias"]
    assert _structural_names(names) == [
        "w",
        "lstm0_l0_i2h_weight",
        "lstm0_l1_i2h_weight",
        "layer_1_bias",
    ]


# ----------------------------------------------------------------------------- schedulers


@pytest.mark.parametrize(
    "klass,kw,attr,value,pattern",
    [
        (
            mx.lr_scheduler.FactorScheduler,
            {"step": 3},
            "factor",
            2.0,
            "'factor' must be a number between 0 and 1",
        ),
        (
            mx.lr_scheduler.FactorScheduler,
            {"step": 3},
            "base_lr",
            float("nan"),
            "'base_lr' must be a finite",
        ),
        (
            mx.lr_scheduler.MultiFactorScheduler,
            {"step": [2, 4]},
            "step",
            [4, 2],
            "'step' must be a non-empty increasing",
        ),
        (
            mx.lr_scheduler.MultiFactorScheduler,
            {"step": [2, 4]},
            "cur_step_ind",
            7,
            "'cur_step_ind' .* past the end",
        ),
        (
            mx.lr_scheduler.PolyScheduler,
            {"max_update": 10},
            "max_steps",
            0,
            "'max_steps' .* is not 'max_update'",
        ),
        (
            mx.lr_scheduler.CosineScheduler,
            {"max_update": 10},
            "warmup_mode",
            "cubic",
            "'warmup_mode' must be",
        ),
        (
            mx.lr_scheduler.CosineScheduler,
            {"max_update": 10},
            "extra",
            1,
            "unexpected attribute 'extra'",
        ),
    ],
)
def test_scheduler_state_is_checked(klass, kw, attr, value, pattern):
    s = klass(**kw)
    s(3)
    good = dict(vars(s))
    restored = klass._from_state(good)
    assert vars(restored) == good and restored(5) == klass(**kw)(5)
    with pytest.raises(ValueError, match=pattern):
        klass._from_state(dict(good, **{attr: value}))
    with pytest.raises(ValueError, match="missing"):
        klass._from_state({k: v for k, v in good.items() if k != "base_lr"})
