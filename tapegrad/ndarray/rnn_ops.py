"""``mx.nd``'s recurrent operators: ``RNN`` (MXNet's fused multi-layer RNN / LSTM / GRU
operator, with its flat parameter vector), ``SequenceMask``, ``SequenceLast`` and
``SequenceReverse``.

Everything is composed of recorded primitives, so gradients of every order exist. What keeps
it fast: the input projection of all time steps is one matrix product, and the time axis is
split by one ``unstack`` node (``tapegrad/ops/rnn.py``), so the backward pass gathers the
per-step gradients into one array instead of adding a full-size zero array per step.

``gluon.rnn``'s layers call :func:`rnn_forward` with their parameters directly (no flat
vector is built); ``nd.RNN`` cuts the flat vector into the same pieces.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from ..base import ShapeError, TapegradError, fmt_shape
from ..core import STATE, TAPE
from ._checks import _bad_nd
from .ndarray import NDArray, _raw, _read
from .ndarray_functions import Dropout
from .ndarray_functions import _write_out as write_out

__all__ = ["RNN", "SequenceMask", "SequenceLast", "SequenceReverse"]

T = TAPE

#: gates per mode, in MXNet's order: LSTM (i, f, c, o), GRU (r, z, n)
GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}


class ArgumentValueError(TapegradError, ValueError):
    """An argument of the right kind with a value the operator cannot use (an unknown
    ``mode``, a negative sequence length, a clipping range without its other end)."""


# ----------------------------------------------------------------------------- helpers


def split_steps(data: NDArray, axis: int = 0) -> list:
    """The slices of ``data`` along ``axis`` (the axis removed), as a list.

    One recorded split: in the backward pass the slices' gradients are gathered into one
    array, instead of one full-size array per slice (what ``split`` or indexing cost)."""
    s = T.unstack(data, axis=axis)
    return [T.unstack_get(s, index=t) for t in range(data.shape[axis])]


def _lengths(op: str, sequence_length: Any, batch: int, steps: int, minimum: int) -> np.ndarray:
    """``sequence_length`` as int64 values, checked: one per batch element, each in
    ``[minimum, steps]``."""
    if sequence_length is None:
        raise ArgumentValueError(
            f"{op}: use_sequence_length=True but no sequence_length was given. Fix: pass "
            "sequence_length (one length per batch element), or use_sequence_length=False."
        )
    if type(sequence_length) is NDArray:
        _read(sequence_length, f"{op}'s sequence_length")
    raw = np.asarray(_raw(sequence_length))
    if raw.dtype.kind not in "iuf" or raw.shape != (batch,):
        raise ShapeError(
            f"{op}: sequence_length must hold one number per batch element, shape ({batch},), "
            f"but has shape {fmt_shape(raw.shape)} and dtype {raw.dtype}. Fix: pass an array "
            f"of {batch} lengths."
        )
    lengths = np.rint(raw).astype(np.int64) if raw.dtype.kind == "f" else raw.astype(np.int64)
    bad = (lengths < minimum) | (lengths > steps)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ArgumentValueError(
            f"{op}: sequence_length[{i}] = {raw[i]} is outside [{minimum}, {steps}] (the "
            f"sequence axis has {steps} steps). Fix: give each sequence a length between "
            f"{minimum} and {steps}."
        )
    return lengths


def _seq_axes(op: str, data: NDArray, axis: int, allowed: tuple) -> tuple:
    _bad_nd(op, "data", data)
    if data.ndim < 2:
        raise ShapeError(
            f"{op}: data of shape {fmt_shape(data.shape)} needs at least 2 axes (sequence "
            "and batch). Fix: pass data of shape (max_sequence_length, batch_size, ...)."
        )
    if axis not in allowed:
        raise ArgumentValueError(
            f"{op}: axis={axis} is not supported (the sequence axis must be "
            f"{' or '.join(map(str, allowed))}, as in MXNet). Fix: swapaxes the data first."
        )
    return axis, 1 - axis  # sequence axis, batch axis


def _no_lengths(op: str, sequence_length: Any) -> None:
    if sequence_length is not None:
        raise ArgumentValueError(
            f"{op}: sequence_length was given but use_sequence_length is False, so it would be "
            "ignored. Fix: pass use_sequence_length=True (or drop sequence_length)."
        )


# ---------------------------------------------------------------------- sequence ops


def SequenceMask(
    data: NDArray,
    sequence_length: Any = None,
    use_sequence_length: bool = False,
    value: float = 0.0,
    axis: int = 0,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Set the steps past each sequence's length to ``value``.

    ``data`` is (max_sequence_length, batch, ...) for ``axis=0`` or (batch,
    max_sequence_length, ...) for ``axis=1``; ``sequence_length`` holds one length per batch
    element. Without ``use_sequence_length`` every sequence has the full length (identity).

    >>> import tapegrad as mx
    >>> x = mx.nd.arange(6).reshape((3, 2))
    >>> mx.nd.SequenceMask(x, mx.nd.array([1, 3]), use_sequence_length=True).asnumpy().tolist()
    [[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]]
    """
    ax, bx = _seq_axes("SequenceMask", data, axis, (0, 1))
    if not use_sequence_length:
        _no_lengths("SequenceMask", sequence_length)
        return write_out("SequenceMask", out, T.copy(data))
    steps, batch = data.shape[ax], data.shape[bx]
    lengths = _lengths("SequenceMask", sequence_length, batch, steps, 0)
    keep = np.arange(steps)[:, None] < lengths[None, :]  # (steps, batch)
    if ax == 1:
        keep = keep.T
    keep = keep.reshape(keep.shape + (1,) * (data.ndim - 2))
    return write_out("SequenceMask", out, T.where(keep, data, np.asarray(value, dtype=data.dtype)))


def SequenceLast(
    data: NDArray,
    sequence_length: Any = None,
    use_sequence_length: bool = False,
    axis: int = 0,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """The last step of each sequence: (batch, ...) from (max_sequence_length, batch, ...)
    (``axis=0``) or (batch, max_sequence_length, ...) (``axis=1``).

    >>> import tapegrad as mx
    >>> x = mx.nd.arange(6).reshape((3, 2))
    >>> mx.nd.SequenceLast(x, mx.nd.array([1, 3]), use_sequence_length=True).asnumpy().tolist()
    [0.0, 5.0]
    """
    ax, bx = _seq_axes("SequenceLast", data, axis, (0, 1))
    steps, batch = data.shape[ax], data.shape[bx]
    if not use_sequence_length:
        _no_lengths("SequenceLast", sequence_length)
        key = (builtins.slice(None),) * ax + (steps - 1,)
        return write_out("SequenceLast", out, T.getitem(data, key=key))
    last = _lengths("SequenceLast", sequence_length, batch, steps, 1) - 1
    rows = np.arange(batch)
    key = (last, rows) if ax == 0 else (rows, last)
    return write_out("SequenceLast", out, T.getitem(data, key=key, unique=True))


def SequenceReverse(
    data: NDArray,
    sequence_length: Any = None,
    use_sequence_length: bool = False,
    axis: int = 0,
    out: Any = None,
    **kwargs: Any,
) -> NDArray:
    """Reverse the first ``sequence_length[b]`` steps of each sequence ``b`` (the steps past
    it stay in place); ``data`` is (max_sequence_length, batch, ...).

    >>> import tapegrad as mx
    >>> x = mx.nd.arange(6).reshape((3, 2))
    >>> mx.nd.SequenceReverse(x, mx.nd.array([2, 3]), use_sequence_length=True).asnumpy().tolist()
    [[2.0, 5.0], [0.0, 3.0], [4.0, 1.0]]
    """
    _seq_axes("SequenceReverse", data, axis, (0,))
    steps, batch = data.shape[0], data.shape[1]
    if not use_sequence_length:
        _no_lengths("SequenceReverse", sequence_length)
        return write_out("SequenceReverse", out, T.flip(data, axis=0))
    lengths = _lengths("SequenceReverse", sequence_length, batch, steps, 0)
    t = np.arange(steps)[:, None]
    src = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (steps, batch)
    rev = T.getitem(data, key=(src, np.arange(batch)[None, :]), unique=True)
    return write_out("SequenceReverse", out, rev)


# --------------------------------------------------------------------- the recurrence


class _Config:
    """Static settings of one recurrent stack (what MXNet's RNN operator takes as attributes)."""

    __slots__ = ("mode", "H", "L", "D", "P", "dropout", "clip", "clip_nan")

    def __init__(
        self,
        mode: str,
        state_size: int,
        num_layers: int,
        bidirectional: bool,
        projection_size: Any,
        dropout: float,
        clip_min: Any,
        clip_max: Any,
        clip_nan: bool,
        op: str,
    ) -> None:
        if mode not in GATES:
            raise ArgumentValueError(
                f"{op}: unknown mode {mode!r}. Fix: use one of 'rnn_relu', 'rnn_tanh', "
                "'lstm', 'gru'."
            )
        for name, v in (("state_size", state_size), ("num_layers", num_layers)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ArgumentValueError(
                    f"{op}: {name} must be a positive integer, got {v!r}. Fix: pass e.g. {name}=1."
                )
        if projection_size is not None and projection_size != 0:
            if mode != "lstm":
                raise ArgumentValueError(
                    f"{op}: projection_size is only defined for LSTM (mode={mode!r}). Fix: "
                    "drop projection_size."
                )
            if not 0 < projection_size <= state_size:
                raise ArgumentValueError(
                    f"{op}: projection_size={projection_size} must be in [1, state_size="
                    f"{state_size}]. Fix: choose a smaller projection."
                )
        if (clip_min is None) != (clip_max is None):
            raise ArgumentValueError(
                f"{op}: state_clip_min={clip_min} and state_clip_max={clip_max}: the clipping "
                "range needs both ends. Fix: pass both, or neither."
            )
        if clip_min is not None:
            if mode != "lstm":
                raise ArgumentValueError(
                    f"{op}: state clipping is only defined for LSTM (mode={mode!r}). Fix: "
                    "drop the clipping range."
                )
            if clip_max < clip_min:
                raise ArgumentValueError(
                    f"{op}: state_clip_max={clip_max} is below state_clip_min={clip_min}. "
                    "Fix: pass min <= max."
                )
        if not 0.0 <= dropout < 1.0:
            raise ArgumentValueError(
                f"{op}: dropout p={dropout} must be in [0, 1). Fix: choose 0 <= p < 1."
            )
        self.mode = mode
        self.H = int(state_size)
        self.L = int(num_layers)
        self.D = 2 if bidirectional else 1
        self.P = int(projection_size) if projection_size else 0
        self.dropout = float(dropout)
        self.clip = None if clip_min is None else (float(clip_min), float(clip_max))
        self.clip_nan = bool(clip_nan)

    @property
    def out_size(self) -> int:
        """Features of each direction's output and hidden state."""
        return self.P or self.H

    def shapes(self, layer: int, input_size: int) -> list:
        """Shapes of (i2h weight, h2h weight, i2h bias, h2h bias, h2r weight or None) of one
        direction of ``layer``."""
        g, H = GATES[self.mode] * self.H, self.H
        n_in = input_size if layer == 0 else self.out_size * self.D
        return [(g, n_in), (g, self.out_size), (g,), (g,), (self.P, H) if self.P else None]


def _direction(cfg: _Config, x: NDArray, w: list, h: Any, c: Any, reverse: bool, keep: Any):
    """One layer, one direction, over ``x`` (T, N, C). ``w``: (i2h weight, h2h weight, i2h
    bias, h2h bias, h2r weight or None). ``h``, ``c``: initial states, or None for zeros.
    ``keep``: (T, N, 1) booleans, whether step t is inside sequence n (None: all are).
    Returns the outputs in time order and the final (h, c)."""
    steps, batch, n_in = x.shape
    mode, H = cfg.mode, cfg.H
    G = GATES[mode]
    wi, wh, bi, bh, wr = w
    x2 = T.reshape(x, shape=(steps * batch, n_in))
    if mode == "gru":  # the h2h bias of the n gate is inside r * (...): kept apart
        proj = T.fully_connected(x2, wi, bi)
    else:
        proj = T.fully_connected(x2, wi, T.add(bi, bh))
    if G > 1:
        proj = T.reshape(proj, shape=(steps, batch, G, H))
    else:
        proj = T.reshape(proj, shape=(steps, batch, H))
    seq = T.unstack(proj, axis=0)  # the one split of the time axis
    get, unstack, sigmoid, tanh = T.unstack_get, T.unstack, T.sigmoid, T.tanh
    mul, add, fc = T.multiply, T.add, T.fully_connected
    act = T.relu if mode == "rnn_relu" else tanh
    if mode == "gru" and h is None:
        h = NDArray(np.zeros((batch, H), dtype=x.dtype))
    outs: list = [None] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        p = get(seq, index=t)
        if mode == "lstm":
            z = p if h is None else add(p, T.reshape(fc(h, wh), shape=(batch, 4, H)))
            gates = unstack(z, axis=1)
            i = sigmoid(get(gates, index=0))
            g = tanh(get(gates, index=2))
            c_new = mul(i, g) if c is None else add(mul(sigmoid(get(gates, index=1)), c), mul(i, g))
            if cfg.clip is not None:
                c_new = _clip(cfg, c_new)
            h_new = mul(sigmoid(get(gates, index=3)), tanh(c_new))
            if wr is not None:
                h_new = fc(h_new, wr)
        elif mode == "gru":
            hs = unstack(T.reshape(fc(h, wh, bh), shape=(batch, 3, H)), axis=1)
            ps = unstack(p, axis=1)
            r = sigmoid(add(get(ps, index=0), get(hs, index=0)))
            zg = sigmoid(add(get(ps, index=1), get(hs, index=1)))
            n = tanh(add(get(ps, index=2), mul(r, get(hs, index=2))))
            h_new = add(n, mul(zg, T.subtract(h, n)))  # (1 - z) n + z h
            c_new = None
        else:
            h_new = act(p if h is None else add(p, fc(h, wh)))
            c_new = None
        if keep is None:
            h, c = h_new, c_new
            outs[t] = h_new
            continue
        m = keep[t]  # past a sequence's end: the state is carried, the output is zero
        outs[t] = T.where(m, h_new, np.zeros((), dtype=h_new.dtype))
        h = outs[t] if h is None else T.where(m, h_new, h)
        if c_new is not None:
            c = (
                T.where(m, c_new, np.zeros((), dtype=c_new.dtype))
                if c is None
                else (T.where(m, c_new, c))
            )
    return outs, h, c


def _clip(cfg: _Config, c: NDArray) -> NDArray:
    lo, hi = cfg.clip
    if cfg.clip_nan:  # NaN would pass np.clip: it becomes the lower bound
        c = T.where(np.isnan(c.asnumpy()), np.asarray(lo, dtype=c.dtype), c)
    return T.clip(c, a_min=lo, a_max=hi)


def rnn_forward(
    cfg: _Config, data: NDArray, weights: list, h0: Any, c0: Any, lengths: Any = None
) -> tuple:
    """The recurrent stack over ``data`` (T, N, C) in MXNet's layout.

    ``weights[l * D + d]`` is the list of one layer-direction's arrays (see
    :meth:`_Config.shapes`). ``h0`` (L*D, N, P or H) and ``c0`` (L*D, N, H, LSTM only) are
    the initial states, or None for zeros. ``lengths``: int64 lengths per sequence, or None.
    Returns ``(output (T, N, D*(P or H)), h_n, c_n or None)``."""
    steps, batch = data.shape[0], data.shape[1]
    hs = split_steps(h0, 0) if h0 is not None else [None] * (cfg.L * cfg.D)
    cs = split_steps(c0, 0) if c0 is not None else [None] * (cfg.L * cfg.D)
    keep = None
    if lengths is not None:
        keep = (np.arange(steps)[:, None] < lengths[None, :])[:, :, None]
    x = data
    h_out, c_out = [], []
    for layer in range(cfg.L):
        if layer > 0 and cfg.dropout > 0 and STATE.training:
            x = Dropout(x, p=cfg.dropout)
        ys = []
        for d in range(cfg.D):
            k = layer * cfg.D + d
            if d == 1 and keep is not None:
                # each sequence reversed within its own length, run forward, put back
                xr = SequenceReverse(x, lengths, use_sequence_length=True)
                outs, h, c = _direction(cfg, xr, weights[k], hs[k], cs[k], False, keep)
                y = SequenceReverse(T.stack(*outs, axis=0), lengths, use_sequence_length=True)
            else:
                outs, h, c = _direction(cfg, x, weights[k], hs[k], cs[k], d == 1, keep)
                y = T.stack(*outs, axis=0)
            ys.append(y)
            h_out.append(h)
            c_out.append(c)
        x = ys[0] if cfg.D == 1 else T.concat(*ys, axis=2)
    h_n = _stack_states(h_out, batch, cfg.out_size, data.dtype)
    c_n = _stack_states(c_out, batch, cfg.H, data.dtype) if cfg.mode == "lstm" else None
    return x, h_n, c_n


def _stack_states(states: list, batch: int, size: int, dtype: Any) -> NDArray:
    zero = None
    parts = []
    for s in states:
        if s is None:  # no step ran from a zero state (T = 0 cannot happen): zeros
            zero = zero if zero is not None else NDArray(np.zeros((batch, size), dtype=dtype))
            s = zero
        parts.append(s)
    return T.stack(*parts, axis=0)


def check_states(op: str, cfg: _Config, batch: int, h0: Any, c0: Any, dtype: Any) -> None:
    """Raise a ShapeError naming ``op`` for initial states of the wrong shape."""
    want = [(cfg.L * cfg.D, batch, cfg.out_size)]
    given = [h0]
    names = ["state (h)"]
    if cfg.mode == "lstm":
        want.append((cfg.L * cfg.D, batch, cfg.H))
        given.append(c0)
        names.append("state_cell (c)")
    for name, s, w in zip(names, given, want):
        if s is None:
            continue
        if not isinstance(s, NDArray):
            raise TypeError(
                f"{op}: the initial {name} must be an NDArray, got {type(s).__name__}. Fix: "
                "pass mx.nd arrays (begin_state() makes them)."
            )
        if tuple(s.shape) != w:
            raise ShapeError(
                f"{op}: invalid recurrent {name} shape {fmt_shape(s.shape)}, expecting "
                f"{fmt_shape(w)} (layers*directions, batch, size). Fix: pass states of shape "
                f"{fmt_shape(w)}, e.g. from begin_state(batch_size={batch})."
            )


# --------------------------------------------------------------------------- nd.RNN


def _param_layout(cfg: _Config, input_size: int) -> list:
    """(kind, layer-direction, slot, shape) of each piece of MXNet's flat parameter vector:
    every weight (layer by layer, direction by direction: i2h, h2h, h2r), then every bias
    (i2h, h2h); see src/operator/rnn-inl.h."""
    weights, biases = [], []
    for layer in range(cfg.L):
        for d in range(cfg.D):
            k = layer * cfg.D + d
            shp = cfg.shapes(layer, input_size)
            weights += [(k, 0, shp[0]), (k, 1, shp[1])]
            if shp[4] is not None:
                weights.append((k, 4, shp[4]))
            biases += [(k, 2, shp[2]), (k, 3, shp[3])]
    return weights + biases


def RNN(
    data: NDArray,
    parameters: NDArray,
    state: NDArray,
    state_cell: Any = None,
    sequence_length: Any = None,
    state_size: int = 0,
    num_layers: int = 0,
    bidirectional: bool = False,
    mode: str = "lstm",
    p: float = 0.0,
    state_outputs: bool = False,
    projection_size: Any = None,
    lstm_state_clip_min: Any = None,
    lstm_state_clip_max: Any = None,
    lstm_state_clip_nan: bool = False,
    use_sequence_length: bool = False,
    out: Any = None,
    **kwargs: Any,
) -> Any:
    """MXNet's fused ``RNN`` operator: ``num_layers`` recurrent layers (``mode`` one of
    'rnn_relu', 'rnn_tanh', 'lstm', 'gru'), optionally bidirectional, over ``data`` of shape
    (T, N, C), with every weight and bias in the flat vector ``parameters`` (MXNet's layout:
    all weights layer by layer, then all biases). ``state`` (and ``state_cell`` for LSTM)
    are (num_layers * directions, N, state_size). Gates in MXNet's order: LSTM i, f, c, o;
    GRU r, z, n.

    Returns the output (T, N, directions * state_size), or with ``state_outputs`` the list
    ``[output, h_n]`` (``[output, h_n, c_n]`` for LSTM). ``p``: dropout between layers in
    training mode. ``projection_size`` and ``lstm_state_clip_*`` (LSTM) follow cuDNN, as in
    MXNet (whose CPU operator does not have them); NaN cell states are clipped to the lower
    bound with ``lstm_state_clip_nan``.
    """
    op = "RNN"
    cfg = _Config(
        mode,
        state_size,
        num_layers,
        bidirectional,
        projection_size,
        p,
        lstm_state_clip_min,
        lstm_state_clip_max,
        lstm_state_clip_nan,
        op,
    )
    if mode != "lstm" and state_cell is not None:
        if sequence_length is None and use_sequence_length:
            # MXNet matches array inputs by position: without a cell state the fourth array
            # is the sequence length
            sequence_length, state_cell = state_cell, None
        else:
            raise ArgumentValueError(
                f"{op}: state_cell is only an input of LSTM (mode={mode!r}). Fix: drop it."
            )
    if not isinstance(data, NDArray) or data.ndim != 3:
        shape = fmt_shape(data.shape) if isinstance(data, NDArray) else type(data).__name__
        raise ShapeError(
            f"{op}: data must be a 3-D NDArray (sequence length, batch, features), got "
            f"{shape}. Fix: reshape it to (T, N, C) (swapaxes(0, 1) for batch-major data)."
        )
    if mode == "lstm" and state_cell is None:
        raise ArgumentValueError(
            f"{op}: mode='lstm' needs state_cell (the initial cell state). Fix: pass "
            "state_cell of the same shape as state."
        )
    steps, batch, n_in = data.shape
    check_states(op, cfg, batch, state, state_cell, data.dtype)
    if not isinstance(parameters, NDArray) or parameters.ndim != 1:
        raise ShapeError(
            f"{op}: parameters must be a 1-D NDArray (every weight and bias, flattened), got "
            f"{getattr(parameters, 'shape', type(parameters).__name__)}. Fix: concatenate the "
            "flattened weights and biases in MXNet's order."
        )
    layout = _param_layout(cfg, n_in)
    need = sum(math.prod(s) for _, _, s in layout)
    if parameters.shape[0] != need:
        raise ShapeError(
            f"{op}: parameters has {parameters.shape[0]} elements, but mode={mode!r} with "
            f"num_layers={cfg.L}, state_size={cfg.H}, bidirectional={cfg.D == 2}, "
            f"projection_size={cfg.P or None} and {n_in} input features needs {need}. Fix: "
            "check state_size and the input's feature size."
        )
    weights = [[None] * 5 for _ in range(cfg.L * cfg.D)]
    start = 0
    for k, slot, shape in layout:
        n = math.prod(shape)
        piece = T.getitem(parameters, key=(builtins.slice(start, start + n),))
        weights[k][slot] = T.reshape(piece, shape=shape)
        start += n
    lengths = None
    if use_sequence_length:
        lengths = _lengths(op, sequence_length, batch, steps, 1)
    else:
        _no_lengths(op, sequence_length)
    y, h_n, c_n = rnn_forward(cfg, data, weights, state, state_cell, lengths)
    if not state_outputs:
        return write_out(op, out, y)
    if out is not None:
        raise ArgumentValueError(
            f"{op}: out= takes one array, but state_outputs=True returns several. Fix: drop "
            "out= and assign the results."
        )
    return [y, h_n] if c_n is None else [y, h_n, c_n]
