"""Fixtures shared by every app's tests."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from emulator.control import EmulatorControl
from emulator.process import EmulatorProcess, start_emulator

_emails = itertools.count(1)


@pytest.fixture(scope="session")
def gemini_emulator(tmp_path_factory) -> Iterator[EmulatorProcess]:
    """The local Gemini stand-in (TLS, real wire protocol) in a subprocess, one per test run.

    Speech is paced 4x faster than real time to keep the suite short; the pacing logic is the same.
    """
    proc = start_emulator(tmp_path_factory.mktemp("gemini-emulator"), seed=7, realtime_factor=4.0)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def gemini(gemini_emulator: EmulatorProcess) -> Iterator[EmulatorControl]:
    """The emulator's fault control, cleared before and after each test."""
    control = EmulatorControl(gemini_emulator.url, gemini_emulator.ca_file)
    control.clear()
    yield control
    control.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database; before it is dropped, the connection the voice path keeps
    on asgiref's sync thread is closed (Postgres refuses to drop a database with a client)."""
    yield
    import asyncio

    from improv.store import store_connections_close

    with django_db_blocker.unblock():
        asyncio.run(store_connections_close())


@pytest.fixture
def make_user(db):
    def make(email: str | None = None, password: str = "correct-horse-battery", **extra):
        email = email or f"player{next(_emails)}@example.com"
        return get_user_model().objects.create_user(
            username=email, email=email, password=password, **extra
        )

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def signed_in_client(client, user):
    client.force_login(user)
    return client


# --- Firestore emulator: the official one from the Google Cloud CLI (Java) -------------------
FIRESTORE_EMULATOR_BIN = Path(os.environ.get(
    "FIRESTORE_EMULATOR_BIN",
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator",
))
FIRESTORE_TEST_PROJECT = "demo-test"


class FirestoreEmulator:
    def __init__(self, host: str, project: str) -> None:
        self.host = host
        self.project = project

    def reset(self) -> None:
        """Delete every document (the emulator's own reset endpoint)."""
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:  # http on loopback
            assert response.status == 200, response.status


def _emulator_ready(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return response.read().strip() == b"Ok"
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def firestore_emulator():
    """One emulator per test session on a free loopback port; FIRESTORE_EMULATOR_HOST points at it.
    Tests use `firestore_store` (or call `.reset()`) to start from an empty database."""
    if not FIRESTORE_EMULATOR_BIN.exists():
        pytest.skip(f"Firestore emulator not installed at {FIRESTORE_EMULATOR_BIN}: "
                    "install google-cloud-cli-firestore-emulator")
    if not shutil.which(os.environ.get("JAVA", "java")):
        pytest.skip("Java not installed: the Firestore emulator needs a JRE (openjdk-17-jre-headless)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = f"127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="firestore-emulator-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [str(FIRESTORE_EMULATOR_BIN), "start", "--host=127.0.0.1", f"--port={port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its own group: java is a child
    )
    deadline = time.monotonic() + 60
    while not _emulator_ready(host):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            tail = Path(log.name).read_text(errors="replace")[-2000:]
            pytest.fail(f"Firestore emulator did not start on {host}:\n{tail}")
        time.sleep(0.2)
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        yield FirestoreEmulator(host, FIRESTORE_TEST_PROJECT)
    finally:
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        os.unlink(log.name)


@pytest.fixture
def firestore_store(firestore_emulator, settings):
    """SESSION_STORE=firestore for this test (the whole app: API, consumer, admin), on an
    emptied emulator database. Returns the store."""
    from improv.store import get_store, reset_store_cache

    firestore_emulator.reset()
    settings.SESSION_STORE = "firestore"
    settings.GCP_PROJECT_ID = firestore_emulator.project
    settings.FIRESTORE_DATABASE = "(default)"
    reset_store_cache()
    yield get_store()
    reset_store_cache()


class Telemetry:
    """What the app emitted through OpenTelemetry since the test started (in-memory reader and
    exporter; delta temporality, so each read is what happened since the previous one)."""

    def __init__(self, reader, exporter) -> None:
        self.reader, self.exporter = reader, exporter

    def reset(self) -> None:
        self.reader.get_metrics_data()
        self.exporter.clear()

    def metrics(self) -> dict[str, list]:
        """Metric name -> its data points, collected now."""
        data = self.reader.get_metrics_data()
        out: dict[str, list] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def spans(self, name: str | None = None) -> list:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]


@pytest.fixture(scope="session")
def _otel_providers():
    from opentelemetry.sdk.metrics import Counter, Histogram, UpDownCounter
    from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ai4joy import telemetry

    delta = AggregationTemporality.DELTA
    reader = InMemoryMetricReader(
        preferred_temporality={Counter: delta, UpDownCounter: delta, Histogram: delta}
    )
    exporter = InMemorySpanExporter()
    # Global providers can be set once per process: the first test that asks installs them.
    telemetry.configure(metric_readers=[reader], span_processors=[SimpleSpanProcessor(exporter)])
    return Telemetry(reader, exporter)


@pytest.fixture
def otel(_otel_providers) -> Telemetry:
    _otel_providers.reset()
    return _otel_providers
