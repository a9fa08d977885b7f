"""Bad input to losses, layers and data loading: a clear, typed error that names the
loss/layer, the argument, the shapes or types and the fix; and a failed call changes nothing
(a deferred layer stays deferred)."""

from __future__ import annotations

import numpy as np
import pytest

from tapegrad import autograd, nd
from tapegrad.base import ShapeError, TapegradError
from tapegrad.gluon import DeferredInitializationError, nn
from tapegrad.gluon import loss as gloss

# ----------------------------------------------------------------------------- losses

# every loss with valid inputs: (factory, input names, valid arrays)
P, L = nd.ones((4, 3)), nd.ones((4, 3))
LOSSES = [
    (gloss.L2Loss, ("pred", "label"), (P, L)),
    (gloss.L1Loss, ("pred", "label"), (P, L)),
    (gloss.SigmoidBCELoss, ("pred", "label"), (P, L)),
    (gloss.SoftmaxCELoss, ("pred", "label"), (P, nd.array([0, 1, 2, 0]))),
    (gloss.KLDivLoss, ("pred", "label"), (P, L)),
    (gloss.HuberLoss, ("pred", "label"), (P, L)),
    (gloss.HingeLoss, ("pred", "label"), (P, L)),
    (gloss.SquaredHingeLoss, ("pred", "label"), (P, L)),
    (gloss.LogisticLoss, ("pred", "label"), (P, L)),
    (gloss.TripletLoss, ("pred", "positive", "negative"), (P, L, L)),
    (gloss.PoissonNLLLoss, ("pred", "target"), (P, L)),
    (gloss.CosineEmbeddingLoss, ("input1", "input2", "label"), (P, L, nd.array([1, -1, 1, 1]))),
    (gloss.SDMLLoss, ("x1", "x2"), (P, L)),
]
BAD = [None, [1.0, 2.0], 3.0, "label", {"a": 1}]


@pytest.mark.parametrize("make, names, good", LOSSES, ids=lambda v: getattr(v, "__name__", ""))
def test_each_loss_runs_on_valid_input(make, names, good) -> None:
    out = make()(*good)
    assert isinstance(out, nd.NDArray) and np.isfinite(out.asnumpy()).all()


@pytest.mark.parametrize("bad", BAD, ids=lambda b: type(b).__name__)
@pytest.mark.parametrize("make, names, good", LOSSES, ids=lambda v: getattr(v, "__name__", ""))
def test_non_array_inputs_name_the_loss_and_argument(make, names, good, bad) -> None:
    loss = make()
    who = type(loss).__name__
    for i, name in enumerate(names):
        args = list(good)
        args[i] = bad
        with pytest.raises(gloss.LossInputError) as e:
            loss(*args)
        msg = str(e.value)
        assert f"{who}: argument '{name}' must be an NDArray" in msg
        assert type(bad).__name__ in msg or "None" in msg
        assert "Fix:" in msg
        assert isinstance(e.value, TypeError) and isinstance(e.value, TapegradError)


def test_optional_arrays_are_checked_when_given_and_numpy_is_converted() -> None:
    with pytest.raises(gloss.LossInputError, match="L2Loss: argument 'sample_weight'.*list"):
        gloss.L2Loss()(P, L, [1, 2, 3, 4])
    with pytest.raises(
        gloss.LossInputError, match="SigmoidBinaryCrossEntropyLoss: argument 'pos_weight'.*str"
    ):
        gloss.SigmoidBCELoss()(P, L, None, "w")
    with pytest.raises(gloss.LossInputError, match="object"):
        gloss.L2Loss()(P, np.array([None] * 12, dtype=object).reshape(4, 3))
    # NumPy arrays keep working, with the same result as NDArrays
    pred = np.arange(12.0).reshape(4, 3)
    ref = gloss.L2Loss()(nd.array(pred, dtype="float64"), nd.zeros((4, 3), dtype="float64"))
    out = gloss.L2Loss()(pred, np.zeros((4, 3)), sample_weight=np.ones((4, 1)))
    np.testing.assert_array_equal(out.asnumpy(), ref.asnumpy())


def test_user_losses_with_other_inputs_are_not_checked() -> None:
    class Scaled(gloss.Loss):
        def __init__(self) -> None:
            super().__init__(None, 0)

        def hybrid_forward(self, F, pred, label, scale):  # scale: a plain number
            return F.mean(F.square(pred - label), axis=0, exclude=True) * scale

    out = Scaled()(nd.ones((2, 3)), nd.zeros((2, 3)), 3.0)
    assert out.asnumpy().tolist() == [3.0, 3.0]


def test_wrong_number_or_names_of_inputs() -> None:
    with pytest.raises(gloss.LossInputError, match=r"L2Loss is missing the input\(s\) label"):
        gloss.L2Loss()(P)
    with pytest.raises(gloss.LossInputError, match="L1Loss takes at most 3 inputs"):
        gloss.L1Loss()(P, L, L, L)
    with pytest.raises(gloss.LossInputError, match="unexpected input 'weights'.*pred, label"):
        gloss.L1Loss()(P, L, weights=L)
    with pytest.raises(gloss.LossInputError, match="two values for input 'label'"):
        gloss.L1Loss()(P, L, label=L)


@pytest.mark.parametrize("make, names, good", LOSSES, ids=lambda v: getattr(v, "__name__", ""))
def test_zero_d_first_input_is_a_shape_error(make, names, good) -> None:
    args = [nd.array(1.0)] + [nd.array(1.0) for _ in good[1:]]
    with pytest.raises(ShapeError) as e:
        make()(*args)
    msg = str(e.value)
    assert msg.startswith(f"{make.__name__}: ")
    assert f"{names[0]} of shape () has no axis batch_axis=0" in msg and "Fix:" in msg


@pytest.mark.parametrize("path", ["fused", "from_logits", "3d", "weighted"])
@pytest.mark.parametrize("bad", [-1, 3, 1.5, float("nan")])
def test_softmax_ce_refuses_labels_outside_the_classes(path: str, bad: float) -> None:
    # MXNet 1.9's pick (mode='clip') silently turned -1 into class 0 and 3 into class 2
    pred = nd.array(np.random.default_rng(0).standard_normal((4, 3)))
    label = [0, 1, 2, 0]
    label[2] = bad
    loss, kwargs = gloss.SoftmaxCELoss(), {}
    if path == "from_logits":
        loss = gloss.SoftmaxCELoss(from_logits=True)
        pred = nd.log_softmax(pred)
    elif path == "3d":
        pred = pred.reshape((2, 2, 3))
    elif path == "weighted":
        kwargs = {"sample_weight": nd.ones((4, 1))}
    lab = nd.array(label)
    if path == "3d":
        lab = lab.reshape((2, 2))
    with pytest.raises(gloss.LabelError) as e:
        loss(pred, lab, **kwargs)
    msg = str(e.value)
    where = "(1, 0)" if path == "3d" else "(2,)"
    shown = {-1: "-1", 3: "3", 1.5: "1.5"}.get(bad, "nan")
    assert f"SoftmaxCrossEntropyLoss: label {shown} at position" in msg
    assert f"at position {where}" in msg and "3 classes on axis -1" in msg
    assert "Fix: pass whole numbers in 0..2" in msg and "sample_weight 0" in msg
    assert isinstance(e.value, ValueError)


def test_softmax_ce_label_check_accepts_every_valid_class_and_int_labels() -> None:
    pred = nd.array(np.random.default_rng(1).standard_normal((5, 3)))
    for dtype in ("float32", "int32", "int64", "uint8"):
        lab = nd.array([0, 1, 2, 2, 0], dtype=dtype)
        assert gloss.SoftmaxCELoss()(pred, lab).shape == (5,)
    with pytest.raises(gloss.LabelError, match="label -1 at position"):
        gloss.SoftmaxCELoss()(pred, nd.array([0, -1, 2, 2, 0], dtype="int64"))
    # dense labels are not class indices: nothing to check there
    probs = nd.array(np.full((5, 3), 1 / 3))
    assert gloss.SoftmaxCELoss(sparse_label=False)(pred, probs).shape == (5,)


def test_softmax_ce_class_axis_out_of_range() -> None:
    with pytest.raises(
        ShapeError, match="SoftmaxCrossEntropyLoss: pred of shape \\(4, 3\\) has no class axis 2"
    ):
        gloss.SoftmaxCELoss(axis=2)(P, nd.zeros((4,)))


# ----------------------------------------------------------------------------- layers


def _deferred_shapes(block) -> dict:
    return {k: p.shape for k, p in block.collect_params().items()}


def _assert_still_deferred(block, shapes: dict) -> None:
    assert _deferred_shapes(block) == shapes
    for p in block.collect_params().values():
        if 0 in p.shape:
            with pytest.raises(DeferredInitializationError):
                p.data()


def test_dense_zero_d_input_names_the_layer_and_leaves_it_deferred() -> None:
    dense = nn.Dense(3, prefix="d_")
    dense.initialize()
    before = _deferred_shapes(dense)
    with pytest.raises(ShapeError, match="Dense 'd': input of shape \\(\\) is 0-d.*Fix:"):
        dense(nd.array(5.0))
    _assert_still_deferred(dense, before)
    assert dense(nd.ones((2, 4))).shape == (2, 3)  # usable afterwards, in_units from this
    assert dense.weight.shape == (3, 4)
    known = nn.Dense(3, in_units=4, prefix="k_")
    known.initialize()
    with pytest.raises(ShapeError, match="Dense 'k': input of shape \\(\\) is 0-d"):
        known(nd.array(5.0))


def test_dense_empty_first_input_does_not_fix_in_units() -> None:
    dense = nn.Dense(3)
    dense.initialize()
    before = _deferred_shapes(dense)
    try:
        out = dense(nd.zeros((0,)))
    except TapegradError:
        _assert_still_deferred(dense, before)  # a failed first call leaves it deferred
    else:
        assert out.shape == (0, 3)  # a 1-D input is (batch,) with one feature, as MXNet
        return
    assert dense(nd.ones((2, 4))).shape == (2, 3)


@pytest.mark.parametrize(
    "make, axis_name", [(nn.BatchNorm, "channel axis 1"), (nn.LayerNorm, "normalized axis -1")]
)
def test_norm_layers_zero_d_input(make, axis_name: str) -> None:
    layer = make()
    layer.initialize()
    before = _deferred_shapes(layer)
    with pytest.raises(ShapeError) as e:
        with autograd.record():
            layer(nd.array(1.0))
    msg = str(e.value)
    assert f"{make.__name__} '{layer.name}': input of shape () has no {axis_name}" in msg
    assert "Fix:" in msg
    _assert_still_deferred(layer, before)
    x = nd.array([[1.0, 2.0, 3.0], [3.0, 6.0, 9.0]])
    assert layer(x).shape == (2, 3)
    assert layer.gamma.shape == (3,)


def test_batchnorm_axis_outside_a_1d_input_is_refused() -> None:
    # MXNet's BatchNorm checks axis < ndim; 1 % 1 == 0 used to pick the batch axis silently
    bn = nn.BatchNorm(in_channels=2)
    bn.initialize()
    with pytest.raises(ShapeError, match="BatchNorm .* input of shape \\(2,\\) has no channel"):
        bn(nd.ones((2,)))


class _FailOnce(nn.HybridBlock):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def hybrid_forward(self, F, x):
        if self.fail:
            self.fail = False
            raise RuntimeError("boom")
        return x


@pytest.mark.parametrize("container", [nn.HybridSequential, nn.Sequential])
def test_failure_later_in_the_network_rolls_back_every_deferred_layer(container) -> None:
    # the first Dense inferred in_units=5 from a (2, 5) batch, then a later block failed: the
    # whole call failed, so no layer keeps a shape from it
    net = container()
    net.add(nn.Dense(4), nn.BatchNorm(), _FailOnce(), nn.Dense(2))
    net.initialize()
    before = _deferred_shapes(net)
    with pytest.raises(RuntimeError, match="boom"):
        with autograd.record():
            net(nd.ones((2, 5)))
    _assert_still_deferred(net, before)
    assert net(nd.ones((3, 7))).shape == (3, 2)
    assert net[0].weight.shape == (4, 7) and net[3].weight.shape == (2, 4)


def test_direct_forward_call_failure_also_leaves_the_layer_deferred() -> None:
    dense = nn.Dense(3)
    dense.initialize()
    with pytest.raises(ShapeError):
        dense.forward(nd.array(2.0))
    assert dense.weight.shape == (3, 0)
    assert dense.forward(nd.ones((1, 6))).shape == (1, 3)


def test_successful_first_call_is_not_undone_by_a_later_failure() -> None:
    dense = nn.Dense(3)
    dense.initialize()
    dense(nd.ones((2, 4)))
    w = dense.weight.data().asnumpy()
    with pytest.raises(ShapeError):
        dense(nd.ones((2, 5)))
    assert dense.weight.shape == (3, 4)
    np.testing.assert_array_equal(dense.weight.data().asnumpy(), w)
