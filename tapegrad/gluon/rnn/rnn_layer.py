"""Recurrent layers (MXNet 1.9 ``gluon/rnn/rnn_layer.py`` semantics): ``RNN``, ``LSTM``,
``GRU``: several layers, optionally bidirectional, over a whole sequence at once.

Parameters are named as in MXNet: ``collect_params()`` gives ``lstm0_l0_i2h_weight``,
``lstm0_r1_h2h_bias`` (``l`` forward, ``r`` backward direction), while ``save_parameters``
writes (and ``load_parameters`` reads) MXNet's ``_unfused.0.i2h_weight`` keys
(``_unfused.0.l_cell.i2h_weight`` when bidirectional), so files written by MXNet load.
Gates are in MXNet's order: LSTM i, f, c, o; GRU r, z, n.

The computation is ``mx.nd.RNN``'s (``tapegrad/ndarray/rnn_ops.py``), given the parameters
directly: one matrix product for the input projection of every step, one split of the time
axis, and the steps composed of recorded primitives (every derivative order exists).
"""

from __future__ import annotations

import re
from typing import Any

from ... import ndarray as nd
from ...base import ShapeError, fmt_shape
from ...ndarray.rnn_ops import ArgumentValueError, _Config, _lengths, check_states, rnn_forward
from ..block import HybridBlock

__all__ = ["RNN", "LSTM", "GRU"]

_KEY = re.compile(r"(l|r)(\d+)_(i2h|h2h|h2r)_(weight|bias)\Z")


class _RNNLayer(HybridBlock):
    """The recurrent layers' common part (MXNet's ``_RNNLayer``)."""

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        layout: str,
        dropout: float,
        bidirectional: bool,
        input_size: int,
        i2h_weight_initializer: Any,
        h2h_weight_initializer: Any,
        i2h_bias_initializer: Any,
        h2h_bias_initializer: Any,
        mode: str,
        projection_size: Any,
        h2r_weight_initializer: Any,
        lstm_state_clip_min: Any,
        lstm_state_clip_max: Any,
        lstm_state_clip_nan: bool,
        dtype: Any,
        use_sequence_length: bool = False,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if layout not in ("TNC", "NTC"):
            raise ArgumentValueError(
                f"{name}: invalid layout {layout!r}. Fix: use 'TNC' (time, batch, features) "
                "or 'NTC' (batch, time, features)."
            )
        # the settings are checked before the block exists (a failed call changes nothing)
        self._cfg = _Config(
            mode,
            hidden_size,
            num_layers,
            bidirectional,
            projection_size,
            dropout,
            lstm_state_clip_min,
            lstm_state_clip_max,
            lstm_state_clip_nan,
            name,
        )
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 0:
            raise ArgumentValueError(
                f"{name}: input_size must be a non-negative integer (0: inferred from the "
                f"first input), got {input_size!r}. Fix: pass the number of input features."
            )
        super().__init__(**kwargs)
        self._hidden_size = hidden_size
        self._projection_size = projection_size if projection_size else None
        self._num_layers = num_layers
        self._mode = mode
        self._layout = layout
        self._dropout = dropout
        self._dir = 2 if bidirectional else 1
        self._input_size = input_size
        self._i2h_weight_initializer = i2h_weight_initializer
        self._h2h_weight_initializer = h2h_weight_initializer
        self._i2h_bias_initializer = i2h_bias_initializer
        self._h2h_bias_initializer = h2h_bias_initializer
        self._h2r_weight_initializer = h2r_weight_initializer
        self._lstm_state_clip_min = lstm_state_clip_min
        self._lstm_state_clip_max = lstm_state_clip_max
        self._lstm_state_clip_nan = lstm_state_clip_nan
        self._dtype = dtype
        self._use_sequence_length = use_sequence_length
        self.skip_states: bool | None = None
        self._gates = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}[mode]
        inits = {
            "i2h_weight": i2h_weight_initializer,
            "h2h_weight": h2h_weight_initializer,
            "i2h_bias": i2h_bias_initializer,
            "h2h_bias": h2h_bias_initializer,
            "h2r_weight": h2r_weight_initializer,
        }
        slots = ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias", "h2r_weight")
        for i in range(num_layers):
            shapes = self._cfg.shapes(i, input_size)
            for j in ["l", "r"][: self._dir]:
                for slot, shape in zip(slots, shapes):
                    if shape is not None:
                        self._register_param(f"{j}{i}_{slot}", shape, inits[slot], dtype)

    def _register_param(self, name: str, shape: tuple, init: Any, dtype: Any) -> Any:
        p = self.params.get(name, shape=shape, init=init, allow_deferred_init=True, dtype=dtype)
        setattr(self, name, p)
        return p

    def __repr__(self) -> str:
        s = f"{type(self).__name__}({{mapping}}, {self._layout}"
        if self._num_layers != 1:
            s += f", num_layers={self._num_layers}"
        if self._dropout != 0:
            s += f", dropout={self._dropout}"
        if self._dir == 2:
            s += ", bidirectional"
        s += ")"
        shape = self.l0_i2h_weight.shape
        mapping = f"{shape[1] if shape[1] else None} -> {shape[0] // self._gates}"
        return s.format(mapping=mapping)

    def _collect_params_with_prefix(self, prefix: str = "") -> dict:
        """MXNet's file names: ``_unfused.{layer}.{i2h|h2h|h2r}_{weight|bias}``, and
        ``_unfused.{layer}.{l|r}_cell....`` when bidirectional."""
        if prefix:
            prefix += "."
        bidirectional = self._dir == 2
        ret = {}
        for key, val in self._reg_params.items():
            m = _KEY.match(key)
            if m is None:  # a parameter a subclass added
                ret[prefix + key] = val
                continue
            d, layer, g, t = m.groups()
            cell = f"{d}_cell." if bidirectional else ""
            ret[f"{prefix}_unfused.{layer}.{cell}{g}_{t}"] = val
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    def state_info(self, batch_size: int = 0) -> list:
        raise NotImplementedError

    def cast(self, dtype: Any) -> None:
        super().cast(dtype)
        self._dtype = dtype

    def begin_state(self, batch_size: int = 0, func: Any = nd.zeros, **kwargs: Any) -> list:
        """Initial states (zeros by default) for ``batch_size`` sequences: a list of arrays of
        shape (num_layers * directions, batch_size, hidden_size); ``kwargs`` go to ``func``
        (``dtype``, ``ctx``...)."""
        states = []
        for i, info in enumerate(self.state_info(batch_size)):
            info = dict(info)
            info.update(kwargs)
            states.append(func(name=f"{self.prefix}h0_{i}", **info))
        return states

    def infer_shape(self, inputs: Any, *args: Any) -> None:
        """The first layer's input size from the input's feature axis."""
        self._check_input(inputs)
        n_in = inputs.shape[2]
        for j in ["l", "r"][: self._dir]:
            w = getattr(self, f"{j}0_i2h_weight")
            w.shape = (w.shape[0], n_in)

    def _check_input(self, inputs: Any) -> None:
        if not isinstance(inputs, nd.NDArray):
            raise TypeError(
                f"{type(self).__name__} '{self.name}': the input must be an NDArray, got "
                f"{type(inputs).__name__}. Fix: convert it with mx.nd.array(...)."
            )
        if inputs.ndim != 3:
            axes = "time, batch" if self._layout == "TNC" else "batch, time"
            raise ShapeError(
                f"{type(self).__name__} '{self.name}': the input has shape "
                f"{fmt_shape(inputs.shape)}, but a recurrent layer takes 3 axes in layout "
                f"{self._layout!r}. Fix: pass an array of shape "
                f"({axes}, features)."
            )

    def __call__(
        self, inputs: Any, states: Any = None, sequence_length: Any = None, **kwargs: Any
    ) -> Any:
        """``layer(inputs)`` returns the output; ``layer(inputs, states)`` returns ``(output,
        new_states)``. With ``use_sequence_length=True``, ``sequence_length`` gives each
        sequence's length (the output past it is zero, the states are those at its end)."""
        self._check_input(inputs)
        self.skip_states = states is None
        if isinstance(states, nd.NDArray):
            states = [states]
        if self._use_sequence_length:
            out = super().__call__(inputs, states, sequence_length, **kwargs)
        else:
            if sequence_length is not None:
                raise ArgumentValueError(
                    f"{type(self).__name__} '{self.name}': sequence_length was given, but the "
                    "layer was made without use_sequence_length=True. Fix: create it with "
                    "use_sequence_length=True."
                )
            out = super().__call__(inputs, states, **kwargs)
        return out

    def hybrid_forward(
        self, F: Any, inputs: Any, states: Any = None, sequence_length: Any = None, **kwargs: Any
    ) -> Any:
        cfg = self._cfg
        name = f"{type(self).__name__} '{self.name}'"
        x = nd.swapaxes(inputs, 0, 1) if self._layout == "NTC" else inputs
        steps, batch = x.shape[0], x.shape[1]
        h0 = c0 = None
        if states is not None:
            n_states = 2 if self._mode == "lstm" else 1
            if not isinstance(states, (list, tuple)) or len(states) != n_states:
                raise ArgumentValueError(
                    f"{name}: expected {n_states} state array(s) "
                    f"({'[h, c]' if n_states == 2 else '[h]'}), got "
                    f"{len(states) if isinstance(states, (list, tuple)) else type(states).__name__}"
                    ". Fix: pass the list begin_state() returns."
                )
            h0 = states[0]
            c0 = states[1] if n_states == 2 else None
            check_states(name, cfg, batch, h0, c0, x.dtype)
        lengths = None
        if self._use_sequence_length:
            lengths = _lengths(name, sequence_length, batch, steps, 1)
        weights = []
        for layer in range(self._num_layers):
            for j in ["l", "r"][: self._dir]:
                w = [kwargs[f"{j}{layer}_{s}"] for s in ("i2h_weight", "h2h_weight")]
                w += [kwargs[f"{j}{layer}_{s}"] for s in ("i2h_bias", "h2h_bias")]
                w.append(kwargs.get(f"{j}{layer}_h2r_weight"))
                weights.append(w)
        n_in = weights[0][0].shape[1]
        if x.shape[2] != n_in:
            raise ShapeError(
                f"{name}: the input has {x.shape[2]} features (shape {fmt_shape(inputs.shape)}, "
                f"layout {self._layout}) but the layer was built for {n_in}. Fix: pass "
                f"input_size={x.shape[2]} (or leave it 0 to infer it), or check the layout."
            )
        out, h_n, c_n = rnn_forward(cfg, x, weights, h0, c0, lengths)
        if self._layout == "NTC":
            out = nd.swapaxes(out, 0, 1)
        if self.skip_states:  # called without states: the output alone (hooks see it too)
            return out
        return out, ([h_n] if c_n is None else [h_n, c_n])


class RNN(_RNNLayer):
    r"""Multi-layer Elman RNN with ``tanh`` or ``relu``:
    ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Args:
        hidden_size: features of the hidden state.
        num_layers: stacked layers.
        activation: 'relu' (MXNet's default) or 'tanh'.
        layout: 'TNC' (time, batch, features) or 'NTC'.
        dropout: dropout on each layer's output but the last (training mode).
        bidirectional: add a layer reading the sequence backwards (outputs concatenated).
        i2h_weight_initializer, h2h_weight_initializer, i2h_bias_initializer,
        h2h_bias_initializer: initializers (biases: zeros).
        input_size: input features; 0 infers them at the first call.
        dtype: parameter dtype.

    Called as ``layer(x)`` it returns the output (T, N, directions * hidden_size) in
    ``layout``; ``layer(x, states)`` returns ``(output, new_states)`` with states of shape
    (num_layers * directions, N, hidden_size).

    >>> import tapegrad as mx
    >>> layer = mx.gluon.rnn.RNN(100, 3)
    >>> layer.initialize()
    >>> x = mx.nd.random.uniform(shape=(5, 3, 10))
    >>> layer(x).shape
    (5, 3, 100)
    >>> out, hn = layer(x, layer.begin_state(batch_size=3))
    >>> hn[0].shape
    (3, 3, 100)
    """

    def __init__(
        self,
        hidden_size: int,
        num_layers: int = 1,
        activation: str = "relu",
        layout: str = "TNC",
        dropout: float = 0,
        bidirectional: bool = False,
        i2h_weight_initializer: Any = None,
        h2h_weight_initializer: Any = None,
        i2h_bias_initializer: Any = "zeros",
        h2h_bias_initializer: Any = "zeros",
        input_size: int = 0,
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        if activation not in ("relu", "tanh"):
            raise ArgumentValueError(
                f"RNN: activation must be 'relu' or 'tanh', got {activation!r}. Fix: use one "
                "of them (an RNNCell takes any activation)."
            )
        super().__init__(
            hidden_size,
            num_layers,
            layout,
            dropout,
            bidirectional,
            input_size,
            i2h_weight_initializer,
            h2h_weight_initializer,
            i2h_bias_initializer,
            h2h_bias_initializer,
            "rnn_" + activation,
            None,
            None,
            None,
            None,
            False,
            dtype,
            **kwargs,
        )

    def state_info(self, batch_size: int = 0) -> list:
        shape = (self._num_layers * self._dir, batch_size, self._hidden_size)
        return [{"shape": shape, "__layout__": "LNC", "dtype": self._dtype}]


class LSTM(_RNNLayer):
    r"""Multi-layer long short-term memory:
    ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_i x_t + b_i + W_h h_{t-1} + b_h)``
    (gates in this order, MXNet's), ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``.

    Args: as :class:`RNN` (no ``activation``), and
        projection_size: if set, ``r_t = W_hr h_t`` (LSTMP, Sak et al. 2014) is the output
            and the recurrent state; parameters ``*_h2r_weight``.
        h2r_weight_initializer: initializer of the projection.
        state_clip_min, state_clip_max: clip the cell state to this range (both or neither);
        state_clip_nan: a NaN cell state becomes ``state_clip_min``.

    ``states`` is ``[h, c]``, each (num_layers * directions, N, hidden_size) (h has
    projection_size features with a projection).

    >>> import tapegrad as mx
    >>> with mx.gluon.block.NameManager():   # names counted afresh: lstm0_, lstm1_...
    ...     layer = mx.gluon.rnn.LSTM(100, 3)
    >>> layer.initialize()
    >>> x = mx.nd.random.uniform(shape=(5, 3, 10))
    >>> out, (h, c) = layer(x, layer.begin_state(batch_size=3))
    >>> out.shape, h.shape, c.shape
    ((5, 3, 100), (3, 3, 100), (3, 3, 100))
    >>> sorted(layer.collect_params())[:2]
    ['lstm0_l0_h2h_bias', 'lstm0_l0_h2h_weight']
    """

    def __init__(
        self,
        hidden_size: int,
        num_layers: int = 1,
        layout: str = "TNC",
        dropout: float = 0,
        bidirectional: bool = False,
        input_size: int = 0,
        i2h_weight_initializer: Any = None,
        h2h_weight_initializer: Any = None,
        i2h_bias_initializer: Any = "zeros",
        h2h_bias_initializer: Any = "zeros",
        projection_size: Any = None,
        h2r_weight_initializer: Any = None,
        state_clip_min: Any = None,
        state_clip_max: Any = None,
        state_clip_nan: bool = False,
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hidden_size,
            num_layers,
            layout,
            dropout,
            bidirectional,
            input_size,
            i2h_weight_initializer,
            h2h_weight_initializer,
            i2h_bias_initializer,
            h2h_bias_initializer,
            "lstm",
            projection_size,
            h2r_weight_initializer,
            state_clip_min,
            state_clip_max,
            state_clip_nan,
            dtype,
            **kwargs,
        )

    def state_info(self, batch_size: int = 0) -> list:
        n = self._num_layers * self._dir
        h = self._projection_size or self._hidden_size
        return [
            {"shape": (n, batch_size, h), "__layout__": "LNC", "dtype": self._dtype},
            {
                "shape": (n, batch_size, self._hidden_size),
                "__layout__": "LNC",
                "dtype": self._dtype,
            },
        ]


class GRU(_RNNLayer):
    r"""Multi-layer gated recurrent unit (cuDNN's variant, as MXNet):
    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z = sigmoid(W_iz x + b_iz + W_hz h +
    b_hz)``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``
    (gates in this order, MXNet's).

    Args: as :class:`RNN` (no ``activation``).

    >>> import tapegrad as mx
    >>> layer = mx.gluon.rnn.GRU(100, 3, layout='NTC')
    >>> layer.initialize()
    >>> layer(mx.nd.random.uniform(shape=(3, 5, 10))).shape
    (3, 5, 100)
    """

    def __init__(
        self,
        hidden_size: int,
        num_layers: int = 1,
        layout: str = "TNC",
        dropout: float = 0,
        bidirectional: bool = False,
        input_size: int = 0,
        i2h_weight_initializer: Any = None,
        h2h_weight_initializer: Any = None,
        i2h_bias_initializer: Any = "zeros",
        h2h_bias_initializer: Any = "zeros",
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hidden_size,
            num_layers,
            layout,
            dropout,
            bidirectional,
            input_size,
            i2h_weight_initializer,
            h2h_weight_initializer,
            i2h_bias_initializer,
            h2h_bias_initializer,
            "gru",
            None,
            None,
            None,
            None,
            False,
            dtype,
            **kwargs,
        )

    def state_info(self, batch_size: int = 0) -> list:
        shape = (self._num_layers * self._dir, batch_size, self._hidden_size)
        return [{"shape": shape, "__layout__": "LNC", "dtype": self._dtype}]
