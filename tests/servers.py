"""Real servers on loopback for the tests that need them: a PostgreSQL cluster of its own (initdb in a
temporary folder, a free port) and an MLflow tracking server started by ``lightning-attn server``.

Where PostgreSQL is not installed and cannot be (not root, no apt-get, no network), the tests that need
it are skipped with the reason; they never fall back to a mock.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "pl4nted-S3cret"  # planted: it must appear nowhere a user or a log can read
USER = "lab"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def wait_until(condition, timeout: float = 180, every: float = 0.3, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition.__name__}")


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _install_postgres() -> str | None:
    """apt-get install postgresql where we may; the reason it cannot be, or None."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL is not installed and this user cannot apt-get install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            return f"apt-get could not install PostgreSQL: {proc.stderr.strip().splitlines()[-1:]}"
    return None


@dataclass
class Postgres:
    port: int
    bin: Path
    folder: Path
    as_user: list[str]

    def url(self, database: str, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return name


def start_postgres() -> Postgres:
    """initdb a cluster owned by the ``postgres`` user (PostgreSQL refuses to run as root), password
    authentication for ``USER``, listening on 127.0.0.1 only, on a free port."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        reason = _install_postgres()
        bin_dir = _postgres_bin()
        if bin_dir is None:
            pytest.skip(reason or "PostgreSQL installed, but initdb not found")
    folder = Path(tempfile.mkdtemp(prefix="lightning-attn-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text(PASSWORD)
    if as_user:
        shutil.chown(folder / "pw", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={folder / 'pw'}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -h 127.0.0.1 -k {folder} -c max_connections=200"
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return Postgres(port, bin_dir, folder, as_user)


def stop_postgres(pg: Postgres) -> None:
    subprocess.run(
        [*pg.as_user, str(pg.bin / "pg_ctl"), "-D", str(pg.folder / "data"), "-m", "fast", "stop"], capture_output=True
    )
    shutil.rmtree(pg.folder, ignore_errors=True)


@dataclass
class MlflowServer:
    url: str
    process: subprocess.Popen
    log: Path


def start_mlflow_server(backend: str, artifacts: Path, log: Path, env: dict[str, str]) -> MlflowServer:
    """``lightning-attn server`` on a free loopback port with the given backend store."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "server",
        "--backend-store-uri",
        backend,
        "--artifacts-destination",
        str(artifacts),
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    handle = open(log, "w")  # noqa: SIM115 - the server writes here for its whole life
    process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/health") or process.poll() is not None, 180, what="the MLflow server")
    except AssertionError:
        stop_mlflow_server(MlflowServer(url, process, log))
        raise
    assert process.poll() is None, log.read_text()[-3000:]
    return MlflowServer(url, process, log)


def stop_mlflow_server(server: MlflowServer) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
