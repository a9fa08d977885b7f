"""The benchmarks' correctness checks (benchmarks/benchkit.py): what makes a broken benchmark
fail CI. The smoke runs themselves are run by .ci/run (they need ../shared/bench)."""

import importlib.util
import math
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "benchkit.py")
_spec = importlib.util.spec_from_file_location("benchkit", _PATH)
benchkit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchkit)


def rec(wid, variant="eager", status="ok", check=None, note=None):
    return {
        "workload": wid,
        "variant": variant,
        "status": status,
        "check": check or {},
        "note": note,
    }


def test_w1_reference_is_the_closed_form_derivative():
    # df/dx of f(x) = exp(a + a^2) + sin(a + a^2), a = exp(x), by central differences
    def f(x):
        c = math.exp(x) + math.exp(2 * x)
        return math.exp(c) + math.sin(c)

    h = 1e-5
    fd = (f(0.1 + h) - f(0.1 - h)) / (2 * h)
    assert benchkit.W1_DFDX == pytest.approx(fd, rel=1e-8)


def test_correct_figures_pass():
    records = [
        rec("W2", check={"loss0": 2.3044231, "loss10": 2.0978168}),
        rec("W2", "gluon", check={"loss0": 2.304423, "loss10": 2.097817}),
        rec("W6-ref", "numpy matmul"),
        rec("W8", "-", status="skipped", note="not implemented for this peer"),
    ]
    assert benchkit.check_records(records) == []


def test_a_wrong_figure_fails_and_names_workload_value_and_reference():
    problems = benchkit.check_records([rec("W2", check={"loss0": 2.31, "loss10": 2.097817})])
    assert len(problems) == 1
    assert "W2 loss0=2.31" in problems[0] and "2.304423" in problems[0]


def test_a_bound_is_enforced():
    assert benchkit.check_figure("W7", "max_abs_err_fd_vs_ad", 1e-11) is None
    assert "exceeds" in benchkit.check_figure("W7", "max_abs_err_fd_vs_ad", 1e-3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_a_figure_that_is_not_a_finite_number_fails(bad):
    assert "not a finite number" in benchkit.check_figure("W2", "unchecked_figure", bad)


def test_a_failed_case_fails():
    problems = benchkit.check_records(
        [rec("W3", status="failed", note="ValueError: output array is read-only")]
    )
    assert problems == ["W3 eager: failed: ValueError: output array is read-only"]


def test_a_figure_missing_from_a_workload_that_ran_fails():
    problems = benchkit.check_records([rec("W5", check={"loss0": 97.98265})])
    assert problems == ["W5: figure loss10 was not reported"]


def test_report_exit_status(capsys):
    assert benchkit.report("x.py", []) == 0
    assert benchkit.report("x.py", ["W2 loss0 off"]) == 1
    assert "1 check(s) FAILED" in capsys.readouterr().out


def test_smoke_flag_is_taken_out_and_seen_by_later_imports(monkeypatch):
    monkeypatch.setenv(benchkit.SMOKE_ENV, "")  # restored (unset) after the test
    assert benchkit.take_smoke_flag(["-w", "W2"]) == (["-w", "W2"], False)
    assert benchkit.take_smoke_flag(["--smoke", "-w", "W2"]) == (["-w", "W2"], True)
    assert benchkit.smoke()
    monkeypatch.setenv(benchkit.SMOKE_ENV, "0")
    assert not benchkit.smoke()
