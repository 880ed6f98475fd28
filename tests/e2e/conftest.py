"""End-to-end fixtures: a real Daphne process (`python -m ai4joy.serve`), the Gemini emulator
(a local test double for the paid API), and Debian's headless Chromium through Playwright
with a fake microphone fed from a WAV that espeak-ng speaks.

Nothing here is downloaded: Chromium comes from apt (`chromium`), never `playwright install`.
When Chromium, Playwright, espeak-ng or sox is missing every e2e test is skipped, and the
report header says why in capitals (CI installs them: apt-get install chromium espeak-ng sox).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ai4joy.tests.serving import base_env, free_port, log_events, migrate_database, run_django

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AI4JOY_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
PASSWORD = "yes-and-e2e-password"
VOICE_USER = "voice-player@example.com"
TEXT_USER = "text-player@example.com"
# Two lines with a pause between them that is shorter than the partner's reply, so the second
# line barges in on the partner; then a long pause so the next reply plays out in full.
LINE_A = "Let's open a bakery on the moon, partner."
LINE_B = "Wait, I hear the oven singing to the astronauts."
BASE_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-gpu",
]


def missing_parts() -> str:
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        problems.append("the playwright package is not installed (requirements-dev.txt)")
    for tool, package in (("espeak-ng", "espeak-ng"), ("sox", "sox")):
        if shutil.which(tool) is None:
            problems.append(f"no {tool} on PATH (apt-get install {package})")
    return "; ".join(problems)


def pytest_report_header(config: pytest.Config) -> str | None:
    problems = missing_parts()
    if problems:
        return f"E2E BROWSER TESTS WILL BE SKIPPED: {problems}"
    return f"e2e: Chromium at {CHROMIUM}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = missing_parts()
    if not problems:
        return
    skip = pytest.mark.skip(reason=f"E2E SKIPPED (missing parts, not a pass): {problems}")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    problems = missing_parts()
    if problems and terminalreporter.stats.get("skipped"):
        terminalreporter.write_sep("!", "E2E BROWSER TESTS DID NOT RUN", red=True, bold=True)
        terminalreporter.write_line(f"missing: {problems}", red=True, bold=True)


# --- the fake microphone --------------------------------------------------------------------------
def _sox(*args: str | Path) -> None:
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 kHz mono: 1.5 s quiet, line A, 3.5 s quiet, line B (barges in), 8 s quiet; Chromium loops it."""
    work = tmp_path_factory.mktemp("wav")
    parts: list[Path] = []
    for name, seconds in (("quiet1", 1.5), ("quiet2", 3.5), ("quiet3", 8.0)):
        _sox("-n", "-r", "48000", "-c", "1", "-b", "16", work / f"{name}.wav", "trim", "0", str(seconds))
    for name, text in (("a", LINE_A), ("b", LINE_B)):
        raw = work / f"{name}-raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _sox(raw, "-r", "48000", "-c", "1", "-b", "16", work / f"{name}.wav")
    for name in ("quiet1", "a", "quiet2", "b", "quiet3"):
        parts.append(work / f"{name}.wav")
    out = work / "speech.wav"
    _sox(*parts, out)
    return out


# --- servers ----------------------------------------------------------------------------------------
@dataclass
class Stack:
    """One `python -m ai4joy.serve` process on a fixed port, restartable on that same port."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 40) -> None:
        env = {**self.env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ai4joy.serve"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not listen within {timeout}s:\n{self.log()[-3000:]}")

    def sigterm(self, timeout: float = 20) -> int:
        """What Cloud Run does on a new revision: SIGTERM, then wait for the drain to finish."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict]:
        """The server's structured log events called `name` (JSON lines), across restarts."""
        return log_events(self.log(), name)


_SEED_USERS = """
import json
from django.contrib.auth import get_user_model
User = get_user_model()
for email in {emails!r}:
    User.objects.create_user(username=email, email=email, password={password!r})
print(json.dumps({{"users": User.objects.count()}}))
"""


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if missing_parts():
        pytest.skip(f"E2E SKIPPED: {missing_parts()}")
    from emulator.process import start_emulator

    proc = start_emulator(tmp_path_factory.mktemp("emulator"), seed=11)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory, emulator) -> Path:
    """A migrated SQLite file with both players; each stack gets its own copy."""
    db = tmp_path_factory.mktemp("db") / "template.sqlite3"
    env = base_env(DATABASE_URL=f"sqlite:///{db}")
    migrate_database(env)
    run_django(_SEED_USERS.format(emails=[VOICE_USER, TEXT_USER], password=PASSWORD), env)
    return db


def stack_env(
    tmp: Path,
    template_db: Path,
    emulator,
    *,
    rollout_percent: int | None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a server for these tests: its own copy of the migrated database, the
    emulator as Gemini, and audio_v2 set to `rollout_percent` (None: never rolled out)."""
    db = tmp / "db.sqlite3"
    shutil.copyfile(template_db, db)
    env = base_env(
        DATABASE_URL=f"sqlite:///{db}",
        SERVICE_ROLE="all",
        GEMINI_BACKEND="emulator",
        GEMINI_EMULATOR_URL=emulator.url,
        GEMINI_EMULATOR_CA_FILE=emulator.ca_file,
        DRAIN_TIMEOUT="4",
        LOG_LEVEL="INFO",
        # Every test starts its own scene; the default cap of 3 open scenes would refuse the 4th.
        IMPROV_MAX_OPEN_SCENES="100",
        **(extra_env or {}),
    )
    if rollout_percent is not None:
        subprocess.run(
            [sys.executable, "manage.py", "rollout", "set", str(rollout_percent), "--reason", "e2e"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    return env


def _stack(
    tmp: Path,
    template_db: Path,
    emulator,
    *,
    rollout_percent: int | None,
    extra_env: dict[str, str] | None = None,
) -> Stack:
    env = stack_env(tmp, template_db, emulator, rollout_percent=rollout_percent, extra_env=extra_env)
    stack = Stack(env=env, log_path=tmp / "server.log")
    stack.start()
    return stack


@pytest.fixture(scope="session")
def voice_stack(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path, emulator) -> Iterator[Stack]:
    """audio_v2 at 100%: everyone gets voice."""
    stack = _stack(tmp_path_factory.mktemp("voice-stack"), migrated_db, emulator, rollout_percent=100)
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def text_stack(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path, emulator) -> Iterator[Stack]:
    """audio_v2 never rolled out: every player is outside the rollout."""
    stack = _stack(tmp_path_factory.mktemp("text-stack"), migrated_db, emulator, rollout_percent=None)
    yield stack
    stack.stop()


# --- the browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[object]:
    if missing_parts():
        pytest.skip(f"E2E SKIPPED: {missing_parts()}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def launch(driver, *extra_args: str):
    return driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*BASE_ARGS, *extra_args])


@pytest.fixture(scope="session")
def browser(playwright_driver, speech_wav: Path):
    """Chromium whose microphone is the espeak-ng WAV, with the permission prompt auto-accepted."""
    chromium = launch(
        playwright_driver, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={speech_wav}"
    )
    yield chromium
    chromium.close()


@pytest.fixture
def shot():
    """Save a full-page screenshot under test-artifacts/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page, base_url: str, email: str) -> None:
    """Through the real sign-in form, as a player would."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base_url}/", timeout=30_000)


def open_page(browser, base_url: str, email: str | None, console: list[str] | None = None):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    if console is not None:
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    if email:
        sign_in(page, base_url, email)
    return context, page


def start_active_scene(page, base_url: str) -> str:
    """Home -> play the first game -> ask the audience: the scene is on. Returns the stage URL."""
    page.goto(f"{base_url}/")
    page.locator("form[action$='/scenes/new/'] button", has_text="Play").first.click()
    try:
        page.wait_for_url("**/scenes/*/", timeout=30_000)
    except Exception as exc:  # say what the page said (a limit, an error) instead of just "timeout"
        messages = page.locator(".messages").all_inner_texts()
        raise AssertionError(f"no stage after starting a scene; at {page.url}, messages: {messages}") from exc
    ask = page.get_by_role("button", name="Ask the audience")
    if ask.count():
        ask.click()
        page.wait_for_load_state()
    return page.url.split("#")[0]
