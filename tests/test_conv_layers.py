"""Gluon's convolutional layers (issue 11): deferred input channels, MXNet 1.9's parameter
names, shapes and initializers, forward against NumPy references written from MXNet's
definitions, gradients against finite differences, MXNet 1.9.1's LeNet checkpoint, summary(),
and the errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.base import ShapeError
from tapegrad.gluon import nn
from tapegrad.gluon.contrib import nn as contrib_nn

DATA = Path(__file__).resolve().parent / "data" / "mxnet-params" / "cnn_rnn"
RNG = np.random.default_rng(11)


def A(x) -> nd.NDArray:
    return nd.array(x, dtype=np.float64)


def names(block) -> list[str]:
    return list(block.collect_params().keys())


@pytest.fixture(autouse=True)
def fresh_names():
    """Automatic names counted from 0 in every test (conv0_, pool0_...)."""
    with mx.name.NameManager():
        yield


# ------------------------------------------------------------------ NumPy references


def conv_ref(x, w, b, stride, pad, dilate, groups):
    """Cross-correlation by loops over output positions, MXNet's Convolution definition."""
    n, c = x.shape[:2]
    f = w.shape[0]
    k = w.shape[2:]
    nd_ = len(k)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    out_sp = [
        (x.shape[2 + i] + 2 * pad[i] - dilate[i] * (k[i] - 1) - 1) // stride[i] + 1
        for i in range(nd_)
    ]
    out = np.zeros((n, f, *out_sp))
    cg, fg = c // groups, f // groups
    for pos in np.ndindex(*out_sp):
        sl = tuple(
            slice(pos[i] * stride[i], pos[i] * stride[i] + dilate[i] * (k[i] - 1) + 1, dilate[i])
            for i in range(nd_)
        )
        for g in range(groups):
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + sl]  # (n, cg, *k)
            wg = w[g * fg : (g + 1) * fg]  # (fg, cg, *k)
            out[(slice(None), slice(g * fg, (g + 1) * fg)) + pos] = np.tensordot(
                patch, wg, axes=(list(range(1, nd_ + 2)), list(range(1, nd_ + 2)))
            )
    if b is not None:
        out += b.reshape((1, -1) + (1,) * nd_)
    return out


def deconv_ref(x, w, b, stride, pad, adj):
    """Transposed convolution by scattering each input value times the kernel (groups 1)."""
    n, c = x.shape[:2]
    f = w.shape[1]
    k = w.shape[2:]
    nd_ = len(k)
    full = [(x.shape[2 + i] - 1) * stride[i] + k[i] + adj[i] for i in range(nd_)]
    out = np.zeros((n, f, *full))
    for pos in np.ndindex(*x.shape[2:]):
        sl = tuple(slice(pos[i] * stride[i], pos[i] * stride[i] + k[i]) for i in range(nd_))
        out[(slice(None), slice(None)) + sl] += np.einsum(
            "nc,cf...->nf...", x[(slice(None), slice(None)) + pos], w
        )
    crop = tuple(slice(pad[i], full[i] - pad[i]) for i in range(nd_))
    out = out[(slice(None), slice(None)) + crop]
    if b is not None:
        out += b.reshape((1, -1) + (1,) * nd_)
    return out


def pool_ref(x, k, s, p, kind, ceil=False, include_pad=True):
    """Max/avg pooling by loops, MXNet's conventions: windows clipped to the padded input,
    padding never the maximum, 'full' convention = ceil."""
    nd_ = len(k)
    sp = x.shape[2:]
    rnd = math.ceil if ceil else math.floor
    osp = [int(rnd((sp[i] + 2 * p[i] - k[i]) / s[i])) + 1 for i in range(nd_)]
    out = np.zeros(x.shape[:2] + tuple(osp))
    for pos in np.ndindex(*osp):
        lo = [pos[i] * s[i] - p[i] for i in range(nd_)]
        hi = [min(lo[i] + k[i], sp[i] + p[i]) for i in range(nd_)]
        clo = [max(v, 0) for v in lo]
        chi = [min(hi[i], sp[i]) for i in range(nd_)]
        win = x[(slice(None), slice(None)) + tuple(slice(a, b) for a, b in zip(clo, chi))]
        win = win.reshape(x.shape[:2] + (-1,))
        if kind == "max":
            out[(slice(None), slice(None)) + pos] = win.max(-1)
        else:
            size = np.prod([hi[i] - lo[i] for i in range(nd_)]) if include_pad else win.shape[-1]
            out[(slice(None), slice(None)) + pos] = win.sum(-1) / size
    return out


# ------------------------------------------------------------------------ convolutions

CONV_CASES = [
    # cls, kernel, kwargs, input shape
    (nn.Conv1D, 3, dict(strides=2, padding=1), (2, 3, 9)),
    (nn.Conv2D, (3, 2), dict(strides=(2, 1), padding=(1, 0), dilation=(1, 2)), (2, 4, 7, 8)),
    (nn.Conv2D, 3, dict(groups=2, padding=1), (1, 4, 5, 5)),
    (nn.Conv3D, 2, dict(strides=(1, 2, 1)), (1, 2, 3, 4, 3)),
]


@pytest.mark.parametrize("cls, kernel, kwargs, shape", CONV_CASES)
def test_conv_deferred_channels_names_and_forward(cls, kernel, kwargs, shape):
    channels = 4
    layer = cls(channels, kernel, **kwargs)
    n = len(shape) - 2
    k = (kernel,) * n if isinstance(kernel, int) else kernel
    groups = kwargs.get("groups", 1)
    assert names(layer) == ["conv0_weight", "conv0_bias"]
    assert layer.weight.shape == (channels, 0) + k  # in_channels deferred
    layer.initialize()
    layer.cast("float64")
    x = RNG.standard_normal(shape)
    out = layer(A(x)).asnumpy()
    assert layer.weight.shape == (channels, shape[1] // groups) + k
    assert layer.bias.data().asnumpy().tolist() == [0.0] * channels  # bias_initializer zeros

    def tup(v, d):
        return (v,) * n if isinstance(v, int) else v

    ref = conv_ref(
        x,
        layer.weight.data().asnumpy(),
        layer.bias.data().asnumpy(),
        tup(kwargs.get("strides", 1), 1),
        tup(kwargs.get("padding", 0), 0),
        tup(kwargs.get("dilation", 1), 1),
        groups,
    )
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "cls, kernel, kwargs, shape",
    [
        (nn.Conv1DTranspose, 4, dict(strides=2, padding=1), (2, 3, 5)),
        (nn.Conv2DTranspose, 3, dict(strides=2, padding=1, output_padding=1), (1, 2, 4, 3)),
        (nn.Conv3DTranspose, 2, dict(strides=2), (1, 2, 2, 3, 2)),
    ],
)
def test_conv_transpose_deferred_channels_and_forward(cls, kernel, kwargs, shape):
    layer = cls(5, kernel, **kwargs)
    n = len(shape) - 2
    k = (kernel,) * n
    assert names(layer) == ["conv0_weight", "conv0_bias"]
    assert layer.weight.shape == (0, 5) + k  # (in_channels, channels / groups, *kernel)
    layer.initialize()
    layer.cast("float64")
    layer.bias.set_data(A(RNG.standard_normal(5)))
    x = RNG.standard_normal(shape)
    out = layer(A(x)).asnumpy()
    assert layer.weight.shape == (shape[1], 5) + k
    s = (kwargs.get("strides", 1),) * n
    p = (kwargs.get("padding", 0),) * n
    adj = (kwargs.get("output_padding", 0),) * n
    # MXNet's documented output size: (in - 1) * strides - 2 * padding + kernel + output_padding
    assert out.shape[2:] == tuple(
        (shape[2 + i] - 1) * s[i] - 2 * p[i] + k[i] + adj[i] for i in range(n)
    )
    ref = deconv_ref(x, layer.weight.data().asnumpy(), layer.bias.data().asnumpy(), s, p, adj)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_conv_in_channels_given_no_bias_activation_and_repr():
    conv = nn.Conv2D(8, 3, in_channels=4, use_bias=False, activation="relu", padding=1)
    assert names(conv) == ["conv0_weight"] and conv.bias is None
    assert conv.weight.shape == (8, 4, 3, 3)
    assert repr(conv) == (
        "Conv2D(4 -> 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False, "
        "Activation(relu))"
    )
    conv.initialize()
    out = conv(nd.array(RNG.standard_normal((2, 4, 5, 5))))
    assert out.min().asscalar() >= 0  # relu applied
    assert repr(nn.Conv2D(6, 5)) == "Conv2D(None -> 6, kernel_size=(5, 5), stride=(1, 1))"
    up = nn.Conv2DTranspose(3, 4, strides=2, in_channels=5, groups=1)
    assert repr(up) == "Conv2DTranspose(5 -> 3, kernel_size=(4, 4), stride=(2, 2))"
    assert up.weight.shape == (5, 3, 4, 4)


def test_conv_default_initializers_follow_the_global_one():
    # MXNet: the weight has no initializer of its own (the global one applies), the bias 'zeros'
    conv = nn.Conv2D(3, 2, in_channels=2)
    conv.initialize(mx.init.One())
    assert conv.weight.data().asnumpy().sum() == 3 * 2 * 2 * 2
    assert conv.bias.data().asnumpy().sum() == 0
    conv2 = nn.Conv2D(3, 2, in_channels=2, weight_initializer="zeros", bias_initializer="ones")
    conv2.initialize(mx.init.Uniform())
    assert conv2.weight.data().asnumpy().sum() == 0 and conv2.bias.data().asnumpy().sum() == 3


def test_conv_gradients_match_finite_differences():
    conv = nn.Conv2D(2, 3, strides=2, padding=1, in_channels=2)
    conv.initialize()
    conv.cast("float64")
    x = RNG.standard_normal((1, 2, 5, 4))
    r = RNG.standard_normal(conv(A(x)).shape)
    xa = A(x)
    xa.attach_grad()
    with autograd.record():
        loss = (conv(xa) * A(r)).sum()
    loss.backward()
    w = conv.weight.data().asnumpy().copy()
    eps = 1e-6

    def f(xv, wv):
        conv.weight.set_data(A(wv))
        return float((conv(A(xv)) * A(r)).sum().asscalar())

    for idx in [(0, 0, 1, 1), (0, 1, 4, 3), (0, 0, 0, 2)]:
        d = np.zeros_like(x)
        d[idx] = eps
        num = (f(x + d, w) - f(x - d, w)) / (2 * eps)
        assert xa.grad.asnumpy()[idx] == pytest.approx(num, rel=1e-6, abs=1e-8)
    gw = conv.weight.grad().asnumpy().copy()
    for idx in [(0, 0, 0, 0), (1, 1, 2, 1)]:
        d = np.zeros_like(w)
        d[idx] = eps
        num = (f(x, w + d) - f(x, w - d)) / (2 * eps)
        assert gw[idx] == pytest.approx(num, rel=1e-6, abs=1e-8)


# ---------------------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    "cls, kwargs, shape, kind",
    [
        (nn.MaxPool1D, dict(pool_size=3, strides=2, padding=1), (2, 3, 8), "max"),
        (nn.MaxPool2D, dict(pool_size=2), (2, 2, 5, 5), "max"),
        (nn.MaxPool2D, dict(pool_size=3, strides=2, ceil_mode=True), (1, 2, 6, 6), "max"),
        (nn.MaxPool3D, dict(pool_size=2, strides=(1, 2, 2)), (1, 1, 3, 4, 4), "max"),
        (nn.AvgPool1D, dict(pool_size=2, padding=1), (1, 2, 5), "avg"),
        (nn.AvgPool2D, dict(pool_size=3, strides=2, padding=1), (2, 2, 5, 6), "avg"),
        (
            nn.AvgPool2D,
            dict(pool_size=3, strides=2, padding=1, count_include_pad=False),
            (2, 2, 5, 6),
            "avg",
        ),
        (nn.AvgPool2D, dict(pool_size=2, ceil_mode=True), (1, 1, 5, 5), "avg"),
        (nn.AvgPool3D, dict(pool_size=2), (1, 2, 4, 2, 4), "avg"),
    ],
)
def test_pooling_layers_against_reference(cls, kwargs, shape, kind):
    layer = cls(**kwargs)
    assert layer.prefix == "pool0_" and names(layer) == []
    x = RNG.standard_normal(shape)
    n = len(shape) - 2
    k = kwargs["pool_size"]
    k = (k,) * n if isinstance(k, int) else k
    s = kwargs.get("strides", k)  # Gluon's default stride is the pool size
    s = (s,) * n if isinstance(s, int) else s
    p = (kwargs.get("padding", 0),) * n
    ref = pool_ref(
        x, k, s, p, kind, kwargs.get("ceil_mode", False), kwargs.get("count_include_pad", True)
    )
    np.testing.assert_allclose(layer(A(x)).asnumpy(), ref, rtol=1e-12)


def test_pooling_defaults_repr_and_channels_last():
    pool = nn.MaxPool2D()
    assert repr(pool) == (
        "MaxPool2D(size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False, "
        "global_pool=False, pool_type=max, layout=NCHW)"
    )
    x = RNG.standard_normal((2, 6, 4, 3))  # NHWC
    y = nn.AvgPool2D(2, layout="NHWC")(A(x)).asnumpy()
    ref = pool_ref(x.transpose(0, 3, 1, 2), (2, 2), (2, 2), (0, 0), "avg").transpose(0, 2, 3, 1)
    np.testing.assert_allclose(y, ref, rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_global_pooling(n):
    shape = (2, 3) + (4, 5, 3)[:n]
    x = RNG.standard_normal(shape)
    axes = tuple(range(2, 2 + n))
    gmax = getattr(nn, f"GlobalMaxPool{n}D")()
    gavg = getattr(nn, f"GlobalAvgPool{n}D")()
    np.testing.assert_allclose(gmax(A(x)).asnumpy(), x.max(axis=axes, keepdims=True))
    np.testing.assert_allclose(gavg(A(x)).asnumpy(), x.mean(axis=axes, keepdims=True))
    assert "global_pool=True" in repr(gmax) and "ceil_mode=True" in repr(gmax)


def test_reflection_pad():
    x = RNG.standard_normal((1, 2, 4, 5))
    y = nn.ReflectionPad2D(2)(A(x)).asnumpy()
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect"))
    y = nn.ReflectionPad2D((0, 0, 0, 0, 1, 0, 0, 3))(A(x)).asnumpy()
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 3)), mode="reflect"))


# ---------------------------------------------------------------------- normalization


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 2)])
def test_batchnorm_on_nd_inputs(shape):
    bn = nn.BatchNorm(momentum=0.7)
    bn.initialize()
    bn.cast("float64")
    gamma, beta = RNG.uniform(0.5, 2, 3), RNG.standard_normal(3)
    bn.gamma.set_data(A(gamma))
    bn.beta.set_data(A(beta))
    x = RNG.standard_normal(shape) * 2 + 1
    axes = (0,) + tuple(range(2, len(shape)))
    b = (1, 3) + (1,) * (len(shape) - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    with autograd.record():
        y = bn(A(x)).asnumpy()
    ref = (x - mean.reshape(b)) / np.sqrt(var.reshape(b) + 1e-5) * gamma.reshape(b)
    np.testing.assert_allclose(y, ref + beta.reshape(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(), 0.3 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data().asnumpy(), 0.7 + 0.3 * var, rtol=1e-12)
    assert bn.gamma.shape == (3,)


def test_instance_norm_defaults_and_forward():
    layer = nn.InstanceNorm()
    assert names(layer) == ["instancenorm0_gamma", "instancenorm0_beta"]
    assert layer.gamma.grad_req == "null"  # MXNet 1.9's default scale=False
    assert layer.beta.grad_req == "write"
    # MXNet's documented example: [[[1.1, 2.2]], [[3.3, 4.4]]] -> about +-0.99998
    layer.initialize()
    y = layer(nd.array([[[1.1, 2.2]], [[3.3, 4.4]]])).asnumpy()
    np.testing.assert_allclose(y.ravel(), [-0.99998355, 0.99998331, -0.99998319, 0.99998361], 1e-5)
    # any channel axis; scale and center trained
    layer = nn.InstanceNorm(axis=2, scale=True, epsilon=1e-3)
    layer.initialize()
    layer.cast("float64")
    g, b = RNG.uniform(0.5, 2, 4), RNG.standard_normal(4)
    x = RNG.standard_normal((2, 3, 4, 5))
    layer(A(x))
    layer.gamma.set_data(A(g))
    layer.beta.set_data(A(b))
    mean = x.mean(axis=(1, 3), keepdims=True)
    var = x.var(axis=(1, 3), keepdims=True)
    ref = (x - mean) / np.sqrt(var + 1e-3) * g.reshape(1, 1, 4, 1) + b.reshape(1, 1, 4, 1)
    np.testing.assert_allclose(layer(A(x)).asnumpy(), ref, rtol=1e-10)
    assert layer.gamma.shape == (4,)


def test_group_norm():
    layer = nn.GroupNorm(num_groups=2)
    assert layer.gamma.shape == (2,) and names(layer) == ["groupnorm0_gamma", "groupnorm0_beta"]
    layer.initialize()
    # MXNet's documented example (one group over 3 channels of 4 values)
    y = nn.GroupNorm()
    y.initialize()
    out = y(nd.arange(24).reshape((2, 3, 4))).asnumpy()
    np.testing.assert_allclose(out[0, 0], [-1.5932543, -1.3035717, -1.0138891, -0.7242065], 1e-5)
    layer.cast("float64")
    g, b = RNG.uniform(0.5, 2, 2), RNG.standard_normal(2)
    layer.gamma.set_data(A(g))
    layer.beta.set_data(A(b))
    x = RNG.standard_normal((2, 4, 3, 3))
    xg = x.reshape(2, 2, 2, 3, 3)
    ref = (xg - xg.mean(axis=(2, 3, 4), keepdims=True)) / np.sqrt(
        xg.var(axis=(2, 3, 4), keepdims=True) + 1e-5
    )
    ref = ref * g.reshape(1, 2, 1, 1, 1) + b.reshape(1, 2, 1, 1, 1)
    np.testing.assert_allclose(layer(A(x)).asnumpy(), ref.reshape(x.shape), rtol=1e-10)


def test_sync_batchnorm_is_batchnorm_on_one_process():
    x = RNG.standard_normal((4, 3, 2, 2))
    outs = []
    for layer in (nn.SyncBatchNorm(), contrib_nn.SyncBatchNorm(num_devices=1), nn.BatchNorm()):
        layer.initialize()
        layer.cast("float64")
        with autograd.record():
            outs.append(layer(A(x)).asnumpy())
        outs.append(layer.running_var.data().asnumpy())
    np.testing.assert_allclose(outs[0], outs[4], rtol=1e-12)
    np.testing.assert_allclose(outs[1], outs[5], rtol=1e-12)
    np.testing.assert_allclose(outs[2], outs[4], rtol=1e-12)
    assert names(nn.SyncBatchNorm())[0] == "syncbatchnorm2_gamma"


# -------------------------------------------------------------- containers and shuffles


def test_concatenate_identity_and_contrib_names():
    net = nn.HybridConcatenate(axis=1)
    with net.name_scope():
        net.add(nn.Dense(3), nn.Identity(), nn.Dense(2))
    net.initialize()
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    y = net(nd.array(x))
    assert y.shape == (2, 9)
    np.testing.assert_array_equal(y.asnumpy()[:, 3:7], x)
    assert names(net) == [
        "hybridconcatenate0_dense0_weight",
        "hybridconcatenate0_dense0_bias",
        "hybridconcatenate0_dense1_weight",
        "hybridconcatenate0_dense1_bias",
    ]
    plain = nn.Concatenate(axis=0)
    plain.add(nn.Identity(), nn.Identity())
    assert plain(nd.ones((2, 3))).shape == (4, 3)
    assert contrib_nn.HybridConcurrent().prefix == "hybridconcurrent0_"
    assert contrib_nn.Concurrent().prefix == "concurrent0_"
    with pytest.raises(ValueError, match="no children"):
        nn.HybridConcatenate()(nd.ones((1, 2)))


def test_pixel_shuffle_layers():
    # MXNet's definition: output[n, c, h f1 + i, w f2 + j] = input[n, c f1 f2 + i f2 + j, h, w]
    x = RNG.standard_normal((2, 12, 3, 4))
    y = nn.PixelShuffle2D((2, 3))(A(x)).asnumpy()
    assert y.shape == (2, 2, 6, 12)
    for c, i, j, h, w in [(0, 1, 2, 2, 3), (1, 0, 1, 1, 0)]:
        assert y[1, c, h * 2 + i, w * 3 + j] == x[1, c * 6 + i * 3 + j, h, w]
    x1 = RNG.standard_normal((1, 6, 5))
    y1 = nn.PixelShuffle1D(3)(A(x1)).asnumpy()
    assert y1.shape == (1, 2, 15) and y1[0, 1, 4 * 3 + 2] == x1[0, 1 * 3 + 2, 4]
    x3 = RNG.standard_normal((1, 2 * 8, 2, 1, 3))
    y3 = contrib_nn.PixelShuffle3D(2)(A(x3)).asnumpy()
    assert y3.shape == (1, 2, 4, 2, 6)
    c, i, j, k, d, h, w = 1, 1, 0, 1, 1, 0, 2
    assert y3[0, c, d * 2 + i, h * 2 + j, w * 2 + k] == x3[0, c * 8 + i * 4 + j * 2 + k, d, h, w]
    assert repr(nn.PixelShuffle2D(2)) == "PixelShuffle2D((2, 2))"
    with pytest.raises(ShapeError, match=r"PixelShuffle2D .* multiple of 6"):
        nn.PixelShuffle2D((2, 3))(nd.ones((1, 4, 2, 2)))


# ---------------------------------------------------------- LeNet, checkpoint, summary


def lenet(k2: int = 5):
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(6, kernel_size=5, activation="relu"),
        nn.MaxPool2D(2, 2),
        nn.Conv2D(16, k2, activation="relu"),
        nn.MaxPool2D(2, 2),
        nn.Flatten(),
        nn.Dense(120, activation="relu"),
        nn.Dense(84, activation="relu"),
        nn.Dense(10),
    )
    return net


def test_mxnet_lenet_checkpoint_gives_mxnet_output():
    """lenet.params was written by real MXNet 1.9.1 (save_parameters of this network)."""
    expected = json.loads((DATA / "expected.json").read_text())["nets"]["lenet"]
    net = lenet()
    net.load_parameters(str(DATA / "lenet.params"))
    for key, info in expected["params"].items():
        i, what = key.split(".")
        p = getattr(net[int(i)], what)
        assert p.shape == tuple(info["shape"])
        assert float(p.data().asnumpy().astype(np.float64).sum()) == pytest.approx(
            info["sum"], abs=1e-4
        )
    x = np.sin(0.37 * np.arange(1568)).reshape(2, 1, 28, 28).astype(np.float32)
    out = net(nd.array(x)).asnumpy()
    np.testing.assert_allclose(out.ravel(), expected["output"], rtol=1e-5, atol=1e-6)
    assert list(net._collect_params_with_prefix()) == list(expected["params"])


def test_save_parameters_round_trip_uses_structural_names(tmp_path):
    net = lenet()
    net.initialize(mx.init.Xavier())
    x = nd.array(RNG.standard_normal((3, 1, 28, 28)))
    y = net(x).asnumpy()
    path = str(tmp_path / "lenet.params")
    net.save_parameters(path)
    assert sorted(nd.load(path)) == sorted(
        f"{i}.{w}" for i in (0, 2, 5, 6, 7) for w in ("weight", "bias")
    )
    other = lenet()
    other.load_parameters(path)
    np.testing.assert_array_equal(other(x).asnumpy(), y)
    assert names(net)[:4] == ["conv0_weight", "conv0_bias", "conv1_weight", "conv1_bias"]


def test_summary_of_lenet(capsys):
    net = lenet(k2=3)
    net.initialize()
    net.summary(nd.ones((2, 1, 28, 28)))
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and parts[0].split("-")[-1].isdigit():
            rows[parts[0]] = (" ".join(parts[1:-1]), int(parts[-1]))
    assert rows["Conv2D-2"] == ("(2, 6, 24, 24)", 6 * 25 + 6)
    assert rows["MaxPool2D-3"] == ("(2, 6, 12, 12)", 0)
    assert rows["Conv2D-5"] == ("(2, 16, 10, 10)", 16 * 6 * 9 + 16)
    assert rows["Flatten-7"] == ("(2, 400)", 0)
    assert rows["Dense-9"] == ("(2, 120)", 400 * 120 + 120)
    total = 156 + 880 + 48120 + 10164 + 850
    assert f"Total params: {total}" in out


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: nn.Conv2D(4, (3, 3, 3)), r"Conv2D: kernel_size=\(3, 3, 3\) must be .* 2"),
        (lambda: nn.Conv2D(0, 3), r"Conv2D: channels=0 must be a positive integer"),
        (lambda: nn.Conv1D(4, 3, strides=0), r"Conv1D: strides=0 must be an integer >= 1"),
        (lambda: nn.Conv2D(4, 3, groups=3), r"groups=3 must divide channels=4"),
        (lambda: nn.Conv2D(4, 3, layout="NHWC"), r"layout='NHWC' is not supported.*NCHW"),
        (
            lambda: nn.Conv2DTranspose(4, 3, strides=2, output_padding=2),
            r"output_padding=\(2, 2\) must be smaller than strides",
        ),
        (lambda: nn.MaxPool2D(layout="NCW"), r"MaxPool2D: layout='NCW' is not valid for 2-D"),
        (lambda: nn.AvgPool1D(pool_size=(2, 2)), r"AvgPool1D: pool_size=\(2, 2\)"),
        (lambda: nn.ReflectionPad2D((1, 2)), r"ReflectionPad2D: padding=\(1, 2\)"),
        (lambda: nn.SyncBatchNorm(num_devices=4), r"SyncBatchNorm: num_devices=4"),
        (lambda: nn.GroupNorm(num_groups=0), r"GroupNorm: num_groups=0"),
        (lambda: nn.PixelShuffle2D((2, 0)), r"PixelShuffle2D: factor=\(2, 0\)"),
    ],
)
def test_bad_layer_arguments(make, match):
    before = nn.Dense(1).prefix
    with pytest.raises(nn.LayerArgumentError, match=match) as e:
        make()
    assert "Fix:" in str(e.value)
    assert isinstance(e.value, AssertionError)  # what MXNet raised
    # a refused layer takes no automatic name
    assert nn.Dense(1).prefix == f"dense{int(before[5:-1]) + 1}_"


def test_input_errors_name_the_layer_and_leave_it_deferred():
    conv = nn.Conv2D(4, 3)
    conv.initialize()
    with pytest.raises(
        ShapeError, match=r"Conv2D 'conv0': input of shape \(2, 28, 28\) is not 4-D"
    ):
        conv(nd.ones((2, 28, 28)))
    assert conv.weight.shape == (4, 0, 3, 3)  # still deferred
    grouped = nn.Conv2D(4, 3, groups=2)
    grouped.initialize()
    with pytest.raises(
        ShapeError, match=r"Conv2D 'conv1': .* 3 channels, not divisible by groups=2"
    ):
        grouped(nd.ones((1, 3, 5, 5)))
    fixed = nn.Conv2D(4, 3, in_channels=2)
    fixed.initialize()
    with pytest.raises(ShapeError, match=r"Conv2D 'conv2': .*weight"):
        fixed(nd.ones((1, 3, 5, 5)))
    small = nn.Conv2D(2, 5, in_channels=1)
    small.initialize()
    with pytest.raises(ShapeError, match=r"Conv2D 'conv3': Convolution: the kernel"):
        small(nd.ones((1, 1, 3, 3)))
    with pytest.raises(ShapeError, match=r"MaxPool2D 'pool0': input of shape \(4, 4\) is not 4-D"):
        nn.MaxPool2D()(nd.ones((4, 4)))
    with pytest.raises(ShapeError, match=r"InstanceNorm .* needs a batch axis"):
        layer = nn.InstanceNorm()
        layer.initialize()
        layer(nd.ones((2, 3)))
