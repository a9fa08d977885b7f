"""The engine: one job per module, each importing only the ones before it.

=================  ==========================================================================
``state``          per-thread switches (recording, training, forward-mode levels)
``versions``       one clock; in-place changes recorded per memory, shared by all its views
``graph``          the array type's registration, ``Leaf``, ``Node``, the one graph walk
``primitive``      ``defprim``: a primitive declared once; RAW and TAPE; the call
``tape``           the backward pass (symbolic zeros, un-broadcasting, mutation checks)
``forward``        forward mode: levels, tangents, ``jvp``
``variables``      fresh variables and running a function recording on them
=================  ==========================================================================

``docs/engine.md`` walks through them in order.
"""

from .forward import dual, jvp, new_level, primal_of, tangent_of
from .graph import Leaf, Node, array_type, new_node, walk, wrap
from .primitive import (
    BILINEAR,
    JVP_IS_VJP,
    LINEAR,
    PRIMITIVES,
    RAW,
    TAPE,
    ZERO,
    Formula,
    Primitive,
    Variadic,
    defprim,
    jvp_of,
    primitive,
    set_array_type,
    warn_once,
)
from .state import STATE, recording
from .tape import backward_pass, check_node, store_grad, unbroadcast
from .variables import fresh_variable, trace
from .versions import changed_after, note_change, tick

__all__ = [
    "STATE",
    "recording",
    "tick",
    "note_change",
    "changed_after",
    "Leaf",
    "Node",
    "new_node",
    "wrap",
    "set_array_type",
    "array_type",
    "walk",
    "Primitive",
    "defprim",
    "primitive",
    "Formula",
    "Variadic",
    "PRIMITIVES",
    "RAW",
    "TAPE",
    "ZERO",
    "LINEAR",
    "BILINEAR",
    "JVP_IS_VJP",
    "jvp_of",
    "warn_once",
    "backward_pass",
    "check_node",
    "store_grad",
    "unbroadcast",
    "jvp",
    "new_level",
    "dual",
    "tangent_of",
    "primal_of",
    "fresh_variable",
    "trace",
]
