"""Real services for tests: a throwaway PostgreSQL server on loopback, Debian's Chromium, and `dagster dev`.

Tests that need one skip with the reason when it is not installed, unless `SYNTHAUG_REQUIRE_SERVICES` is set
(as `.ci/run` does): then a missing service fails the test instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def services_required() -> bool:
    """True when `SYNTHAUG_REQUIRE_SERVICES` asks for a failure instead of a skip."""
    return os.environ.get("SYNTHAUG_REQUIRE_SERVICES", "").strip().lower() not in ("", "0", "false", "no")


def missing_service(what: str, how_to_install: str) -> None:
    """Skip (or fail, when services are required) because a service's binaries are not installed."""
    message = f"{what} is not installed; {how_to_install} (or run `bash .ci/run`, which installs it)"
    if services_required():
        pytest.fail(f"SYNTHAUG_REQUIRE_SERVICES is set but {message}", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None) -> None:
    """Poll `predicate` every half second; fail the test with `what` (and the log's tail) on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tail = f"; log {log}:\n{log.read_text(errors='replace')[-4000:]}" if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}{tail}", pytrace=False)


def postgres_bindir() -> Path | None:
    """The folder with PostgreSQL's `initdb` and `pg_ctl` (Debian: /usr/lib/postgresql/<major>/bin), if any."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


class PostgresServer:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only, with password authentication.

    As root the server runs as the `postgres` system user (PostgreSQL refuses to run as root)."""

    user = "synthaug"
    db_name = "dagster"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_hex(12)
        self.port = free_port()
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.base = Path(tempfile.mkdtemp(prefix="synthaug-pg-"))
        self.data_dir = self.base / "data"
        self.log = self.base / "server.log"
        if self.run_as:
            try:
                owner = pwd.getpwnam(self.run_as)
            except KeyError:
                raise RuntimeError(
                    f"running as root, but there is no `{self.run_as}` user to run PostgreSQL as; "
                    "install Debian's `postgresql` package (it creates that user)"
                ) from None
            os.chown(self.base, owner.pw_uid, owner.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}\nserver log:\n{log}"
            )
        return result

    def init(self) -> None:
        """initdb a fresh cluster with a password-protected superuser and the Dagster database."""
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            shutil.chown(pwfile, self.run_as)
        self._run(
            self.bindir / "initdb",
            "-D",
            self.data_dir,
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        self.start()
        self._createdb()

    def _createdb(self) -> None:
        """Create the database Dagster stores its runs and events in."""
        import psycopg2

        conn = psycopg2.connect(**self.connect_kwargs(db_name="postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.db_name}"')
        conn.close()

    def start(self) -> None:
        """Start the server on loopback and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.base}"
        options += " -c fsync=off"
        self._run(self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.log, "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server (fast shutdown: committed data is kept)."""
        self._run(self.bindir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t", "60", "stop")

    def is_running(self) -> bool:
        """True while the cluster's postmaster is up."""
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "status"]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0

    def connect_kwargs(self, db_name: str | None = None) -> dict[str, object]:
        """psycopg2.connect keyword arguments for this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": db_name or self.db_name,
        }

    def env(self) -> dict[str, str]:
        """The `SYNTHAUG_PG_*` variables that the postgres instance config (`SYNTHAUG_INSTANCE=postgres`) reads."""
        return {
            "SYNTHAUG_PG_HOST": "127.0.0.1",
            "SYNTHAUG_PG_PORT": str(self.port),
            "SYNTHAUG_PG_USER": self.user,
            "SYNTHAUG_PG_PASSWORD": self.password,
            "SYNTHAUG_PG_DB": self.db_name,
        }

    def cleanup(self) -> None:
        """Stop the server if it runs and delete its folder."""
        try:
            if self.data_dir.exists() and self.is_running():
                self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def chromium_path() -> Path | None:
    """Debian's Chromium binary (`apt-get install chromium`), if installed."""
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def ingest_only_home(tmp_path: Path, data_root: Path, sensor_interval_s: int) -> tuple[Path, dict[str, str]]:
    """A fresh local Dagster home and the environment of a `dagster dev` that only ingests: the landing sensor
    polls every `sensor_interval_s`, automation and the growth sensor effectively never (no follow-on runs, no
    default-config training behind the test's back). The UI's first-visit pop-up is off."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "config" / "dagster.yaml", home / "dagster.yaml")
    with open(home / "dagster.yaml", "a") as config:  # the UI's sign-up pop-up opens at a random moment over dialogs
        config.write("\nnux:\n  enabled: false\n")
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        SYNTHAUG_DATA_ROOT=str(data_root),
        SYNTHAUG_SENSOR_INTERVAL_SECONDS=str(sensor_interval_s),
        SYNTHAUG_AUTOMATION_INTERVAL_SECONDS="3600",
        SYNTHAUG_GROWTH_SENSOR_INTERVAL_SECONDS="3600",
        NO_ALBUMENTATIONS_UPDATE="1",
    )
    for name in ("SYNTHAUG_INSTANCE", "SYNTHAUG_LANDING_DIR"):
        env.pop(name, None)
    return home, env


class DagsterDev:
    """`dagster dev -w workspace.yaml` on a free loopback port, in its own process group."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "dagster"),
                    "dev",
                    "-w",
                    "workspace.yaml",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                ],
                cwd=REPO,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {self.proc.returncode}; log:\n{self.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_until_up(self, timeout_s: float = 180) -> None:
        """Wait for the webserver to answer."""
        wait_for(self._up, timeout_s, "the dagster dev webserver", self.log)

    def stop(self) -> None:
        """SIGINT the process group (dagster dev shuts its children down), then SIGKILL after a minute."""
        if self.proc.poll() is None:
            stop_process_group(self.proc, signal.SIGINT)


@contextmanager
def dagster_daemon(env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A real `dagster-daemon run` on the workspace (queued runs, sensors, schedules), stopped when the block ends."""
    with open(log, "w") as out:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield daemon
    finally:
        stop_process_group(daemon, signal.SIGTERM)


def stop_process_group(proc: subprocess.Popen, sig: int, timeout_s: float = 60) -> None:
    """Send `sig` to the process group `proc` leads (started with start_new_session), SIGKILL it if it has not
    exited within `timeout_s`, and reap it."""
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
