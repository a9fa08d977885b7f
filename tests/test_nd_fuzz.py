"""Fuzz every public ``mx.nd`` function with wrong shapes, dtypes, axes, keywords and
non-arrays (None, strings, lists, numbers, huge integers): each call must return, or raise
one of tapegrad's typed errors (a ``TapegradError``, whose message has a fix) -- never a raw
``AttributeError``/``IndexError``/``ZeroDivisionError``/``OverflowError``/``KeyError``...

The functions are enumerated from ``dir(mx.nd)``, so a new function is fuzzed without being
listed here. Examples are derandomized (the same every run) and bounded; set
``TAPEGRAD_FUZZ_EXAMPLES`` (examples per function, default 12) for a longer hunt.
"""

from __future__ import annotations

import inspect
import os
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tapegrad as mx  # noqa: E402
from tapegrad import autograd, nd  # noqa: E402
from tapegrad.base import TapegradError  # noqa: E402

#: file I/O: bad paths and payloads of save/load are serialization's (test_serialization.py)
NOT_FUZZED = {"save", "load"}
FUNCS = sorted(
    n
    for n in dir(nd)
    if not n.startswith("_") and inspect.isfunction(getattr(nd, n)) and n not in NOT_FUZZED
)
# mx.nd.random's samplers too (mx.random is the same module's functions)
FUNCS += sorted(f"random.{n}" for n in nd.random.__all__ if n != "seed")
EXAMPLES = int(os.environ.get("TAPEGRAD_FUZZ_EXAMPLES", "12"))


def _fn(name: str) -> object:
    obj = nd
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool"]
# only small sizes and integers that fail at once: a size of 2**31 would be allocated lazily
# and touched by the copy, exhausting the machine's memory instead of raising
SMALL = st.integers(-3, 5)
HUGE = st.sampled_from([2**63, -(2**63) - 1, 2**64])


@st.composite
def arrays(draw: st.DrawFn) -> nd.NDArray:
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    values = np.random.default_rng(draw(st.integers(0, 2**16))).uniform(-3, 3, shape)
    if dtype != "bool" and draw(st.booleans()):
        values = np.rint(values)  # whole numbers: valid indices and labels sometimes
    return nd.array(values.astype(dtype), dtype=dtype)


ODD = st.sampled_from(
    [None, "abc", "clip", "value", "relu", "float32", "instance", {}, [1, 2], [[1], [1, 2]],
     (0,), (1, 0), (-1,), (0, 0), (5, 5), (), 0.5, -1.5, float("nan"), float("inf"), True,
     np.ones(2), np.array(3.0), mx.cpu()]
)  # fmt: skip
VALUES = st.one_of(arrays(), arrays(), SMALL, HUGE, ODD)
UNKNOWN = st.sampled_from(["keepdim", "dtpye", "P", "no_baias", "axes_", "xyz"])


def _plan(fn: object) -> tuple[list, list, list]:
    """(required positional names, *args name or None, optional names) of ``fn``."""
    required, optional, var = [], [], []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            var.append(p.name)
        elif p.kind is p.VAR_KEYWORD:
            continue
        elif p.default is p.empty and p.kind is not p.KEYWORD_ONLY:
            required.append(p.name)
        else:
            optional.append(p.name)
    return required, var, optional


@st.composite
def calls(draw: st.DrawFn, fn: object) -> tuple[list, dict, bool]:
    required, var, optional = _plan(fn)
    args = [draw(VALUES) for _ in required]
    if var:
        args += draw(st.lists(VALUES, max_size=3))
    kwargs = {}
    for name in optional:
        if name not in ("out", "name") and draw(st.integers(0, 3)) == 0:
            kwargs[name] = draw(VALUES)
    if draw(st.integers(0, 5)) == 0:
        kwargs[draw(UNKNOWN)] = draw(VALUES)
    if draw(st.integers(0, 7)) == 0:
        kwargs["out"] = draw(VALUES)
    return args, kwargs, draw(st.booleans())


def _run(fn: object, args: list, kwargs: dict, record: bool) -> None:
    if record:  # the same call recorded, on variables
        for a in args:
            if isinstance(a, nd.NDArray) and np.dtype(a.dtype).kind == "f":
                a.attach_grad()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if record:
            with autograd.record():
                fn(*args, **kwargs)
        else:
            fn(*args, **kwargs)


@pytest.mark.parametrize("name", FUNCS)
def test_bad_input_raises_only_typed_errors(name: str) -> None:
    fn = _fn(name)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(calls(fn))
    def check(call: tuple) -> None:
        args, kwargs, record = call
        try:
            _run(fn, args, kwargs, record)
        except TapegradError as e:
            assert "Fix" in str(e), f"nd.{name}: a typed error without a fix: {e}"
        except Exception as e:  # noqa: BLE001 - anything else is the failure reported
            raise AssertionError(
                f"nd.{name}(*{args!r}, **{kwargs!r}) (recording: {record}) raised a raw "
                f"{type(e).__name__}: {e}"
            ) from e

    check()


SLICES = st.builds(slice, st.none() | SMALL, st.none() | SMALL, st.none() | SMALL)
KEYS = st.one_of(
    SMALL, HUGE, ODD, SLICES, arrays(), st.just(Ellipsis),
    st.tuples(st.one_of(SMALL, SLICES, st.none(), arrays()), st.one_of(SMALL, SLICES, ODD)),
)  # fmt: skip


@settings(
    max_examples=16 * EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(arrays(), KEYS, VALUES, st.booleans())
def test_indexing_raises_only_typed_errors(x: nd.NDArray, key: object, value: object, setting):
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if setting:
                x[key] = value
            else:
                x[key]  # noqa: B018
    except TapegradError as e:
        assert "Fix" in str(e), f"a typed error without a fix: {e}"
    except Exception as e:  # noqa: BLE001 - anything else is the failure reported
        op = f"x[{key!r}] = {value!r}" if setting else f"x[{key!r}]"
        raise AssertionError(f"{op} on shape {x.shape} raised a raw {type(e).__name__}: {e}") from e


def test_every_function_is_fuzzed() -> None:
    # the enumeration itself: the composites and the primitives' functions are all here
    for name in ("sum", "topk", "pick", "FullyConnected", "exp", "broadcast_add", "where"):
        assert name in FUNCS
    assert len(FUNCS) > 150
