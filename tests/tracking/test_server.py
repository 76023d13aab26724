"""The team server's plan (``lightning-attn server``): what it starts, what the environment carries, and that no
store URL, password or key is on its command line (no server is started here: tests/test_server_hosts.py does)."""

from __future__ import annotations

import pytest

from lightning_attn.tracking.server import ServerSetupError, plan_server


def test_a_server_on_loopback_needs_no_password_and_keeps_the_store_off_the_command_line(tmp_path):
    store = "postgresql://ml:hunter2@db:5432/ml"
    plan = plan_server(env={}, backend_store_uri=store, artifacts_destination=str(tmp_path / "a"))
    assert plan.url == "http://127.0.0.1:5000" and plan.admin is None and "--app-name" not in plan.command
    assert plan.env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql") and "hunter2" not in " ".join(plan.command)


def test_a_server_others_can_reach_needs_a_password_and_gets_basic_auth(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ServerSetupError, match="^a server bound to 0.0.0.0 is open to anyone"):
        plan_server(env={}, host="0.0.0.0")
    plan = plan_server(env={"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cret-pw"}, host="0.0.0.0", port=5055)
    assert plan.command[-2:] == ["--app-name", "basic-auth"] and plan.admin == "admin"
    assert plan.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "s3cret-pw" and plan.allowed  # this machine's names too
    key = plan.env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    assert (tmp_path / "mlflow-auth.key").read_text() == key and (
        tmp_path / "mlflow-auth.key"
    ).stat().st_mode & 0o077 == 0
    assert "s3cret-pw" not in " ".join(plan.command) and key not in " ".join(plan.command)
    assert "admin_username = admin" in (tmp_path / "mlflow-auth.ini").read_text()
    open_ = plan_server(env={}, host="0.0.0.0", no_auth=True)
    assert "--app-name" not in open_.command and open_.admin is None
    with pytest.raises(ServerSetupError, match="--admin-password-file .*nope"):
        plan_server(env={}, host="0.0.0.0", admin_password_file=str(tmp_path / "nope"))
