"""MXNet behaviours scripts rely on: contexts as ``with`` blocks and GPU-choosing code,
initializers equal by value (shared parameters), integer Parameters, HybridBlocks called with
lists and numbers, deferred shapes inferred through operators, ``Block.save``/``Block.load``."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, gluon, nd
from tapegrad.base import ShapeError
from tapegrad.gluon import HybridBlock, nn
from tapegrad.gluon.block import HybridBlockInputError, ModelFileError

# --------------------------------------------------------------------------- contexts


def test_with_context_sets_and_restores_the_default():
    assert mx.current_context() == mx.cpu(0)
    ctx = mx.cpu(1)
    with ctx:
        assert mx.current_context() is ctx
        with mx.cpu(2):
            assert mx.current_context() == mx.cpu(2)
        with ctx:  # the same object entered again inside its own block
            assert mx.current_context() is ctx
        assert mx.current_context() is ctx
    assert mx.current_context() == mx.cpu(0)
    x = nd.ones((2,))
    with x.context as c:
        assert c == mx.cpu(0) and nd.zeros((1,)).context == mx.cpu(0)


def test_context_default_is_per_thread():
    seen = []
    with mx.cpu(3):
        t = threading.Thread(target=lambda: seen.append(mx.current_context()))
        t.start()
        t.join()
    assert seen == [mx.cpu(0)]


def test_gpu_choosing_code_runs_on_the_cpu():
    assert mx.context.num_gpus() == 0 and mx.test_utils.list_gpus() == []
    ctx = mx.gpu() if mx.context.num_gpus() > 0 else mx.cpu()
    assert ctx == mx.cpu()

    def try_gpu():  # the Straight Dope / d2l idiom
        try:
            c = mx.gpu()
            nd.zeros((1,), ctx=c)
        except mx.base.MXNetError:
            c = mx.cpu()
        return c

    assert try_gpu() == mx.cpu()
    assert mx.gpu(1) == mx.Context("gpu", 1) and str(mx.gpu(1)) == "gpu(1)"
    assert mx.Context(mx.gpu(2)).device_typeid == 2 and {mx.cpu(): 1}[mx.Context("cpu")] == 1


def test_bad_device_type_is_named():
    with pytest.raises(ValueError, match="unknown device type 'tpu'.*Fix"):
        mx.Context("tpu")


def test_set_default_context():
    try:
        mx.test_utils.set_default_context(mx.cpu(5))
        assert mx.test_utils.default_context() == mx.cpu(5)
    finally:
        mx.test_utils.set_default_context(None)
    assert mx.current_context() == mx.cpu(0)


# --------------------------------------------------------------------------- initializers


def test_initializers_compare_by_value():
    assert mx.init.Xavier() == mx.init.Xavier()
    assert mx.init.Xavier(magnitude=2) != mx.init.Xavier()
    assert mx.init.Normal(0.1) != mx.init.Uniform(0.1)
    assert mx.init.Constant(nd.ones((2,))) == mx.init.Constant(nd.ones((2,)))
    assert mx.init.Constant(nd.ones((2,))) != mx.init.Constant(nd.zeros((2,)))
    assert mx.init.MSRAPrelu() == mx.init.MSRAPrelu() != mx.init.MSRAPrelu(slope=0.1)
    assert len({mx.init.Xavier(), mx.init.Xavier()}) == 1


def test_sharing_a_parameter_with_the_same_initializer():
    d1 = nn.Dense(4, in_units=3, weight_initializer=mx.init.Xavier(magnitude=2))
    d2 = nn.Dense(
        4, in_units=3, weight_initializer=mx.init.Xavier(magnitude=2), params=d1.collect_params()
    )
    assert d2.weight is d1.weight
    with pytest.raises(ValueError, match="does not match.*'init'"):
        nn.Dense(4, in_units=3, weight_initializer=mx.init.Uniform(), params=d1.collect_params())


# --------------------------------------------------------------------------- integer params


def test_integer_parameter_initializes_saves_and_loads(tmp_path):
    class Counter(HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            with self.name_scope():
                self.steps = self.params.get("steps", shape=(2,), dtype="int32", init="zeros")
                self.w = self.params.get("w", shape=(2,), init=mx.init.One())

        def hybrid_forward(self, F, x, steps, w):
            return x * w + steps.astype("float32")

    net = Counter()
    net.initialize()
    assert net.steps.data().dtype == np.int32 and net.steps.grad_req == "null"
    net.steps.set_data(nd.array([3, 4], dtype="int32"))
    x = nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = net(x).sum()
    y.backward()
    tr = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1.0})
    tr.step(1)  # the integer parameter is left alone, the float one trained
    assert net.steps.data().asnumpy().tolist() == [3, 4]
    assert net.w.data().asnumpy().tolist() == [0.0, -1.0]
    net.save_parameters(str(tmp_path / "c.params"))
    net2 = Counter()
    net2.load_parameters(str(tmp_path / "c.params"))
    assert net2.steps.data().dtype == np.int32 and net2.steps.data().asnumpy().tolist() == [3, 4]
    net2.steps.cast("float32")  # a float dtype gets the grad_req that was asked for
    assert net2.steps.grad_req == "write" and net2.steps.grad().shape == (2,)


# --------------------------------------------------------------------------- HybridBlock inputs


class _AddAll(HybridBlock):
    def hybrid_forward(self, F, x, *args):
        total = x[0] + x[1] if isinstance(x, list) else x
        for a in args:
            if a is not None:
                total = total + a
        return total


def test_unhybridized_hybridblock_accepts_lists_numbers_and_none():
    blk = _AddAll()
    a, b = nd.array([1.0, 2.0]), nd.array([10.0, 20.0])
    assert blk(a, 3).asnumpy().tolist() == [4.0, 5.0]
    assert blk([a, b], None, 1.5).asnumpy().tolist() == [12.5, 23.5]
    assert blk(2, a).asnumpy().tolist() == [3.0, 4.0]  # the NDArray need not come first
    blk.hybridize()
    assert blk([a, b]).asnumpy().tolist() == [11.0, 22.0]


def test_hybridblock_without_any_ndarray_is_refused():
    with pytest.raises(HybridBlockInputError, match="_AddAll.*NDArray.*list, int.*Fix") as e:
        _AddAll()([1, 2], 3)
    assert isinstance(e.value, ValueError) and isinstance(e.value, TypeError)


# --------------------------------------------------------------------------- deferred shapes


class _FC(HybridBlock):
    """The issue's example: a weight of shape (5, 0) used in F.FullyConnected."""

    def __init__(self, flatten=True, **kw):
        super().__init__(**kw)
        self._flatten = flatten
        with self.name_scope():
            self.weights = self.params.get("weights", shape=(5, 0), allow_deferred_init=True)
            self.bias = self.params.get("bias", shape=(0,), init="zeros", allow_deferred_init=True)

    def hybrid_forward(self, F, x, weights, bias):
        return F.FullyConnected(x, weights, bias, num_hidden=5, flatten=self._flatten)


def test_deferred_shape_inferred_from_fully_connected():
    net = _FC()
    net.initialize(mx.init.One())
    assert net.weights.shape == (5, 0)
    x = nd.ones((2, 3, 4))
    y = net(x)
    assert net.weights.shape == (5, 12) and net.bias.shape == (5,)
    np.testing.assert_allclose(y.asnumpy(), np.full((2, 5), 12.0))  # bias: 'zeros'
    net2 = _FC(flatten=False)
    net2.initialize()
    assert net2(x).shape == (2, 3, 5) and net2.weights.shape == (5, 4)


def test_deferred_params_train_like_known_ones():
    mx.random.seed(0)
    net = _FC()
    net.initialize(mx.init.Xavier())
    x = nd.array(np.random.default_rng(0).standard_normal((8, 6)))
    with autograd.record():
        loss = (net(x) ** 2).sum()
    loss.backward()
    w, b = net.weights.data().asnumpy(), net.bias.data().asnumpy()
    out = x.asnumpy() @ w.T + b
    np.testing.assert_allclose(net.weights.grad().asnumpy(), 2 * out.T @ x.asnumpy(), rtol=1e-4)


def test_deferred_shape_through_other_operators():
    class Mixed(HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            with self.name_scope():
                self.proj = self.params.get("proj", shape=(0, 3), allow_deferred_init=True)
                self.scale = self.params.get("scale", shape=(0, 0), allow_deferred_init=True)
                self.emb = self.params.get("emb", shape=(0, 0), allow_deferred_init=True)
                self.add = self.params.get("add", shape=(0, 0), allow_deferred_init=True)

        def hybrid_forward(self, F, x, idx, proj, scale, emb, add):
            h = F.dot(x, proj)  # proj gets (x.shape[1], 3)
            h = scale * h  # elementwise with the deferred parameter on the left
            h = F.elemwise_add(h, add)
            return h + F.Embedding(idx, emb, input_dim=7, output_dim=3).sum(axis=1)

    blk = Mixed()
    blk.initialize(mx.init.One())
    out = blk(nd.ones((2, 4)), nd.array([[1, 2], [3, 4]]))
    assert blk.proj.shape == (4, 3) and blk.scale.shape == (2, 3)
    assert blk.emb.shape == (7, 3) and blk.add.shape == (2, 3)
    np.testing.assert_allclose(out.asnumpy(), np.full((2, 3), 4.0 + 1.0 + 2.0))


def test_deferred_params_are_initialized_in_declaration_order():
    class Two(HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            with self.name_scope():
                self.a = self.params.get("a", shape=(4, 0), allow_deferred_init=True)
                self.b = self.params.get("b", shape=(0,), allow_deferred_init=True)

        def hybrid_forward(self, F, x, a, b):
            return F.FullyConnected(x, a, b, num_hidden=4)

    mx.random.seed(5)
    blk = Two()
    blk.initialize(mx.init.Uniform(1.0), force_reinit=True)
    blk(nd.ones((1, 3)))
    mx.random.seed(5)
    a = mx.nd.random.uniform(-1.0, 1.0, shape=(4, 3)).asnumpy()
    b = mx.nd.random.uniform(-1.0, 1.0, shape=(4,)).asnumpy()
    np.testing.assert_array_equal(blk.a.data().asnumpy(), a)
    np.testing.assert_array_equal(blk.b.data().asnumpy(), b)


def test_deferred_parameter_used_where_no_rule_exists_is_named():
    class Bad(HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.w = self.params.get("w", shape=(0,), allow_deferred_init=True)

        def hybrid_forward(self, F, x, w):
            return F.broadcast_mul(x, w)

    blk = Bad()
    blk.initialize()
    with pytest.raises(
        ShapeError, match=r"Bad 'bad0'.*'bad0_w' has shape \(0,\).*broadcast_mul.*Fix"
    ):
        blk(nd.ones((2, 3)))
    assert blk.w.shape == (0,) and blk.w._deferred_init  # still deferred: can be retried


def test_deferred_shape_that_contradicts_the_declaration_is_refused():
    class Fixed(HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.w = self.params.get("w", shape=(6, 0), allow_deferred_init=True)

        def hybrid_forward(self, F, x, w):
            return F.FullyConnected(x, w, num_hidden=5, no_bias=True)

    blk = Fixed()
    blk.initialize()
    with pytest.raises(
        ShapeError,
        match=r"'FullyConnected' needs Parameter 'fixed0_w' to have shape \(5, 3\).*\(6, 0\)",
    ):
        blk(nd.ones((2, 3)))


def test_a_failed_first_call_leaves_parameters_deferred():
    class Fails(_FC):
        def hybrid_forward(self, F, x, weights, bias):
            super().hybrid_forward(F, x, weights, bias)  # initializes the parameters
            raise RuntimeError("after the operator")

    blk = Fails()
    blk.initialize()
    with pytest.raises(RuntimeError, match="after the operator"):
        blk(nd.ones((2, 3)))
    assert blk.weights.shape == (5, 0) and blk.weights._data is None


def test_explicit_infer_shape_sets_shapes_without_initializing():
    net = _FC()
    net.initialize()
    net.infer_shape(nd.ones((2, 7)))
    assert net.weights.shape == (5, 7) and net.weights._data is None
    assert net(nd.ones((2, 7))).shape == (2, 5)


def test_custom_infer_shape_still_wins():
    class Own(_FC):
        def infer_shape(self, x):
            self.weights.shape = (5, x.shape[1])
            self.bias.shape = (5,)

    net = Own()
    net.initialize()
    assert net(nd.ones((2, 3))).shape == (2, 5)


# --------------------------------------------------------------------------- save / load


def _build(units=4):
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(units, activation="relu"), nn.Dense(2))
    return net


def test_block_save_load_round_trip(tmp_path):
    net = _build()
    net.initialize(mx.init.Xavier())
    x = nd.array(np.random.default_rng(1).standard_normal((3, 5)))
    y = net(x)
    prefix = str(tmp_path / "model")
    net.save(prefix)
    model = json.loads((tmp_path / "model-model.json").read_text())
    (key,) = model  # one top-level block, MXNet's layout: class name + number
    assert key == "hybridsequential0" and model[key]["orig_name"] == net.name
    assert model[key]["hybridized"] is False
    assert list(model[key]["children"].values()) == ["0", "1"]
    assert (tmp_path / "model-model.params").exists()

    net2 = _build()  # built again: other automatic names
    net2.initialize()
    net2(x)
    assert net2.name != net.name
    net2.load(prefix)
    assert net2.name == net.name
    np.testing.assert_allclose(net2(x).asnumpy(), y.asnumpy(), rtol=1e-6)
    assert list(net2.collect_params().keys()) == [
        f"{net.name}_{n}" for n in ("dense0_weight", "dense0_bias", "dense1_weight", "dense1_bias")
    ]


def test_block_load_of_another_network_changes_nothing(tmp_path):
    net = _build()
    net.initialize()
    net(nd.ones((1, 5)))
    net.save(str(tmp_path / "m"))
    other = nn.HybridSequential()
    other.add(nn.Dense(4), nn.Dense(2), nn.Dense(1))
    other.initialize()
    other(nd.ones((1, 5)))
    names = list(other.collect_params().keys())
    with pytest.raises(ModelFileError, match="no valid entry 'dense.*Fix"):
        other.load(str(tmp_path / "m"))
    assert list(other.collect_params().keys()) == names
    # same structure, other sizes: the parameter load fails and the names are put back
    small = _build(units=3)
    small.initialize()
    small(nd.ones((1, 7)))
    old = small.name
    with pytest.raises(Exception, match="shape"):
        small.load(str(tmp_path / "m"))
    assert small.name == old


def test_block_load_refuses_damaged_json(tmp_path):
    (tmp_path / "m-model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        _build().load(str(tmp_path / "m"))
    with pytest.raises(ModelFileError, match="cannot read"):
        _build().load(str(tmp_path / "missing"))


def test_prelu_gamma_inferred_through_leaky_relu():
    class PReLU(HybridBlock):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.alpha = self.params.get(
                "alpha", shape=(0,), init=mx.init.Constant(0.25), allow_deferred_init=True
            )

        def hybrid_forward(self, F, x, alpha):
            return F.LeakyReLU(x, gamma=alpha, act_type="prelu")

    blk = PReLU()
    blk.initialize()
    x = nd.array(-np.ones((2, 3, 4)))
    out = blk(x)
    assert blk.alpha.shape == (3,)
    np.testing.assert_allclose(out.asnumpy(), -0.25 * np.ones((2, 3, 4)))


class _Fake:
    def __init__(self, shape):
        self.shape = shape


def _rule(op, **args):
    from tapegrad.gluon import _infer

    return _infer.SHAPE_RULES[op][1](args)


def test_shape_rules_of_operators_with_weights_follow_mxnet_layouts():
    """The rules for operators of other families (they apply as soon as mx.nd has them)."""
    x = _Fake((8, 6, 5, 5))
    assert _rule("Convolution", data=x, kernel=(3, 3), num_filter=4) == {
        "weight": (4, 6, 3, 3),
        "bias": (4,),
    }
    assert _rule("Convolution", data=x, kernel=(3, 3), num_filter=4, num_group=2)["weight"] == (
        4,
        3,
        3,
        3,
    )
    nhwc = _Fake((8, 5, 5, 6))
    assert _rule("Convolution", data=nhwc, kernel=(3, 3), num_filter=4, layout="NHWC")[
        "weight"
    ] == (4, 3, 3, 6)
    assert _rule("Deconvolution", data=x, kernel=(2, 2), num_filter=4)["weight"] == (6, 4, 2, 2)
    assert _rule("BatchNorm", data=x)["moving_var"] == (6,)
    assert _rule("BatchNorm", data=nhwc, axis=3)["gamma"] == (6,)
    assert _rule("InstanceNorm", data=x)["beta"] == (6,)
    assert _rule("LayerNorm", data=x)["gamma"] == (5,)
    assert _rule("GroupNorm", data=x, num_groups=3)["gamma"] == (3,)
    assert _rule("Embedding", data=x, input_dim=10, output_dim=7)["weight"] == (10, 7)


@pytest.mark.parametrize(
    "op, kw, declared, other, expect",
    [
        ("dot", {"transpose_b": True}, (3, 0), (2, 5), (3, 5)),  # x (2,5) . w^T, w (3, 5)
        ("dot", {"transpose_a": True}, (0, 4), (5, 2), (5, 4)),  # x^T (2,5) . w, w (5, 4)
        ("batch_dot", {}, (0, 0, 3), (7, 2, 5), (7, 5, 3)),
        ("batch_dot", {"transpose_b": True}, (0, 3, 0), (7, 2, 5), (7, 3, 5)),
    ],
)
def test_dot_rules_fill_the_contracted_dimension(op, kw, declared, other, expect):
    class Dot(HybridBlock):
        def __init__(self, **k):
            super().__init__(**k)
            self.w = self.params.get("w", shape=declared, allow_deferred_init=True)

        def hybrid_forward(self, F, x, w):
            return getattr(F, op)(x, w, **kw)

    blk = Dot()
    blk.initialize(mx.init.One())
    x = nd.ones(other)
    out = blk(x)
    assert blk.w.shape == expect
    ref = getattr(nd, op)(x, nd.ones(expect), **kw)
    np.testing.assert_allclose(out.asnumpy(), ref.asnumpy())


def test_deferred_lhs_of_dot():
    class Left(HybridBlock):
        def __init__(self, **k):
            super().__init__(**k)
            self.w = self.params.get("w", shape=(3, 0), allow_deferred_init=True)

        def hybrid_forward(self, F, x, w):
            return F.dot(w, x)

    blk = Left()
    blk.initialize(mx.init.One())
    assert blk(nd.ones((4, 2))).shape == (3, 2) and blk.w.shape == (3, 4)
