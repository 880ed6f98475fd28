"""`python manage.py test` takes Django's dotted labels, -k and --failfast, and runs pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ai4joy.test_runner import ROOT, LabelError, PytestTestRunner, pytest_target


@pytest.mark.parametrize(
    ("label", "target"),
    [
        ("improv.tests.test_api", "improv/tests/test_api.py"),
        (
            "improv.tests.test_rules.test_guard_refuses_injection",
            "improv/tests/test_rules.py::test_guard_refuses_injection",
        ),
        ("audio", "audio"),
        ("audio.tests", "audio/tests"),
        ("improv/tests/test_api.py", "improv/tests/test_api.py"),
        ("improv/tests/test_api.py::test_x", "improv/tests/test_api.py::test_x"),
    ],
)
def test_django_labels_become_pytest_targets(label, target):
    assert pytest_target(label) == target


@pytest.mark.parametrize("label", ["improv.tests.test_nothing_here", "nosuchapp", "improv..tests", "x-y"])
def test_unknown_labels_are_refused_clearly(label):
    with pytest.raises(LabelError):
        pytest_target(label)


def test_options_map_to_pytest():
    runner = PytestTestRunner(
        failfast=True, test_name_patterns=["phase", "guard"], tags=["e2e"], exclude_tags=["slow"]
    )
    argv = runner.pytest_argv(["improv.tests.test_rules"])
    assert argv == [
        "--exitfirst", "-k", "phase or guard", "-m", "((e2e)) and (not (slow))", "improv/tests/test_rules.py",
    ]


def run_manage_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "test", *args, "--pytest-args", "-p no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )


def test_manage_py_test_runs_a_dotted_label_with_k():
    done = run_manage_test("improv.tests.test_rules", "-k", "partner_phase", "--failfast")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout and "deselected" in done.stdout, done.stdout[-2000:]


def test_manage_py_test_says_what_is_wrong_with_a_bad_label():
    done = run_manage_test("improv.tests.test_nothing_here")
    assert done.returncode != 0
    assert "no test module, package or directory matches 'improv.tests.test_nothing_here'" in done.stdout
