"""tapegrad: automatic differentiation for neural networks on NumPy, to any order.

``import tapegrad as mx`` gives the MXNet 1.x autograd + Gluon workflow:

>>> import tapegrad as mx
>>> x = mx.nd.array([1.0, 2.0, 3.0])
>>> x.attach_grad()
>>> with mx.autograd.record():
...     y = 2 * x ** 2
>>> y.backward()
>>> x.grad.asnumpy().tolist()
[4.0, 8.0, 12.0]
"""

from . import _malloc

# keep freed NumPy temporaries in the process (glibc only; TAPEGRAD_MALLOC=0 turns it off):
# a training step frees and reallocates the same few-hundred-KB arrays every time
_malloc.tune()

from . import autograd, base, context, engine, ndarray, ops, random  # noqa: E402, F401
from . import ndarray as nd  # noqa: E402
from .base import MXNetError, TapegradError  # noqa: E402
from .context import Context, cpu, cpu_pinned, current_context, gpu, num_gpus  # noqa: E402
from .ndarray import NDArray  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "nd",
    "ndarray",
    "autograd",
    "random",
    "base",
    "context",
    "cpu",
    "cpu_pinned",
    "gpu",
    "Context",
    "current_context",
    "num_gpus",
    "NDArray",
    "MXNetError",
    "TapegradError",
    "__version__",
]


def __getattr__(name: str):
    # heavier subpackages load on first use
    import importlib

    lazy = {
        "gluon": ".gluon",
        "sym": ".symbol",
        "symbol": ".symbol",
        "init": ".initializer",
        "initializer": ".initializer",
        "optimizer": ".optimizer",
        "lr_scheduler": ".lr_scheduler",
        "metric": ".metric",
        "functional": ".functional",
        "func": ".functional",
        "sciml": ".sciml",
        "explain": ".explain",
        "forward": ".forward",
        "serialization": ".serialization",
        "testing": ".testing",
        "name": ".name",
        "gradcheck": ".testing",
        "gradgradcheck": ".testing",
        "jit": ".trace",
        "trace": ".trace",
        "io": ".io",
        "test_utils": ".test_utils",
        "distributed": ".distributed",
        "kv": ".distributed.kvstore",
        "kvstore": ".distributed.kvstore",
    }
    if name in lazy:
        mod = importlib.import_module(lazy[name], __name__)
        if name in ("explain", "gradcheck", "gradgradcheck", "jit"):
            obj = getattr(mod, name)
            globals()[name] = obj
            return obj
        globals()[name] = mod
        return mod
    raise AttributeError(f"module 'tapegrad' has no attribute {name!r}")
