"""Issue 13, enforced: every layer, cell, loss and demo network, hybridized, gives the eager
results and gradients (parameters and inputs) over three calls (the trace, then compiled
code), in float32 and in float64; the demo networks train to the same parameters; first and
second input derivatives through hybridized blocks agree with finite differences.

A coverage test lists every Block class that ``gluon`` (SymbolBlock), ``gluon.nn``,
``gluon.rnn``, ``gluon.contrib.nn``, ``gluon.loss``, ``gluon.model_zoo.vision`` and ``sciml``
export and fails when one has no case here and is not in ``NOT_STANDALONE`` (abstract bases,
with the reason): a layer added later without a hybridize test fails the suite.

A case may carry a strict xfail naming a known bug outside the layer (none today): a fix then
fails the suite until the mark goes.

Tolerances (stated once, used everywhere): the compiled code calls the same NumPy kernels as
eager execution, so the results agree to float rounding (most are bit-identical; the backward
passes of unrolled cells sum cotangents in another order): float32 ``rtol=1e-5, atol=1e-6``,
float64 ``rtol=1e-12, atol=1e-12``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from opspec import check_order

import tapegrad as mx
from tapegrad import autograd, gluon, nd, sciml
from tapegrad.gluon import Block, HybridBlock, contrib, nn, rnn
from tapegrad.gluon import loss as gloss
from tapegrad.gluon.model_zoo import vision
from tapegrad.ndarray.ndarray_functions import _ACT_TYPES

TOL = {
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-12, "atol": 1e-12},
}


@pytest.fixture(autouse=True)
def fresh_names():
    """The hundreds of blocks made here leave the global name counters (dense0_, dense1_...)
    as they were: other tests and doctests expect their own numbering."""
    with mx.name.NameManager():
        yield


# ----------------------------------------------------------------------------- the cases


@dataclass
class Case:
    """A block to hybridize and the arguments of a call.

    make: builds the block (uninitialized). inputs: ``(rng, dtype) -> args`` (NDArrays or
    lists of them; float ones are differentiated). call: ``(block, *args) -> output``
    (default ``block(*args)``). train: record in training mode. seeded: the call draws random
    numbers (Dropout in training mode): the same seed before the eager and the compiled call,
    which draw them in the same order. f64: also run in float64. nograd: positions of float
    arguments that are not differentiated (class labels). compiles: False where nothing is
    compiled, as in MXNet (a plain Block). falls_back: the block reads an argument's values
    (sequence lengths), so the trace gives up and it runs eagerly, with the warning: the results
    must still be eager's. xfail: a known bug outside the layer (strict).
    init: the global initializer (default Xavier). calls: 3 (the trace, then compiled code
    twice); 2 for the networks with millions of parameters (the trace, then compiled code).
    """

    make: Callable
    inputs: Callable
    call: Callable | None = None
    train: bool = True
    seeded: bool = False
    f64: bool = True
    nograd: tuple = ()
    compiles: bool = True
    falls_back: bool = False
    xfail: str | None = None
    init: object = None
    calls: int = 3


def X(*shapes):
    """Inputs: standard normal arrays of these shapes."""
    return lambda rng, dt: [nd.array(rng.standard_normal(s), dtype=dt) for s in shapes]


def XS(x, *states):
    """Inputs of a cell step or a recurrent layer with states: ``(x, [states])``."""

    def make(rng, dt):
        return [
            nd.array(rng.standard_normal(x), dtype=dt),
            [nd.array(rng.standard_normal(s), dtype=dt) for s in states],
        ]

    return make


def IDX(shape, n):
    """Integer indices in [0, n) (Embedding)."""
    return lambda rng, dt: [nd.array(rng.integers(0, n, shape), dtype="int64")]


def seq(*blocks, cls=nn.HybridSequential, **kw):
    def make():
        net = cls(**kw)
        net.add(*[b() for b in blocks])
        return net

    return make


def unroll(length, layout="NTC", merge=True, valid=None):
    def call(cell, x, *rest):
        kw = {}
        if rest:
            kw["begin_state"] = rest[0]
        if valid is not None:
            kw["valid_length"] = nd.array(valid)
        return cell.unroll(length, x, layout=layout, merge_outputs=merge, **kw)

    return call


def stack_cells(*cells, cls=rnn.HybridSequentialRNNCell):
    def make():
        s = cls()
        for c in cells:
            s.add(c())
        return s

    return make


CASES: dict[str, Case] = {}


def case(name: str, make, inputs, **kw) -> None:
    assert name not in CASES, name
    CASES[name] = Case(make, inputs, **kw)


# ---- gluon.nn: containers and basic layers
case("Dense tanh", lambda: nn.Dense(4, activation="tanh"), X((3, 5)))
case("Dense no bias, flatten", lambda: nn.Dense(3, use_bias=False), X((2, 3, 4)))
case("Dense flatten=False", lambda: nn.Dense(4, flatten=False), X((2, 3, 5)))
case(
    "HybridSequential",
    seq(lambda: nn.Dense(6, activation="relu"), lambda: nn.Dropout(0.3), lambda: nn.Dense(2)),
    X((3, 4)),
    train=False,
)
case(
    "Sequential of hybrid and plain blocks",
    seq(lambda: nn.Dense(5), lambda: nn.Lambda(nd.tanh), lambda: nn.Dense(2), cls=nn.Sequential),
    X((3, 4)),
)
case("Dropout predict mode", lambda: nn.Dropout(0.5), X((4, 5)), train=False)
case("Dropout train mode, seeded", lambda: nn.Dropout(0.5), X((4, 5)), seeded=True)
case("Dropout axes, seeded", lambda: nn.Dropout(0.4, axes=(1,)), X((4, 5, 3)), seeded=True)
case("Embedding", lambda: nn.Embedding(10, 4), IDX((3, 5), 10))
case("BatchNorm train", lambda: nn.BatchNorm(), X((4, 3, 2, 2)))
case("BatchNorm predict", lambda: nn.BatchNorm(), X((4, 3, 2, 2)), train=False)
case(
    "BatchNorm axis=-1 no scale/center",
    lambda: nn.BatchNorm(axis=-1, scale=False, center=False),
    X((5, 3)),
)
case("BatchNorm use_global_stats", lambda: nn.BatchNorm(use_global_stats=True), X((4, 3, 2)))
case("BatchNormReLU", lambda: nn.BatchNormReLU(), X((4, 3, 2, 2)))
case("SyncBatchNorm", lambda: nn.SyncBatchNorm(), X((4, 3, 2, 2)))
case("LayerNorm", lambda: nn.LayerNorm(), X((3, 6)))
case("InstanceNorm", lambda: nn.InstanceNorm(), X((2, 3, 5)))
case("GroupNorm", lambda: nn.GroupNorm(num_groups=2), X((2, 4, 3, 3)))
case("Flatten", lambda: nn.Flatten(), X((2, 3, 4)))
case("Lambda (a plain Block)", lambda: nn.Lambda(lambda x: nd.tanh(x) * 2), X((3, 4)),
     compiles=False)  # fmt: skip
case("Lambda by name", lambda: nn.Lambda("sigmoid"), X((3, 4)), compiles=False)
case("HybridLambda", lambda: nn.HybridLambda(lambda F, x: F.sin(x) * x), X((3, 4)))
case("HybridLambda by name", lambda: nn.HybridLambda("tanh"), X((3, 4)))
case("Identity", lambda: nn.Identity(), X((3, 4)))
case(
    "HybridConcatenate",
    seq(lambda: nn.Dense(3), nn.Identity, cls=nn.HybridConcatenate, axis=1),
    X((2, 4)),
)
case(
    "Concatenate",
    seq(lambda: nn.Dense(3), lambda: nn.Dense(2), cls=nn.Concatenate, axis=1),
    X((2, 4)),
)
case(
    "contrib HybridConcurrent",
    seq(lambda: nn.Dense(3), nn.Identity, cls=contrib.nn.HybridConcurrent, axis=1),
    X((2, 4)),
)
case(
    "contrib Concurrent",
    seq(lambda: nn.Dense(3), nn.Identity, cls=contrib.nn.Concurrent, axis=-1),
    X((2, 4)),
)
case("PixelShuffle1D", lambda: nn.PixelShuffle1D(2), X((1, 4, 3)))
case("PixelShuffle2D", lambda: nn.PixelShuffle2D((2, 3)), X((1, 12, 2, 3)))
case("PixelShuffle3D", lambda: nn.PixelShuffle3D(2), X((1, 8, 2, 1, 2)))

# ---- activations
for _act in _ACT_TYPES:
    case(f"Activation {_act}", lambda a=_act: nn.Activation(a), X((3, 4)))
case("LeakyReLU", lambda: nn.LeakyReLU(0.1), X((3, 4)))
case("PReLU", lambda: nn.PReLU(), X((3, 4)))
case("PReLU per channel", lambda: nn.PReLU(in_channels=3), X((2, 3, 4)))
case("ELU", lambda: nn.ELU(0.7), X((3, 4)))
case("SELU", lambda: nn.SELU(), X((3, 4)))
case("GELU", lambda: nn.GELU(), X((3, 4)))
case("Swish (SiLU)", lambda: nn.Swish(), X((3, 4)))
case("Swish beta", lambda: nn.Swish(beta=1.7), X((3, 4)))

# ---- convolutions and pooling
case("Conv1D strided", lambda: nn.Conv1D(2, 3, strides=2), X((2, 3, 9)))
case(
    "Conv1D dilated, grouped",
    lambda: nn.Conv1D(4, 3, dilation=2, groups=2, padding=1, activation="tanh"),
    X((2, 4, 8)),
)
case("Conv2D relu", lambda: nn.Conv2D(3, 3, padding=1, activation="relu"), X((2, 2, 6, 6)))
case("Conv2D no bias, strided", lambda: nn.Conv2D(2, (2, 3), strides=(2, 1), use_bias=False),
     X((1, 3, 5, 6)))  # fmt: skip
case("Conv3D", lambda: nn.Conv3D(2, 2, padding=(1, 0, 1)), X((1, 2, 3, 4, 3)))
case("Conv1DTranspose", lambda: nn.Conv1DTranspose(2, 3, strides=2), X((2, 3, 4)))
case(
    "Conv2DTranspose output_padding",
    lambda: nn.Conv2DTranspose(2, 3, strides=2, padding=1, output_padding=1),
    X((1, 2, 3, 4)),
)
case("Conv3DTranspose", lambda: nn.Conv3DTranspose(2, 2, strides=(1, 2, 1)), X((1, 2, 2, 3, 2)))
case("MaxPool1D", lambda: nn.MaxPool1D(2), X((2, 3, 7)))
case("MaxPool1D NWC", lambda: nn.MaxPool1D(3, 2, layout="NWC"), X((2, 7, 3)))
case("MaxPool2D", lambda: nn.MaxPool2D(2), X((2, 3, 6, 6)))
case("MaxPool2D ceil_mode", lambda: nn.MaxPool2D(3, 2, ceil_mode=True), X((1, 2, 6, 6)))
case("MaxPool3D", lambda: nn.MaxPool3D((2, 1, 2)), X((1, 2, 4, 3, 4)))
case("AvgPool1D", lambda: nn.AvgPool1D(3, 1, padding=1), X((2, 3, 5)))
case("AvgPool2D", lambda: nn.AvgPool2D(3, strides=2, padding=1), X((2, 3, 7, 7)))
case(
    "AvgPool2D exclude pad",
    lambda: nn.AvgPool2D(3, strides=2, padding=1, count_include_pad=False),
    X((1, 2, 5, 5)),
)
case("AvgPool3D", lambda: nn.AvgPool3D(2), X((1, 2, 4, 2, 4)))
case("GlobalMaxPool1D", lambda: nn.GlobalMaxPool1D(), X((2, 3, 5)))
case("GlobalMaxPool2D", lambda: nn.GlobalMaxPool2D(), X((2, 3, 4, 4)))
case("GlobalMaxPool3D", lambda: nn.GlobalMaxPool3D(), X((2, 3, 2, 3, 2)))
case("GlobalAvgPool1D", lambda: nn.GlobalAvgPool1D(), X((2, 3, 5)))
case("GlobalAvgPool2D", lambda: nn.GlobalAvgPool2D(), X((2, 3, 4, 4)))
case("GlobalAvgPool3D", lambda: nn.GlobalAvgPool3D(), X((2, 3, 2, 3, 2)))
case("ReflectionPad2D", lambda: nn.ReflectionPad2D(1), X((1, 2, 3, 4)))
case("ReflectionPad2D uneven", lambda: nn.ReflectionPad2D((0, 0, 0, 0, 1, 0, 2, 1)),
     X((1, 2, 3, 4)))  # fmt: skip

# ---- recurrent layers
for _act in ("relu", "tanh"):
    case(f"RNN {_act}", lambda a=_act: rnn.RNN(4, activation=a), X((3, 2, 3)))
case("RNN 2 layers with states", lambda: rnn.RNN(4, 2), XS((3, 2, 3), (2, 2, 4)))
case("LSTM 2 layers", lambda: rnn.LSTM(5, num_layers=2), X((4, 2, 3)))
case(
    "LSTM with states, NTC", lambda: rnn.LSTM(4, layout="NTC"), XS((2, 3, 3), (1, 2, 4), (1, 2, 4))
)
case("LSTM projection", lambda: rnn.LSTM(5, projection_size=3), XS((3, 2, 4), (1, 2, 3), (1, 2, 5)))
case("LSTM state clipping", lambda: rnn.LSTM(4, state_clip_min=-0.3, state_clip_max=0.3),
     X((3, 2, 3)))  # fmt: skip
case("LSTM dropout, predict", lambda: rnn.LSTM(3, 2, dropout=0.5), X((3, 2, 3)), train=False)
case("LSTM dropout, seeded", lambda: rnn.LSTM(3, 2, dropout=0.5), X((3, 2, 3)), seeded=True)
case("GRU bidirectional", lambda: rnn.GRU(4, bidirectional=True), X((3, 2, 3)))
case("GRU with states", lambda: rnn.GRU(3, 2), XS((3, 2, 2), (2, 2, 3)))
case(
    "LSTM use_sequence_length",
    lambda: rnn.LSTM(3, use_sequence_length=True),
    lambda rng, dt: [
        nd.array(rng.standard_normal((4, 3, 2)), dtype=dt),
        None,
        nd.array(rng.permutation([4, 2, 1]), dtype=dt),  # (new lengths at each call)
    ],
    nograd=(2,),
    falls_back=True,  # the lengths decide which steps run: read by Python, so eager
)

# ---- recurrent cells: one step, and unrolled
for _act in ("tanh", "relu", "sigmoid", "softsign", "softrelu"):
    case(f"RNNCell {_act}", lambda a=_act: rnn.RNNCell(4, activation=a), XS((2, 3), (2, 4)))
case("RNNCell LeakyReLU", lambda: rnn.RNNCell(4, activation=nn.LeakyReLU(0.2)), XS((2, 3), (2, 4)))
case("LSTMCell", lambda: rnn.LSTMCell(4), XS((2, 3), (2, 4), (2, 4)))
case("GRUCell", lambda: rnn.GRUCell(4), XS((2, 3), (2, 4)))
case("RNNCell unrolled", lambda: rnn.RNNCell(3), X((2, 4, 3)), call=unroll(4))
case("LSTMCell unrolled TNC", lambda: rnn.LSTMCell(3), X((4, 2, 3)), call=unroll(4, "TNC"))
case("GRUCell unrolled, list", lambda: rnn.GRUCell(3), X((2, 3, 2)), call=unroll(3, merge=False))
case(
    "LSTMCell unrolled valid_length",
    lambda: rnn.LSTMCell(3),
    X((2, 4, 3)),
    call=unroll(4, valid=[4, 2]),
)
case(
    "HybridSequentialRNNCell step",
    stack_cells(lambda: rnn.LSTMCell(4), lambda: rnn.GRUCell(3)),
    XS((2, 3), (2, 4), (2, 4), (2, 3)),
)
case(
    "HybridSequentialRNNCell unrolled",
    stack_cells(lambda: rnn.LSTMCell(4), lambda: rnn.RNNCell(3)),
    X((2, 3, 2)),
    call=unroll(3),
)
case(
    "SequentialRNNCell unrolled",
    stack_cells(lambda: rnn.GRUCell(4), lambda: rnn.LSTMCell(3), cls=rnn.SequentialRNNCell),
    X((2, 3, 2)),
    call=unroll(3),
)
case(
    "SequentialRNNCell step",
    stack_cells(lambda: rnn.RNNCell(4), lambda: rnn.RNNCell(3), cls=rnn.SequentialRNNCell),
    XS((2, 3), (2, 4), (2, 3)),
)
case(
    "BidirectionalCell unrolled",
    lambda: rnn.BidirectionalCell(rnn.LSTMCell(3), rnn.GRUCell(2)),
    X((2, 3, 4)),
    call=unroll(3),
)
case("ResidualCell step", lambda: rnn.ResidualCell(rnn.GRUCell(3)), XS((2, 3), (2, 3)))
case(
    "ResidualCell unrolled",
    lambda: rnn.ResidualCell(rnn.LSTMCell(3)),
    X((2, 3, 3)),
    call=unroll(3),
)
case(
    "ZoneoutCell predict",
    lambda: rnn.ZoneoutCell(rnn.RNNCell(3), 0.5, 0.5),
    X((2, 3, 2)),
    call=unroll(3),
    train=False,
)
case(
    "ZoneoutCell unrolled, seeded",
    lambda: rnn.ZoneoutCell(rnn.LSTMCell(3), zoneout_outputs=0.4, zoneout_states=0.3),
    X((2, 3, 2)),
    call=unroll(3),
    seeded=True,
)
case(
    "ZoneoutCell stepped, seeded",
    lambda: rnn.ZoneoutCell(rnn.GRUCell(3), zoneout_outputs=0.5),
    XS((2, 2), (2, 3)),
    seeded=True,
)
case(
    "DropoutCell predict",
    stack_cells(lambda: rnn.RNNCell(3), lambda: rnn.DropoutCell(0.5)),
    X((2, 3, 2)),
    call=unroll(3),
    train=False,
)
# (unrolled on one array it calls hybrid_forward directly, as MXNet's: nothing compiled)
case("DropoutCell seeded", lambda: rnn.DropoutCell(0.5), X((2, 3, 2)), call=unroll(3),
     seeded=True, compiles=False)  # fmt: skip
case("DropoutCell step seeded", lambda: rnn.DropoutCell(0.5, axes=(1,)),
     lambda rng, dt: [nd.array(rng.standard_normal((2, 3)), dtype=dt), []],
     seeded=True)  # fmt: skip


# ---- losses: predictions, labels of the right kind, sample weights
def L(*parts):
    """Loss inputs: each part ``('n', shape)`` normal, ``('u', shape)`` uniform (0, 1),
    ``('pm', shape)`` +-1, ``('p', shape)`` a probability distribution on the last axis,
    ``('c', shape, n)`` class indices (as floats), ``('b', shape)`` 0/1."""

    def make(rng, dt):
        out = []
        for kind, shape, *n in parts:
            if kind == "n":
                a = rng.standard_normal(shape)
            elif kind == "u":
                a = rng.uniform(0.05, 0.95, shape)
            elif kind == "pm":
                a = rng.choice([-1.0, 1.0], shape)
            elif kind == "b":
                a = rng.integers(0, 2, shape).astype(float)
            elif kind == "c":
                a = rng.integers(0, n[0], shape).astype(float)
            else:
                a = rng.uniform(0.1, 1, shape)
                a /= a.sum(-1, keepdims=True)
            out.append(nd.array(a, dtype=dt))
        return out

    return make


N, SW = ("n", (4, 3)), ("u", (4, 1))
case("L2Loss", lambda: gloss.L2Loss(), L(N, N, SW))
case("L2Loss weight, batch_axis=1", lambda: gloss.L2Loss(0.5, batch_axis=1), L(N, N))
case("L1Loss", lambda: gloss.L1Loss(), L(N, N, SW))
case("SigmoidBCELoss", lambda: gloss.SigmoidBCELoss(), L(N, ("b", (4, 3)), SW))
case("SigmoidBCELoss from_sigmoid", lambda: gloss.SigmoidBCELoss(from_sigmoid=True),
     L(("u", (4, 3)), ("u", (4, 3)), SW))  # fmt: skip
case(
    "SigmoidBCELoss pos_weight",
    lambda: gloss.SigmoidBinaryCrossEntropyLoss(),
    L(N, ("b", (4, 3)), SW, ("u", (1, 3))),
)
case("SoftmaxCELoss sparse", lambda: gloss.SoftmaxCELoss(), L(N, ("c", (4,), 3)), nograd=(1,))
case(
    "SoftmaxCELoss sparse, weighted",
    lambda: gloss.SoftmaxCrossEntropyLoss(weight=0.7),
    L(N, ("c", (4,), 3), SW),
    nograd=(1,),
)
case(
    "SoftmaxCELoss axis=1, 3-d",
    lambda: gloss.SoftmaxCELoss(axis=1),
    L(("n", (2, 3, 4)), ("c", (2, 4), 3)),
    nograd=(1,),
)
case("SoftmaxCELoss dense labels", lambda: gloss.SoftmaxCELoss(sparse_label=False),
     L(N, ("p", (4, 3)), SW))  # fmt: skip
case("SoftmaxCELoss from_logits (pick)", lambda: gloss.SoftmaxCELoss(from_logits=True),
     L(N, ("c", (4,), 3)), nograd=(1,))  # fmt: skip
case("KLDivLoss", lambda: gloss.KLDivLoss(), L(N, ("p", (4, 3)), SW))
case("KLDivLoss from probabilities", lambda: gloss.KLDivLoss(from_logits=False),
     L(N, ("p", (4, 3)), SW))  # fmt: skip
case("HuberLoss", lambda: gloss.HuberLoss(rho=0.7), L(N, N, SW))
case("HingeLoss", lambda: gloss.HingeLoss(), L(N, ("pm", (4, 3)), SW))
case("SquaredHingeLoss", lambda: gloss.SquaredHingeLoss(margin=0.5), L(N, ("pm", (4, 3)), SW))
case("LogisticLoss signed", lambda: gloss.LogisticLoss(), L(N, ("pm", (4, 3)), SW))
case("LogisticLoss binary", lambda: gloss.LogisticLoss(label_format="binary"),
     L(N, ("b", (4, 3)), SW))  # fmt: skip
case("TripletLoss", lambda: gloss.TripletLoss(margin=0.5), L(N, N, N, SW))
case("PoissonNLLLoss", lambda: gloss.PoissonNLLLoss(), L(N, ("u", (4, 3)), SW))
case(
    "PoissonNLLLoss full, from rates",
    lambda: gloss.PoissonNLLLoss(from_logits=False, compute_full=True),
    L(("u", (4, 3)), ("c", (4, 3), 5), SW),
)
case("CosineEmbeddingLoss", lambda: gloss.CosineEmbeddingLoss(margin=0.2),
     L(N, N, ("pm", (4, 1)), SW))  # fmt: skip
case("SDMLLoss", lambda: gloss.SDMLLoss(), L(("n", (4, 3)), ("n", (4, 3))))


# ---- model zoo: each family's class with MXNet's code, narrowed where its constructor allows
# (full widths on 224-pixel images would cost seconds); Dropout layers seeded
def _inception_module(k):
    """Module k of Inception v3's features (A1, B, C1, D, E1: the builders of all of them), in
    MXNet's code; the whole network needs 299-pixel images (seconds per call here)."""
    return lambda: list(vision.Inception3(classes=3).features)[k]


case(
    "ResNetV1 BasicBlockV1",
    lambda: vision.ResNetV1(vision.BasicBlockV1, [1, 1, 1, 1], [4, 4, 6, 8, 10], 3, True),
    X((2, 3, 8, 8)),
)
case(
    "ResNetV1 BottleneckV1",
    lambda: vision.ResNetV1(vision.BottleneckV1, [1, 1, 1, 1], [4, 8, 12, 16, 20], 3, False),
    X((1, 3, 32, 32)),
)
case(
    "ResNetV2 BasicBlockV2",
    lambda: vision.ResNetV2(vision.BasicBlockV2, [1, 1, 1, 1], [4, 4, 6, 8, 10], 3, True),
    X((2, 3, 8, 8)),
)
case(
    "ResNetV2 BottleneckV2",
    lambda: vision.ResNetV2(vision.BottleneckV2, [1, 1, 1, 1], [4, 8, 12, 16, 20], 3, True),
    X((1, 3, 8, 8)),
)
case("BasicBlockV1 downsample", lambda: vision.BasicBlockV1(4, 2, True), X((2, 3, 5, 5)))
case("BasicBlockV2 downsample", lambda: vision.BasicBlockV2(4, 2, True), X((2, 3, 5, 5)))
case("BottleneckV1 downsample", lambda: vision.BottleneckV1(8, 2, True), X((2, 3, 5, 5)))
case("BottleneckV2 downsample", lambda: vision.BottleneckV2(8, 1, True), X((2, 3, 4, 4)))
case(
    "VGG with BatchNorm",
    lambda: vision.VGG([1, 1, 1, 1, 1], [2, 2, 3, 3, 3], classes=3, batch_norm=True),
    X((1, 3, 32, 32)),
    seeded=True,
    f64=False,
    calls=2,
)
case("AlexNet", lambda: vision.AlexNet(classes=3), X((1, 3, 63, 63)), seeded=True, f64=False,
     calls=2)  # fmt: skip
case(
    "DenseNet",
    lambda: vision.DenseNet(4, 2, [1, 1, 1, 1], bn_size=2, classes=3),
    X((1, 3, 224, 224)),
    f64=False,
)
# SqueezeNet's output pools 13x13 maps (224-pixel images, seconds here): its features on a
# small image, its output on the maps it pools
case(
    "SqueezeNet 1.1 features",
    lambda: vision.SqueezeNet("1.1", classes=3).features,
    X((1, 3, 39, 39)),
    seeded=True,
    f64=False,
)
case("SqueezeNet 1.0 output", lambda: vision.SqueezeNet("1.0", classes=3).output,
     X((1, 8, 13, 13)), f64=False)  # fmt: skip
case("MobileNet", lambda: vision.MobileNet(0.25, classes=3), X((1, 3, 32, 32)), f64=False)
case("MobileNetV2", lambda: vision.MobileNetV2(0.25, classes=3), X((1, 3, 32, 32)), f64=False)
for _name, _k in (("A1", 7), ("B", 10), ("C1", 11), ("D", 15), ("E1", 16)):
    case(f"Inception3 module {_name}", _inception_module(_k), X((1, 4, 3, 3)), f64=False)


# ---- sciml: input-derivative blocks around a hybridized network
def _u(d_in=1, d_out=1):
    def make():
        net = nn.HybridSequential()
        net.add(nn.Dense(6, activation="tanh", in_units=d_in), nn.Dense(d_out, in_units=6))
        return net

    return make


case("sciml Derivative", lambda: sciml.Derivative(_u()(), order=2), X((5, 1)))
case("sciml Derivative mixed", lambda: sciml.Derivative(_u(2)(), wrt=(0, 1)), X((4, 2)))
case("sciml Derivatives", lambda: sciml.Derivatives(_u()(), order=3), X((5, 1)))
case("sciml Gradient", lambda: sciml.Gradient(_u(3)()), X((4, 3)))
case("sciml Gradient reverse", lambda: sciml.Gradient(_u(2, 2)(), method="reverse"), X((4, 2)))
case("sciml Laplacian", lambda: sciml.Laplacian(_u(3)()), X((4, 3)))
case("sciml Divergence", lambda: sciml.Divergence(_u(2, 2)()), X((4, 2)))


# ---- gluon.SymbolBlock: a graph of mx.sym operators


def _symbol_block():
    data = mx.sym.var("data")
    h = mx.sym.FullyConnected(data, num_hidden=4, name="fc1")
    h = mx.sym.BatchNorm(mx.sym.Activation(h, act_type="tanh"), name="bn")
    return gluon.SymbolBlock(mx.sym.FullyConnected(h, num_hidden=2, name="fc2"), data)


# (as in MXNet, a global Xavier cannot initialize the graph's biases: they have no initializer
# of their own, and Xavier refuses vectors)
case("SymbolBlock", _symbol_block, X((3, 5)), init=mx.init.Uniform(0.5))
case("SymbolBlock predict", _symbol_block, X((3, 5)), train=False, init=mx.init.Uniform(0.5))


# ---- the demo networks
def mnist_mlp():
    """The lecture notes' 784-72-10 tanh network (``tapegrad demo mnist``,
    examples/mnist_mlp.py)."""
    net = nn.HybridSequential()
    net.add(nn.Dense(72, activation="tanh"), nn.Dense(10))
    return net


def lenet():
    from tapegrad.demos.lenet import build_net

    return build_net()


def char_lm():
    """``tapegrad demo lstm``'s model (a plain Block around Embedding, a 2-layer LSTM with
    dropout between the layers and a Dense), narrowed."""
    from tapegrad.demos.lstm import build

    return build(vocab=11, embed=4, hidden=6, layers=2, dropout=0.1)


def _lm_inputs(rng, dt):
    return [
        nd.array(rng.integers(0, 11, (5, 2)), dtype="int64"),
        [nd.array(rng.standard_normal((2, 2, 6)), dtype=dt) for _ in range(2)],
    ]


case("demo mnist MLP 784-72-10", mnist_mlp, X((4, 784)))
case("demo LeNet", lenet, X((2, 1, 28, 28)))


case("demo LSTM language model", char_lm, _lm_inputs, seeded=True)


# ----------------------------------------------------------------------------- coverage

#: Block classes exported by the modules checked below that are not layers of their own,
#: each with the reason; everything else needs a case above.
_X1 = nd.ones((1, 2))

#: Block classes exported by the modules checked below that are not layers of their own, each
#: with the reason and a call of the computation they leave to subclasses (which must raise
#: NotImplementedError); every other exported Block class needs a case above.
NOT_STANDALONE = {
    Block: ("abstract base: forward() is the subclass's", lambda: Block().forward(_X1)),
    HybridBlock: (
        "abstract base: hybrid_forward() is the subclass's",
        lambda: HybridBlock().hybrid_forward(nd, _X1),
    ),
    gloss.Loss: (
        "abstract base of the losses: hybrid_forward() is the subclass's",
        lambda: gloss.Loss(None, 0).hybrid_forward(nd, _X1),
    ),
    rnn.RecurrentCell: (
        "abstract base of the cells: state_info() and the step are the subclass's",
        lambda: rnn.RecurrentCell().state_info(),
    ),
    rnn.HybridRecurrentCell: (
        "abstract base of the hybrid cells: hybrid_forward() is the subclass's",
        lambda: rnn.HybridRecurrentCell().hybrid_forward(nd, _X1, []),
    ),
    rnn.ModifierCell: (
        "abstract base of ZoneoutCell and ResidualCell: hybrid_forward() is the subclass's",
        lambda: rnn.ModifierCell(rnn.RNNCell(2)).hybrid_forward(nd, _X1, []),
    ),
}

MODULES = [gluon, nn, rnn, contrib.nn, gloss, vision, sciml]


def exported_blocks() -> dict:
    """Every Block subclass the modules export (by ``__all__``), by class."""
    found = {}
    for mod in MODULES:
        for name in getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")]):
            obj = getattr(mod, name)
            if inspect.isclass(obj) and issubclass(obj, Block):
                found.setdefault(obj, f"{mod.__name__}.{name}")
    return found


def test_every_exported_block_has_a_hybridize_case():
    covered = {type(c.make()) for c in CASES.values()}
    # their parts above: the whole networks need 299- and 224-pixel images
    covered |= {vision.Inception3, vision.SqueezeNet}
    missing = [
        name for cls, name in exported_blocks().items()
        if cls not in covered and cls not in NOT_STANDALONE
    ]  # fmt: skip
    assert not missing, (
        f"no hybridize case for {missing}: add one to CASES in {__file__} (or, for an abstract "
        "base, to NOT_STANDALONE with the reason)"
    )
    # the exclusions really are abstract: the computation is left to subclasses
    for _reason, probe in NOT_STANDALONE.values():
        with pytest.raises(NotImplementedError):
            probe()


# ----------------------------------------------------------------------------- the check


def _leaves(out) -> list:
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in _leaves(o)]
    return [out] if isinstance(out, nd.NDArray) else []


def _copy(args, dtype, nograd):
    """Fresh arrays (each call differentiates its own); float ones get a gradient buffer."""
    out, diff = [], []
    for i, a in enumerate(args):
        if isinstance(a, list):
            a = [nd.array(s.asnumpy(), dtype=s.dtype) for s in a]
            for s in a:
                s.attach_grad()
            diff += a
        elif isinstance(a, nd.NDArray):
            a = nd.array(a.asnumpy(), dtype=a.dtype)
            if np.dtype(a.dtype).kind == "f" and i not in nograd:
                a.attach_grad()
                diff.append(a)
        out.append(a)
    return out, diff


def _hybrid_blocks(block) -> list:
    found = []
    block.apply(lambda b: found.append(b) if isinstance(b, HybridBlock) else None)
    return found


def _step(block, case, args, cts, seed):
    call = case.call or (lambda b, *a: b(*a))
    if case.seeded:
        mx.random.seed(seed)
    with autograd.record(train_mode=case.train):
        leaves = [o for o in _leaves(call(block, *args[0])) if np.dtype(o.dtype).kind == "f"]
        if not cts:
            rng = np.random.default_rng(seed)
            cts += [nd.array(rng.standard_normal(o.shape), dtype=o.dtype) for o in leaves]
        head = sum((o * c).sum() for o, c in zip(leaves, cts))
    head.backward()
    params = block.collect_params().values()
    # views, not copies (the big networks' gradients): compared before the next call
    return {
        "outputs": [np.asarray(o) for o in leaves],
        "parameter gradients": [np.asarray(p.grad()) for p in params if p.grad_req != "null"],
        "input gradients": [np.asarray(a.grad) for a in args[1]],
        # BatchNorm's running statistics (the others do not change here)
        "statistics after": [np.asarray(p.data()) for p in params if p.grad_req == "null"],
    }


def check_case(case: Case, dtype: str) -> None:
    rng = np.random.default_rng(7)
    call = case.call or (lambda b, *a: b(*a))
    eager, hyb = case.make(), case.make()
    eager.initialize(case.init or mx.init.Xavier(magnitude=2.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Sequential of HybridBlocks: MXNet's hint
        hyb.hybridize()
    hyb.initialize()
    if dtype != "float32":
        eager.cast(dtype)
        hyb.cast(dtype)
    # a first call (deferred shapes) of each, the hybridized block with the eager one's values
    first = case.inputs(rng, dtype)
    with autograd.predict_mode():
        call(eager, *_copy(first, dtype, case.nograd)[0])
        pe, ph = eager.collect_params().values(), hyb.collect_params().values()
        for p, q in zip(pe, ph):
            q.set_data(p.data())  # (a deferred parameter takes it as its initial value)
        call(hyb, *_copy(first, dtype, case.nograd)[0])
    assert [p.shape for p in pe] == [p.shape for p in ph]
    for blk in (eager, hyb):
        if isinstance(blk, rnn.RecurrentCell):
            blk.reset()  # ZoneoutCell's previous output: the eager one's from here on
    tol = TOL[dtype]
    for i in range(case.calls):  # the trace, then compiled code
        args = case.inputs(rng, dtype)
        cts = []
        a = _step(eager, case, _copy(args, dtype, case.nograd), cts, 100 + i)
        with warnings.catch_warnings():
            if case.falls_back:
                warnings.filterwarnings("ignore", "tapegrad.jit: .* runs eagerly", RuntimeWarning)
            b = _step(hyb, case, _copy(args, dtype, case.nograd), cts, 100 + i)
        for what in a:
            assert len(a[what]) == len(b[what]), what
            for k, (u, v) in enumerate(zip(a[what], b[what])):
                if not np.array_equal(u, v):  # (most are: the same kernels on the same data)
                    np.testing.assert_allclose(v, u, **tol, err_msg=f"call {i}: {what} [{k}]")
    if case.falls_back:
        assert any(b._compiled is not None and b._compiled._eager for b in _hybrid_blocks(hyb))
        return
    compiled = [
        blk for blk in _hybrid_blocks(hyb) if blk._compiled is not None and blk._compiled.plans
    ]
    assert bool(compiled) == case.compiles, "compiled" if compiled else "nothing was compiled"
    assert not any(blk._compiled._eager for blk in compiled), "a trace fell back to eager"


def _params(dtype: str) -> list:
    return [
        pytest.param(
            name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        )
        for name, c in CASES.items()
        if dtype == "float32" or c.f64
    ]


# (a trace that falls back to eager execution warns: an error here)
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", _params("float32"))
def test_hybridized_gives_the_eager_results_and_gradients_float32(name):
    check_case(CASES[name], "float32")


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("name", _params("float64"))
def test_hybridized_gives_the_eager_results_and_gradients_float64(name):
    check_case(CASES[name], "float64")


# ----------------------------------------------------------------------------- training


def _twins(make, x, dtype="float32"):
    """Two copies of a network with the same parameters, the second hybridized."""
    nets = [make(), make()]
    for net in nets:
        net.initialize(mx.init.Xavier())
        net.cast(dtype)
    nets[1].hybridize()
    with autograd.predict_mode():
        nets[0](*x)
        for p, q in zip(nets[0].collect_params().values(), nets[1].collect_params().values()):
            q.set_data(p.data())
        nets[1](*x)
    return nets


def _moved(start, net):
    """Training changed every trained parameter (the comparison is not of the start)."""
    for a, p in zip(start, net.collect_params().values()):
        if p.grad_req != "null":
            assert not np.array_equal(a, p.data().asnumpy()), p.name


def _same_parameters(nets, tol):
    pa, pb = nets[0].collect_params().values(), nets[1].collect_params().values()
    for p, q in zip(pa, pb):
        np.testing.assert_allclose(q.data().asnumpy(), p.data().asnumpy(), **tol, err_msg=p.name)


def _classifier_training(make, shape, steps=3):
    rng = np.random.default_rng(1)
    batches = [
        (nd.array(rng.random(shape)), nd.array(rng.integers(0, 10, shape[0]))) for _ in range(steps)
    ]
    nets = _twins(make, [batches[0][0]])
    start = [p.data().asnumpy() for p in nets[0].collect_params().values()]
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for net in nets:  # the demos' optimizer: SGD with momentum and weight decay
        tr = gluon.Trainer(
            net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}
        )
        for x, y in batches:
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            tr.step(shape[0])
    assert nets[1]._compiled.plans and not nets[1]._compiled._eager
    _same_parameters(nets, TOL["float32"])
    _moved(start, nets[0])


def test_demo_mnist_mlp_trains_hybridized_like_eager():
    _classifier_training(mnist_mlp, (8, 784))


def test_demo_lenet_trains_hybridized_like_eager():
    _classifier_training(lenet, (4, 1, 28, 28))


@pytest.mark.parametrize(
    "make",
    [
        char_lm,
    ],
)
def test_demo_lstm_language_model_trains_hybridized_like_eager(make):
    """``tapegrad demo lstm``'s training: truncated BPTT over three windows, dropout between
    the LSTM layers, Adam, gradient clipping."""
    from tapegrad.demos.lstm import _clip_global_norm

    rng = np.random.default_rng(2)
    text = rng.integers(0, 11, (16, 2))
    windows = [(text[i : i + 5], text[i + 1 : i + 6]) for i in (0, 5, 10)]
    states0 = [nd.zeros((2, 2, 6)) for _ in range(2)]
    nets = _twins(make, [nd.array(windows[0][0], dtype="int64"), states0])
    start = [p.data().asnumpy() for p in nets[0].collect_params().values()]
    for net in nets:
        params = list(net.collect_params().values())
        tr = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 3e-3})
        states = net.lstm.begin_state(batch_size=2)
        for i, (x, y) in enumerate(windows):  # truncated BPTT, as the demo trains
            states = [s.detach() for s in states]
            mx.random.seed(10 + i)  # the dropout between the LSTM layers
            with autograd.record():
                logits, states = net(nd.array(x, dtype="int64"), states)
                loss = nd.softmax_cross_entropy(logits.reshape((-1, 11)), nd.array(y.ravel()))
            loss.backward()
            _clip_global_norm(params, 1.0 * y.size)
            tr.step(y.size)
    assert nets[1].lstm._compiled.plans and not nets[1].lstm._compiled._eager
    _same_parameters(nets, TOL["float32"])
    _moved(start, nets[0])


def test_demo_ode_network_trains_hybridized_like_eager():
    """``tapegrad demo ode``: u(x) = x g(x) + 1 trained on (u'(x) - 2x)^2 with the Derivative
    block (Taylor mode through the hybridized g), float64, Adam."""
    from tapegrad.demos.ode import build_g, make_u

    gs = []
    for _ in range(2):
        mx.random.seed(3)
        gs.append(build_g("float64"))
    _same_parameters(gs, TOL["float64"])  # (the same seed: the same start)
    start = [p.data().asnumpy() for p in gs[0].collect_params().values()]
    gs[1].hybridize()
    rs = np.random.default_rng(4)
    xs = [nd.array(rs.uniform(-1, 1, (16, 1)), dtype="float64") for _ in range(3)]
    for g in gs:
        du = sciml.Derivative(make_u(g))
        tr = gluon.Trainer(g.collect_params(), "adam", {"learning_rate": 1e-2})
        for x in xs:
            with autograd.record():
                loss = ((du(x) - 2 * x) ** 2).mean()
            loss.backward()
            tr.step(1)
    assert gs[1]._compiled.plans and not gs[1]._compiled._eager
    _same_parameters(gs, TOL["float64"])
    _moved(start, gs[0])


# ----------------------------------------------------------------- derivatives of any order


def _dense_stack():
    net = nn.HybridSequential()
    net.add(nn.Dense(5, activation="tanh"), nn.Dense(4, activation="tanh"), nn.Dense(2))
    return net, (2, 3)


def _conv_pool():
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(3, 3, padding=1, activation="tanh"),
        nn.MaxPool2D(2),
        nn.Conv2D(2, 2, activation="softrelu"),
        nn.AvgPool2D(2, 1),
        nn.Dense(2),
    )
    return net, (1, 2, 6, 6)


def _lstm():
    return rnn.LSTM(3, num_layers=2), (4, 2, 2)


def _gru_cells():
    cell = rnn.HybridSequentialRNNCell()
    cell.add(rnn.GRUCell(3))
    cell.add(rnn.ResidualCell(rnn.GRUCell(3)))
    return cell, (2, 3, 2)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("make", [_dense_stack, _conv_pool, _lstm, _gru_cells])
def test_input_derivatives_through_hybridized_blocks_against_finite_differences(make, order):
    """First and second derivatives with respect to the input (float64, central differences;
    tolerance: check_order's rtol=1e-5, atol=1e-7)."""
    net, shape = make()
    net.initialize(mx.init.Xavier(magnitude=3))
    net.cast("float64")
    rng = np.random.default_rng(order)
    x0 = rng.standard_normal(shape)
    if isinstance(net, rnn.RecurrentCell):
        f = lambda x: net.unroll(shape[1], x, merge_outputs=True)[0]  # noqa: E731
    else:
        f = net
    f(nd.array(x0, dtype="float64"))  # deferred shapes
    net.hybridize()
    check_order(f, [x0], order, rng)
    compiled = [b for b in _hybrid_blocks(net) if b._compiled is not None and b._compiled.plans]
    assert compiled and not any(b._compiled._eager for b in compiled)


# ------------------------------------------------------------ engine bugs, in the small


class _Draw(HybridBlock):
    def __init__(self, how, **kw):
        super().__init__(**kw)
        self.how = how

    def hybrid_forward(self, F, x):
        if self.how == "Dropout(x)":
            return F.Dropout(x, p=0.5)
        if self.how == "Dropout(ones_like(x))":
            return F.Dropout(F.ones_like(x), p=0.5) * x
        return F.random.uniform(shape=x.shape) * x


@pytest.mark.parametrize(
    "how",
    [
        "Dropout(x)",
        "Dropout(ones_like(x))",
        "nd.random.uniform",
    ],
)
def test_random_numbers_in_a_hybridized_block_are_drawn_like_eager(how):
    """With one seed, the hybridized block draws the eager block's numbers, at the trace
    (trace.py restores the generator: the compiled run right after draws them) and after."""
    x = nd.ones((4, 6))
    outs = []
    for hybrid in (False, True):
        blk = _Draw(how)
        if hybrid:
            blk.hybridize()
        mx.random.seed(5)
        with autograd.train_mode():
            outs.append([blk(x).asnumpy() for _ in range(3)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(b, a)
    assert not np.array_equal(outs[0][1], outs[0][2])  # new numbers on each call


@pytest.mark.parametrize(
    "op",
    [
        lambda F, w, i: F.take(w, i),
        lambda F, w, i: F.pick(w, i, axis=1),
        lambda F, w, i: F.one_hot(i, 4) * w[0, 0],
        lambda F, w, i: F.Embedding(i, w, input_dim=4, output_dim=4),
        lambda F, w, i: w[i],
        lambda F, w, i: w[w > i[0] * 4],
        lambda F, w, i: F.sort(w * i, axis=None),
        lambda F, w, i: F.topk(w * i, k=2, ret_typ="value"),
        lambda F, w, i: F.SequenceMask(w, i, use_sequence_length=True),
    ],
    ids=[
        "take",
        "pick",
        "one_hot",
        "Embedding",
        "w[i]",
        "w[w > c]",
        "sort",
        "topk",
        "SequenceMask",
    ],  # fmt: skip
)
def test_values_read_by_operators_of_a_hybridized_block_are_read_at_each_call(op):
    """Index arrays, masks and lengths are arguments of each compiled call, or the block
    runs eagerly; never the traced call's values again."""
    blk = nn.HybridLambda(op)
    blk.hybridize()
    w = nd.array(np.arange(1.0, 17.0).reshape(4, 4))
    for idx in ([1, 2, 3, 0], [3, 3, 0, 1]):
        i = nd.array(idx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (a fallback is correct)
            np.testing.assert_array_equal(blk(w, i).asnumpy(), op(nd, w, i).asnumpy())
