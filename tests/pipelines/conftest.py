"""Fixtures for the service tests: a real throwaway PostgreSQL server and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines.services import PostgresServer, chromium_path, missing_service, postgres_bindir


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster on a free loopback port with a `dagster` database; stopped and deleted after."""
    bindir = postgres_bindir()
    if bindir is None:
        missing_service("the PostgreSQL server (initdb, pg_ctl)", "`apt-get install postgresql` installs it")
    server = PostgresServer(bindir)
    try:
        server.init()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium binary, for Playwright's `executable_path`."""
    path = chromium_path()
    if path is None:
        missing_service("Chromium (/usr/bin/chromium)", "`apt-get install chromium` installs it")
    return path
