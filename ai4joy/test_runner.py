"""`python manage.py test` runs pytest (pytest-django), so there is one way to run tests.

It takes what Django developers type: dotted labels (`improv.tests.test_api`,
`improv.tests.test_api.test_scene_start`, `audio`), file paths and pytest node ids,
`-k PATTERN` (repeatable), `--failfast`, `--keepdb`, `--tag`/`--exclude-tag` (pytest markers),
and anything else for pytest through `--pytest-args "..."`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class LabelError(ValueError):
    """A test label that names no module, file or directory of the project."""


def pytest_target(label: str, root: Path = ROOT) -> str:
    """A Django test label as a pytest target: `a.b.test_x.Case.test_y` -> `a/b/test_x.py::Case::test_y`.

    Paths and node ids (anything with a `/`, `::` or a `.py`) pass through unchanged.
    """
    if "/" in label or "::" in label or label.endswith(".py") or (root / label).exists():
        return label
    parts = label.split(".")
    if not all(part.isidentifier() for part in parts):
        raise LabelError(f"{label!r} is not a test label (a dotted module path, a file or a directory)")
    # The longest prefix that is a module or a package; the rest are classes and functions in it.
    for cut in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:cut])
        rest = parts[cut:]
        if base.with_suffix(".py").is_file():
            return "::".join([str(base.with_suffix(".py").relative_to(root)), *rest])
        if base.is_dir() and not rest:
            return str(base.relative_to(root))
    raise LabelError(f"no test module, package or directory matches {label!r}")


class PytestTestRunner:
    def __init__(
        self,
        verbosity: int = 1,
        failfast: bool = False,
        keepdb: bool = False,
        pytest_args: str = "",
        test_name_patterns: list[str] | None = None,
        tags: list[str] | None = None,
        exclude_tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.verbosity = verbosity
        self.failfast = failfast
        self.keepdb = keepdb
        self.pytest_args = pytest_args
        self.patterns = test_name_patterns or []
        self.tags = tags or []
        self.exclude_tags = exclude_tags or []

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        parser.add_argument("--failfast", action="store_true", help="Stop at the first failure.")
        parser.add_argument("--keepdb", action="store_true", help="Preserve the test DB between runs.")
        parser.add_argument(
            "-k",
            action="append",
            dest="test_name_patterns",
            help="Only run tests whose name contains this substring (pytest -k; repeatable: any matches).",
        )
        parser.add_argument(
            "--tag", action="append", dest="tags", help="Only run tests with this marker (e.g. e2e)."
        )
        parser.add_argument(
            "--exclude-tag", action="append", dest="exclude_tags", help="Skip tests with this marker."
        )
        parser.add_argument("--pytest-args", default="", help="Extra arguments passed to pytest, quoted.")

    def pytest_argv(self, test_labels: list[str]) -> list[str]:
        import shlex

        argv: list[str] = []
        if self.verbosity == 0:
            argv.append("--quiet")
        elif self.verbosity >= 2:
            argv.append("-v")
        if self.failfast:
            argv.append("--exitfirst")
        if self.keepdb:
            argv.append("--reuse-db")
        if self.patterns:
            argv += ["-k", " or ".join(self.patterns)]
        markers = [*(f"({t})" for t in self.tags)]
        if self.tags or self.exclude_tags:
            include = " or ".join(markers) if markers else ""
            exclude = " and ".join(f"not ({t})" for t in self.exclude_tags)
            argv += ["-m", " and ".join(f"({part})" for part in (include, exclude) if part)]
        argv.extend(shlex.split(self.pytest_args))
        argv.extend(pytest_target(label) for label in test_labels)
        return argv

    def run_tests(self, test_labels: list[str], **kwargs: Any) -> int:
        import pytest

        try:
            argv = self.pytest_argv(list(test_labels))
        except LabelError as exc:
            print(f"manage.py test: {exc}")
            return 4  # pytest's own "usage error"
        return int(pytest.main(argv))
