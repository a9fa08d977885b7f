"""Recurrent networks (``mx.gluon.rnn``, MXNet 1.9 semantics): the layers ``RNN``, ``LSTM``,
``GRU`` (a whole sequence, several layers, optionally bidirectional) and the cells that make
one step at a time (``RNNCell``, ``LSTMCell``, ``GRUCell``) with their containers and
modifiers. See docs/rnn.md."""

from .rnn_cell import (
    BidirectionalCell,
    DropoutCell,
    GRUCell,
    HybridRecurrentCell,
    HybridSequentialRNNCell,
    LSTMCell,
    ModifierCell,
    RecurrentCell,
    ResidualCell,
    RNNCell,
    SequentialRNNCell,
    ZoneoutCell,
)
from .rnn_layer import GRU, LSTM, RNN

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
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
