"""``mx.nd`` against MXNet 1.9.1's names: every name is provided or listed, with the reason,
in docs/mxnet_api.md; and the names added for MXNet's aliases differentiate to second order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from opspec import check_order

import tapegrad as mx
from tapegrad import nd

ROOT = Path(__file__).resolve().parent.parent
NAMES = [
    line.strip()
    for line in (ROOT / "tests" / "data" / "mxnet_1.9.1_nd_names.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def _documented_gaps() -> set[str]:
    text = (ROOT / "docs" / "mxnet_api.md").read_text()
    section = text.split("## MXNet 1.9.1 operators that tapegrad does not provide", 1)[1]
    section = section.split("\n## ", 1)[0]
    body = section.split("nothing listed here is in `mx.nd`.", 1)[1]
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", body)) - {"backward"}


def test_every_mxnet_name_is_provided_or_documented_as_a_gap():
    gaps = _documented_gaps()
    missing = [n for n in NAMES if not hasattr(nd, n) and n not in gaps]
    assert not missing, f"MXNet 1.9.1 names neither in mx.nd nor in docs/mxnet_api.md: {missing}"
    assert len(NAMES) > 250


def test_no_documented_gap_is_actually_provided():
    # names of the replacements the section mentions (gluon.loss, one_hot, ...) are not gaps
    said = {"gluon", "loss", "optimizer", "Trainer", "linalg_gemm2", "one_hot", "split", "array"}
    wrong = sorted(n for n in _documented_gaps() - said if hasattr(nd, n))
    assert not wrong, f"docs/mxnet_api.md lists these as missing, but mx.nd has them: {wrong}"


def test_the_alias_names_are_mxnets_functions():
    x = nd.array([[1.0, -2.0], [3.0, 0.5]])
    assert nd.less(x, 1.0).asnumpy().tolist() == nd.lesser(x, 1.0).asnumpy().tolist()
    assert nd.less_equal(x, 1.0).asnumpy().tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert nd.pad is nd.Pad and nd.Reshape is nd.reshape and nd.ElementWiseSum is nd.add_n
    assert nd.Cast is nd.cast and nd.cast(x, "int32").dtype == np.int32
    assert nd.radians(nd.array([180.0])).asscalar() == pytest.approx(np.pi)
    assert nd.degrees(nd.array([np.pi / 2])).asscalar() == pytest.approx(90.0)
    assert nd.shape_array(nd.ones((2, 3))).asnumpy().tolist() == [2, 3]
    assert nd.size_array(nd.ones((2, 3))).asnumpy().tolist() == [6]
    assert nd.moveaxis(nd.ones((2, 3, 4)), [0, 1], [2, 0]).shape == (3, 4, 2)
    np.testing.assert_allclose(
        nd.hard_sigmoid(nd.array([-5.0, 0.0, 1.0, 5.0])).asnumpy(), [0.0, 0.5, 0.7, 1.0]
    )
    with pytest.raises(mx.base.ShapeError, match="add_n: the arrays have different shapes"):
        nd.add_n(nd.ones(2), nd.ones(3))
    with pytest.raises(mx.base.ArgumentError):
        nd.radians(x, scale=2)
    a = np.arange(12.0).reshape(3, 4)
    for k in (0, 1, -1, 5):
        np.testing.assert_array_equal(nd.diag(nd.array(a), k=k).asnumpy(), np.diagonal(a, k))
        np.testing.assert_array_equal(nd.diag(nd.array(a[0]), k=k).asnumpy(), np.diag(a[0], k))
    np.testing.assert_array_equal(nd.cumsum(nd.array(a), axis=0).asnumpy(), np.cumsum(a, 0))
    assert nd.nanprod(nd.array([2.0, np.nan, 3.0])).asscalar() == 6.0
    assert nd.gather_nd(nd.array(a), nd.array([[0, 2], [1, 3]])).asnumpy().tolist() == [1.0, 11.0]
    assert nd.choose_element_0index(nd.array(a), nd.array([3, 0, 1])).asnumpy().tolist() == [
        3.0,
        4.0,
        9.0,
    ]
    out = nd.zeros((2, 3))
    assert nd.onehot_encode(nd.array([2, 0]), out) is out
    assert out.asnumpy().tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    with pytest.raises(mx.base.ShapeError, match="gather_nd: indices of shape"):
        nd.gather_nd(nd.array(a), nd.array([[0], [1], [0]]))


FUNCS = {
    "radians": (lambda a: nd.radians(a) ** 2, [(2, 3)]),
    "degrees": (lambda a: nd.sin(nd.degrees(a) / 50.0), [(3,)]),
    "identity": (lambda a: nd.identity(a) ** 3, [(2, 2)]),
    "cast": (lambda a: nd.cast(a, "float64") ** 2, [(3,)]),
    "add_n": (lambda a, b: nd.add_n(a, b * a, b) ** 2, [(2, 3), (2, 3)]),
    "moveaxis": (lambda a: nd.moveaxis(a, 0, -1) ** 2 * a.sum(), [(2, 3, 4)]),
    "softmin": (lambda a: nd.softmin(a, axis=1) ** 2, [(2, 4)]),
    "hard_sigmoid": (lambda a: nd.hard_sigmoid(a * 2.0) ** 2, [(5,)]),
    "moments": (lambda a: nd.moments(a, axes=(1,))[0] * nd.moments(a, axes=(1,))[1], [(3, 4)]),
    "cumsum": (lambda a: nd.cumsum(a, axis=1) ** 2, [(2, 4)]),
    "cumsum flat": (lambda a: nd.sin(nd.cumsum(a)), [(2, 3)]),
    "diag of 1-D": (lambda a: nd.diag(a, k=-1) ** 2 + nd.diag(a, k=2).sum(), [(3,)]),
    "diag of 3-D": (lambda a: nd.diag(a * a, k=1, axis1=1, axis2=2), [(2, 3, 4)]),
    "nanprod": (lambda a: nd.nanprod(a, axis=1), [(2, 3)]),
    "batch_take": (lambda a: nd.batch_take(a * a, nd.array([2, 0, 1])), [(3, 3)]),
    "gather_nd": (lambda a: nd.gather_nd(a**3, nd.array([[0, 2, 0], [1, 0, 1]])), [(3, 2)]),
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_the_added_functions_match_finite_differences_to_second_order(name):
    f, shapes = FUNCS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    arrays = [rng.uniform(-1, 1, size=s) for s in shapes]
    for order in (1, 2):
        check_order(f, arrays, order, rng)


def test_the_added_functions_refuse_bad_arguments_naming_the_fix():
    x = nd.ones((2, 3))
    cases = [
        (lambda: nd.moveaxis(x, [0, 1], [1]), mx.base.ArgumentValueError, "2 source axes but 1"),
        (lambda: nd.moveaxis(x, 0, 4), mx.base.AxisError, "moveaxis"),
        (lambda: nd.diag(x, axis1=1, axis2=1), mx.base.ArgumentValueError, "both 1"),
        (lambda: nd.diag(nd.array(3.0)), mx.base.ShapeError, "0-d array has no diagonal"),
        (lambda: nd.batch_take(nd.ones((2, 2, 2)), nd.array([0, 1])), mx.base.ShapeError, "2-D"),
        (lambda: nd.onehot_encode(nd.array([0]), None), mx.base.ArgumentError, "out must be"),
        (lambda: nd.cumsum(x, axis=2), mx.base.AxisError, "cumsum"),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words) as e:
            call()
        assert "Fix" in str(e.value) or isinstance(e.value, mx.base.AxisError)
