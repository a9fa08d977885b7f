"""``mx.nd`` operators of convolutional networks, with MXNet 1.9's names, arguments, defaults
and output shapes: ``Convolution``, ``Deconvolution``, ``Pooling``, ``UpSampling``,
``BatchNorm``, ``InstanceNorm``, ``GroupNorm``, ``LayerNorm``, ``Pad``, ``im2col``, ``col2im``,
``depth_to_space``, ``space_to_depth``.

They are composites: they check MXNet's arguments and call the primitives of
``tapegrad/ops/conv.py`` (convolution, deconvolution, unfold/fold, the max-pooling gather and
the window sums) and the existing ones (reshape, transpose, reductions, ...), so every
derivative of every order comes from the primitives' rules. Arguments MXNet does not know
raise an :class:`OperatorArgumentError`; ``workspace`` and ``cudnn_*`` are accepted and ignored
(there is no cuDNN here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..base import ShapeError, TapegradError, fmt_shape
from ..core import STATE, TAPE
from ..ops.conv import conv_out_size
from .ndarray import NDArray
from .ndarray_functions import _write_out as write_out

__all__ = [
    "Convolution",
    "Deconvolution",
    "Pooling",
    "UpSampling",
    "BatchNorm",
    "InstanceNorm",
    "GroupNorm",
    "LayerNorm",
    "Pad",
    "pad",
    "im2col",
    "col2im",
    "depth_to_space",
    "space_to_depth",
]

T = TAPE


class OperatorArgumentError(TapegradError, ValueError):
    """An argument of an ``mx.nd`` operator that MXNet 1.9 would refuse (unknown keyword,
    value out of range, wrong length)."""


# ---------------------------------------------------------------------------- checking


def _fail(fn: str, what: str, fix: str) -> OperatorArgumentError:
    return OperatorArgumentError(f"{fn}: {what}. Fix: {fix}.")


def _no_extra(fn: str, kwargs: dict, allowed: str) -> None:
    if kwargs:
        names = ", ".join(repr(k) for k in sorted(kwargs))
        raise _fail(
            fn,
            f"unknown argument{'s' if len(kwargs) > 1 else ''} {names} (MXNet 1.9's {fn} takes "
            f"{allowed})",
            "remove or rename it",
        )


def _array(fn: str, name: str, a: Any, required: bool = True) -> Any:
    if a is None:
        if required:
            raise _fail(fn, f"the input {name} is missing", f"pass {name}= (an NDArray)")
        return None
    if not isinstance(a, NDArray):
        raise _fail(
            fn,
            f"{name} must be an NDArray, got {type(a).__name__}",
            f"wrap it: mx.nd.array({name})",
        )
    return a


def _float(fn: str, name: str, a: NDArray) -> None:
    if a._data.dtype.kind != "f":
        raise _fail(
            fn,
            f"{name} has dtype {a._data.dtype}; this operator needs floats",
            f"{name}.astype('float32')",
        )


def _same_dtype(fn: str, data: NDArray, **others: Any) -> None:
    for name, a in others.items():
        if a is not None and a._data.dtype != data._data.dtype:
            dt = data._data.dtype
            raise _fail(
                fn,
                f"{name} has dtype {a._data.dtype} but data has dtype {dt} (MXNet requires "
                "one dtype)",
                f"cast one of them, e.g. {name}.astype('{dt}')",
            )


def _int(fn: str, name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < low:
        raise _fail(fn, f"{name}={v!r} must be an integer >= {low}", f"pass an integer >= {low}")
    return int(v)


def _tuple(fn: str, name: str, v: Any, n: int, default: int, low: int) -> tuple:
    """MXNet's shape arguments: ``()``/None mean ``default`` on each of the ``n`` spatial
    axes; an int is a 1-tuple (as MXNet parses it); the length must be ``n``."""
    if v is None or (isinstance(v, (tuple, list)) and len(v) == 0):
        return (default,) * n
    t = (v,) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    if not isinstance(t, (tuple, list)):
        raise _fail(fn, f"{name}={v!r} is not a tuple of integers", f"pass {name}=(...)")
    t = tuple(t)
    if len(t) != n:
        raise _fail(
            fn,
            f"{name}={v!r} has {len(t)} entries but the kernel has {n} spatial dimensions",
            f"pass {n} values, e.g. {name}={(t[0] if t else default,) * n}",
        )
    return tuple(_int(fn, f"{name}[{i}]", x, low) for i, x in enumerate(t))


def _kernel(fn: str, kernel: Any) -> tuple:
    if kernel is None or (isinstance(kernel, (tuple, list)) and len(kernel) == 0):
        raise _fail(fn, "kernel is required", "pass kernel=(kh, kw) (1 to 3 values)")
    k = (kernel,) if isinstance(kernel, (int, np.integer)) else kernel
    if not isinstance(k, (tuple, list)) or not 1 <= len(k) <= 3:
        raise _fail(
            fn,
            f"kernel={kernel!r} must have 1, 2 or 3 entries",
            "pass kernel=(kw,), (kh, kw) or (kd, kh, kw)",
        )
    return tuple(_int(fn, f"kernel[{i}]", v, 1) for i, v in enumerate(k))


_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_CHANNEL_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


def _layout(fn: str, layout: Any, n: int, channel_last_ok: bool = False) -> bool:
    """True when the layout is channels-last (accepted by Pooling only)."""
    if layout is None or layout == _LAYOUTS[n]:
        return False
    if layout == _CHANNEL_LAST[n]:
        if channel_last_ok:
            return True
        raise _fail(
            fn,
            f"layout={layout!r} is supported by MXNet on GPU only",
            f"transpose the data to {_LAYOUTS[n]} (channels first)",
        )
    raise _fail(
        fn,
        f"layout={layout!r} does not fit a {n}-D kernel",
        f"use layout={_LAYOUTS[n]!r} (or leave it unset)",
    )


def _ndim(fn: str, data: NDArray, n: int) -> None:
    if data.ndim != n + 2:
        raise ShapeError(
            f"{fn}: a {n}-D kernel needs data of {n + 2} dimensions ({_LAYOUTS[n]}), got shape "
            f"{fmt_shape(data.shape)}. Fix: reshape the data or give a kernel of "
            f"{max(data.ndim - 2, 0)} entries."
        )


def _cudnn(fn: str, cudnn_tune: Any, workspace: Any) -> None:
    if cudnn_tune not in (None, "off", "limited_workspace", "fastest"):
        raise _fail(
            fn,
            f"cudnn_tune={cudnn_tune!r} is not one of None, 'off', 'limited_workspace', 'fastest'",
            "pass one of those (it is ignored on the CPU)",
        )
    _int(fn, "workspace", workspace, 0)


def _result(fn: str, out: Any, r: Any) -> Any:
    if out is None:
        return r
    if isinstance(r, list):
        raise _fail(fn, "out= cannot hold several outputs", "drop out= and assign the results")
    return write_out(fn, out, r)


# ------------------------------------------------------------------------ convolution

_CONV_ARGS = (
    "data, weight, bias, kernel, stride, dilate, pad, num_filter, num_group, workspace, "
    "no_bias, cudnn_tune, cudnn_off, layout, out, name"
)


def _conv_common(fn, data, weight, bias, kernel, stride, dilate, pad, num_group, no_bias):
    data = _array(fn, "data", data)
    weight = _array(fn, "weight", weight)
    _float(fn, "data", data)
    k = _kernel(fn, kernel)
    n = len(k)
    _ndim(fn, data, n)
    s = _tuple(fn, "stride", stride, n, 1, 1)
    d = _tuple(fn, "dilate", dilate, n, 1, 1)
    p = _tuple(fn, "pad", pad, n, 0, 0)
    g = _int(fn, "num_group", num_group, 1)
    if no_bias and bias is not None:
        # MXNet refuses the third input (the operator then takes two); ignoring it would
        # silently drop a bias the caller meant to add (Deconvolution's default is no_bias)
        default = " (the default here)" if fn == "Deconvolution" else ""
        raise _fail(
            fn,
            f"a bias was given but no_bias=True{default}",
            "pass no_bias=False to add it, or drop the bias",
        )
    b = None if no_bias else _array(fn, "bias", bias)
    _same_dtype(fn, data, weight=weight, bias=b)
    if data.shape[1] % g:
        raise ShapeError(
            f"{fn}: num_group={g} does not divide the {data.shape[1]} input channels of data "
            f"{fmt_shape(data.shape)}. Fix: choose num_group dividing {data.shape[1]}."
        )
    return data, weight, b, k, s, d, p, g


def Convolution(
    data: Any = None,
    weight: Any = None,
    bias: Any = None,
    kernel: Any = None,
    stride: Any = (),
    dilate: Any = (),
    pad: Any = (),
    num_filter: Any = None,
    num_group: int = 1,
    workspace: int = 1024,
    no_bias: bool = False,
    cudnn_tune: Any = None,
    cudnn_off: bool = False,
    layout: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``Convolution``: the 1-, 2- or 3-D cross-correlation of ``data``
    ``(N, C, *spatial)`` with ``weight`` ``(num_filter, C/num_group, *kernel)``, plus ``bias``
    ``(num_filter,)`` unless ``no_bias``. Output length per axis
    ``floor((x + 2 pad - dilate (kernel - 1) - 1) / stride) + 1``.

    >>> import tapegrad as mx
    >>> x = mx.nd.ones((1, 1, 4, 4)); w = mx.nd.ones((2, 1, 3, 3)); b = mx.nd.array([0, 1])
    >>> mx.nd.Convolution(x, w, b, kernel=(3, 3), num_filter=2).asnumpy()[0, :, 0, 0].tolist()
    [9.0, 10.0]
    """
    fn = "Convolution"
    _no_extra(fn, kwargs, _CONV_ARGS)
    _cudnn(fn, cudnn_tune, workspace)
    data, weight, b, k, s, d, p, g = _conv_common(
        fn, data, weight, bias, kernel, stride, dilate, pad, num_group, no_bias
    )
    n = len(k)
    _layout(fn, layout, n)
    if num_filter is None:
        raise _fail(fn, "num_filter is required", f"pass num_filter={weight.shape[0]}")
    f = _int(fn, "num_filter", num_filter, 1)
    if f % g:
        raise _fail(fn, f"num_filter={f} is not a multiple of num_group={g}", "fix one of them")
    want = (f, data.shape[1] // g) + k
    if tuple(weight.shape) != want:
        raise ShapeError(
            f"{fn}: weight of shape {fmt_shape(weight.shape)} for data {fmt_shape(data.shape)}, "
            f"num_filter={f}, num_group={g}, kernel={k}: expected {fmt_shape(want)} "
            "(num_filter, channels / num_group, *kernel). Fix: pass a weight of that shape."
        )
    if b is not None and tuple(b.shape) != (f,):
        raise ShapeError(
            f"{fn}: bias of shape {fmt_shape(b.shape)}, expected ({f},). Fix: pass a bias of "
            f"shape ({f},) or no_bias=True."
        )
    for i in range(n):
        if d[i] * (k[i] - 1) + 1 > data.shape[2 + i] + 2 * p[i]:
            raise ShapeError(
                f"{fn}: the kernel {k} (dilate {d}) exceeds the input {fmt_shape(data.shape)} "
                f"padded by {p} on axis {2 + i}. Fix: a smaller kernel or more padding."
            )
    args = (data, weight) if b is None else (data, weight, b)
    r = T.convolution(*args, stride=s, dilate=d, pad=p, groups=g)
    return _result(fn, out, r)


def Deconvolution(
    data: Any = None,
    weight: Any = None,
    bias: Any = None,
    kernel: Any = None,
    stride: Any = (),
    dilate: Any = (),
    pad: Any = (),
    adj: Any = (),
    target_shape: Any = (),
    num_filter: Any = None,
    num_group: int = 1,
    workspace: int = 512,
    no_bias: bool = True,
    cudnn_tune: Any = None,
    cudnn_off: bool = False,
    layout: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``Deconvolution`` (transposed convolution, the adjoint of ``Convolution`` with
    respect to its data): ``data`` ``(N, C, *spatial)``, ``weight``
    ``(C, num_filter/num_group, *kernel)``; output length per axis
    ``stride (x - 1) + dilate (kernel - 1) + 1 - 2 pad + adj``. ``target_shape`` (non-zero)
    sets the output lengths and overrides ``pad`` and ``adj`` (MXNet's rule). ``no_bias``
    defaults to True, as in MXNet.
    """
    fn = "Deconvolution"
    _no_extra(fn, kwargs, _CONV_ARGS.replace("pad,", "pad, adj, target_shape,"))
    _cudnn(fn, cudnn_tune, workspace)
    data, weight, b, k, s, d, p, g = _conv_common(
        fn, data, weight, bias, kernel, stride, dilate, pad, num_group, no_bias
    )
    n = len(k)
    _layout(fn, layout, n)
    a = _tuple(fn, "adj", adj, n, 0, 0)
    ts = _tuple(fn, "target_shape", target_shape, n, 0, 0)
    if num_filter is None:
        raise _fail(fn, "num_filter is required", f"pass num_filter={weight.shape[1] * g}")
    f = _int(fn, "num_filter", num_filter, 1)
    if f % g:
        raise _fail(fn, f"num_filter={f} is not a multiple of num_group={g}", "fix one of them")
    want = (data.shape[1], f // g) + k
    if tuple(weight.shape) != want:
        raise ShapeError(
            f"{fn}: weight of shape {fmt_shape(weight.shape)} for data {fmt_shape(data.shape)}, "
            f"num_filter={f}, num_group={g}, kernel={k}: expected {fmt_shape(want)} "
            "(channels, num_filter / num_group, *kernel). Fix: pass a weight of that shape."
        )
    if b is not None and tuple(b.shape) != (f,):
        raise ShapeError(
            f"{fn}: bias of shape {fmt_shape(b.shape)}, expected ({f},). Fix: pass a bias of "
            f"shape ({f},) or no_bias=True."
        )
    full = tuple(s[i] * (data.shape[2 + i] - 1) + d[i] * (k[i] - 1) + 1 for i in range(n))
    if any(ts):
        # MXNet's InferPad: the padding that gives target_shape, an odd remainder in adj
        for i in range(n):
            if full[i] < ts[i]:
                raise ShapeError(
                    f"{fn}: target_shape={ts} is too big: axis {2 + i} can reach at most "
                    f"{full[i]}. Fix: a smaller target_shape or a larger stride."
                )
        extra = tuple(full[i] - ts[i] for i in range(n))
        a = tuple(e % 2 for e in extra)
        p = tuple((e + 1) // 2 for e in extra)
    for i in range(n):
        if a[i] >= s[i]:
            raise _fail(
                fn,
                f"adj={a} must be smaller than stride={s} on every axis"
                + (f" (computed from target_shape={ts})" if any(ts) else ""),
                "reduce adj or increase the stride",
            )
    sp = tuple(full[i] - 2 * p[i] + a[i] for i in range(n))
    if any(v < 1 for v in sp):
        raise ShapeError(
            f"{fn}: the output would have spatial shape {sp}: the padding {p} is too large. "
            "Fix: reduce pad."
        )
    args = (data, weight) if b is None else (data, weight, b)
    r = T.deconvolution(*args, stride=s, dilate=d, pad=p, adj=a, groups=g)
    return _result(fn, out, r)


# ---------------------------------------------------------------------------- pooling

_POOL_ARGS = (
    "data, kernel, pool_type, global_pool, cudnn_off, pooling_convention, stride, pad, "
    "p_value, count_include_pad, layout, out, name"
)


def _pool_geometry(fn, size, k, s, p, convention):
    """(output length, padding after) along one axis, by MXNet's pooling conventions."""
    if convention == "valid":
        o = 1 + (size + 2 * p - k) // s
    elif convention == "full":
        o = 1 + math.ceil((size + 2 * p - k) / s)
    else:  # same
        o = math.ceil((size + 2 * p) / s)
    hi = max(p, (o - 1) * s + k - size - p)
    return o, hi


def _safe_root(s: NDArray, p: int) -> NDArray:
    """sqrt or cbrt whose derivative is 0 where ``s`` is 0 (MXNet's Lp-pooling gradient)."""
    zero = s == 0
    root = T.sqrt if p == 2 else T.cbrt
    return root(T.where(zero, 1.0, s)) * (1.0 - zero)


def _max_pool(x: NDArray, k: tuple, s: tuple, lo: tuple, hi: tuple) -> NDArray:
    """The winners of every window (recorded, so a compiled function recomputes them), then
    the input gathered there; MXNet's lowest value where a window has no winner."""
    idx = T.pool_winners(x, kernel=k, stride=s, lo=lo, hi=hi)
    unique = all(si >= ki for si, ki in zip(s, k))
    fill = float(np.finfo(x.dtype).min)
    return T.pool_gather(x, idx, shape=tuple(x.shape), fill=fill, unique=unique)


def Pooling(
    data: Any = None,
    kernel: Any = (),
    pool_type: str = "max",
    global_pool: bool = False,
    cudnn_off: bool = False,
    pooling_convention: str = "valid",
    stride: Any = (),
    pad: Any = (),
    p_value: Any = None,
    count_include_pad: Any = None,
    layout: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``Pooling`` over the 1, 2 or 3 trailing axes of ``data`` (NCW, NCHW, NCDHW;
    channels-last layouts too). ``pool_type``: ``'max'`` (padding never wins; on ties the
    first maximum in scan order gets the gradient, as in MXNet), ``'avg'`` (divided by the
    window's size within the padded input, or by its valid elements when
    ``count_include_pad=False``), ``'sum'``, ``'lp'`` (``(sum x^p)^(1/p)`` for ``p_value`` 1, 2
    or 3, without absolute values, as MXNet). ``stride`` defaults to 1 (the operator's
    default, unlike Gluon's pooling layers). ``pooling_convention``: ``'valid'`` (floor),
    ``'full'`` (ceil) or ``'same'`` (``ceil(x / stride)``, 1-D only, no padding).
    ``global_pool`` pools each channel's whole map to size 1.

    >>> import tapegrad as mx
    >>> x = mx.nd.arange(16).reshape((1, 1, 4, 4))
    >>> mx.nd.Pooling(x, kernel=(2, 2), stride=(2, 2)).asnumpy()[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    fn = "Pooling"
    _no_extra(fn, kwargs, _POOL_ARGS)
    data = _array(fn, "data", data)
    _float(fn, "data", data)
    if not 3 <= data.ndim <= 5:
        raise ShapeError(
            f"{fn}: data must be 3-D (N, C, W), 4-D (N, C, H, W) or 5-D (N, C, D, H, W), got "
            f"shape {fmt_shape(data.shape)}. Fix: reshape the data."
        )
    if pool_type not in ("max", "avg", "sum", "lp"):
        raise _fail(fn, f"pool_type={pool_type!r} is unknown", "use 'max', 'avg', 'sum' or 'lp'")
    if pooling_convention not in ("valid", "full", "same"):
        raise _fail(
            fn,
            f"pooling_convention={pooling_convention!r} is unknown",
            "use 'valid', 'full' or 'same'",
        )
    p_val = 1
    if pool_type == "lp":
        if p_value is None:
            raise _fail(fn, "pool_type='lp' needs p_value", "pass p_value=1, 2 or 3")
        p_val = _int(fn, "p_value", p_value, 1)
        if p_val > 3:
            raise _fail(fn, f"p_value={p_val} is not supported (MXNet: 1, 2, 3)", "use 1, 2 or 3")
    n = data.ndim - 2
    last = _layout(fn, layout, n, channel_last_ok=True)
    x = data
    if last:  # channels last: pool the channels-first view and transpose back
        x = T.transpose(data, axes=(0, n + 1) + tuple(range(1, n + 1)))
    if global_pool:
        r = _global_pool(x, pool_type, p_val)
    else:
        k = _kernel(fn, kernel)
        if len(k) != n:
            raise ShapeError(
                f"{fn}: kernel={k} has {len(k)} entries but data of shape "
                f"{fmt_shape(data.shape)} has {n} spatial axes. Fix: give {n} kernel sizes."
            )
        s = _tuple(fn, "stride", stride, n, 1, 1)
        p = _tuple(fn, "pad", pad, n, 0, 0)
        if pooling_convention == "same":
            if n != 1:
                raise _fail(
                    fn,
                    "pooling_convention='same' supports 1-D pooling only (MXNet 1.9)",
                    "use 'valid' or 'full', or pad the input with Pad",
                )
            if any(p):
                raise _fail(fn, "pooling_convention='same' disables pad", "leave pad unset")
        sp = tuple(x.shape[2:])
        for i in range(n):
            if k[i] > sp[i] + 2 * p[i]:
                raise ShapeError(
                    f"{fn}: kernel {k} exceeds the input {fmt_shape(data.shape)} padded by {p} "
                    f"on spatial axis {i}. Fix: a smaller kernel or more padding."
                )
        geo = [_pool_geometry(fn, sp[i], k[i], s[i], p[i], pooling_convention) for i in range(n)]
        hi = tuple(h for _, h in geo)
        osp = tuple(o for o, _ in geo)
        if pool_type == "max":
            r = _max_pool(x, k, s, p, hi)
        else:
            v = x if p_val == 1 else (T.square(x) if p_val == 2 else x * x * x)
            r = T.window_sum(v, kernel=k, stride=s, lo=p, hi=hi)
            if pool_type == "avg":
                incl = True if count_include_pad is None else bool(count_include_pad)
                r = r * _avg_scale(sp, k, s, p, osp, incl, x.dtype)
            elif pool_type == "lp" and p_val > 1:
                r = _safe_root(r, p_val)
    if last:
        r = T.transpose(r, axes=(0,) + tuple(range(2, n + 2)) + (1,))
    return _result(fn, out, r)


def _avg_scale(sp, k, s, p, osp, include_pad, dtype) -> np.ndarray:
    """1 / (window size) per output position, MXNet's rule: the window is clipped to the
    padded input (``count_include_pad``) or to the input itself."""
    scale = np.ones((), dtype=np.float64)
    for i in range(len(sp)):
        start = np.arange(osp[i]) * s[i] - p[i]
        end = np.minimum(start + k[i], sp[i] + p[i])
        if include_pad:
            size = end - start
        else:
            size = np.minimum(end, sp[i]) - np.maximum(start, 0)
        scale = np.multiply.outer(scale, 1.0 / np.maximum(size, 1))
    return scale.astype(dtype)


def _global_pool(x: NDArray, pool_type: str, p_val: int) -> NDArray:
    axes = tuple(range(2, x.ndim))
    if pool_type == "max":
        k = tuple(x.shape[2:])
        return _max_pool(x, k, (1,) * len(k), (0,) * len(k), (0,) * len(k))
    if pool_type == "avg":
        return T.mean(x, axis=axes, keepdims=True)
    v = x if p_val == 1 else (T.square(x) if p_val == 2 else x * x * x)
    r = T.sum(v, axis=axes, keepdims=True)
    return r if pool_type == "sum" or p_val == 1 else _safe_root(r, p_val)


# ------------------------------------------------------------------------- upsampling


def _nearest(x: NDArray, s: int) -> NDArray:
    if s == 1:
        return x
    n, c, h, w = x.shape
    r = T.broadcast_to(T.reshape(x, shape=(n, c, h, 1, w, 1)), shape=(n, c, h, s, w, s))
    return T.reshape(r, shape=(n, c, h * s, w * s))


def UpSampling(
    *data: Any,
    scale: Any = None,
    sample_type: Any = None,
    num_filter: int = 0,
    multi_input_mode: str = "concat",
    num_args: Any = None,
    workspace: int = 512,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``UpSampling`` of 4-D (NCHW) inputs by ``scale``. ``'nearest'``: every input
    is repeated to ``scale`` times the first input's height and width (each input's own
    factor must be a whole number), then concatenated along the channels
    (``multi_input_mode='concat'``) or added (``'sum'``). ``'bilinear'``: ``data, weight``,
    a depthwise ``Deconvolution`` with kernel ``2 scale - scale % 2``, stride ``scale`` and
    pad ``ceil((scale - 1) / 2)``, as MXNet computes it (the weight is an input; MXNet's
    ``Bilinear`` initializer fills it). ``num_args`` is the number of inputs (set from them).
    """
    fn = "UpSampling"
    _no_extra(
        fn,
        kwargs,
        "*data, scale, sample_type, num_filter, multi_input_mode, num_args, workspace, out, name",
    )
    _int(fn, "workspace", workspace, 0)
    if scale is None:
        raise _fail(fn, "scale is required", "pass scale=2 (an integer >= 1)")
    sc = _int(fn, "scale", scale, 1)
    if sample_type is None:
        raise _fail(fn, "sample_type is required", "pass sample_type='nearest' or 'bilinear'")
    if sample_type not in ("nearest", "bilinear"):
        raise _fail(fn, f"sample_type={sample_type!r} is unknown", "use 'nearest' or 'bilinear'")
    if multi_input_mode not in ("concat", "sum"):
        raise _fail(
            fn, f"multi_input_mode={multi_input_mode!r} is unknown", "use 'concat' or 'sum'"
        )
    if not data:
        raise _fail(fn, "no input given", "pass the arrays as positional arguments")
    if num_args is not None and _int(fn, "num_args", num_args, 1) != len(data):
        raise _fail(
            fn,
            f"num_args={num_args} but {len(data)} input(s) were given",
            "leave num_args unset (it is the number of inputs)",
        )
    xs = [_array(fn, f"data[{i}]", a) for i, a in enumerate(data)]
    for i, a in enumerate(xs):
        _float(fn, f"data[{i}]", a)
        if a.ndim != 4:
            raise ShapeError(
                f"{fn}: input {i} has shape {fmt_shape(a.shape)}; UpSampling needs 4-D (N, C, "
                "H, W) inputs. Fix: reshape it."
            )
    if sample_type == "bilinear":
        if len(xs) != 2:
            raise _fail(
                fn,
                f"sample_type='bilinear' takes 2 inputs (data, weight), got {len(xs)}",
                "pass UpSampling(data, weight, scale=..., sample_type='bilinear', num_filter=C)",
            )
        x, w = xs
        c = x.shape[1]
        if num_filter != c:
            raise _fail(
                fn,
                f"num_filter={num_filter} must equal the {c} channels for bilinear upsampling",
                f"pass num_filter={c}",
            )
        kk = 2 * sc - sc % 2
        pp = math.ceil((sc - 1) / 2.0)
        r = Deconvolution(
            x, w, kernel=(kk, kk), stride=(sc, sc), pad=(pp, pp), num_filter=c, num_group=c
        )
        return _result(fn, out, r)
    _same_dtype(fn, xs[0], **{f"data[{i}]": a for i, a in enumerate(xs[1:], 1)})
    n, _, h0, w0 = xs[0].shape
    oh, ow = h0 * sc, w0 * sc
    parts = []
    for i, a in enumerate(xs):
        if (
            a.shape[0] != n
            or oh % a.shape[2]
            or ow % a.shape[3]
            or (oh // a.shape[2] != ow // a.shape[3])
        ):
            raise ShapeError(
                f"{fn}: input {i} of shape {fmt_shape(a.shape)} cannot be upsampled to "
                f"({oh}, {ow}) (scale times the first input's height and width) by a whole "
                "factor. Fix: give inputs whose sizes divide the output size."
            )
        parts.append(_nearest(a, oh // a.shape[2]))
    if len(parts) == 1:
        r = parts[0]
    elif multi_input_mode == "sum":
        c0 = parts[0].shape[1]
        if any(q.shape[1] != c0 for q in parts):
            raise ShapeError(
                f"{fn}: multi_input_mode='sum' needs inputs with the same number of channels, "
                f"got {[q.shape[1] for q in parts]}. Fix: use 'concat'."
            )
        r = parts[0]
        for q in parts[1:]:
            r = r + q
    else:
        r = T.concat(*parts, axis=1)
    return _result(fn, out, r)


# ------------------------------------------------------------------------ normalization


def _param(fn: str, name: str, a: Any, shape: tuple, data: NDArray) -> NDArray:
    a = _array(fn, name, a)
    if tuple(a.shape) != shape:
        raise ShapeError(
            f"{fn}: {name} has shape {fmt_shape(a.shape)} but data {fmt_shape(data.shape)} "
            f"needs {fmt_shape(shape)}. Fix: pass {name} of shape {fmt_shape(shape)}."
        )
    return a


def _axis(fn: str, axis: Any, data: NDArray) -> int:
    ax = _int(fn, "axis", axis, -(10**9))
    if not -data.ndim <= ax < data.ndim:
        raise _fail(
            fn,
            f"axis={axis} is outside data of shape {fmt_shape(data.shape)}",
            f"use an axis in [{-data.ndim}, {data.ndim - 1}]",
        )
    return ax % data.ndim


def BatchNorm(
    data: Any = None,
    gamma: Any = None,
    beta: Any = None,
    moving_mean: Any = None,
    moving_var: Any = None,
    eps: float = 1e-3,
    momentum: float = 0.9,
    fix_gamma: bool = True,
    use_global_stats: bool = False,
    output_mean_var: bool = False,
    axis: int = 1,
    cudnn_off: bool = False,
    min_calib_range: Any = None,
    max_calib_range: Any = None,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> Any:
    """MXNet's ``BatchNorm`` operator: ``(data - mean) / sqrt(var + eps) * gamma + beta`` per
    channel (``axis``), with the batch's mean and biased variance in training mode
    (``autograd.record()``; ``autograd.is_training()``) and ``moving_mean``/``moving_var``
    otherwise or with ``use_global_stats``. In training mode the moving statistics are
    updated in place, ``moving = moving * momentum + batch * (1 - momentum)`` (MXNet does it
    in the backward pass of that forward; the result after a training step is the same).
    ``fix_gamma`` (the operator's default is True, Gluon's layer passes False) uses gamma = 1
    and gives gamma a zero gradient (MXNet also overwrites gamma with ones; this does not).
    ``output_mean_var`` also returns the mean and the *inverse* standard deviation
    ``1 / sqrt(var + eps)`` used, each of shape (C,), without gradient (as MXNet).
    """
    fn = "BatchNorm"
    _no_extra(
        fn,
        kwargs,
        "data, gamma, beta, moving_mean, moving_var, eps, momentum, fix_gamma, "
        "use_global_stats, output_mean_var, axis, cudnn_off, min_calib_range, "
        "max_calib_range, out, name",
    )
    data = _array(fn, "data", data)
    _float(fn, "data", data)
    if data.ndim < 1:
        raise ShapeError(
            f"{fn}: data must have a channel axis. Fix: pass data of shape (N, C, ...)."
        )
    ax = _axis(fn, axis, data)
    c = data.shape[ax]
    g = _param(fn, "gamma", gamma, (c,), data)
    b = _param(fn, "beta", beta, (c,), data)
    mm = _param(fn, "moving_mean", moving_mean, (c,), data)
    mv = _param(fn, "moving_var", moving_var, (c,), data)
    if not eps >= 0:
        raise _fail(fn, f"eps={eps} must be >= 0", "pass a small positive eps")
    bshape = tuple(c if i == ax else 1 for i in range(data.ndim))
    red = tuple(i for i in range(data.ndim) if i != ax)
    if STATE.training and not use_global_stats:
        mean = T.mean(data, axis=red, keepdims=True)
        xc = data - mean
        var = T.mean(T.square(xc), axis=red, keepdims=True)
        inv = T.rsqrt(var + eps)
        # the new moving statistics, from the batch's without gradient: computed with
        # operators (not from the data), so a compiled function replays the update
        m = float(momentum)
        new_mean = mm * m + T.reshape(mean.detach(), shape=(c,)) * (1 - m)
        new_var = mv * m + T.reshape(var.detach(), shape=(c,)) * (1 - m)
        mean_out, inv_out = mean, inv
    else:
        xc = data - T.reshape(mm, shape=bshape)
        inv = T.rsqrt(T.reshape(mv, shape=bshape) + eps)
        new_mean = new_var = None
        mean_out, inv_out = mm, inv
    y = xc * inv
    if fix_gamma:  # gamma unused: tied by a zero derivative, so its gradient is 0
        y = T.depends_on(y, g)
    else:
        y = y * T.reshape(g, shape=bshape)
    y = y + T.reshape(b, shape=bshape)
    if new_mean is not None:  # written last: nothing above can fail after the update
        mm[:] = new_mean
        mv[:] = new_var
    if output_mean_var:
        return [
            y,
            T.reshape(mean_out.detach(), shape=(c,)),
            T.reshape(inv_out.detach(), shape=(c,)),
        ]
    return _result(fn, out, y)


def _normalize(x: NDArray, axes: tuple, eps: float) -> tuple:
    mean = T.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    var = T.mean(T.square(xc), axis=axes, keepdims=True)
    std = T.sqrt(var + eps)
    return xc / std, mean, std


def InstanceNorm(
    data: Any = None,
    gamma: Any = None,
    beta: Any = None,
    eps: float = 1e-3,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``InstanceNorm``: each sample's each channel normalized over its spatial axes
    (mean and biased variance), ``* gamma + beta`` with gamma, beta of shape (C,)."""
    fn = "InstanceNorm"
    _no_extra(fn, kwargs, "data, gamma, beta, eps, out, name")
    data = _array(fn, "data", data)
    _float(fn, "data", data)
    if data.ndim < 3:
        raise ShapeError(
            f"{fn}: data must be (N, C, spatial...) with at least 3 dimensions, got "
            f"{fmt_shape(data.shape)}. Fix: add a spatial axis."
        )
    c = data.shape[1]
    g = _param(fn, "gamma", gamma, (c,), data)
    b = _param(fn, "beta", beta, (c,), data)
    bshape = (1, c) + (1,) * (data.ndim - 2)
    y, _, _ = _normalize(data, tuple(range(2, data.ndim)), eps)
    y = y * T.reshape(g, shape=bshape) + T.reshape(b, shape=bshape)
    return _result(fn, out, y)


def GroupNorm(
    data: Any = None,
    gamma: Any = None,
    beta: Any = None,
    num_groups: int = 1,
    eps: float = 1e-5,
    output_mean_var: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> Any:
    """MXNet 1.9's ``GroupNorm``: the channels split into ``num_groups`` groups, each group of
    each sample normalized (mean, biased variance); ``gamma`` and ``beta`` have shape
    ``(num_groups,)`` in MXNet 1.x (one scale per group). ``output_mean_var`` also returns
    the mean and the standard deviation ``sqrt(var + eps)``, each (N, num_groups)."""
    fn = "GroupNorm"
    _no_extra(fn, kwargs, "data, gamma, beta, num_groups, eps, output_mean_var, out, name")
    data = _array(fn, "data", data)
    _float(fn, "data", data)
    if data.ndim < 3:
        raise ShapeError(
            f"{fn}: data must be (N, C, spatial...) with at least 3 dimensions, got "
            f"{fmt_shape(data.shape)}. Fix: add a spatial axis."
        )
    G = _int(fn, "num_groups", num_groups, 1)
    n, c = data.shape[:2]
    if c % G:
        raise ShapeError(
            f"{fn}: num_groups={G} does not divide the {c} channels of data "
            f"{fmt_shape(data.shape)}. Fix: choose num_groups dividing {c}."
        )
    g = _param(fn, "gamma", gamma, (G,), data)
    b = _param(fn, "beta", beta, (G,), data)
    xg = T.reshape(data, shape=(n, G, c // G) + tuple(data.shape[2:]))
    y, mean, std = _normalize(xg, tuple(range(2, xg.ndim)), eps)
    pshape = (1, G) + (1,) * (xg.ndim - 2)
    y = y * T.reshape(g, shape=pshape) + T.reshape(b, shape=pshape)
    y = T.reshape(y, shape=tuple(data.shape))
    if output_mean_var:
        return [y, T.reshape(mean, shape=(n, G)), T.reshape(std, shape=(n, G))]
    return _result(fn, out, y)


def LayerNorm(
    data: Any = None,
    gamma: Any = None,
    beta: Any = None,
    axis: int = -1,
    eps: float = 1e-5,
    output_mean_var: bool = False,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> Any:
    """MXNet's ``LayerNorm`` operator: normalize along ``axis`` (mean, biased variance),
    ``* gamma + beta`` (shape ``(data.shape[axis],)``). ``output_mean_var`` also returns the
    mean and the standard deviation ``sqrt(var + eps)`` with ``axis`` kept as size 1."""
    fn = "LayerNorm"
    _no_extra(fn, kwargs, "data, gamma, beta, axis, eps, output_mean_var, out, name")
    data = _array(fn, "data", data)
    _float(fn, "data", data)
    if data.ndim < 1:
        raise ShapeError(f"{fn}: data must have at least one axis. Fix: reshape it.")
    ax = _axis(fn, axis, data)
    c = data.shape[ax]
    g = _param(fn, "gamma", gamma, (c,), data)
    b = _param(fn, "beta", beta, (c,), data)
    bshape = tuple(c if i == ax else 1 for i in range(data.ndim))
    y, mean, std = _normalize(data, (ax,), eps)
    y = y * T.reshape(g, shape=bshape) + T.reshape(b, shape=bshape)
    if output_mean_var:
        return [y, mean, std]
    return _result(fn, out, y)


# ------------------------------------------------------------------------------- Pad


def _pad_axis(x: NDArray, ax: int, lo: int, hi: int, mode: str) -> NDArray:
    n = x.shape[ax]
    pre = (slice(None),) * ax

    def part(a, b):
        return T.getitem(x, key=pre + (slice(a, b),))

    parts = []
    if mode == "edge":
        if lo:
            s = list(x.shape)
            s[ax] = lo
            parts.append(T.broadcast_to(part(0, 1), shape=tuple(s)))
        parts.append(x)
        if hi:
            s = list(x.shape)
            s[ax] = hi
            parts.append(T.broadcast_to(part(n - 1, n), shape=tuple(s)))
    else:  # reflect (the edge itself not repeated, as numpy's 'reflect')
        if lo:
            parts.append(T.flip(part(1, lo + 1), axis=ax))
        parts.append(x)
        if hi:
            parts.append(T.flip(part(n - 1 - hi, n - 1), axis=ax))
    return parts[0] if len(parts) == 1 else T.concat(*parts, axis=ax)


def Pad(
    data: Any = None,
    mode: Any = None,
    pad_width: Any = None,
    constant_value: float = 0.0,
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``Pad`` of a 4-D or 5-D array: ``pad_width`` is the flat tuple
    ``(before_0, after_0, ..., before_N, after_N)`` with zeros for the first two axes;
    ``mode`` ``'constant'`` (``constant_value``), ``'edge'`` or ``'reflect'`` (pads smaller
    than the axis).

    >>> import tapegrad as mx
    >>> x = mx.nd.arange(3).reshape((1, 1, 1, 3))
    >>> mx.nd.Pad(x, mode='reflect', pad_width=(0, 0, 0, 0, 0, 0, 2, 1)).asnumpy()[0, 0, 0].tolist()
    [2.0, 1.0, 0.0, 1.0, 2.0, 1.0]
    """
    fn = "Pad"
    _no_extra(fn, kwargs, "data, mode, pad_width, constant_value, out, name")
    data = _array(fn, "data", data)
    if mode not in ("constant", "edge", "reflect"):
        raise _fail(fn, f"mode={mode!r} is not one of 'constant', 'edge', 'reflect'", "pass mode=")
    if data.ndim not in (4, 5):
        raise ShapeError(
            f"{fn}: MXNet pads 4-D or 5-D arrays only, got shape {fmt_shape(data.shape)}. "
            "Fix: reshape to (N, C, H, W) or (N, C, D, H, W)."
        )
    if pad_width is None or not isinstance(pad_width, (tuple, list)):
        raise _fail(fn, "pad_width is required as a flat tuple", "pass pad_width=(0, 0, 0, 0, ...)")
    pw = tuple(_int(fn, f"pad_width[{i}]", v, 0) for i, v in enumerate(pad_width))
    if len(pw) != 2 * data.ndim:
        raise _fail(
            fn,
            f"pad_width has {len(pw)} entries but data of shape {fmt_shape(data.shape)} needs "
            f"{2 * data.ndim}",
            "give (before, after) for every axis",
        )
    if any(pw[:4]):
        raise _fail(fn, f"pad_width={pw} pads the first two axes", "use zeros for the N and C axes")
    if mode == "reflect":
        for ax in range(2, data.ndim):
            if max(pw[2 * ax], pw[2 * ax + 1]) >= data.shape[ax]:
                raise _fail(
                    fn,
                    f"reflect padding {pw[2 * ax]}, {pw[2 * ax + 1]} on axis {ax} of size "
                    f"{data.shape[ax]} (must be smaller than the axis)",
                    "use smaller pads or mode='edge'",
                )
    if mode == "constant":
        oshape = tuple(s + pw[2 * i] + pw[2 * i + 1] for i, s in enumerate(data.shape))
        key = tuple(slice(pw[2 * i], pw[2 * i] + s) for i, s in enumerate(data.shape))
        r = T.scatter(data, shape=oshape, key=key)
        if constant_value != 0:
            fill = np.full(oshape, constant_value, dtype=data.dtype)
            fill[key] = 0
            r = r + fill
    else:
        r = data
        for ax in range(2, data.ndim):
            if pw[2 * ax] or pw[2 * ax + 1]:
                r = _pad_axis(r, ax, pw[2 * ax], pw[2 * ax + 1], mode)
    return _result(fn, out, r)


# ---------------------------------------------------------------------- im2col / col2im


def _sliding(fn, kernel, stride, dilate, pad):
    k = _kernel(fn, kernel)
    n = len(k)
    return (
        k,
        _tuple(fn, "stride", stride, n, 1, 1),
        _tuple(fn, "dilate", dilate, n, 1, 1),
        _tuple(fn, "pad", pad, n, 0, 0),
    )


def im2col(
    data: Any = None,
    kernel: Any = None,
    stride: Any = (),
    dilate: Any = (),
    pad: Any = (),
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``im2col``: the sliding blocks of ``data`` (N, C, *spatial) as columns,
    shape ``(N, C * prod(kernel), L)`` with ``L`` the number of blocks."""
    fn = "im2col"
    _no_extra(fn, kwargs, "data, kernel, stride, dilate, pad, out, name")
    data = _array(fn, "data", data)
    k, s, d, p = _sliding(fn, kernel, stride, dilate, pad)
    _ndim(fn, data, len(k))
    for i in range(len(k)):
        if d[i] * (k[i] - 1) + 1 > data.shape[2 + i] + 2 * p[i]:
            raise ShapeError(
                f"{fn}: the kernel {k} (dilate {d}) exceeds the input {fmt_shape(data.shape)} "
                f"padded by {p}. Fix: a smaller kernel or more padding."
            )
    n = data.shape[0]
    cols = T.unfold(data, kernel=k, stride=s, dilate=d, pad=p)
    # the primitive's columns are (C*K, L*N), the sample index fastest
    r = T.transpose(T.reshape(cols, shape=(cols.shape[0], -1, n)), axes=(2, 0, 1))
    return _result(fn, out, r)


def col2im(
    data: Any = None,
    output_size: Any = None,
    kernel: Any = None,
    stride: Any = (),
    dilate: Any = (),
    pad: Any = (),
    out: Any = None,
    name: Any = None,
    **kwargs: Any,
) -> NDArray:
    """MXNet's ``col2im``, the adjoint of :func:`im2col`: columns ``(N, C * prod(kernel), L)``
    summed back into an image ``(N, C, *output_size)`` (overlapping blocks add up)."""
    fn = "col2im"
    _no_extra(fn, kwargs, "data, output_size, kernel, stride, dilate, pad, out, name")
    data = _array(fn, "data", data)
    k, s, d, p = _sliding(fn, kernel, stride, dilate, pad)
    osz = _tuple(fn, "output_size", output_size, len(k), 0, 1)
    if output_size is None or output_size == ():
        raise _fail(fn, "output_size is required", "pass output_size=(h, w)")
    kk = math.prod(k)
    if data.ndim != 3 or data.shape[1] % kk:
        raise ShapeError(
            f"{fn}: data of shape {fmt_shape(data.shape)} is not (N, C * {kk}, L) for kernel "
            f"{k}. Fix: pass the output of im2col with the same kernel."
        )
    L = math.prod(conv_out_size(osz[i], k[i], s[i], d[i], p[i]) for i in range(len(k)))
    if data.shape[2] != L:
        raise ShapeError(
            f"{fn}: data has {data.shape[2]} blocks but output_size={osz} with kernel {k}, "
            f"stride {s}, dilate {d}, pad {p} has {L}. Fix: check output_size and the geometry."
        )
    n, ck = data.shape[:2]
    cols = T.reshape(T.transpose(data, axes=(1, 2, 0)), shape=(ck, -1))
    r = T.fold(cols, shape=(n, ck // kk) + osz, kernel=k, stride=s, dilate=d, pad=p)
    return _result(fn, out, r)


# ------------------------------------------------------------ depth_to_space and back


def _block(fn: str, data: Any, block_size: Any) -> tuple:
    data = _array(fn, "data", data)
    b = _int(fn, "block_size", block_size, 1)
    if data.ndim != 4:
        raise ShapeError(
            f"{fn}: data must be 4-D (N, C, H, W), got {fmt_shape(data.shape)}. Fix: reshape it."
        )
    return data, b


def depth_to_space(
    data: Any = None, block_size: Any = None, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """MXNet's ``depth_to_space`` (DCR order): (N, C, H, W) -> (N, C / b², H b, W b)."""
    fn = "depth_to_space"
    _no_extra(fn, kwargs, "data, block_size, out, name")
    data, b = _block(fn, data, block_size)
    n, c, h, w = data.shape
    if c % (b * b):
        raise ShapeError(
            f"{fn}: {c} channels are not divisible by block_size² = {b * b}. Fix: choose a "
            "block_size whose square divides the channels."
        )
    r = T.reshape(data, shape=(n, b, b, c // (b * b), h, w))
    r = T.transpose(r, axes=(0, 3, 4, 1, 5, 2))
    return _result(fn, out, T.reshape(r, shape=(n, c // (b * b), h * b, w * b)))


def space_to_depth(
    data: Any = None, block_size: Any = None, out: Any = None, name: Any = None, **kwargs: Any
) -> NDArray:
    """MXNet's ``space_to_depth``, the inverse of :func:`depth_to_space`:
    (N, C, H, W) -> (N, C b², H / b, W / b)."""
    fn = "space_to_depth"
    _no_extra(fn, kwargs, "data, block_size, out, name")
    data, b = _block(fn, data, block_size)
    n, c, h, w = data.shape
    if h % b or w % b:
        raise ShapeError(
            f"{fn}: height {h} and width {w} must be divisible by block_size={b}. Fix: pad or "
            "crop the input."
        )
    r = T.reshape(data, shape=(n, c, h // b, b, w // b, b))
    r = T.transpose(r, axes=(0, 3, 5, 1, 2, 4))
    return _result(fn, out, T.reshape(r, shape=(n, c * b * b, h // b, w // b)))


pad = Pad
