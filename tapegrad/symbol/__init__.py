"""``mx.sym`` / ``mx.symbol``: MXNet's symbolic graphs, to load models exported by MXNet 1.x
(``NAME-symbol.json``), run them with ``mx.nd``, and write them back.

* :func:`load`, :func:`load_json` read MXNet's graph JSON; :meth:`Symbol.tojson` and
  :meth:`Symbol.save` write it.
* :func:`var` makes a variable; every operator of the table in :mod:`tapegrad.symbol.ops` is a
  function here under MXNet's names (``Convolution``, ``FullyConnected``, ``concat``/``Concat``,
  ``flatten``, ``elemwise_add``...) that builds a node: ``mx.sym.Convolution(data, kernel=(5,
  5), num_filter=6, name='conv0')`` creates the variables ``conv0_weight``, ``conv0_bias``.
* :meth:`Symbol.eval` (or ``gluon.SymbolBlock``) evaluates a graph: each node calls its
  ``mx.nd`` function, so autograd records it and gradients reach the bound arrays.

>>> import tapegrad as mx
>>> data = mx.sym.var('data')
>>> net = mx.sym.Convolution(data, kernel=(3, 3), num_filter=2, name='conv0')
>>> net = mx.sym.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type='max', name='pool0')
>>> net.list_arguments()
['data', 'conv0_weight', 'conv0_bias']
>>> net.attr('kernel'), net.attr('pool_type')
('(2, 2)', 'max')
"""

from . import ops
from .ops import UnknownOperatorError, list_operators
from .symbol import Group, Symbol, SymbolError, Variable, load, load_json, make_function, var

__all__ = [
    "Symbol",
    "SymbolError",
    "UnknownOperatorError",
    "var",
    "Variable",
    "Group",
    "load",
    "load_json",
    "list_operators",
    "ops",
]

for _pyname, _op in ops.FUNCTIONS.items():
    globals()[_pyname] = make_function(_pyname, _op)
    __all__.append(_pyname)
del _pyname, _op
