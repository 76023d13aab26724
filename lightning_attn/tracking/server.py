"""An MLflow tracking server for a team (``lightning-attn server``): what to start and with what environment — a
database backend store, an artifact store it serves itself, the Host headers it answers and, bound beyond
loopback, MLflow's basic authentication. Every store URL, password and key travels in the environment, never on
a command line that ``ps`` shows to every user of the machine."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .mlflow import LOOPBACK, database_url, server_allowed_hosts
from .secrets import register, register_url

# the stores when none is named (in the folder the server starts in)
SERVER_DB, SERVER_ARTIFACTS = "mlflow-server.db", "mlartifacts"


class ServerSetupError(ValueError):
    """What the server needs and was not given (one line): a password, a readable password file."""


@dataclass
class ServerPlan:
    """The server to start: its command and environment, and what its start-up lines tell the user."""

    command: list[str]
    env: dict[str, str]
    url: str
    store: str
    artifacts: str
    admin: str | None = None  # the auth admin's user name, when authentication is on
    allowed: list[str] = field(default_factory=list)  # names clients may reach it by (patterns left out)


def plan_server(
    *,
    env: Mapping[str, str],
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 2,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    allowed_hosts: str | None = None,
    no_auth: bool = False,
    admin_password_file: str | None = None,
) -> ServerPlan:
    """The command and environment of ``mlflow server`` for a team: ``backend_store_uri`` (else
    ``$MLFLOW_BACKEND_STORE_URI``, else SQLite here), ``artifacts_destination`` (else ``./mlartifacts``), the Host
    headers it answers (``allowed_hosts``, else ``$MLFLOW_SERVER_ALLOWED_HOSTS``, else — bound beyond loopback —
    this machine's names too: MLflow's default refuses every name but localhost's with 403) and, bound beyond
    loopback unless ``no_auth``, basic authentication (the admin password from ``admin_password_file`` or
    ``$MLFLOW_AUTH_ADMIN_PASSWORD``).

    Raises:
        ServerSetupError: bound beyond loopback with neither a password nor ``no_auth``; an unreadable password file.
    """
    env = dict(env)
    store = backend_store_uri or env.get("MLFLOW_BACKEND_STORE_URI") or f"sqlite:///{Path(SERVER_DB).resolve()}"
    register_url(store)
    store = database_url(store)
    env["MLFLOW_BACKEND_STORE_URI"] = store
    artifacts = artifacts_destination or str(Path(SERVER_ARTIFACTS).resolve())
    command = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port)]
    command += ["--artifacts-destination", artifacts, "--workers", str(workers)]
    allowed = allowed_hosts or env.get("MLFLOW_SERVER_ALLOWED_HOSTS") or server_allowed_hosts(host)
    if allowed:
        env["MLFLOW_SERVER_ALLOWED_HOSTS"] = allowed
    admin = None
    if host not in LOOPBACK and not no_auth:  # reachable by others: nobody in without a password
        command += ["--app-name", "basic-auth"]
        folder = Path(store.removeprefix("sqlite:///")).parent if store.startswith("sqlite:///") else Path.cwd()
        env |= _authentication(env, folder, host=host, password_file=admin_password_file)
        admin = env["MLFLOW_AUTH_ADMIN_USERNAME"]
    names = [h for h in allowed.split(",") if "*" not in h] if allowed else []
    return ServerPlan(command, env, f"http://{host}:{port}", store, artifacts, admin, names)


def _authentication(env: dict[str, str], folder: Path, *, host: str, password_file: str | None) -> dict[str, str]:
    """The environment that turns on MLflow's basic-auth app: its config file (users kept in ``mlflow-auth.db``
    beside the backend store), the admin password and the key the app's CSRF protection signs with."""
    password = env.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ServerSetupError(f"--admin-password-file {password_file}: {e.strerror or e}") from None
    if not password:
        raise ServerSetupError(
            f"a server bound to {host} is open to anyone who can reach it: set MLFLOW_AUTH_ADMIN_PASSWORD (or "
            "--admin-password-file FILE) for MLflow's basic authentication, or pass --no-auth on a network you trust"
        )
    register(password)
    user = env.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    # every server process must share the key; kept beside the users (readable by the server's user alone) so
    # that a restart does not invalidate what browsers hold
    secret = env.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
    if not secret:
        key_file = folder.resolve() / "mlflow-auth.key"
        if not key_file.is_file():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        secret = key_file.read_text(encoding="utf-8").strip()
    register(secret)
    config = folder.resolve() / "mlflow-auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder.resolve() / 'mlflow-auth.db'}\nadmin_username = {user}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_AUTH_ADMIN_USERNAME": user,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret,
    }
