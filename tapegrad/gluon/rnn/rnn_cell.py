"""Recurrent cells (MXNet 1.9 ``gluon/rnn/rnn_cell.py`` semantics): one time step at a time,
``output, new_states = cell(x_t, states)``, or a whole sequence with ``cell.unroll(length,
inputs, begin_state, layout, merge_outputs, valid_length)``.

Cells: ``RNNCell``, ``LSTMCell`` (gates i, f, c, o), ``GRUCell`` (gates r, z, n); containers
``SequentialRNNCell``, ``HybridSequentialRNNCell``, ``BidirectionalCell``; modifiers
``DropoutCell``, ``ZoneoutCell``, ``ResidualCell``. Parameter names are MXNet's
(``lstm0_i2h_weight``), so a layer's weights fit the cells it unfuses into.

``unroll`` splits a sequence along its time axis with one recorded split (its gradient is
gathered into one array, not one full-size array per step).
"""

from __future__ import annotations

from typing import Any

from ... import ndarray as nd
from ...base import ShapeError, TapegradError, fmt_shape
from ...ndarray.rnn_ops import ArgumentValueError, split_steps
from ..block import Block, HybridBlock
from ..nn import LeakyReLU
from ..parameter import _indent

__all__ = [
    "RecurrentCell",
    "HybridRecurrentCell",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "SequentialRNNCell",
    "HybridSequentialRNNCell",
    "DropoutCell",
    "ModifierCell",
    "ZoneoutCell",
    "ResidualCell",
    "BidirectionalCell",
]


class ModifiedCellError(TapegradError, RuntimeError):
    """A cell wrapped by a modifier (ZoneoutCell, ResidualCell) used directly."""


def _cells_state_info(cells: Any, batch_size: int) -> list:
    return sum([c.state_info(batch_size) for c in cells], [])


def _cells_begin_state(cells: Any, **kwargs: Any) -> list:
    return sum([c.begin_state(**kwargs) for c in cells], [])


def _get_begin_state(cell: Any, begin_state: Any, inputs: Any, batch_size: int) -> list:
    if begin_state is None:
        begin_state = cell.begin_state(func=nd.zeros, batch_size=batch_size)
    return begin_state


def _check_layout(where: str, layout: str) -> None:
    if layout not in ("NTC", "TNC"):
        raise ArgumentValueError(
            f"{where}: invalid layout {layout!r}. Fix: use 'NTC' (batch, time, features) or "
            "'TNC' (time, batch, features)."
        )


def _format_sequence(
    length: Any, inputs: Any, layout: str, merge: Any, in_layout: Any = None, where: str = ""
) -> tuple:
    """MXNet's ``_format_sequence``: ``inputs`` (one array in ``layout``, or a list of
    per-step arrays) as a list of steps (``merge=False``) or one array (``merge=True``; None
    keeps the form it has). Returns ``(inputs, time axis, nd, batch_size)``."""
    if inputs is None:
        raise ArgumentValueError(
            f"{where}: unroll(inputs=None) is not supported. Fix: pass the input sequence."
        )
    _check_layout(where, layout)
    axis = layout.find("T")
    batch_axis = layout.find("N")
    in_axis = in_layout.find("T") if in_layout is not None else axis
    if isinstance(inputs, nd.NDArray):
        if inputs.ndim < 2:
            raise ShapeError(
                f"{where}: the input sequence has shape {fmt_shape(inputs.shape)}; it needs a "
                f"time and a batch axis (layout {layout!r}). Fix: pass an array of shape "
                f"{'(batch, time, ...)' if layout == 'NTC' else '(time, batch, ...)'}."
            )
        batch_size = inputs.shape[batch_axis]
        if merge is False:
            if length is not None and length != inputs.shape[in_axis]:
                raise ShapeError(
                    f"{where}: length={length} but the input has {inputs.shape[in_axis]} steps "
                    f"(shape {fmt_shape(inputs.shape)}, layout {layout!r}). Fix: pass "
                    f"length={inputs.shape[in_axis]}."
                )
            inputs = split_steps(inputs, in_axis)
    else:
        inputs = list(inputs)
        if length is not None and len(inputs) != length:
            raise ShapeError(
                f"{where}: length={length} but {len(inputs)} input steps were given. Fix: pass "
                f"length={len(inputs)}."
            )
        if not inputs or not all(isinstance(x, nd.NDArray) for x in inputs):
            raise TypeError(
                f"{where}: the inputs must be an NDArray or a non-empty list of NDArrays. "
                "Fix: pass the sequence as one array or as a list of per-step arrays."
            )
        batch_size = inputs[0].shape[0]
        if merge is True:
            inputs = nd.stack(*inputs, axis=axis)
            in_axis = axis
    if isinstance(inputs, nd.NDArray) and axis != in_axis:
        inputs = nd.swapaxes(inputs, axis, in_axis)
    return inputs, axis, nd, batch_size


def _mask_sequence_variable_length(
    data: Any, length: int, valid_length: Any, time_axis: int, merge: bool
) -> Any:
    if not isinstance(data, nd.NDArray):
        data = nd.stack(*data, axis=time_axis)
    outputs = nd.SequenceMask(
        data, sequence_length=valid_length, use_sequence_length=True, axis=time_axis
    )
    if not merge:
        outputs = split_steps(outputs, time_axis)
    return outputs


def _reverse_sequences(sequences: list, unroll_step: int, valid_length: Any = None) -> list:
    if valid_length is None:
        return list(reversed(sequences))
    rev = nd.SequenceReverse(
        nd.stack(*sequences, axis=0), sequence_length=valid_length, use_sequence_length=True
    )
    return split_steps(rev, 0)


class RecurrentCell(Block):
    """Base class of recurrent cells. ``cell(inputs, states)`` makes one step and returns
    ``(output, new_states)``; :meth:`unroll` runs a whole sequence."""

    def __init__(self, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)
        self._modified = False
        self.reset()

    def reset(self) -> None:
        """Reset the step counters before a new sequence (``unroll`` does it)."""
        self._init_counter = -1
        self._counter = -1
        for cell in self._children.values():
            if isinstance(cell, RecurrentCell):
                cell.reset()

    def state_info(self, batch_size: int = 0) -> list:
        """Shape and layout of each state (a list of dicts)."""
        raise NotImplementedError()

    def _refuse_modified(self) -> None:
        if self._modified:
            raise ModifiedCellError(
                f"{type(self).__name__} '{self.name}' is wrapped by a modifier cell (e.g. "
                "ZoneoutCell, ResidualCell) and cannot be used directly. Fix: call the "
                "modifier cell instead."
            )

    def begin_state(self, batch_size: int = 0, func: Any = nd.zeros, **kwargs: Any) -> list:
        """Initial states for ``batch_size`` sequences (zeros by default: ``func`` is called
        with the shape and ``kwargs``, e.g. ``func=mx.nd.random.uniform``)."""
        self._refuse_modified()
        states = []
        for info in self.state_info(batch_size):
            self._init_counter += 1
            info = dict(info) if info is not None else {}
            info.update(kwargs)
            states.append(func(name=f"{self._prefix}begin_state_{self._init_counter}", **info))
        return states

    def unroll(
        self,
        length: int,
        inputs: Any,
        begin_state: Any = None,
        layout: str = "NTC",
        merge_outputs: Any = None,
        valid_length: Any = None,
    ) -> tuple:
        """Run the cell over ``length`` steps.

        Args:
            length: number of steps.
            inputs: one array in ``layout`` ((batch, length, ...) for 'NTC', (length, batch,
                ...) for 'TNC'), or a list of ``length`` arrays of shape (batch, ...).
            begin_state: initial states (``begin_state()`` when None).
            layout: 'NTC' or 'TNC'.
            merge_outputs: True: one output array in ``layout``; False: a list of per-step
                outputs; None: whichever the inputs were.
            valid_length: (batch,) lengths of the sequences: the states returned are those at
                each sequence's last step, and outputs past it are zero.

        Returns ``(outputs, states)``.
        """
        self.reset()
        where = f"{type(self).__name__} '{self.name}'.unroll"
        inputs, axis, F, batch_size = _format_sequence(length, inputs, layout, False, where=where)
        begin_state = _get_begin_state(self, begin_state, inputs, batch_size)
        states = begin_state
        outputs = []
        all_states = []
        for i in range(length):
            output, states = self(inputs[i], states)
            outputs.append(output)
            if valid_length is not None:
                all_states.append(states)
        if valid_length is not None:
            states = [
                nd.SequenceLast(
                    nd.stack(*ele_list, axis=0),
                    sequence_length=valid_length,
                    use_sequence_length=True,
                    axis=0,
                )
                for ele_list in zip(*all_states)
            ]
            outputs = _mask_sequence_variable_length(outputs, length, valid_length, axis, True)
        outputs, _, _, _ = _format_sequence(length, outputs, layout, merge_outputs, where=where)
        return outputs, states

    def _get_activation(self, F: Any, inputs: Any, activation: Any, **kwargs: Any) -> Any:
        """``activation`` (a name, a LeakyReLU block or a callable) applied to ``inputs``."""
        func = {"tanh": F.tanh, "relu": F.relu, "sigmoid": F.sigmoid, "softsign": F.softsign}
        if isinstance(activation, str):
            f = func.get(activation)
            return f(inputs) if f else F.Activation(inputs, act_type=activation)
        if isinstance(activation, LeakyReLU):
            return F.LeakyReLU(inputs, act_type="leaky", slope=activation._alpha)
        return activation(inputs, **kwargs)

    def forward(self, inputs: Any, states: Any) -> Any:
        """One step: ``(output, new_states)``."""
        self._counter += 1
        return super().forward(inputs, states)


class HybridRecurrentCell(RecurrentCell, HybridBlock):
    """Base class of cells written as ``hybrid_forward(F, x, states, **params)``."""

    def __init__(self, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)

    def hybrid_forward(self, F: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _check_states(self, states: Any, n: int, batch: int) -> None:
        if not isinstance(states, (list, tuple)) or len(states) != n:
            got = len(states) if isinstance(states, (list, tuple)) else type(states).__name__
            raise ArgumentValueError(
                f"{type(self).__name__} '{self.name}': expected a list of {n} state array(s), "
                f"got {got}. Fix: pass the list begin_state() returns (or the states the "
                "previous step returned)."
            )
        for i, (s, info) in enumerate(zip(states, self.state_info(batch))):
            if not isinstance(s, nd.NDArray) or tuple(s.shape) != info["shape"]:
                got = fmt_shape(s.shape) if isinstance(s, nd.NDArray) else type(s).__name__
                raise ShapeError(
                    f"{type(self).__name__} '{self.name}': state {i} is {got}, expecting "
                    f"{fmt_shape(info['shape'])} (batch {batch} of the input, hidden size). "
                    f"Fix: pass begin_state(batch_size={batch}) (or the previous step's states)."
                )


class _GatedCell(HybridRecurrentCell):
    """Common part of RNNCell, LSTMCell and GRUCell: i2h/h2h weights and biases."""

    _ngates = 1

    def __init__(
        self,
        hidden_size: int,
        i2h_weight_initializer: Any,
        h2h_weight_initializer: Any,
        i2h_bias_initializer: Any,
        h2h_bias_initializer: Any,
        input_size: int,
        prefix: Any,
        params: Any,
    ) -> None:
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ArgumentValueError(
                f"{type(self).__name__}: hidden_size must be a positive integer, got "
                f"{hidden_size!r}. Fix: pass the number of hidden units, e.g. 100."
            )
        super().__init__(prefix=prefix, params=params)
        self._hidden_size = hidden_size
        self._input_size = input_size
        g = self._ngates * hidden_size
        get = self.params.get
        self.i2h_weight = get(
            "i2h_weight",
            shape=(g, input_size),
            init=i2h_weight_initializer,
            allow_deferred_init=True,
        )
        self.h2h_weight = get(
            "h2h_weight",
            shape=(g, hidden_size),
            init=h2h_weight_initializer,
            allow_deferred_init=True,
        )
        self.i2h_bias = get(
            "i2h_bias", shape=(g,), init=i2h_bias_initializer, allow_deferred_init=True
        )
        self.h2h_bias = get(
            "h2h_bias", shape=(g,), init=h2h_bias_initializer, allow_deferred_init=True
        )

    def infer_shape(self, inputs: Any, *args: Any) -> None:
        """The input size from the input (all axes but the batch axis, flattened)."""
        n = 1
        for s in inputs.shape[1:]:
            n *= s
        self.i2h_weight.shape = (self._ngates * self._hidden_size, n)

    def __repr__(self) -> str:
        shape = self.i2h_weight.shape
        mapping = f"{shape[1] if shape[1] else None} -> {shape[0]}"
        act = getattr(self, "_activation", None)
        extra = f", {act}" if type(self) is RNNCell else ""
        return f"{type(self).__name__}({mapping}{extra})"

    def _fc(self, F: Any, x: Any, w: Any, b: Any, what: str) -> Any:
        try:
            return F.FullyConnected(data=x, weight=w, bias=b, num_hidden=w.shape[0])
        except ShapeError as e:
            raise ShapeError(f"{type(self).__name__} '{self.name}' ({what}): {e}") from None


class RNNCell(_GatedCell):
    r"""Elman RNN cell: ``h_t = activation(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Args:
        hidden_size: features of the hidden state.
        activation: a name ('tanh', 'relu', 'sigmoid', 'softsign' or any Activation type),
            a LeakyReLU block, or a callable.
        i2h_weight_initializer, h2h_weight_initializer, i2h_bias_initializer,
        h2h_bias_initializer: initializers (biases: zeros).
        input_size: input features; 0 infers them at the first call.

    >>> import tapegrad as mx
    >>> cell = mx.gluon.rnn.RNNCell(4)
    >>> cell.initialize()
    >>> out, states = cell(mx.nd.ones((2, 3)), cell.begin_state(batch_size=2))
    >>> out.shape, len(states)
    ((2, 4), 1)
    """

    _ngates = 1

    def __init__(
        self,
        hidden_size: int,
        activation: Any = "tanh",
        i2h_weight_initializer: Any = None,
        h2h_weight_initializer: Any = None,
        i2h_bias_initializer: Any = "zeros",
        h2h_bias_initializer: Any = "zeros",
        input_size: int = 0,
        prefix: Any = None,
        params: Any = None,
    ) -> None:
        super().__init__(
            hidden_size,
            i2h_weight_initializer,
            h2h_weight_initializer,
            i2h_bias_initializer,
            h2h_bias_initializer,
            input_size,
            prefix,
            params,
        )
        self._activation = activation

    def state_info(self, batch_size: int = 0) -> list:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def _alias(self) -> str:
        return "rnn"

    def hybrid_forward(
        self, F: Any, inputs: Any, states: Any, i2h_weight: Any, h2h_weight: Any, i2h_bias: Any,
        h2h_bias: Any,
    ) -> Any:  # fmt: skip
        self._check_states(states, 1, inputs.shape[0])
        i2h = self._fc(F, inputs, i2h_weight, i2h_bias, "input")
        h2h = self._fc(F, states[0], h2h_weight, h2h_bias, "state")
        output = self._get_activation(F, i2h + h2h, self._activation)
        return output, [output]


class LSTMCell(_GatedCell):
    r"""Long short-term memory cell, gates in MXNet's order (input, forget, cell, output):
    ``i, f, g, o`` = recurrent_activation, recurrent_activation, activation,
    recurrent_activation of ``W_i x_t + b_i + W_h h_{t-1} + b_h``;
    ``c_t = f c_{t-1} + i g``, ``h_t = o activation(c_t)``. States ``[h, c]``.

    Args: as :class:`RNNCell`, with ``activation`` ('tanh') and ``recurrent_activation``
    ('sigmoid').

    >>> import tapegrad as mx
    >>> cell = mx.gluon.rnn.LSTMCell(4, prefix='lstm_')
    >>> cell.initialize()
    >>> outs, states = cell.unroll(3, mx.nd.ones((2, 3, 5)), merge_outputs=True)
    >>> outs.shape, [s.shape for s in states]
    ((2, 3, 4), [(2, 4), (2, 4)])
    >>> sorted(cell.collect_params())[:2]
    ['lstm_h2h_bias', 'lstm_h2h_weight']
    """

    _ngates = 4

    def __init__(
        self,
        hidden_size: int,
        i2h_weight_initializer: Any = None,
        h2h_weight_initializer: Any = None,
        i2h_bias_initializer: Any = "zeros",
        h2h_bias_initializer: Any = "zeros",
        input_size: int = 0,
        prefix: Any = None,
        params: Any = None,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
    ) -> None:
        super().__init__(
            hidden_size,
            i2h_weight_initializer,
            h2h_weight_initializer,
            i2h_bias_initializer,
            h2h_bias_initializer,
            input_size,
            prefix,
            params,
        )
        self._activation = activation
        self._recurrent_activation = recurrent_activation

    def state_info(self, batch_size: int = 0) -> list:
        return [
            {"shape": (batch_size, self._hidden_size), "__layout__": "NC"},
            {"shape": (batch_size, self._hidden_size), "__layout__": "NC"},
        ]

    def _alias(self) -> str:
        return "lstm"

    def hybrid_forward(
        self, F: Any, inputs: Any, states: Any, i2h_weight: Any, h2h_weight: Any, i2h_bias: Any,
        h2h_bias: Any,
    ) -> Any:  # fmt: skip
        self._check_states(states, 2, inputs.shape[0])
        H = self._hidden_size
        i2h = self._fc(F, inputs, i2h_weight, i2h_bias, "input")
        h2h = self._fc(F, states[0], h2h_weight, h2h_bias, "state")
        gates = split_steps((i2h + h2h).reshape((-1, 4, H)), 1)
        ract, act = self._recurrent_activation, self._activation
        in_gate = self._get_activation(F, gates[0], ract)
        forget_gate = self._get_activation(F, gates[1], ract)
        in_transform = self._get_activation(F, gates[2], act)
        out_gate = self._get_activation(F, gates[3], ract)
        next_c = forget_gate * states[1] + in_gate * in_transform
        next_h = out_gate * self._get_activation(F, next_c, act)
        return next_h, [next_h, next_c]


class GRUCell(_GatedCell):
    r"""Gated recurrent unit cell (cuDNN's variant, as MXNet), gates reset, update, new:
    ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z = sigmoid(W_iz x + b_iz + W_hz h +
    b_hz)``, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.

    Args: as :class:`RNNCell` (no activation).

    >>> import tapegrad as mx
    >>> cell = mx.gluon.rnn.GRUCell(4)
    >>> cell.initialize()
    >>> cell(mx.nd.ones((2, 3)), cell.begin_state(batch_size=2))[0].shape
    (2, 4)
    """

    _ngates = 3

    def __init__(
        self,
        hidden_size: int,
        i2h_weight_initializer: Any = None,
        h2h_weight_initializer: Any = None,
        i2h_bias_initializer: Any = "zeros",
        h2h_bias_initializer: Any = "zeros",
        input_size: int = 0,
        prefix: Any = None,
        params: Any = None,
    ) -> None:
        super().__init__(
            hidden_size,
            i2h_weight_initializer,
            h2h_weight_initializer,
            i2h_bias_initializer,
            h2h_bias_initializer,
            input_size,
            prefix,
            params,
        )

    def state_info(self, batch_size: int = 0) -> list:
        return [{"shape": (batch_size, self._hidden_size), "__layout__": "NC"}]

    def _alias(self) -> str:
        return "gru"

    def hybrid_forward(
        self, F: Any, inputs: Any, states: Any, i2h_weight: Any, h2h_weight: Any, i2h_bias: Any,
        h2h_bias: Any,
    ) -> Any:  # fmt: skip
        self._check_states(states, 1, inputs.shape[0])
        H = self._hidden_size
        prev_h = states[0]
        i2h = self._fc(F, inputs, i2h_weight, i2h_bias, "input")
        h2h = self._fc(F, prev_h, h2h_weight, h2h_bias, "state")
        i2h_r, i2h_z, i2h_n = split_steps(i2h.reshape((-1, 3, H)), 1)
        h2h_r, h2h_z, h2h_n = split_steps(h2h.reshape((-1, 3, H)), 1)
        reset_gate = F.sigmoid(i2h_r + h2h_r)
        update_gate = F.sigmoid(i2h_z + h2h_z)
        next_h_tmp = F.tanh(i2h_n + reset_gate * h2h_n)
        next_h = (1.0 - update_gate) * next_h_tmp + update_gate * prev_h
        return next_h, [next_h]


class SequentialRNNCell(RecurrentCell):
    """Cells applied one after the other at each step (the output of one is the input of the
    next; the states are concatenated).

    >>> import tapegrad as mx
    >>> stack = mx.gluon.rnn.SequentialRNNCell()
    >>> with stack.name_scope():
    ...     stack.add(mx.gluon.rnn.LSTMCell(4))
    ...     stack.add(mx.gluon.rnn.LSTMCell(3))
    >>> stack.initialize()
    >>> out, states = stack.unroll(5, mx.nd.ones((2, 5, 6)), merge_outputs=True)
    >>> out.shape, len(states)
    ((2, 5, 3), 4)
    """

    def __init__(self, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)

    def __repr__(self) -> str:
        mods = "\n".join(f"({i}): {_indent(repr(m), 2)}" for i, m in self._children.items())
        return f"{type(self).__name__}(\n{mods}\n)"

    def add(self, cell: Any) -> None:
        """Append a cell."""
        if not isinstance(cell, RecurrentCell):
            raise TypeError(
                f"{type(self).__name__}.add: expected a recurrent cell, got "
                f"{type(cell).__name__}. Fix: add RNNCell/LSTMCell/GRUCell or modifier cells."
            )
        self.register_child(cell)

    def state_info(self, batch_size: int = 0) -> list:
        return _cells_state_info(self._children.values(), batch_size)

    def begin_state(self, **kwargs: Any) -> list:
        self._refuse_modified()
        return _cells_begin_state(self._children.values(), **kwargs)

    def _steps(self, inputs: Any, states: Any) -> tuple:
        self._counter += 1
        next_states = []
        p = 0
        for cell in self._children.values():
            if isinstance(cell, BidirectionalCell):
                raise ArgumentValueError(
                    f"{type(self).__name__} '{self.name}': a BidirectionalCell cannot be "
                    "stepped. Fix: use unroll()."
                )
            n = len(cell.state_info())
            state = states[p : p + n]
            p += n
            inputs, state = cell(inputs, state)
            next_states.append(state)
        return inputs, sum(next_states, [])

    def __call__(self, inputs: Any, states: Any) -> Any:
        return self._steps(inputs, states)

    def unroll(
        self,
        length: int,
        inputs: Any,
        begin_state: Any = None,
        layout: str = "NTC",
        merge_outputs: Any = None,
        valid_length: Any = None,
    ) -> tuple:
        """Unroll each cell over the whole sequence in turn (see RecurrentCell.unroll)."""
        self.reset()
        where = f"{type(self).__name__} '{self.name}'.unroll"
        inputs, _, F, batch_size = _format_sequence(length, inputs, layout, None, where=where)
        num_cells = len(self._children)
        begin_state = _get_begin_state(self, begin_state, inputs, batch_size)
        p = 0
        next_states = []
        for i, cell in enumerate(self._children.values()):
            n = len(cell.state_info())
            states = begin_state[p : p + n]
            p += n
            inputs, states = cell.unroll(
                length,
                inputs=inputs,
                begin_state=states,
                layout=layout,
                merge_outputs=None if i < num_cells - 1 else merge_outputs,
                valid_length=valid_length,
            )
            next_states.extend(states)
        return inputs, next_states

    def __getitem__(self, i: int) -> Any:
        return self._children[str(i)]

    def __len__(self) -> int:
        return len(self._children)

    def hybrid_forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class HybridSequentialRNNCell(HybridRecurrentCell):
    """:class:`SequentialRNNCell` whose cells are all hybrid."""

    def __init__(self, prefix: str | None = None, params: Any = None) -> None:
        super().__init__(prefix=prefix, params=params)

    __repr__ = SequentialRNNCell.__repr__
    add = SequentialRNNCell.add
    state_info = SequentialRNNCell.state_info
    begin_state = SequentialRNNCell.begin_state
    _steps = SequentialRNNCell._steps
    __call__ = SequentialRNNCell.__call__
    unroll = SequentialRNNCell.unroll
    __getitem__ = SequentialRNNCell.__getitem__
    __len__ = SequentialRNNCell.__len__

    def hybrid_forward(self, F: Any, inputs: Any, states: Any) -> Any:
        return self._steps(inputs, states)


class DropoutCell(HybridRecurrentCell):
    """Dropout on the input, as a cell (no states): ``rate`` of the elements are zeroed in
    training mode; ``axes`` share one mask.

    >>> import tapegrad as mx
    >>> mx.gluon.rnn.DropoutCell(0.5)(mx.nd.ones((1, 2)), [])[0].asnumpy().tolist()
    [[1.0, 1.0]]
    """

    def __init__(self, rate: float, axes: Any = (), prefix: Any = None, params: Any = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise TypeError(
                f"DropoutCell: rate must be a number, got {type(rate).__name__}. Fix: pass the "
                "fraction to drop, e.g. 0.2."
            )
        if not 0 <= rate < 1:
            raise ArgumentValueError(
                f"DropoutCell: rate={rate} must be in [0, 1). Fix: choose 0 <= rate < 1."
            )
        super().__init__(prefix, params)
        self._rate = rate
        self._axes = axes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self._rate}, axes={self._axes})"

    def state_info(self, batch_size: int = 0) -> list:
        return []

    def _alias(self) -> str:
        return "dropout"

    def hybrid_forward(self, F: Any, inputs: Any, states: Any) -> Any:
        if self._rate > 0:
            inputs = F.Dropout(data=inputs, p=self._rate, axes=self._axes)
        return inputs, states

    def unroll(
        self,
        length: int,
        inputs: Any,
        begin_state: Any = None,
        layout: str = "NTC",
        merge_outputs: Any = None,
        valid_length: Any = None,
    ) -> tuple:
        self.reset()
        where = f"{type(self).__name__} '{self.name}'.unroll"
        inputs, _, F, _ = _format_sequence(length, inputs, layout, merge_outputs, where=where)
        if isinstance(inputs, nd.NDArray):
            return self.hybrid_forward(F, inputs, begin_state if begin_state else [])
        return super().unroll(
            length,
            inputs,
            begin_state=begin_state,
            layout=layout,
            merge_outputs=merge_outputs,
            valid_length=None,
        )


class ModifierCell(HybridRecurrentCell):
    """Base class of cells that wrap another (``base_cell``) and change its behaviour. The
    base cell cannot be used directly afterwards."""

    def __init__(self, base_cell: Any) -> None:
        if not isinstance(base_cell, RecurrentCell):
            raise TypeError(
                f"{type(self).__name__}: base_cell must be a recurrent cell, got "
                f"{type(base_cell).__name__}. Fix: wrap an RNNCell, LSTMCell, GRUCell or a "
                "container of cells."
            )
        if base_cell._modified:
            raise ModifiedCellError(
                f"{type(self).__name__}: cell '{base_cell.name}' is already modified; one cell "
                "cannot be modified twice. Fix: wrap the modifier cell instead."
            )
        super().__init__(prefix=base_cell.prefix + self._alias(), params=None)
        base_cell._modified = True
        self.base_cell = base_cell

    @property
    def params(self) -> Any:
        return self.base_cell.params

    def state_info(self, batch_size: int = 0) -> list:
        return self.base_cell.state_info(batch_size)

    def begin_state(self, batch_size: int = 0, func: Any = nd.zeros, **kwargs: Any) -> list:
        self._refuse_modified()
        self.base_cell._modified = False
        try:
            return self.base_cell.begin_state(batch_size=batch_size, func=func, **kwargs)
        finally:
            self.base_cell._modified = True

    def hybrid_forward(self, F: Any, inputs: Any, states: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_cell!r})"


class ZoneoutCell(ModifierCell):
    """Zoneout (Krueger et al. 2016) on a cell, in training mode: each output and state
    element keeps its previous value with probability ``zoneout_outputs`` /
    ``zoneout_states``.

    >>> import tapegrad as mx
    >>> cell = mx.gluon.rnn.ZoneoutCell(mx.gluon.rnn.RNNCell(3), zoneout_states=0.5)
    >>> cell.initialize()
    >>> cell.unroll(2, mx.nd.ones((1, 2, 4)), merge_outputs=True)[0].shape
    (1, 2, 3)
    """

    def __init__(self, base_cell: Any, zoneout_outputs: float = 0.0, zoneout_states: float = 0.0):
        if isinstance(base_cell, BidirectionalCell):
            raise ArgumentValueError(
                "ZoneoutCell: a BidirectionalCell does not support zoneout (it cannot be "
                "stepped). Fix: wrap the cells inside it instead."
            )
        for what, p in (("zoneout_outputs", zoneout_outputs), ("zoneout_states", zoneout_states)):
            if not 0 <= p < 1:
                raise ArgumentValueError(
                    f"ZoneoutCell: {what}={p} must be in [0, 1). Fix: choose 0 <= p < 1."
                )
        super().__init__(base_cell)
        self.zoneout_outputs = zoneout_outputs
        self.zoneout_states = zoneout_states
        self._prev_output = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(p_out={self.zoneout_outputs}, "
            f"p_state={self.zoneout_states}, {self.base_cell!r})"
        )

    def _alias(self) -> str:
        return "zoneout"

    def reset(self) -> None:
        super().reset()
        self._prev_output = None

    def forward(self, inputs: Any, states: Any) -> Any:
        """One step. The previous step's output is an input of the call, not state read
        inside it, so that a hybridized cell's compiled code gets each step's own (a trace
        would otherwise keep the traced step's forever)."""
        self._counter += 1
        out = HybridBlock.forward(self, inputs, states, self._prev_output)
        self._prev_output = out[0]
        return out

    def hybrid_forward(self, F: Any, inputs: Any, states: Any, prev_output: Any = None) -> Any:
        p_outputs, p_states = self.zoneout_outputs, self.zoneout_states
        next_output, next_states = self.base_cell(inputs, states)

        def mask(p: float, like: Any) -> Any:
            return F.Dropout(F.ones_like(like), p=p)

        if prev_output is None:
            prev_output = F.zeros_like(next_output)
        output = (
            F.where(mask(p_outputs, next_output), next_output, prev_output)
            if p_outputs != 0.0
            else next_output
        )
        if p_states != 0.0:
            states = [
                F.where(mask(p_states, new_s), new_s, old_s)
                for new_s, old_s in zip(next_states, states)
            ]
        else:
            states = next_states
        return output, states


class ResidualCell(ModifierCell):
    """Adds the input to the base cell's output (Wu et al. 2016, Google NMT).

    >>> import tapegrad as mx
    >>> cell = mx.gluon.rnn.ResidualCell(mx.gluon.rnn.GRUCell(3))
    >>> cell.initialize()
    >>> cell(mx.nd.ones((2, 3)), cell.begin_state(batch_size=2))[0].shape
    (2, 3)
    """

    def __init__(self, base_cell: Any) -> None:
        super().__init__(base_cell)

    def hybrid_forward(self, F: Any, inputs: Any, states: Any) -> Any:
        output, states = self.base_cell(inputs, states)
        return output + inputs, states

    def unroll(
        self,
        length: int,
        inputs: Any,
        begin_state: Any = None,
        layout: str = "NTC",
        merge_outputs: Any = None,
        valid_length: Any = None,
    ) -> tuple:
        self.reset()
        self.base_cell._modified = False
        try:
            outputs, states = self.base_cell.unroll(
                length,
                inputs=inputs,
                begin_state=begin_state,
                layout=layout,
                merge_outputs=merge_outputs,
                valid_length=valid_length,
            )
        finally:
            self.base_cell._modified = True
        if merge_outputs is None:
            merge_outputs = isinstance(outputs, nd.NDArray)
        where = f"{type(self).__name__} '{self.name}'.unroll"
        inputs, axis, F, _ = _format_sequence(length, inputs, layout, merge_outputs, where=where)
        if valid_length is not None:
            # the padded inputs are masked to zero
            inputs = _mask_sequence_variable_length(
                inputs, length, valid_length, axis, merge_outputs
            )
        if merge_outputs:
            outputs = outputs + inputs
        else:
            outputs = [i + j for i, j in zip(outputs, inputs)]
        return outputs, states


class BidirectionalCell(HybridRecurrentCell):
    """Two cells reading a sequence in opposite directions; their outputs are concatenated
    along the feature axis. It can only be unrolled, not stepped.

    >>> import tapegrad as mx
    >>> bi = mx.gluon.rnn.BidirectionalCell(mx.gluon.rnn.LSTMCell(3), mx.gluon.rnn.LSTMCell(3))
    >>> bi.initialize()
    >>> out, states = bi.unroll(4, mx.nd.ones((2, 4, 5)), merge_outputs=True)
    >>> out.shape, len(states)
    ((2, 4, 6), 4)
    """

    def __init__(self, l_cell: Any, r_cell: Any, output_prefix: str = "bi_") -> None:
        for name, c in (("l_cell", l_cell), ("r_cell", r_cell)):
            if not isinstance(c, RecurrentCell):
                raise TypeError(
                    f"BidirectionalCell: {name} must be a recurrent cell, got {type(c).__name__}. "
                    "Fix: pass two cells, e.g. LSTMCell(100), LSTMCell(100)."
                )
        super().__init__(prefix="", params=None)
        self.register_child(l_cell, "l_cell")
        self.register_child(r_cell, "r_cell")
        self._output_prefix = output_prefix

    def __call__(self, inputs: Any, states: Any) -> Any:
        raise NotImplementedError(
            "BidirectionalCell cannot be stepped (the backward cell needs the whole "
            "sequence). Fix: use unroll()."
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(forward={self._children['l_cell']!r}, "
            f"backward={self._children['r_cell']!r})"
        )

    def state_info(self, batch_size: int = 0) -> list:
        return _cells_state_info(self._children.values(), batch_size)

    def begin_state(self, **kwargs: Any) -> list:
        self._refuse_modified()
        return _cells_begin_state(self._children.values(), **kwargs)

    def unroll(
        self,
        length: int,
        inputs: Any,
        begin_state: Any = None,
        layout: str = "NTC",
        merge_outputs: Any = None,
        valid_length: Any = None,
    ) -> tuple:
        self.reset()
        where = f"{type(self).__name__} '{self.name}'.unroll"
        inputs, axis, F, batch_size = _format_sequence(length, inputs, layout, False, where=where)
        reversed_inputs = list(_reverse_sequences(inputs, length, valid_length))
        begin_state = _get_begin_state(self, begin_state, inputs, batch_size)
        states = begin_state
        l_cell, r_cell = self._children.values()
        n_l = len(l_cell.state_info(batch_size))
        l_outputs, l_states = l_cell.unroll(
            length,
            inputs=inputs,
            begin_state=states[:n_l],
            layout=layout,
            merge_outputs=merge_outputs,
            valid_length=valid_length,
        )
        r_outputs, r_states = r_cell.unroll(
            length,
            inputs=reversed_inputs,
            begin_state=states[n_l:],
            layout=layout,
            merge_outputs=False,
            valid_length=valid_length,
        )
        reversed_r_outputs = _reverse_sequences(r_outputs, length, valid_length)
        if merge_outputs is None:
            merge_outputs = isinstance(l_outputs, nd.NDArray)
            l_outputs, _, _, _ = _format_sequence(None, l_outputs, layout, merge_outputs)
            reversed_r_outputs, _, _, _ = _format_sequence(
                None, reversed_r_outputs, layout, merge_outputs
            )
        if merge_outputs:
            reversed_r_outputs = nd.stack(*reversed_r_outputs, axis=axis)
            outputs = nd.concat(l_outputs, reversed_r_outputs, dim=2)
        else:
            outputs = [nd.concat(lo, ro, dim=1) for lo, ro in zip(l_outputs, reversed_r_outputs)]
        if valid_length is not None:
            outputs = _mask_sequence_variable_length(
                outputs, length, valid_length, axis, merge_outputs
            )
        return outputs, l_states + r_states
