"""`manage.py migrate` from nothing, on SQLite and on PostgreSQL, with the swapped waffle flag model."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PG_URLS = ("postgres://postgres@127.0.0.1:5432/test", "postgres://127.0.0.1:5432/test")


def plain(value):
    """Numbers as int, so SQLite's and PostgreSQL's answers compare alike."""
    return int(value) if isinstance(value, (Decimal, float)) else value


def manage(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "plain"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def check_fresh_database(database_url: str, query, tables_sql: str) -> None:
    result = manage("migrate", "--noinput", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "Applying flags.0001_initial... OK" in result.stdout
    assert "Applying waffle.0004_update_everyone_nullbooleanfield... OK" in result.stdout
    # audio_v2 exists from the first migrations, and is off.
    assert query("select everyone, percent, superusers from flags_flag where name = 'audio_v2'") == [
        (None, 0, False)
    ]
    # waffle's migrations ran, minus the swapped-out flag tables (flags.routers).
    tables = {
        name for (name,) in query(tables_sql) if name.startswith("waffle_") or name.startswith("flags_")
    }
    assert tables == {
        "waffle_switch",
        "waffle_sample",
        "flags_flag",
        "flags_flag_users",
        "flags_flag_groups",
        "flags_rolloutchange",
    }
    again = manage("migrate", "--noinput", database_url=database_url)
    assert again.returncode == 0 and "No migrations to apply" in again.stdout


@pytest.mark.slow
def test_migrate_on_a_fresh_sqlite_database(tmp_path):
    import sqlite3

    path = tmp_path / "fresh.sqlite3"

    def query(sql):
        with sqlite3.connect(path) as db:
            return [tuple(map(plain, row)) for row in db.execute(sql)]

    check_fresh_database(f"sqlite:///{path}", query, "select name from sqlite_master where type = 'table'")


@pytest.mark.slow
def test_migrate_on_a_fresh_postgres_database():
    admin_url = None
    for url in PG_URLS:
        try:
            psycopg.connect(url, connect_timeout=3).close()
            admin_url = url
            break
        except psycopg.Error:
            continue
    if admin_url is None:
        pytest.skip("SKIPPED LOUDLY: PostgreSQL not reachable at 127.0.0.1:5432")
    name = f"flags_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:

        def query(sql):
            with psycopg.connect(url) as db:
                return [tuple(map(plain, row)) for row in db.execute(sql).fetchall()]

        check_fresh_database(url, query, "select tablename from pg_tables where schemaname = 'public'")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_models_and_migrations_agree():
    result = manage(
        "makemigrations", "--check", "--dry-run", "flags", "waffle", database_url="sqlite:///:memory:"
    )
    assert result.returncode == 0, result.stdout + result.stderr
