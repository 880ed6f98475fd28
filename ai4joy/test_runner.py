"""`python manage.py test` runs pytest (pytest-django), so there is one way to run tests."""

from __future__ import annotations

from typing import Any


class PytestTestRunner:
    def __init__(
        self,
        verbosity: int = 1,
        failfast: bool = False,
        keepdb: bool = False,
        pytest_args: str = "",
        **kwargs: Any,
    ) -> None:
        self.verbosity = verbosity
        self.failfast = failfast
        self.keepdb = keepdb
        self.pytest_args = pytest_args

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--keepdb", action="store_true", help="Preserve the test DB between runs.")
        parser.add_argument("--pytest-args", default="", help="Extra arguments passed to pytest, quoted.")

    def run_tests(self, test_labels: list[str], **kwargs: Any) -> int:
        import shlex

        import pytest

        argv: list[str] = []
        if self.verbosity == 0:
            argv.append("--quiet")
        elif self.verbosity >= 2:
            argv.append("-v")
        if self.failfast:
            argv.append("--exitfirst")
        if self.keepdb:
            argv.append("--reuse-db")
        argv.extend(shlex.split(self.pytest_args))
        argv.extend(test_labels)
        return int(pytest.main(argv))
