"""A tracking server other hosts reach by name and strangers cannot: ``lightning-attn server`` bound beyond
loopback answers the machine's own names (MLflow 3 alone answers localhost's and refuses every other name
with 403, while its ``/health`` still says 200) and turns on MLflow's basic authentication; a client that
reaches it by a name it does not allow, or without credentials, gets one line, exit 3."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lightning_attn.cli import main
from lightning_attn.tracking.mlflow import server_allowed_hosts

from .helpers import tiny
from .servers import answers, free_port, wait_until

ADMIN_PASSWORD = "correct-horse-battery-7"


def test_a_server_on_loopback_keeps_mlflows_defaults_and_beyond_it_allows_this_machines_names():
    assert server_allowed_hosts("127.0.0.1") is None
    allowed = server_allowed_hosts("0.0.0.0").split(",")
    assert socket.gethostname() in allowed and f"{socket.gethostname()}:*" in allowed and "localhost" in allowed


def test_a_server_bound_beyond_loopback_without_a_password_is_refused_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    assert main(["server", "--host", "0.0.0.0", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MLFLOW_AUTH_ADMIN_PASSWORD" in err and "--no-auth" in err


def _cmdlines(root: int) -> list[str]:
    """The command lines of ``root`` and every process below it."""
    found, lines = {root}, []
    for proc in sorted(Path("/proc").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0):
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if int(proc.name) in found or parent in found:
                found.add(int(proc.name))
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError):
            continue
    return lines


@pytest.mark.e2e
def test_clients_reach_the_server_by_name_with_credentials_and_nobody_else_does(tmp_path):
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
    ]
    log = tmp_path / "server.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_AUTH"))}
    with open(log, "w") as out:
        server = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=base | {"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/health") or server.poll() is not None, 180)
        assert server.poll() is None, log.read_text()[-3000:]
        assert not [c for c in _cmdlines(server.pid) if ADMIN_PASSWORD in c]  # `ps` shows it to nobody
        # without credentials the API answers 401
        by_name = f"http://{socket.gethostname()}:{port}"  # as another host would: the machine's name
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{by_name}/api/2.0/mlflow/experiments/search?max_results=1", timeout=30)
        assert refused.value.code == 401
        train = [sys.executable, "-m", "lightning_attn", "train", *tiny(), "logger.experiment_name=named"]
        anonymous = subprocess.run(
            [*train, f"logger.tracking_uri={by_name}"], capture_output=True, text=True, env=base, timeout=120
        )
        assert anonymous.returncode == 3 and anonymous.stderr.count("\n") == 1, anonymous.stderr[-2000:]
        assert "wants credentials (HTTP 401)" in anonymous.stderr
        # with them, reached by the machine's name, a run is logged — with its checkpoints, which another host
        # (another folder, the trained one's files gone) evaluates and resumes from
        member = base | {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
        host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
        for folder in (host_a, host_b):
            folder.mkdir()
        ok = subprocess.run(
            [*train, "trainer.max_epochs=2", "early_stopping.enabled=false", f"logger.tracking_uri={by_name}"],
            cwd=host_a,
            capture_output=True,
            text=True,
            env=member,
            timeout=300,
        )
        assert ok.returncode == 0, ok.stderr[-3000:]
        os.environ.update({k: member[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
        try:
            client = MlflowClient(by_name)
            (run,) = client.search_runs([client.get_experiment_by_name("named").experiment_id])
            assert run.info.status == "FINISHED" and "test/bleu" in run.data.metrics
            uploaded = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
            assert uploaded == {"checkpoints/best.ckpt", "checkpoints/last.ckpt"}
            for local in host_a.rglob("*.ckpt"):
                local.unlink()
            cli = [sys.executable, "-m", "lightning_attn"]
            scored = subprocess.run(
                [*cli, "evaluate", run.info.run_id, "--tracking-uri", by_name],
                cwd=host_b,
                capture_output=True,
                text=True,
                env=member,
                timeout=300,
            )
            assert scored.returncode == 0, scored.stderr[-3000:]
            assert f"test/bleu {run.data.metrics['test/bleu']:.2f}" in scored.stdout, scored.stdout[-600:]
            resumed = subprocess.run(
                [*cli, "train", "--resume", run.info.run_id, "trainer.max_epochs=3", f"logger.tracking_uri={by_name}"],
                cwd=host_b,
                capture_output=True,
                text=True,
                env=member,
                timeout=300,
            )
            assert resumed.returncode == 0, resumed.stderr[-3000:]
            assert len(client.get_metric_history(run.info.run_id, "val/bleu")) == 3  # epoch 3 only was trained
        finally:
            for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                os.environ.pop(key)
        # a name the server does not answer (127.0.0.2 reaches it, but is no name of this machine)
        stranger = subprocess.run(
            [*train, f"logger.tracking_uri=http://127.0.0.2:{port}"],
            capture_output=True,
            text=True,
            env=member,
            timeout=120,
        )
        assert stranger.returncode == 3, stranger.stderr[-3000:]
        assert stranger.stderr.count("\n") == 1 and "refuses the host name '127.0.0.2'" in stranger.stderr
        assert "--allowed-hosts" in stranger.stderr
        for output in (
            ok.stdout,
            ok.stderr,
            scored.stdout,
            resumed.stderr,
            anonymous.stderr,
            stranger.stderr,
            log.read_text(),
        ):
            assert ADMIN_PASSWORD not in output
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
