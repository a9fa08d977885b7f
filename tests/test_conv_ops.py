"""The convolutional operators of ``mx.nd`` (tapegrad/ndarray/nn_ops.py on the primitives of
tapegrad/ops/conv.py): each forward against a plain nested-loop NumPy implementation written
here from MXNet 1.9's definitions, over small random shapes, strides, dilations, groups,
padding and both pooling conventions; first and second derivatives against finite
differences (the op-spec machinery); max-pooling ties; what a node keeps; derivatives of a
convolutional network with respect to its input (a WGAN-GP gradient penalty, sciml);
MXNet 1.9.1's own LeNet output; the errors."""

from __future__ import annotations

import gc
import itertools
import json
import math
import weakref
from pathlib import Path

import numpy as np
import pytest
from opspec import check_order

import tapegrad as mx
from tapegrad import autograd, nd
from tapegrad.core import RAW
from tapegrad.ndarray.nn_ops import OperatorArgumentError
from tapegrad.ops import conv as conv_ops

RNG = np.random.default_rng(11)
DATA = Path(__file__).resolve().parent / "data" / "mxnet-params" / "cnn_rnn"


def f64(a):
    return nd.array(a, dtype="float64")


# ------------------------------------------------------------ reference implementations


def ref_conv(x, w, b, stride, dilate, pad, groups):
    n_, c_ = x.shape[:2]
    f_ = w.shape[0]
    k = w.shape[2:]
    nsp = len(k)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    osp = [
        (x.shape[2 + i] + 2 * pad[i] - dilate[i] * (k[i] - 1) - 1) // stride[i] + 1
        for i in range(nsp)
    ]
    out = np.zeros((n_, f_) + tuple(osp))
    cg, fg = c_ // groups, f_ // groups
    for n in range(n_):
        for f in range(f_):
            g = f // fg
            for o in itertools.product(*[range(s) for s in osp]):
                acc = 0.0 if b is None else b[f]
                for c in range(cg):
                    for t in itertools.product(*[range(s) for s in k]):
                        pos = tuple(o[i] * stride[i] + t[i] * dilate[i] for i in range(nsp))
                        acc += xp[(n, g * cg + c) + pos] * w[(f, c) + t]
                out[(n, f) + o] = acc
    return out


def ref_deconv(x, w, b, stride, dilate, pad, adj, groups):
    n_, cin = x.shape[:2]
    fg = w.shape[1]
    f_ = fg * groups
    k = w.shape[2:]
    nsp = len(k)
    osp = [
        stride[i] * (x.shape[2 + i] - 1) + dilate[i] * (k[i] - 1) + 1 - 2 * pad[i] + adj[i]
        for i in range(nsp)
    ]
    buf = np.zeros((n_, f_) + tuple(o + 2 * p for o, p in zip(osp, pad)))
    cg = cin // groups
    for n in range(n_):
        for c in range(cin):
            g = c // cg
            for i in itertools.product(*[range(s) for s in x.shape[2:]]):
                for fl in range(fg):
                    for t in itertools.product(*[range(s) for s in k]):
                        pos = tuple(i[d] * stride[d] + t[d] * dilate[d] for d in range(nsp))
                        buf[(n, g * fg + fl) + pos] += x[(n, c) + i] * w[(c, fl) + t]
    out = buf[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(pad, osp))]
    if b is not None:
        out = out + b.reshape((-1,) + (1,) * nsp)
    return out


def ref_pool(x, kernel, stride, pad, pool_type, convention="valid", include_pad=True, p=1):
    """MXNet 1.9's pooling loops (pool.h), written plainly."""
    nsp = len(kernel)
    sp = x.shape[2:]
    osp = []
    for i in range(nsp):
        if convention == "valid":
            osp.append(1 + (sp[i] + 2 * pad[i] - kernel[i]) // stride[i])
        elif convention == "full":
            osp.append(1 + math.ceil((sp[i] + 2 * pad[i] - kernel[i]) / stride[i]))
        else:
            osp.append(math.ceil((sp[i] + 2 * pad[i]) / stride[i]))
    out = np.zeros(x.shape[:2] + tuple(osp))
    lowest = np.finfo(x.dtype).min
    for nc in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(s) for s in osp]):
            start = [o[i] * stride[i] - pad[i] for i in range(nsp)]
            end_pad = [min(start[i] + kernel[i], sp[i] + pad[i]) for i in range(nsp)]
            lo = [max(s, 0) for s in start]
            hi = [min(start[i] + kernel[i], sp[i]) for i in range(nsp)]
            cells = list(itertools.product(*[range(a, b) for a, b in zip(lo, hi)]))
            vals = [x[nc + c] for c in cells]
            if pool_type == "max":
                best = lowest
                for v in vals:
                    if v > best:
                        best = v
                out[nc + o] = best
            elif pool_type == "sum":
                out[nc + o] = sum(vals)
            elif pool_type == "avg":
                if include_pad:
                    size = math.prod(e - s for e, s in zip(end_pad, start))
                else:
                    size = len(cells)
                out[nc + o] = sum(v / size for v in vals)
            else:
                out[nc + o] = sum(v**p for v in vals) ** (1.0 / p) if p > 1 else sum(vals)
    return out


def rand(*shape):
    return RNG.uniform(-1, 1, size=shape)


# ---------------------------------------------------------------------------- forward


CONV_CASES = [
    # (x shape, F, kernel, stride, dilate, pad, groups, bias)
    ((2, 3, 6, 5), 4, (3, 2), (1, 1), (1, 1), (0, 0), 1, True),
    ((2, 4, 7, 6), 6, (3, 3), (2, 1), (1, 2), (1, 2), 2, True),
    ((1, 3, 5, 5), 3, (2, 2), (2, 2), (2, 1), (1, 0), 3, False),  # depthwise
    ((2, 2, 9), 3, (4,), (3,), (2,), (2,), 1, True),  # 1-D
    ((1, 2, 4, 5, 3), 2, (2, 3, 2), (1, 2, 1), (1, 1, 2), (1, 0, 1), 2, True),  # 3-D
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(c[0]) + str(c[2]) for c in CONV_CASES])
def test_convolution_matches_loops(case):
    xs, f, k, s, d, p, g, bias = case
    x = rand(*xs)
    w = rand(f, xs[1] // g, *k)
    b = rand(f) if bias else None
    y = nd.Convolution(
        f64(x), f64(w), None if b is None else f64(b), kernel=k, stride=s, dilate=d, pad=p,
        num_filter=f, num_group=g, no_bias=not bias,
    )  # fmt: skip
    np.testing.assert_allclose(y.asnumpy(), ref_conv(x, w, b, s, d, p, g), rtol=1e-12, atol=1e-12)


def test_convolution_float32_default_and_scalar_arguments():
    x = rand(2, 3, 5, 5).astype(np.float32)
    w = rand(4, 3, 3, 3).astype(np.float32)
    b = rand(4).astype(np.float32)
    y = nd.Convolution(
        nd.array(x), nd.array(w), nd.array(b), kernel=(3, 3), num_filter=4, pad=(1, 1)
    )
    assert y.dtype == np.float32 and y.shape == (2, 4, 5, 5)
    ref = ref_conv(x.astype(np.float64), w, b, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-5, atol=1e-5)
    # an integer is a 1-tuple, as MXNet parses it: a 1-D kernel
    y1 = nd.Convolution(
        nd.array(x[:, :, 0]), nd.array(w[:, :, 0]), kernel=3, num_filter=4, no_bias=True
    )
    assert y1.shape == (2, 4, 3)


DECONV_CASES = [
    # (x shape, F, kernel, stride, dilate, pad, adj, groups, bias)
    ((2, 3, 3, 4), 2, (3, 2), (2, 1), (1, 1), (1, 0), (1, 0), 1, True),
    ((1, 4, 3, 3), 4, (2, 3), (2, 2), (2, 1), (0, 1), (0, 1), 2, False),
    ((2, 2, 4), 3, (3,), (2,), (1,), (1,), (1,), 1, True),
]


@pytest.mark.parametrize("case", DECONV_CASES, ids=[str(c[0]) for c in DECONV_CASES])
def test_deconvolution_matches_loops(case):
    xs, f, k, s, d, p, a, g, bias = case
    x = rand(*xs)
    w = rand(xs[1], f // g, *k)
    b = rand(f) if bias else None
    y = nd.Deconvolution(
        f64(x), f64(w), None if b is None else f64(b), kernel=k, stride=s, dilate=d, pad=p,
        adj=a, num_filter=f, num_group=g, no_bias=not bias,
    )  # fmt: skip
    np.testing.assert_allclose(
        y.asnumpy(), ref_deconv(x, w, b, s, d, p, a, g), rtol=1e-12, atol=1e-12
    )


def test_deconvolution_target_shape_and_no_bias_default():
    x, w = rand(1, 2, 3, 3), rand(2, 3, 3, 3)
    # MXNet: pad and adj from target_shape; the default is no_bias=True (two inputs)
    y = nd.Deconvolution(
        f64(x), f64(w), kernel=(3, 3), stride=(2, 2), target_shape=(6, 5), num_filter=3
    )
    assert y.shape == (1, 3, 6, 5)
    # full size 2 * 2 + 3 = 7: extra (1, 2) -> pad (1, 1), adj (1, 0)
    ref = ref_deconv(x, w, None, (2, 2), (1, 1), (1, 1), (1, 0), 1)
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-12)


def test_deconvolution_is_the_adjoint_of_convolution():
    x, w, u = rand(2, 4, 7, 6), rand(6, 2, 3, 2), None
    kw = dict(kernel=(3, 2), stride=(2, 2), dilate=(1, 2), pad=(1, 1), num_group=2)
    y = nd.Convolution(f64(x), f64(w), num_filter=6, no_bias=True, **kw)
    u = rand(*y.shape)
    # adj makes the transposed convolution's output the shape of x
    adj = tuple(
        (x.shape[2 + i] + 2 * kw["pad"][i] - kw["dilate"][i] * (w.shape[2 + i] - 1) - 1) % 2
        for i in range(2)
    )
    z = nd.Deconvolution(f64(u), f64(w), num_filter=4, adj=adj, **kw)
    assert z.shape == x.shape
    np.testing.assert_allclose((y.asnumpy() * u).sum(), (x * z.asnumpy()).sum(), rtol=1e-12)


POOL_CASES = [
    # (x shape, kernel, stride, pad, convention)
    ((2, 2, 6, 7), (2, 2), (2, 2), (0, 0), "valid"),
    ((1, 3, 7, 6), (3, 2), (2, 1), (1, 1), "valid"),
    ((2, 1, 7, 6), (3, 3), (2, 2), (1, 0), "full"),
    ((1, 2, 5, 5), (2, 3), (3, 2), (0, 1), "full"),
    ((1, 2, 4, 5), (1, 1), (1, 1), (1, 1), "valid"),  # padding >= kernel: empty windows
    ((2, 2, 9), (3,), (2,), (1,), "valid"),
    ((2, 2, 9), (4,), (3,), (0,), "same"),
    ((1, 1, 3, 4, 5), (2, 2, 3), (1, 2, 2), (0, 1, 1), "full"),
]


@pytest.mark.parametrize("pool_type", ["max", "avg", "sum", "lp1", "lp2", "lp3", "avg-exclude-pad"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{c[0]}{c[1]}{c[4]}" for c in POOL_CASES])
def test_pooling_matches_loops(case, pool_type):
    xs, k, s, p, conv = case
    x = rand(*xs)
    if pool_type == "lp3" or pool_type == "lp1":
        x = np.abs(x) + 0.1  # a cube root of a negative window sum is NaN in NumPy's power
    kwargs = {}
    ptype, pval, incl = pool_type, 1, True
    if pool_type.startswith("lp"):
        ptype, pval = "lp", int(pool_type[2])
        kwargs["p_value"] = pval
    if pool_type == "avg-exclude-pad":
        ptype, incl = "avg", False
        kwargs["count_include_pad"] = False
    y = nd.Pooling(
        f64(x), kernel=k, stride=s, pad=p, pool_type=ptype, pooling_convention=conv, **kwargs
    )
    ref = ref_pool(x, k, s, p, ptype, conv, incl, pval)
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-12, atol=1e-12)


def test_pooling_defaults_global_pool_and_layouts():
    x = rand(2, 3, 5, 4)
    # the operator's default stride is 1 (Gluon's pooling layers default to the kernel size)
    y = nd.Pooling(f64(x), kernel=(2, 2))
    assert y.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(y.asnumpy(), ref_pool(x, (2, 2), (1, 1), (0, 0), "max"))
    for ptype, red in (("max", np.max), ("avg", np.mean), ("sum", np.sum)):
        g = nd.Pooling(f64(x), kernel=(3, 3), pool_type=ptype, global_pool=True)
        assert g.shape == (2, 3, 1, 1)
        np.testing.assert_allclose(g.asnumpy()[..., 0, 0], red(x, axis=(2, 3)), rtol=1e-12)
    g = nd.Pooling(f64(x), pool_type="lp", p_value=2, global_pool=True)
    np.testing.assert_allclose(g.asnumpy()[..., 0, 0], np.sqrt((x**2).sum(axis=(2, 3))), rtol=1e-12)
    # channels last: the same pooling on the transposed data
    last = nd.Pooling(
        f64(x.transpose(0, 2, 3, 1)), kernel=(2, 2), stride=(2, 1), layout="NHWC", pool_type="avg"
    )
    first = nd.Pooling(f64(x), kernel=(2, 2), stride=(2, 1), pool_type="avg")
    np.testing.assert_allclose(last.asnumpy(), first.asnumpy().transpose(0, 2, 3, 1))


def test_max_pooling_gradient_goes_to_the_first_maximum_as_in_mxnet():
    # ties inside each window, overlapping windows (stride 1), and a NaN that never wins
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [np.nan, 2.0, 2.0]]]])
    a = f64(x)
    a.attach_grad()
    with autograd.record():
        y = nd.Pooling(a, kernel=(2, 2), stride=(1, 1))
    y.backward(f64(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])))
    np.testing.assert_array_equal(y.asnumpy()[0, 0], [[1.0, 2.0], [2.0, 2.0]])
    # window (0,0) -> x[0,0]; (0,1) -> x[1,2]; (1,0) -> x[2,1] (NaN skipped); (1,1) -> x[1,2]
    want = np.zeros((3, 3))
    want[0, 0] = 1
    want[1, 2] = 10 + 1000
    want[2, 1] = 100
    np.testing.assert_array_equal(a.grad.asnumpy()[0, 0], want)
    # global max pooling: the first maximum too
    b = f64(np.array([[[[3.0, 5.0], [5.0, 1.0]]]]))
    b.attach_grad()
    with autograd.record():
        z = nd.Pooling(b, pool_type="max", global_pool=True)
    z.backward()
    np.testing.assert_array_equal(b.grad.asnumpy()[0, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_empty_max_window_gives_the_lowest_value_and_no_gradient():
    a = f64(rand(1, 1, 2, 2))
    a.attach_grad()
    with autograd.record():
        y = nd.Pooling(a, kernel=(1, 1), pad=(1, 1))
    y.backward()
    assert y.shape == (1, 1, 4, 4)
    assert y.asnumpy()[0, 0, 0, 0] == np.finfo(np.float64).min
    np.testing.assert_array_equal(y.asnumpy()[0, 0, 1:3, 1:3], a.asnumpy()[0, 0])
    np.testing.assert_array_equal(a.grad.asnumpy(), np.ones((1, 1, 2, 2)))


def test_upsampling_nearest_and_bilinear():
    x, z = rand(2, 2, 3, 2), rand(2, 1, 6, 4)
    y = nd.UpSampling(f64(x), scale=2, sample_type="nearest")
    ref = np.zeros((2, 2, 6, 4))
    for n, c, i, j in itertools.product(range(2), range(2), range(6), range(4)):
        ref[n, c, i, j] = x[n, c, i // 2, j // 2]
    np.testing.assert_array_equal(y.asnumpy(), ref)
    # several inputs: each brought to scale * the first one's size, then concatenated or added
    cat = nd.UpSampling(f64(x), f64(z), scale=2, sample_type="nearest", num_args=2)
    np.testing.assert_array_equal(cat.asnumpy(), np.concatenate([ref, z], axis=1))
    tot = nd.UpSampling(
        f64(x[:, :1]), f64(z), scale=2, sample_type="nearest", multi_input_mode="sum"
    )
    np.testing.assert_array_equal(tot.asnumpy(), ref[:, :1] + z)
    # bilinear: a depthwise deconvolution with MXNet's kernel, stride and padding
    w = rand(2, 1, 4, 4)
    bl = nd.UpSampling(f64(x), f64(w), scale=2, sample_type="bilinear", num_filter=2)
    np.testing.assert_allclose(
        bl.asnumpy(), ref_deconv(x, w, None, (2, 2), (1, 1), (1, 1), (0, 0), 2), rtol=1e-12
    )


def _bn_ref(x, g, b, mean, var, eps, axis):
    shp = [1] * x.ndim
    shp[axis] = -1
    return (x - mean.reshape(shp)) / np.sqrt(var.reshape(shp) + eps) * g.reshape(shp) + b.reshape(
        shp
    )


def test_batchnorm_operator_train_predict_and_moving_statistics():
    x = rand(4, 3, 2, 2)
    g, b = rand(3), rand(3)
    mm, mv = f64(np.zeros(3)), f64(np.ones(3))
    with autograd.record():  # training mode: batch statistics, moving ones updated
        y, mean, inv = nd.BatchNorm(
            f64(x), f64(g), f64(b), mm, mv, fix_gamma=False, output_mean_var=True
        )
    bm, bv = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.asnumpy(), _bn_ref(x, g, b, bm, bv, 1e-3, 1), rtol=1e-12)
    np.testing.assert_allclose(mean.asnumpy(), bm)
    np.testing.assert_allclose(inv.asnumpy(), 1 / np.sqrt(bv + 1e-3))  # MXNet: inverse std
    np.testing.assert_allclose(mm.asnumpy(), 0.1 * bm)
    np.testing.assert_allclose(mv.asnumpy(), 0.9 + 0.1 * bv)
    # predict mode: the moving statistics, unchanged; fix_gamma (the default) means gamma = 1
    before = mm.asnumpy().copy()
    y2 = nd.BatchNorm(f64(x), f64(g), f64(b), mm, mv)
    np.testing.assert_allclose(
        y2.asnumpy(), _bn_ref(x, np.ones(3), b, before, mv.asnumpy(), 1e-3, 1), rtol=1e-12
    )
    np.testing.assert_array_equal(mm.asnumpy(), before)
    # use_global_stats in training mode, another axis
    with autograd.record():
        y3 = nd.BatchNorm(
            f64(x),
            f64(rand(2)),
            f64(b[:2]),
            f64(np.zeros(2)),
            f64(np.ones(2) * 2),
            axis=3,
            use_global_stats=True,
            eps=0.01,
        )
    np.testing.assert_allclose(
        y3.asnumpy(),
        _bn_ref(x, np.ones(2), b[:2], np.zeros(2), np.full(2, 2.0), 0.01, 3),
        rtol=1e-12,
    )


def test_batchnorm_fix_gamma_gives_gamma_a_zero_gradient():
    g = f64(rand(3))
    g.attach_grad()
    x = f64(rand(4, 3))
    with autograd.record():
        y = nd.BatchNorm(x, g, f64(rand(3)), f64(np.zeros(3)), f64(np.ones(3)))
        loss = (y * y).sum()
    (dg,) = autograd.grad(loss, [g])
    np.testing.assert_array_equal(dg.asnumpy(), np.zeros(3))


def test_instance_group_and_layer_norm_operators():
    x = rand(2, 4, 3, 2)
    g, b = rand(4), rand(4)
    y = nd.InstanceNorm(f64(x), f64(g), f64(b))
    m, v = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    ref = (x - m) / np.sqrt(v + 1e-3) * g.reshape(1, 4, 1, 1) + b.reshape(1, 4, 1, 1)
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-12)
    # GroupNorm: gamma and beta per group in MXNet 1.x
    gg, gb = rand(2), rand(2)
    y, mean, std = nd.GroupNorm(f64(x), f64(gg), f64(gb), num_groups=2, output_mean_var=True)
    xg = x.reshape(2, 2, 2, 3, 2)
    m, v = xg.mean(axis=(2, 3, 4), keepdims=True), xg.var(axis=(2, 3, 4), keepdims=True)
    ref = (
        (xg - m) / np.sqrt(v + 1e-5) * gg.reshape(1, 2, 1, 1, 1) + gb.reshape(1, 2, 1, 1, 1)
    ).reshape(x.shape)
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(mean.asnumpy(), m.reshape(2, 2))
    np.testing.assert_allclose(std.asnumpy(), np.sqrt(v + 1e-5).reshape(2, 2))
    # LayerNorm operator: axis -1 by default, mean and std with the axis kept
    lg, lb = rand(2), rand(2)
    y, mean, std = nd.LayerNorm(f64(x), f64(lg), f64(lb), output_mean_var=True)
    m, v = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    np.testing.assert_allclose(y.asnumpy(), (x - m) / np.sqrt(v + 1e-5) * lg + lb, rtol=1e-12)
    assert mean.shape == (2, 4, 3, 1) and std.shape == (2, 4, 3, 1)
    y1 = nd.LayerNorm(f64(x), f64(rand(4)), f64(rand(4)), axis=1, eps=0.1)
    assert y1.shape == x.shape


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_matches_numpy(mode):
    x = rand(2, 1, 3, 4)
    pw = (0, 0, 0, 0, 2, 1, 1, 3)
    y = nd.Pad(f64(x), mode=mode, pad_width=pw, constant_value=1.5)
    kw = {"constant_values": 1.5} if mode == "constant" else {}
    ref = np.pad(x, [(0, 0), (0, 0), (2, 1), (1, 3)], mode=mode, **kw)
    np.testing.assert_array_equal(y.asnumpy(), ref)
    x5 = rand(1, 2, 3, 2, 3)
    y5 = nd.Pad(f64(x5), mode=mode, pad_width=(0, 0, 0, 0, 1, 1, 0, 1, 2, 0))
    ref5 = np.pad(x5, [(0, 0), (0, 0), (1, 1), (0, 1), (2, 0)], mode=mode)
    np.testing.assert_array_equal(y5.asnumpy(), ref5)


def test_im2col_col2im_match_loops():
    x = rand(2, 3, 5, 6)
    k, s, d, p = (2, 3), (2, 1), (1, 2), (1, 1)
    cols = nd.im2col(f64(x), kernel=k, stride=s, dilate=d, pad=p)
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    oh = (5 + 2 - 1 * (2 - 1) - 1) // 2 + 1
    ow = (6 + 2 - 2 * (3 - 1) - 1) // 1 + 1
    ref = np.zeros((2, 3 * 6, oh * ow))
    for n, c, i, j, a, b in itertools.product(
        range(2), range(3), range(2), range(3), range(oh), range(ow)
    ):
        ref[n, c * 6 + i * 3 + j, a * ow + b] = xp[n, c, a * 2 + i, b + 2 * j]
    np.testing.assert_array_equal(cols.asnumpy(), ref)
    # col2im sums the blocks back: the adjoint of im2col
    u = rand(*ref.shape)
    img = nd.col2im(f64(u), output_size=(5, 6), kernel=k, stride=s, dilate=d, pad=p)
    back = np.zeros_like(xp)
    for n, c, i, j, a, b in itertools.product(
        range(2), range(3), range(2), range(3), range(oh), range(ow)
    ):
        back[n, c, a * 2 + i, b + 2 * j] += u[n, c * 6 + i * 3 + j, a * ow + b]
    np.testing.assert_allclose(img.asnumpy(), back[:, :, 1:-1, 1:-1], rtol=1e-12)


def test_depth_to_space_and_back_as_mxnet_documents():
    x = nd.array(np.arange(24).reshape(1, 4, 2, 3))
    y = nd.depth_to_space(x, 2)
    # the example of MXNet 1.9's documentation
    want = [
        [0, 6, 1, 7, 2, 8],
        [12, 18, 13, 19, 14, 20],
        [3, 9, 4, 10, 5, 11],
        [15, 21, 16, 22, 17, 23],
    ]
    np.testing.assert_array_equal(y.asnumpy()[0, 0], want)
    np.testing.assert_array_equal(nd.space_to_depth(y, block_size=2).asnumpy(), x.asnumpy())
    s2d = nd.space_to_depth(nd.array(np.arange(24).reshape(1, 1, 4, 6)), 2).asnumpy()
    # MXNet's example: the first channel takes every other element of every other row
    np.testing.assert_array_equal(s2d[0, 0], [[0, 2, 4], [12, 14, 16]])
    np.testing.assert_array_equal(s2d[0, 1], [[1, 3, 5], [13, 15, 17]])


def test_lenet_matches_mxnet_191_output():
    params = nd.load(str(DATA / "lenet.params"))
    expected = json.loads((DATA / "expected.json").read_text())["nets"]["lenet"]
    x = nd.array(np.sin(0.37 * np.arange(1568)).reshape(2, 1, 28, 28))
    h = nd.relu(
        nd.Convolution(x, params["0.weight"], params["0.bias"], kernel=(5, 5), num_filter=6)
    )
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
    h = nd.relu(
        nd.Convolution(h, params["2.weight"], params["2.bias"], kernel=(5, 5), num_filter=16)
    )
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
    h = nd.relu(nd.FullyConnected(h, params["5.weight"], params["5.bias"], num_hidden=120))
    h = nd.relu(nd.FullyConnected(h, params["6.weight"], params["6.bias"], num_hidden=84))
    out = nd.FullyConnected(h, params["7.weight"], params["7.bias"], num_hidden=10)
    np.testing.assert_allclose(out.asnumpy().ravel(), expected["output"], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- derivatives (FD)

ND_FUNCS = {
    "Convolution": (
        lambda x, w, b: (
            nd.Convolution(
                x,
                w,
                b,
                kernel=(3, 2),
                stride=(2, 1),
                dilate=(1, 2),
                pad=(1, 1),
                num_filter=4,
                num_group=2,
            )
            ** 2
        ),
        [(2, 4, 5, 5), (4, 2, 3, 2), (4,)],
    ),
    "Deconvolution target_shape": (
        lambda x, w: nd.tanh(
            nd.Deconvolution(x, w, kernel=(3, 3), stride=(2, 2), target_shape=(6, 5), num_filter=2)
        ),
        [(1, 3, 3, 3), (3, 2, 3, 3)],
    ),
    "Pooling max same": (
        lambda x: nd.Pooling(x, kernel=(3,), stride=(2,), pooling_convention="same") ** 3,
        [(2, 2, 7)],
    ),
    "Pooling max global": (lambda x: nd.Pooling(x, global_pool=True) ** 2, [(2, 3, 3, 2)]),
    "Pooling avg global": (
        lambda x: nd.Pooling(x, pool_type="avg", global_pool=True) ** 2,
        [(2, 3, 3, 2)],
    ),
    "Pooling lp3": (
        lambda x: nd.Pooling(x + 3.0, kernel=(2, 2), pool_type="lp", p_value=3),
        [(1, 2, 3, 3)],
    ),
    "Pooling sum 3-D": (
        lambda x: nd.Pooling(x, kernel=(2, 1, 2), stride=(1, 1, 2), pool_type="sum") ** 2,
        [(1, 2, 3, 2, 4)],
    ),
    "UpSampling nearest": (
        lambda x, z: (
            nd.UpSampling(x, z, scale=2, sample_type="nearest", multi_input_mode="sum") ** 2
        ),
        [(1, 2, 2, 3), (1, 2, 4, 6)],
    ),
    "UpSampling bilinear": (
        lambda x, w: nd.UpSampling(x, w, scale=2, sample_type="bilinear", num_filter=2) ** 2,
        [(1, 2, 2, 3), (2, 1, 4, 4)],
    ),
    "BatchNorm train": (
        lambda x, g, b: (
            nd.BatchNorm(
                x, g, b, nd.zeros(3, dtype="float64"), nd.ones(3, dtype="float64"), fix_gamma=False
            )
            ** 2
        ),
        [(4, 3, 2), (3,), (3,)],
    ),
    "InstanceNorm": (lambda x, g, b: nd.InstanceNorm(x, g, b) ** 2, [(2, 3, 4), (3,), (3,)]),
    "GroupNorm": (
        lambda x, g, b: nd.GroupNorm(x, g, b, num_groups=2) ** 2,
        [(2, 4, 3), (2,), (2,)],
    ),
    "LayerNorm": (lambda x, g, b: nd.LayerNorm(x, g, b, axis=1) ** 2, [(2, 3, 4), (3,), (3,)]),
    "Pad reflect": (
        lambda x: nd.Pad(x, mode="reflect", pad_width=(0, 0, 0, 0, 1, 2, 2, 0)) ** 2,
        [(1, 2, 3, 3)],
    ),
    "Pad edge": (
        lambda x: nd.Pad(x, mode="edge", pad_width=(0, 0, 0, 0, 1, 2, 2, 0)) ** 2,
        [(1, 2, 3, 3)],
    ),
    "Pad constant": (
        lambda x: (
            nd.Pad(x, mode="constant", pad_width=(0, 0, 0, 0, 1, 0, 0, 1), constant_value=2.0) ** 2
        ),
        [(1, 2, 3, 3)],
    ),
    "im2col col2im": (
        lambda x: nd.col2im(
            nd.im2col(x, kernel=(2, 2), pad=(1, 0)) ** 2,
            output_size=(3, 4),
            kernel=(2, 2),
            pad=(1, 0),
        ),
        [(1, 2, 3, 4)],
    ),
    "depth_to_space": (
        lambda x: nd.space_to_depth(nd.depth_to_space(x, 2) ** 2, 2),
        [(1, 4, 2, 3)],
    ),
}


@pytest.mark.parametrize("name", list(ND_FUNCS))
def test_nd_operator_derivatives_match_finite_differences(name):
    f, shapes = ND_FUNCS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    arrays = [rng.uniform(-1, 1, size=s) for s in shapes]
    for order in (1, 2):
        check_order(f, arrays, order, rng)


# ------------------------------------------------------------------- what a node keeps


def test_the_columns_do_not_outlive_the_forward_pass(monkeypatch):
    refs = []
    unfold = conv_ops._unfold

    def spy(*args, **kwargs):
        cols = unfold(*args, **kwargs)
        refs.append(weakref.ref(cols))
        return cols

    monkeypatch.setattr(conv_ops, "_unfold", spy)  # the forward's im2col
    monkeypatch.setattr(RAW, "unfold", spy)  # the backward pass's
    x = f64(rand(2, 3, 6, 6))
    w = f64(rand(4, 3, 3, 3))
    w.attach_grad()
    with autograd.record():
        y = nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True)
        loss = (y * y).sum()
    gc.collect()
    assert len(refs) == 1 and refs[0]() is None, "the graph keeps the im2col buffer"
    loss.backward()  # the backward pass recomputes the columns for the weight gradient
    assert len(refs) == 2
    ref = np.zeros(w.shape)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (3, 2, 1, 2)]:
        wp, wm = w.asnumpy().copy(), w.asnumpy().copy()
        wp[idx] += eps
        wm[idx] -= eps
        lp = (ref_conv(x.asnumpy(), wp, None, (1, 1), (1, 1), (0, 0), 1) ** 2).sum()
        lm = (ref_conv(x.asnumpy(), wm, None, (1, 1), (1, 1), (0, 0), 1) ** 2).sum()
        ref[idx] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(w.grad.asnumpy()[idx], ref[idx], rtol=1e-6)


# ------------------------------------------- derivatives of a network w.r.t. its input


def _critic(params):
    w1, b1, w2, b2, v = params

    def f(x):
        h = nd.tanh(nd.Convolution(x, w1, b1, kernel=(3, 3), pad=(1, 1), num_filter=3))
        h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2))
        h = nd.tanh(nd.Convolution(h, w2, b2, kernel=(2, 2), num_filter=2))
        h = nd.Pooling(h, kernel=(2, 2), pool_type="avg", global_pool=True)
        return nd.dot(nd.reshape(h, (0, -1)), v)

    return f


def _critic_params(dtype="float64"):
    rng = np.random.default_rng(5)
    shapes = [(3, 1, 3, 3), (3,), (2, 3, 2, 2), (2,), (2, 1)]
    return [nd.array(rng.uniform(-0.8, 0.8, size=s), dtype=dtype) for s in shapes]


def _penalty(params, x):
    """WGAN-GP's gradient penalty: mean over samples of (|d critic / d x| - 1)²."""
    xv = x.copy()
    xv.attach_grad()
    with autograd.record():
        (g,) = autograd.grad(_critic(params)(xv).sum(), [xv], create_graph=True)
        norm = nd.sqrt((g * g).sum(axis=(1, 2, 3)))
        return ((norm - 1.0) ** 2).mean()


def test_gradient_penalty_second_derivatives_match_finite_differences():
    params = _critic_params()
    for p in params:
        p.attach_grad()
    x = nd.array(RNG.uniform(-1, 1, size=(2, 1, 6, 6)), dtype="float64")
    with autograd.record():
        pen = _penalty(params, x)
    pen.backward()
    rng = np.random.default_rng(3)
    for i, p in enumerate(params):
        v = rng.standard_normal(p.shape)
        eps = 1e-6
        base = [q.copy() for q in params]
        plus = [q + eps * f64(v) if j == i else q for j, q in enumerate(base)]
        minus = [q - eps * f64(v) if j == i else q for j, q in enumerate(base)]
        fd = (float(_penalty(plus, x).asscalar()) - float(_penalty(minus, x).asscalar())) / (
            2 * eps
        )
        an = float((p.grad.asnumpy() * v).sum())
        assert abs(an - fd) <= 1e-6 * (1 + abs(fd)), (i, an, fd)
    # and the second derivative with respect to the input itself
    check_order(lambda z: _critic(_critic_params())(z), [x.asnumpy()], 2, rng)
    check_order(lambda z: _critic(_critic_params())(z), [x.asnumpy()], 3, rng)


def test_sciml_derivatives_of_a_conv_net_agree_with_nested_reverse_mode():
    from tapegrad import sciml

    params = _critic_params()
    f = _critic(params)

    def u(z):  # points (N, 16) -> images (N, 1, 4, 4) -> (N, 1)
        return f(nd.reshape(z, (-1, 1, 4, 4)))

    z = nd.array(RNG.uniform(-1, 1, size=(3, 16)), dtype="float64")
    zv = z.copy()
    zv.attach_grad()
    with autograd.record():
        (g,) = autograd.grad(u(zv).sum(), [zv], create_graph=True)
    np.testing.assert_allclose(sciml.gradient(u, z).asnumpy(), g.asnumpy(), rtol=1e-10, atol=1e-12)
    lap = np.zeros(3)
    for i in range(16):
        with autograd.record():
            (gi,) = autograd.grad(u(zv).sum(), [zv], create_graph=True)
            (hi,) = autograd.grad(gi[:, i].sum(), [zv])
        lap += hi.asnumpy()[:, i]
    np.testing.assert_allclose(sciml.laplacian(u, z).asnumpy()[:, 0], lap, rtol=1e-9, atol=1e-11)


def test_a_sciml_layer_differentiates_a_conv_net_to_third_order_and_trains_through_it():
    from tapegrad import sciml

    params = _critic_params()
    f = _critic(params)

    def u(z):
        return f(nd.reshape(z, (-1, 1, 4, 4)))

    z = nd.array(RNG.uniform(-1, 1, size=(2, 16)), dtype="float64")
    d3 = sciml.Derivative(u, order=3, wrt=5)
    zv = z.copy()
    zv.attach_grad()
    with autograd.record():  # nested reverse mode: d/dz5 three times
        (g1,) = autograd.grad(u(zv).sum(), [zv], create_graph=True)
        (g2,) = autograd.grad(g1[:, 5].sum(), [zv], create_graph=True)
        (g3,) = autograd.grad(g2[:, 5].sum(), [zv])
    np.testing.assert_allclose(d3(z).asnumpy()[:, 0], g3.asnumpy()[:, 5], rtol=1e-9, atol=1e-11)
    # a loss of the third derivative, differentiated with respect to a conv weight
    w = params[0]
    w.attach_grad()
    with autograd.record():
        loss = (d3(z) ** 2).sum()
    loss.backward()
    v = np.random.default_rng(2).standard_normal(w.shape)
    eps = 1e-6

    def loss_at(wv):
        q = [wv] + params[1:]
        return float(
            (
                sciml.Derivative(
                    lambda t: _critic(q)(nd.reshape(t, (-1, 1, 4, 4))), order=3, wrt=5
                )(z)
                ** 2
            )
            .sum()
            .asscalar()
        )

    fd = (loss_at(w + eps * f64(v)) - loss_at(w - eps * f64(v))) / (2 * eps)
    assert abs(float((w.grad.asnumpy() * v).sum()) - fd) <= 1e-6 * (1 + abs(fd))


# ------------------------------------------------------------------------------ errors


def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match) as info:
        fn(*args, **kwargs)
    assert "Fix:" in str(info.value)
    return info.value


def test_errors_name_the_operator_the_argument_and_the_fix():
    x, w = nd.ones((1, 2, 5, 5)), nd.ones((3, 2, 3, 3))
    b = nd.zeros(3)
    e = _raises(
        OperatorArgumentError,
        "Convolution: unknown argument 'kernal'",
        nd.Convolution,
        x,
        w,
        b,
        kernal=(3, 3),
        num_filter=3,
    )
    assert "kernel" in str(e)
    _raises(OperatorArgumentError, "kernel is required", nd.Convolution, x, w, b, num_filter=3)
    _raises(OperatorArgumentError, "num_filter is required", nd.Convolution, x, w, b, kernel=(3, 3))
    _raises(
        mx.base.ShapeError,
        r"expected \(4, 2, 3, 3\)",
        nd.Convolution,
        x,
        w,
        nd.zeros(4),
        kernel=(3, 3),
        num_filter=4,
    )
    _raises(
        OperatorArgumentError,
        "stride=.*3 entries but the kernel has 2",
        nd.Convolution,
        x,
        w,
        b,
        kernel=(3, 3),
        stride=(1, 1, 1),
        num_filter=3,
    )
    _raises(
        mx.base.ShapeError,
        "needs data of 5 dimensions",
        nd.Convolution,
        x,
        w,
        b,
        kernel=(3, 3, 3),
        num_filter=3,
    )
    _raises(
        OperatorArgumentError,
        r"a bias was given but no_bias=True \(the default here\)",
        nd.Deconvolution,
        x,
        nd.ones((2, 3, 3, 3)),
        nd.zeros(3),
        kernel=(3, 3),
        num_filter=3,
    )
    _raises(
        OperatorArgumentError,
        "GPU only",
        nd.Convolution,
        x,
        w,
        b,
        kernel=(3, 3),
        num_filter=3,
        layout="NHWC",
    )
    _raises(
        OperatorArgumentError,
        "the input bias is missing",
        nd.Convolution,
        x,
        w,
        kernel=(3, 3),
        num_filter=3,
    )
    _raises(
        OperatorArgumentError,
        "dtype float64",
        nd.Convolution,
        x,
        w.astype("float64"),
        b,
        kernel=(3, 3),
        num_filter=3,
    )
    _raises(
        mx.base.ShapeError,
        "exceeds the input",
        nd.Convolution,
        x,
        nd.ones((3, 2, 6, 6)),
        b,
        kernel=(6, 6),
        num_filter=3,
    )
    _raises(
        mx.base.ShapeError,
        "num_group=2 does not divide",
        nd.Convolution,
        nd.ones((1, 3, 5, 5)),
        w,
        b,
        kernel=(3, 3),
        num_filter=3,
        num_group=2,
    )
    _raises(
        OperatorArgumentError,
        "cudnn_tune",
        nd.Convolution,
        x,
        w,
        b,
        kernel=(3, 3),
        num_filter=3,
        cudnn_tune="best",
    )
    _raises(
        OperatorArgumentError,
        "adj=.*smaller than stride",
        nd.Deconvolution,
        x,
        nd.ones((2, 3, 3, 3)),
        kernel=(3, 3),
        num_filter=3,
        adj=(1, 1),
    )
    _raises(
        mx.base.ShapeError,
        "target_shape=.*too big",
        nd.Deconvolution,
        x,
        nd.ones((2, 3, 3, 3)),
        kernel=(3, 3),
        num_filter=3,
        target_shape=(9, 9),
    )
    _raises(
        OperatorArgumentError, "pool_type='mean'", nd.Pooling, x, kernel=(2, 2), pool_type="mean"
    )
    _raises(OperatorArgumentError, "needs p_value", nd.Pooling, x, kernel=(2, 2), pool_type="lp")
    _raises(
        OperatorArgumentError,
        "1-D pooling only",
        nd.Pooling,
        x,
        kernel=(2, 2),
        pooling_convention="same",
    )
    _raises(mx.base.ShapeError, "kernel=.* has 1 entries", nd.Pooling, x, kernel=(2,))
    _raises(
        OperatorArgumentError,
        "unknown argument 'strides'",
        nd.Pooling,
        x,
        kernel=(2, 2),
        strides=(2, 2),
    )
    _raises(
        OperatorArgumentError,
        "first two axes",
        nd.Pad,
        x,
        mode="edge",
        pad_width=(0, 1, 0, 0, 1, 1, 1, 1),
    )
    _raises(
        OperatorArgumentError,
        "smaller than the axis",
        nd.Pad,
        x,
        mode="reflect",
        pad_width=(0, 0, 0, 0, 5, 0, 0, 0),
    )
    _raises(
        mx.base.ShapeError,
        "4-D or 5-D",
        nd.Pad,
        nd.ones((2, 3)),
        mode="edge",
        pad_width=(0, 0, 1, 1),
    )
    _raises(OperatorArgumentError, "scale is required", nd.UpSampling, x, sample_type="nearest")
    _raises(
        mx.base.ShapeError,
        "gamma has shape",
        nd.BatchNorm,
        x,
        nd.ones(3),
        nd.zeros(2),
        nd.zeros(2),
        nd.ones(2),
    )
    _raises(
        mx.base.ShapeError,
        "num_groups=3 does not divide",
        nd.GroupNorm,
        x,
        nd.ones(3),
        nd.zeros(3),
        num_groups=3,
    )
    _raises(
        OperatorArgumentError, "axis=4 is outside", nd.LayerNorm, x, nd.ones(5), nd.zeros(5), axis=4
    )
    _raises(mx.base.ShapeError, "not divisible by block_size", nd.depth_to_space, x, 2)
    _raises(
        mx.base.ShapeError,
        "has 9 blocks",
        nd.col2im,
        nd.ones((1, 8, 9)),
        output_size=(5, 5),
        kernel=(2, 2),
    )


def test_a_failed_batchnorm_changes_no_moving_statistics():
    mm, mv = nd.zeros(3), nd.ones(3)
    with autograd.record(), pytest.raises(mx.base.ShapeError):
        nd.BatchNorm(nd.ones((2, 3)), nd.ones(3), nd.zeros(4), mm, mv)
    np.testing.assert_array_equal(mm.asnumpy(), np.zeros(3))
    np.testing.assert_array_equal(mv.asnumpy(), np.ones(3))


# ------------------------------------------------------------------ compiled (mx.jit)


def _convnet(x, w1, b1, w2, g, b, mm, mv):
    h = nd.relu(nd.Convolution(x, w1, b1, kernel=(3, 3), pad=(1, 1), num_filter=4))
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2))
    h = nd.BatchNorm(h, g, b, mm, mv, fix_gamma=False)
    h = nd.Pooling(
        nd.Convolution(h, w2, kernel=(2, 2), num_filter=3, no_bias=True), global_pool=True
    )
    return (h * h).sum()


def test_a_compiled_conv_net_recomputes_the_winners_and_replays_batchnorm():
    rng = np.random.default_rng(4)
    shapes = [(4, 2, 3, 3), (4,), (3, 4, 2, 2), (4,), (4,)]
    params = [rng.uniform(-1, 1, size=s) for s in shapes]
    jf = mx.jit(_convnet)
    stats = {
        "jit": [f64(np.zeros(4)), f64(np.ones(4))],
        "eager": [f64(np.zeros(4)), f64(np.ones(4))],
    }
    for _ in range(3):  # new data each call: other windows win, other batch statistics
        x = rng.uniform(-1, 1, size=(2, 2, 6, 6))
        res = {}
        for mode, f in (("jit", jf), ("eager", _convnet)):
            xs = [f64(a) for a in [x] + params]
            for a in xs:
                a.attach_grad()
            with autograd.record():
                y = f(*xs, *stats[mode])
            y.backward()
            res[mode] = [y.asnumpy()] + [a.grad.asnumpy() for a in xs]
        for a, b in zip(res["jit"], res["eager"]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        for a, b in zip(stats["jit"], stats["eager"]):
            np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-12)
    assert len(jf.plans) == 1 and "pool_winners" in jf.source
    assert not np.allclose(stats["jit"][0].asnumpy(), 0)  # the statistics did move


def test_weight_gradient_of_a_long_reduction_splits_and_stays_exact(monkeypatch):
    # 4 images of 66x66, 3x3 kernel: 16,384 output positions, the split product of _wgrad;
    # its first and second derivatives against the one-product formula and finite differences
    rng = np.random.default_rng(5)
    x = nd.array(rng.normal(size=(4, 2, 66, 66)), dtype="float64")
    w0 = rng.normal(size=(3, 2, 3, 3))
    v = rng.normal(size=w0.shape)

    def grads(split):
        monkeypatch.setattr(conv_ops, "_SPLIT_LONG", 16384 if split else 1 << 62)
        w = nd.array(w0, dtype="float64")
        w.attach_grad()
        with autograd.record():
            y = nd.Convolution(x, w, kernel=(3, 3), num_filter=3, no_bias=True)
            (g,) = autograd.grad((y * y).sum() / 2, [w], create_graph=True)
            gv = (g * nd.array(v, dtype="float64")).sum()
        gv.backward()
        return g.asnumpy(), w.grad.asnumpy()

    g_split, hv_split = grads(True)
    g_one, hv_one = grads(False)
    np.testing.assert_allclose(g_split, g_one, rtol=1e-12)
    np.testing.assert_allclose(hv_split, hv_one, rtol=1e-12)
    # the loss is quadratic in w: its Hessian-vector product is the change of the gradient
    monkeypatch.setattr(conv_ops, "_SPLIT_LONG", 16384)

    def grad_at(wv):
        w = nd.array(wv, dtype="float64")
        w.attach_grad()
        with autograd.record():
            y = nd.Convolution(x, w, kernel=(3, 3), num_filter=3, no_bias=True)
            ((y * y).sum() / 2).backward()
        return w.grad.asnumpy()

    fd = (grad_at(w0 + 1e-3 * v) - grad_at(w0 - 1e-3 * v)) / 2e-3
    np.testing.assert_allclose(hv_split, fd, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(g_split, grad_at(w0), rtol=1e-12)


@pytest.mark.parametrize(
    "shape", [(64, 16, 8, 8), (8, 256), (16, 4, 16, 16), (64, 6, 24, 24), (3, 2, 4)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_last_transposes_exactly_on_both_paths(shape, dtype):
    # rows of whole KiB take the padded copy (cache-set aliasing), others the direct one
    x = np.random.default_rng(3).normal(size=shape).astype(dtype)
    for a in (x, x[:, ::-1]):  # contiguous, and a strided view
        got = conv_ops._batch_last(a)
        want = np.moveaxis(a, 0, -1)
        assert got.flags.c_contiguous and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
