"""Gradient checks for users: compare tapegrad's derivatives with finite differences.

:func:`gradcheck` compares the reverse-mode (VJP) and, where every operation has a
forward-mode rule, the forward-mode (JVP) derivatives of a function with central finite
differences computed in float64. Small problems get the whole Jacobian, element by element;
large ones are checked along random directions and a sample of coordinate directions.
A failure raises :class:`GradcheckError` with a report of the worst element: which output
and input element, the analytic and the numeric value.

:func:`gradgradcheck` does the same for second derivatives (the derivatives of the VJP).

>>> import tapegrad as mx
>>> x = mx.nd.array([0.5, -1.0, 2.0], dtype='float64')
>>> mx.gradcheck(lambda x: mx.nd.tanh(x) * x, x)
True
>>> mx.gradgradcheck(lambda x: mx.nd.sin(x).sum(), x)
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .base import TapegradError
from .core import walk
from .ndarray.ndarray import NDArray

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(TapegradError, AssertionError):
    """Analytic and numeric derivatives disagree (the message reports the worst element)."""


def _fname(f: Callable) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


def _outputs(y: Any, where: str) -> list:
    ys = list(y) if isinstance(y, (tuple, list)) else [y]
    for i, o in enumerate(ys):
        if not isinstance(o, NDArray):
            raise TapegradError(
                f"{where}: output {i} of the function is a {type(o).__name__}, not an NDArray. "
                "Fix: return NDArrays (or a tuple of them)."
            )
    return ys


class _Problem:
    """The function with its float64 inputs split into checked (float) and constant ones."""

    def __init__(self, f: Callable, inputs: Any, where: str) -> None:
        single = isinstance(inputs, NDArray) or np.isscalar(inputs)
        items = [inputs] if single else list(inputs)
        self.f = f
        self.where = where
        self.args: list = []
        self.diff: list[int] = []
        for i, a in enumerate(items):
            if isinstance(a, NDArray):
                dt = np.dtype(a.dtype)
                if dt.kind == "f":
                    if dt != np.float64:
                        warnings.warn(
                            f"{where}: input {i} has dtype {dt}; finite differences need "
                            "float64 (float32 keeps ~7 digits, so a step of 1e-6 loses most "
                            "of them). The check runs on a float64 copy; if the function "
                            "computes in float32 internally (e.g. float32 parameters), cast "
                            "it to float64 first (net.cast('float64')).",
                            stacklevel=3,
                        )
                    self.args.append(np.array(a.asnumpy(), dtype=np.float64))
                    self.diff.append(i)
                    continue
                self.args.append(a)
            else:
                self.args.append(a)
        if not self.diff:
            raise TapegradError(
                f"{where}: no floating-point NDArray among the inputs, nothing to check. Fix: "
                "pass the inputs to differentiate as float64 NDArrays."
            )

    def call(self, values: list) -> list:
        """Outputs (raw float64 arrays) at the given values of the checked inputs."""
        args = list(self.args)
        for i, v in zip(self.diff, values):
            args[i] = NDArray(v)
        return [
            np.asarray(o.asnumpy(), dtype=np.float64) for o in _outputs(self.f(*args), self.where)
        ]

    def nd_fn(self) -> Callable:
        """``g(*checked) -> outputs`` as NDArrays, the constants filled in."""

        def g(*vals: NDArray) -> Any:
            args = list(self.args)
            for i, v in zip(self.diff, vals):
                args[i] = v
            return self.f(*args)

        return g

    def x0(self) -> list:
        return [np.array(self.args[i]) for i in self.diff]


def _numeric_dir(prob: _Problem, x0: list, v: list, eps: float) -> list:
    """Central difference ``(f(x + eps v) - f(x - eps v)) / 2 eps`` for each output."""
    plus = prob.call([a + eps * d for a, d in zip(x0, v)])
    minus = prob.call([a - eps * d for a, d in zip(x0, v)])
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def _analytic_vjp(prob: _Problem, x0: list, cts: list) -> list:
    from .functional import vjp

    out, pull = vjp(prob.nd_fn(), *[NDArray(a) for a in x0])
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    got = pull(
        tuple(NDArray(c.astype(o.dtype)) for c, o in zip(cts, outs))
        if isinstance(out, (tuple, list))
        else NDArray(cts[0].astype(outs[0].dtype))
    )
    return [np.asarray(g.asnumpy(), dtype=np.float64) for g in got]


def _without_forward_rule(prob: _Problem, x0: list) -> str | None:
    """Name of a recorded operation of ``f`` that has a VJP but no JVP rule (a custom
    ``autograd.Function``), found by recording ``f`` once and walking its graph."""
    from .autograd import record

    xs = [NDArray(a) for a in x0]
    for x in xs:
        x.attach_grad()
    with record():
        outs = _outputs(prob.nd_fn()(*xs), prob.where)
    for n in walk([o._node for o in outs]):
        prim = getattr(n, "prim", None)
        if prim is not None and prim.vjps is not None and prim.jvp is None:
            return prim.name
    return None


def _analytic_jvp(prob: _Problem, x0: list, v: list) -> list:
    from .forward import jvp

    _, t = jvp(prob.nd_fn(), [NDArray(a) for a in x0], [NDArray(d) for d in v])
    ts = list(t) if isinstance(t, (tuple, list)) else [t]
    return [np.asarray(a.asnumpy(), dtype=np.float64) for a in ts]


class _Worst:
    """Tracks the element with the largest excess of |analytic - numeric| over tolerance."""

    def __init__(self, atol: float, rtol: float) -> None:
        self.atol, self.rtol = atol, rtol
        self.excess = -np.inf
        self.info: dict | None = None
        self.max_err = 0.0

    def update(self, analytic: np.ndarray, numeric: np.ndarray, describe: Callable) -> None:
        analytic = np.asarray(analytic, dtype=np.float64)
        numeric = np.asarray(numeric, dtype=np.float64)
        err = np.abs(analytic - numeric)
        bad = ~np.isfinite(analytic) | ~np.isfinite(numeric)
        tol = self.atol + self.rtol * np.abs(numeric)
        excess = np.where(bad, np.inf, err - tol)
        if excess.size == 0:
            return
        k = int(np.argmax(excess))
        self.max_err = max(self.max_err, float(np.nanmax(np.where(bad, np.inf, err))))
        if excess.flat[k] > self.excess:
            self.excess = float(excess.flat[k])
            self.info = dict(
                describe(k),
                analytic=float(analytic.flat[k]),
                numeric=float(numeric.flat[k]),
                err=float(err.flat[k]),
                tol=float(tol.flat[k]),
            )

    @property
    def failed(self) -> bool:
        return self.excess > 0


def _idx(shape: tuple, k: int) -> str:
    if not shape:
        return "[]"
    return "[" + ", ".join(str(i) for i in np.unravel_index(k, shape)) + "]"


def _check_first(
    prob: _Problem,
    eps: float,
    atol: float,
    rtol: float,
    modes: Sequence[str],
    n_directions: int,
    full_max: int,
    rng: np.random.RandomState,
) -> tuple:
    """Check first derivatives; returns (worst tracker, mode notes)."""
    x0 = prob.x0()
    y0 = prob.call(x0)
    n_in = sum(a.size for a in x0)
    n_out = sum(o.size for o in y0)
    # reverse-mode element checks first: the report names the worst element when one fails
    worsts = {
        "reverse": _Worst(atol, rtol),
        "reverse, random directions": _Worst(atol, rtol),
        "forward": _Worst(atol, rtol),
    }
    notes = []
    use_fwd = "fwd" in modes
    if use_fwd:
        missing = _without_forward_rule(prob, x0)
        if missing is not None:
            use_fwd = False
            notes.append(
                f"forward mode skipped: operator '{missing}' has no forward-mode (JVP) rule"
            )
    full = n_in <= full_max and n_out <= full_max
    if full:
        # numeric Jacobian column by column; analytic rows by VJP, columns by JVP
        cols = []
        for i, a in enumerate(x0):
            for k in range(a.size):
                v = [np.zeros_like(b) for b in x0]
                v[i].flat[k] = 1.0
                cols.append((i, k, v, _numeric_dir(prob, x0, v, eps)))
        if "rev" in modes:
            for j, o in enumerate(y0):
                for m in range(o.size):
                    ct = [np.zeros_like(b) for b in y0]
                    ct[j].flat[m] = 1.0
                    g = _analytic_vjp(prob, x0, ct)
                    for i, k, _, num in cols:
                        worsts["reverse"].update(
                            g[i].flat[k],
                            num[j].flat[m],
                            lambda _k, i=i, k=k, j=j, m=m: dict(
                                what=f"d output {j}{_idx(y0[j].shape, m)} / d input "
                                f"{prob.diff[i]}{_idx(x0[i].shape, k)}"
                            ),
                        )
        if use_fwd:
            for i, k, v, num in cols:
                t = _analytic_jvp(prob, x0, v)
                for j in range(len(y0)):
                    worsts["forward"].update(
                        t[j],
                        num[j],
                        lambda m, i=i, k=k, j=j: dict(
                            what=f"d output {j}{_idx(y0[j].shape, m)} / d input "
                            f"{prob.diff[i]}{_idx(x0[i].shape, k)}"
                        ),
                    )
        return worsts, notes
    # large problem: random directions, plus coordinate directions at sampled elements
    for trial in range(n_directions):
        v = [rng.standard_normal(a.shape) for a in x0]
        w = [rng.standard_normal(o.shape) for o in y0]
        num = _numeric_dir(prob, x0, v, eps)
        if "rev" in modes:
            g = _analytic_vjp(prob, x0, w)
            a_dot = sum(float(np.sum(gi * vi)) for gi, vi in zip(g, v))
            n_dot = sum(float(np.sum(wi * ni)) for wi, ni in zip(w, num))
            worsts["reverse, random directions"].update(
                np.array([a_dot]),
                np.array([n_dot]),
                lambda _k, t=trial: dict(
                    what=f"<w, J v> for random directions v, w (draw {t}), all outputs and "
                    "inputs at once"
                ),
            )
        if use_fwd:
            t = _analytic_jvp(prob, x0, v)
            for j in range(len(y0)):
                worsts["forward"].update(
                    t[j],
                    num[j],
                    lambda m, j=j, tr=trial: dict(
                        what=f"element {_idx(y0[j].shape, m)} of output {j}'s J v, v a random "
                        f"direction over all inputs (draw {tr})"
                    ),
                )
    if "rev" in modes:
        w = [rng.standard_normal(o.shape) for o in y0]
        g = _analytic_vjp(prob, x0, w)
        for i, a in enumerate(x0):
            for k in rng.choice(a.size, size=min(a.size, max(n_directions, 4)), replace=False):
                v = [np.zeros_like(b) for b in x0]
                v[i].flat[k] = 1.0
                num = _numeric_dir(prob, x0, v, eps)
                n_dot = sum(float(np.sum(wi * ni)) for wi, ni in zip(w, num))
                worsts["reverse"].update(
                    np.array([g[i].flat[k]]),
                    np.array([n_dot]),
                    lambda _k, i=i, k=k: dict(
                        what=f"d <w, outputs> / d input {prob.diff[i]}"
                        f"{_idx(x0[i].shape, int(k))}, w a random cotangent (sampled element)"
                    ),
                )
    return worsts, notes


_MODE_LABELS = {
    "reverse": "reverse mode",
    "reverse, random directions": "reverse mode, along random directions",
    "forward": "forward mode",
}


def _report(name: str, order: int, worsts: dict, notes: list, eps: float) -> str:
    lines = []
    for mode, worst in worsts.items():  # reverse mode first
        if not worst.failed:
            continue
        i = worst.info or {}
        lines += [
            f"gradcheck failed for {name} (order {order}, {_MODE_LABELS[mode]}):",
            f"  worst {'direction' if 'directions' in mode else 'element'}: {i.get('what')}",
            f"  analytic = {i.get('analytic')!r}",
            f"  numeric  = {i.get('numeric')!r}   (central differences, eps={eps:g}, float64)",
            f"  |analytic - numeric| = {i.get('err'):.3g} > atol + rtol*|numeric| = "
            f"{i.get('tol'):.3g}",
        ]
    lines += [f"  note: {n}" for n in notes]
    lines.append(
        "  Fix: check the backward (VJP) / jvp rule of the operation that computes this "
        "output; if the function is not smooth at this point, move the point."
    )
    return "\n".join(lines)


def _vjp_function(f: Callable, n_in: int) -> Callable:
    """``(x..., w...) -> J(x)^T w`` as a function of NDArrays (recorded, so it can be
    differentiated again)."""
    from .functional import vjp

    def h(*args: NDArray) -> tuple:
        xs, ws = args[:n_in], args[n_in:]
        out, pull = vjp(f, *xs)
        return pull(tuple(ws) if isinstance(out, (tuple, list)) else ws[0])

    h.__name__ = f"vjp_of_{_fname(f)}"
    return h


def gradcheck(
    f: Callable,
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    order: int = 1,
    modes: Sequence[str] = ("rev", "fwd"),
    n_directions: int = 4,
    full_jacobian_max: int = 64,
    seed: int = 0,
    raise_exception: bool = True,
    _label: str | None = None,
    _order_label: int = 1,
) -> bool:
    """Check the derivatives of ``f`` at ``inputs`` against finite differences.

    Args:
        f: function of NDArrays returning an NDArray or a tuple of NDArrays.
        inputs: an NDArray or a sequence of inputs; floating-point NDArrays are checked
            (on float64 copies; a warning is issued for lower precision), everything else
            is passed through unchanged.
        eps: finite-difference step.
        atol, rtol: an element passes when ``|analytic - numeric| <= atol + rtol*|numeric|``.
        order: also check derivatives up to this order (the derivatives of the VJP, and so
            on).
        modes: ``'rev'`` (VJP) and/or ``'fwd'`` (JVP; skipped, with a note, when an operation
            has no forward-mode rule).
        n_directions: random directions for problems too large for the full Jacobian.
        full_jacobian_max: compare the whole Jacobian element by element when inputs and
            outputs have at most this many elements.
        seed: seed of the random directions.
        raise_exception: raise :class:`GradcheckError` on failure (else return False).

    Returns:
        True when every check passes.

    >>> import tapegrad as mx
    >>> mx.gradcheck(lambda a, b: a * mx.nd.exp(b), [mx.nd.array([1.0, 2.0], dtype='float64'),
    ...                                            mx.nd.array([0.1, 0.3], dtype='float64')])
    True
    """
    if order < 1:
        raise ValueError(f"gradcheck: order must be >= 1, got {order}")
    for m in modes:
        if m not in ("rev", "fwd"):
            raise ValueError(f"gradcheck: unknown mode {m!r}; use 'rev' and/or 'fwd'.")
    where = f"gradcheck({_fname(f)})"
    prob = _Problem(f, inputs, where)
    rng = np.random.RandomState(seed)
    worsts, notes = _check_first(prob, eps, atol, rtol, modes, n_directions, full_jacobian_max, rng)
    if any(w.failed for w in worsts.values()):
        if raise_exception:
            raise GradcheckError(_report(_label or _fname(f), _order_label, worsts, notes, eps))
        return False
    if order >= 2:
        return gradgradcheck(
            f,
            inputs,
            eps=eps,
            atol=atol,
            rtol=rtol,
            order=order - 1,
            modes=modes,
            n_directions=n_directions,
            full_jacobian_max=full_jacobian_max,
            seed=seed + 1,
            raise_exception=raise_exception,
            _order_label=_order_label + 1,
        )
    return True


def gradgradcheck(
    f: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    order: int = 1,
    modes: Sequence[str] = ("rev", "fwd"),
    n_directions: int = 4,
    full_jacobian_max: int = 64,
    seed: int = 0,
    raise_exception: bool = True,
    _order_label: int = 2,
) -> bool:
    """Check second derivatives: :func:`gradcheck` of ``(x, w) -> J(x)^T w``, the VJP of
    ``f`` (with respect to the inputs and to the cotangent ``w``).

    Args:
        grad_outputs: the cotangents ``w`` (one per output); random when None.
        order: check this many orders beyond the second.
        Other arguments as in :func:`gradcheck`.

    >>> import tapegrad as mx
    >>> mx.gradgradcheck(lambda x: x ** 3, mx.nd.array([1.0, -0.5], dtype='float64'))
    True
    """
    where = f"gradgradcheck({_fname(f)})"
    prob = _Problem(f, inputs, where)
    x0 = prob.x0()
    y0 = prob.call(x0)
    rng = np.random.RandomState(seed)
    if grad_outputs is None:
        ws = [rng.standard_normal(o.shape) for o in y0]
    else:
        gos = [grad_outputs] if isinstance(grad_outputs, NDArray) else list(grad_outputs)
        ws = [
            np.asarray(g.asnumpy() if isinstance(g, NDArray) else g, dtype=np.float64) for g in gos
        ]
    h = _vjp_function(prob.nd_fn(), len(x0))
    args = [NDArray(a) for a in x0] + [NDArray(w) for w in ws]
    ok = gradcheck(
        h,
        args,
        eps=eps,
        atol=atol,
        rtol=rtol,
        order=1,
        modes=modes,
        n_directions=n_directions,
        full_jacobian_max=full_jacobian_max,
        seed=seed,
        raise_exception=raise_exception,
        _label=_fname(f),
        _order_label=_order_label,
    )
    if ok and order >= 2:
        return gradgradcheck(
            h,
            args,
            eps=eps,
            atol=atol,
            rtol=rtol,
            order=order - 1,
            modes=modes,
            n_directions=n_directions,
            full_jacobian_max=full_jacobian_max,
            seed=seed + 1,
            raise_exception=raise_exception,
            _order_label=_order_label + 1,
        )
    return ok
