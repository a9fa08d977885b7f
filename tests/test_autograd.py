"""The MXNet autograd API: the tutorial's documented numbers, the lecture notes' example,
grad_req, scopes, nested differentiation, custom Functions, and every error path."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import tapegrad as mx
from tapegrad import autograd
from tapegrad.base import GraphError, MXNetError, ShapeError, TapegradError, VersionError

# ------------------------------------------------------------------ tutorial numbers


def test_tutorial_y_equals_2x_squared():
    x = mx.nd.array([1, 2, 3])
    x.attach_grad()
    with autograd.record():
        y = 2 * x**2
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 4 * x.asnumpy())


def _control_flow(x):
    y = x
    if x < 0.75:
        num_loops = math.floor(1 / (1 - x.asscalar()))
        for _ in range(num_loops):
            y = y * x
    else:
        y = y * 0
    return y


def test_tutorial_control_flow_segments():
    xs = mx.nd.arange(0.0, 1.0, step=0.1)
    grads = []
    for x in xs:
        x.attach_grad()
        with autograd.record():
            y = _control_flow(x)
        y.backward()
        grads.append(float(x.grad.asscalar()))
    xv = xs.asnumpy().astype(np.float64)
    for xi, g in zip(xv, grads):
        if xi < 0.5:
            assert g == pytest.approx(2 * xi, rel=1e-5, abs=1e-7)
        elif xi < 2 / 3:
            assert g == pytest.approx(3 * xi**2, rel=1e-5)
        elif xi < 0.75:
            assert g == pytest.approx(4 * xi**3, rel=1e-5)
        else:
            assert g == 0.0
    assert grads[6] == pytest.approx(1.08, rel=1e-6)


def test_tutorial_custom_head_gradient_192():
    x = mx.nd.array([2])
    x.attach_grad()
    with autograd.record():
        y = x**3
    dzdy = mx.nd.array(2 * y.asnumpy())
    y.backward(dzdy)
    assert x.grad.asscalar() == 192.0


def test_is_training_flags_and_dropout_modes():
    assert not autograd.is_training() and not autograd.is_recording()
    data = mx.nd.ones((50, 40))
    out = mx.nd.Dropout(data, p=0.5)
    assert (out.asnumpy() == 1).all()
    with autograd.record():
        assert autograd.is_training() and autograd.is_recording()
        out = mx.nd.Dropout(data, p=0.5)
    vals = np.unique(out.asnumpy())
    assert set(vals.tolist()) == {0.0, 2.0}
    # about half dropped
    assert 0.35 < (out.asnumpy() == 0).mean() < 0.65
    with autograd.record(train_mode=False):
        assert not autograd.is_training()
        assert (mx.nd.Dropout(data, p=0.5).asnumpy() == 1).all()
    assert (mx.nd.Dropout(data, p=0.5, mode="always").asnumpy() != 1).any()


def test_dropout_gradient_uses_the_same_mask():
    x = mx.nd.ones((20, 20))
    x.attach_grad()
    with autograd.record():
        y = mx.nd.Dropout(x, p=0.3)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), y.asnumpy())


# ------------------------------------------------------------------ lecture notes


def test_notes_example_against_closed_form():
    for xv in (-1.0, 0.1, 0.7):
        x = mx.nd.array([xv], dtype="float64")
        x.attach_grad()
        with autograd.record():
            a = mx.nd.exp(x)
            b = a**2
            c = a + b
            d = mx.nd.exp(c)
            e = mx.nd.sin(c)
            f = d + e
        f.backward()
        ea = math.exp(xv)
        cc = ea + ea * ea
        expected = math.exp(cc) * (ea + 2 * ea * ea) + math.cos(cc) * (ea + 2 * ea * ea)
        assert x.grad.asscalar() == pytest.approx(expected, rel=1e-13)


# ------------------------------------------------------------------ nested derivatives


def test_perturbation_confusion_reverse():
    # d/dx [x * d/dy (x + y)] at y = x  ->  1 (not 2)
    from tapegrad.functional import grad

    x = mx.nd.array([1.5], dtype="float64")
    inner = lambda x: grad(lambda y: (x + y).sum())(x)  # noqa: E731
    assert grad(lambda x: (x * inner(x)).sum())(x).asscalar() == 1.0


def test_perturbation_confusion_forward():
    from tapegrad.forward import jvp

    x = mx.nd.array(1.5, dtype="float64")
    one = mx.nd.ones_like(x)
    inner = lambda x: jvp(lambda y: x + y, (x,), (one,))[1]  # noqa: E731
    assert jvp(lambda x: x * inner(x), (x,), (one,))[1].asscalar() == 1.0


def test_autograd_grad_to_fourth_order():
    x = mx.nd.array([0.3, -0.8], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = mx.nd.sin(x) * mx.nd.exp(x)
        g = y
        derivs = []
        for _ in range(4):
            g = autograd.grad(g, [x], create_graph=True)[0]
            derivs.append(g.asnumpy())
    xv = x.asnumpy()
    # d^n/dx^n e^x sin x = 2^(n/2) e^x sin(x + n pi / 4)
    for n, d in enumerate(derivs, start=1):
        np.testing.assert_allclose(
            d, 2 ** (n / 2) * np.exp(xv) * np.sin(xv + n * np.pi / 4), rtol=1e-12
        )


def test_mxnet_second_order_ops_that_mxnet_lacked():
    # MXNet 1.9 had no second-order rule for dot, Activation, x*y or sum
    rng = np.random.default_rng(0)
    w = mx.nd.array(rng.normal(size=(3, 4)), dtype="float64")
    x = mx.nd.array(rng.normal(size=(2, 3)), dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = mx.nd.Activation(mx.nd.dot(x, w), act_type="sigmoid").sum()
        (gx,) = autograd.grad(y, [x], create_graph=True)
        z = (gx * gx).sum()
    z.backward()

    # against finite differences of z(x)
    def z_of(xn):
        with autograd.pause():
            xx = mx.nd.array(xn, dtype="float64")
            xx.attach_grad()
            with autograd.record():
                yy = mx.nd.Activation(mx.nd.dot(xx, w), act_type="sigmoid").sum()
            yy.backward()
            return float((xx.grad * xx.grad).sum().asscalar())

    v = rng.normal(size=(2, 3))
    eps = 1e-6
    num = (z_of(x.asnumpy() + eps * v) - z_of(x.asnumpy() - eps * v)) / (2 * eps)
    assert float((x.grad.asnumpy() * v).sum()) == pytest.approx(num, rel=1e-6)


# ------------------------------------------------------------------ grad_req


def test_grad_req_add_accumulates_and_write_overwrites():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad(grad_req="add")
    for _ in range(3):
        with autograd.record():
            y = (x * x).sum()
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * 2 * x.asnumpy())
    x.attach_grad(grad_req="write")
    for _ in range(3):
        with autograd.record():
            y = (x * x).sum()
        y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * x.asnumpy())


def test_grad_req_null_leaves_no_gradient():
    x = mx.nd.array([1.0, 2.0])
    w = mx.nd.array([3.0, 4.0])
    x.attach_grad(grad_req="null")
    w.attach_grad()
    with autograd.record():
        y = (x * w).sum()
    y.backward()
    assert (x.grad.asnumpy() == 0).all()
    np.testing.assert_allclose(w.grad.asnumpy(), x.asnumpy())


def test_grad_buffer_identity_kept_across_backward():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    buf = x.grad
    with autograd.record():
        y = (x**3).sum()
    y.backward()
    assert x.grad is buf
    np.testing.assert_allclose(buf.asnumpy(), 3 * x.asnumpy() ** 2)


def test_mark_variables():
    x = mx.nd.array([1.0, 2.0])
    gx = mx.nd.zeros((2,))
    autograd.mark_variables([x], [gx], "write")
    with autograd.record():
        y = (mx.nd.exp(x)).sum()
    y.backward()
    np.testing.assert_allclose(gx.asnumpy(), np.exp(x.asnumpy()), rtol=1e-6)


def test_non_scalar_head_is_summed_and_multiple_heads():
    x = mx.nd.array([[1.0, 2.0], [3.0, 4.0]])
    x.attach_grad()
    with autograd.record():
        y = x * x
        z = mx.nd.sin(x)
    autograd.backward([y, z])
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * x.asnumpy() + np.cos(x.asnumpy()), rtol=1e-6)


def test_retain_graph_allows_second_backward():
    x = mx.nd.array([2.0])
    x.attach_grad(grad_req="add")
    with autograd.record():
        y = x**2
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.asscalar() == 8.0


def test_nothing_recorded_outside_record_or_without_variables():
    x = mx.nd.array([1.0])
    x.attach_grad()
    y = x * 2
    assert y._node is None
    with autograd.record():
        z = mx.nd.ones((2,)) * 3
        with autograd.pause():
            assert not autograd.is_recording()
            p = x * 2
    assert z._node is None and p._node is None


# ------------------------------------------------------------------ state


def test_scopes_nest_and_set_functions_return_previous():
    assert autograd.set_recording(True) is False
    assert autograd.set_recording(False) is True
    assert autograd.set_training(True) is False
    assert autograd.set_training(False) is True
    with autograd.record():
        with autograd.predict_mode():
            assert autograd.is_recording() and not autograd.is_training()
            with autograd.train_mode():
                assert autograd.is_training()
            assert not autograd.is_training()
        with autograd.pause():
            assert not autograd.is_recording() and not autograd.is_training()
        assert autograd.is_recording() and autograd.is_training()
    assert not autograd.is_recording() and not autograd.is_training()


def test_state_is_per_thread():
    seen = []
    with autograd.record():
        t = threading.Thread(target=lambda: seen.append(autograd.is_recording()))
        t.start()
        t.join()
        assert autograd.is_recording()
    assert seen == [False]


def test_a_thread_recording_does_not_make_another_record():
    # the flags are per thread even while both threads run: the worker records inside its
    # scope while the main thread, outside any scope, computes on the same variable
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    inside, done, seen = threading.Event(), threading.Event(), {}

    def worker():
        with autograd.record():
            inside.set()
            done.wait(5)
            y = (x * x).sum()
        seen["recorded"] = y._node is not None
        y.backward()

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(5)
    z = x * x  # the worker is inside record(); this thread is not
    done.set()
    t.join()
    assert z._node is None and not autograd.is_recording()
    assert seen["recorded"]
    np.testing.assert_array_equal(x.grad.asnumpy(), [2.0, 4.0])


# ------------------------------------------------------------------ Function


def test_custom_function_first_and_second_order():
    class Cube(autograd.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x * x

        def backward(self, dy):
            (x,) = self.saved_tensors
            return dy * 3 * x * x

    x = mx.nd.array([1.0, -2.0], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = Cube()(x)
        (g,) = autograd.grad(y, [x], create_graph=True)
    np.testing.assert_allclose(g.asnumpy(), 3 * x.asnumpy() ** 2)
    g.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 6 * x.asnumpy())


# ------------------------------------------------------------------ errors


def test_error_backward_twice():
    x = mx.nd.array([1.0])
    x.attach_grad()
    with autograd.record():
        y = mx.nd.exp(x)
    y.backward()
    with pytest.raises(GraphError, match="second time.*retain_graph=True"):
        y.backward()


def test_error_backward_not_recorded():
    x = mx.nd.array([1.0])
    x.attach_grad()
    y = x * 2
    with pytest.raises(MXNetError, match="not in a computational graph.*record"):
        y.backward()


def test_error_grad_variable_not_in_graph():
    x = mx.nd.array([1.0])
    x.attach_grad()
    w = mx.nd.array([1.0])
    w.attach_grad()
    with autograd.record():
        y = x * 2
    with pytest.raises(GraphError, match="do not depend on variable 1"):
        autograd.grad(y, [x, w])
    with pytest.raises(GraphError, match="variable 0 .* not in a computational graph"):
        autograd.grad(y, [mx.nd.array([1.0])])


def test_error_head_grads_count_and_shape():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = x * 2
    with pytest.raises(TapegradError, match="1 heads but 2 head gradients"):
        autograd.backward([y], [mx.nd.ones((2,)), mx.nd.ones((2,))], retain_graph=True)
    with pytest.raises(
        ShapeError,
        match=r"head gradient of shape \(3,\) for a head of shape "
        r"\(2,\)",
    ):
        y.backward(mx.nd.ones((3,)))


def test_error_invalid_grad_req():
    with pytest.raises(TapegradError, match="invalid grad_req 'sometimes'.*'write', 'add'"):
        mx.nd.ones((2,)).attach_grad(grad_req="sometimes")


def test_error_binary_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"'add'.*\(2, 3\).*\(4,\).*Fix"):
        mx.nd.ones((2, 3)) + mx.nd.ones((4,))
    with pytest.raises(ShapeError, match=r"dot: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        mx.nd.dot(mx.nd.ones((2, 3)), mx.nd.ones((4, 5)))
    with pytest.raises(ShapeError, match="elemwise_add.*same shape"):
        mx.nd.elemwise_add(mx.nd.ones((2, 3)), mx.nd.ones((3,)))


def test_error_asscalar_non_scalar():
    with pytest.raises(ShapeError, match=r"asscalar.*\(2, 3\).*exactly one"):
        mx.nd.ones((2, 3)).asscalar()


def test_error_attach_grad_integer():
    with pytest.raises(TapegradError, match="dtype int32.*astype"):
        mx.nd.ones((2,), dtype="int32").attach_grad()


def test_error_inplace_inside_record_like_mxnet():
    x = mx.nd.ones((2,))
    x.attach_grad()
    with autograd.record():
        with pytest.raises(NotImplementedError, match="Inplace operations"):
            x += 1
        y = x * 2
        with pytest.raises(MXNetError, match="Inplace operations"):
            y[:] = 0


def test_error_mutation_after_recording_is_detected():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    w = mx.nd.array([3.0, 4.0])
    with autograd.record():
        y = (x * w).sum()
    w[:] = 0  # changes a value the gradient needs
    with pytest.raises(VersionError, match="'multiply'.*changed in place.*copy"):
        y.backward()
    with autograd.record():
        t = mx.nd.tanh(x)
    t += 1  # changes tanh's saved output
    with pytest.raises(VersionError, match="output of operator 'tanh'.*changed in place"):
        t.backward()


def test_inplace_outside_record_and_setitem_recorded_value():
    x = mx.nd.array([1.0, 2.0, 3.0])
    x += 1
    x[1] = 10
    np.testing.assert_allclose(x.asnumpy(), [2, 10, 4])
    # assigning a recorded value into a plain array records the assignment
    w = mx.nd.array([1.0, 2.0])
    w.attach_grad()
    buf = mx.nd.zeros((3,))
    with autograd.record():
        buf[1:] = w * w
        s = (buf * mx.nd.array([1.0, 2.0, 3.0])).sum()
    s.backward()
    np.testing.assert_allclose(w.grad.asnumpy(), [2 * 1 * 2, 2 * 2 * 3])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda w: w[0:2].__setitem__(0, 100.0), id="slice"),
        pytest.param(lambda w: w.reshape((2, 2)).__setitem__(0, 100.0), id="reshape"),
        pytest.param(lambda w: w.detach().__setitem__(1, 100.0), id="detach"),
        pytest.param(lambda w: w.T.__iadd__(1.0), id="transpose-iadd"),
        pytest.param(lambda w: mx.nd.exp(w, out=w.detach()), id="out="),
    ],
)
def test_error_mutation_through_a_view_is_detected(change):
    # the saved input is a view of w; the change goes through another NDArray on w's memory
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    w = mx.nd.array([3.0, 4.0, 5.0, 6.0])
    with autograd.record():
        y = (x * w[0:2]).sum()
    change(w)
    with pytest.raises(VersionError, match="'multiply'.*shares memory.*changed in place.*copy"):
        y.backward()


def test_changes_before_a_node_was_recorded_are_allowed_after_are_not():
    # one clock orders nodes and in-place changes: a change between two recorded operations
    # invalidates only the earlier one's saved values
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    w = mx.nd.array([3.0, 4.0, 5.0, 6.0])
    with autograd.record():
        a = x * 2.0  # recorded before the changes below; saves nothing of w
    w[:] = 5.0  # through w itself
    w[0:2] += 1.0  # through a view (the mutation log)
    with autograd.record():
        y = (a * w[0:2]).sum()  # recorded after them
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [12.0, 12.0])
    with autograd.record():
        y = (a * w[0:2]).sum()
    w[0:2] += 1.0
    with pytest.raises(VersionError, match="'multiply'"):
        y.backward()


def test_mutation_of_memory_the_graph_did_not_save_is_allowed():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    w = mx.nd.array([3.0, 4.0, 5.0, 6.0])
    with autograd.record():
        y = (x * w[0:2]).sum()
    w[2:4] = 100.0  # disjoint from the saved w[0:2]
    y.backward()
    np.testing.assert_array_equal(x.grad.asnumpy(), [3.0, 4.0])


def test_error_variable_or_output_changed_through_a_view():
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = (x * x).sum()
    v = x.detach()
    v += 1  # x's own memory
    with pytest.raises(VersionError, match="input of operator 'multiply'.*shares memory"):
        y.backward()
    with autograd.record():
        t = mx.nd.tanh(x)
    t.detach()[:] = 0  # tanh's saved output
    with pytest.raises(VersionError, match="output of operator 'tanh'.*shares memory"):
        t.backward()


def test_perturbation_confusion_with_the_autograd_api():
    # d/dx [x * d/dy (x + y)] at y = x is 1: the inner derivative is 1 whatever x is
    x = mx.nd.array([1.5], dtype="float64")
    x.attach_grad()
    with autograd.record():
        y = x.copy()  # y = x, as its own recorded value
        (inner,) = autograd.grad(x + y, [y], create_graph=True)
        f = x * inner
    f.backward()
    assert x.grad.asscalar() == 1.0


def test_error_grad_with_no_variables():
    x = mx.nd.array([1.0])
    x.attach_grad()
    with autograd.record():
        y = x * 2
    with pytest.raises(TapegradError, match="`variables` is empty"):
        autograd.grad(y, [])


def test_view_change_detected_after_many_unrelated_in_place_changes():
    # the mutation log is bounded; the newest changes are always kept
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    w = mx.nd.array([3.0, 4.0, 5.0])
    with autograd.record():
        y = (x * w[1:]).sum()
    other = mx.nd.zeros((3,))
    for _ in range(9000):
        other += 1
    w.reshape((3, 1))[2] = 0.0
    with pytest.raises(VersionError, match="'multiply'.*shares memory"):
        y.backward()


def test_mutation_log_does_not_keep_changed_arrays_alive():
    # a change made through a view is logged without a strong reference to the memory, so a
    # temporary buffer written column by column is freed as soon as it is dropped
    import gc
    import weakref

    buf = mx.nd.zeros((50, 40))
    buf[:, 0] = 1.0
    buf.reshape((40, 50))[3:5] = 2.0
    owner = weakref.ref(buf._data)
    del buf
    gc.collect()
    assert owner() is None


def test_a_value_carried_from_a_freed_graph_is_a_constant_as_in_mxnet():
    # truncated backpropagation through time: the hidden state of the previous record()
    # block, whose graph backward() freed, is a constant (MXNet: w.grad [0 0], then [4 6])
    w = mx.nd.array([1.0, 2.0])
    w.attach_grad()
    h = mx.nd.zeros(2)
    grads = []
    for _ in range(2):
        with autograd.record():
            h = h * w + 1
            loss = (h * h).sum()
        loss.backward()
        grads.append(w.grad.asnumpy().tolist())
    assert grads == [[0.0, 0.0], [4.0, 6.0]]


def test_a_second_backward_through_a_graph_freed_by_another_head_raises():
    # unlike a value carried into a new record() block, a head recorded before the backward
    # that freed its graph is a second backward through that graph: an error, not a constant
    x = mx.nd.array([1.0, 2.0])
    x.attach_grad()
    with autograd.record():
        y = x * x
        z1 = (y * 2).sum()
        z2 = (y * 3).sum()
    z1.backward()
    with pytest.raises(mx.base.GraphError, match="second time.*retain_graph=True"):
        z2.backward()
