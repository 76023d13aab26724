"""MLflow helpers: where runs go, experiments, and keeping secrets out of what is logged."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .secrets import gist, mask_secrets, register_url

DEFAULT_DB = "mlflow.db"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """The tracking URI a run uses: the config's, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///<cwd>/mlflow.db`` (absolute, so it still points here from any working directory).

    A local ``./mlruns`` folder store is never the fallback: MLflow 3.13+ refuses it.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    register_url(uri)  # its password is masked wherever anything prints it
    return database_url(uri) if uri else f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def database_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: to SQLAlchemy a bare ``postgresql://`` means
    psycopg2, while ``lightning-attn[postgres]`` installs psycopg 3 (``postgresql+psycopg://``)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
            return f"postgresql+psycopg://{rest}"
    return url


class TrackingUnavailable(ConnectionError):
    """The MLflow tracking store cannot be reached or opened; the message is one line, secrets masked."""


CONNECT_TIMEOUT_S = 10


def check_tracking_store(uri: str) -> None:
    """Reach the MLflow store before any work starts, so that a wrong or unreachable URI costs one line
    (naming the masked URI and the cause) instead of a traceback after the data was prepared.

    Raises:
        TrackingUnavailable: the server does not answer, refuses, or the database cannot be opened.
    """
    parts = urlsplit(uri)
    where = mask_secrets(uri)
    if parts.scheme in ("http", "https"):
        _check_server(uri, where)
        return
    if parts.scheme in ("", "file"):
        raise TrackingUnavailable(
            f"{where}: MLflow 3.13+ no longer accepts a local folder store; use sqlite:///mlflow.db or a server"
        )
    if parts.scheme == "sqlite":
        # a local file: MLflow creates it on first use; checking must not (bad input writes nothing)
        db = sqlite_file(uri)
        if db is not None:
            folder = db.parent
            if not folder.is_dir():
                raise TrackingUnavailable(f"{where}: the folder {folder} does not exist")
            if not os.access(folder, os.W_OK):
                raise TrackingUnavailable(f"{where}: the folder {folder} is not writable")
        if db is None or not db.is_file():
            return
    _open_store(uri, where)


def _open_store(uri: str, where: str) -> None:
    """Open the store and read from it: a database that cannot be opened, or one another MLflow release wrote
    (whose schema this one refuses), is one line."""
    os.environ.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT_S))  # libpq: do not wait forever
    from mlflow import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as e:  # MLflow, SQLAlchemy and drivers raise many kinds: the gist is what matters
        why = gist(e)
        if "database schema" in why:
            why = why.split(". ")[0] + f" — written by another MLflow release than this one ({_mlflow_version()})"
        raise TrackingUnavailable(f"cannot open the MLflow tracking store {where}: {why}") from None


def _mlflow_version() -> str:
    from importlib.metadata import version

    return f"mlflow {version('mlflow')}"


def _check_server(uri: str, where: str) -> None:
    """A real API call (``/health`` answers whatever the server would refuse): one line for a server that is
    down, refuses this client's Host header (MLflow 3's allowed hosts), or wants credentials."""
    parts = urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    api = urlunsplit(
        (parts.scheme, netloc, parts.path.rstrip("/") + "/api/2.0/mlflow/experiments/search", "max_results=1", "")
    )
    request = urllib.request.Request(api)
    # the credentials MLflow's client would send: those in the URL, else MLFLOW_TRACKING_USERNAME/PASSWORD
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
    else:
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    if user is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S).close()
    except urllib.error.HTTPError as e:
        if e.code == 403 and "host" in e.read(2000).decode("utf-8", "replace").lower():
            raise TrackingUnavailable(
                f"the MLflow tracking server {where} refuses the host name {parts.hostname!r} (HTTP 403): start it "
                f"with it allowed — lightning-attn server --allowed-hosts {parts.hostname},… (or "
                f"MLFLOW_SERVER_ALLOWED_HOSTS) — or reach it by a name it allows"
            ) from None
        if e.code == 401:
            raise TrackingUnavailable(
                f"the MLflow tracking server {where} wants credentials (HTTP 401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            ) from None
        raise TrackingUnavailable(f"the MLflow tracking server {where} refused: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = mask_secrets(str(getattr(e, "reason", e)))
        raise TrackingUnavailable(f"cannot reach the MLflow tracking server {where}: {reason}") from None


def mask_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in params.items()}


def log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    """Log ``params`` on an existing run: passwords masked, values cut to MLflow's limit, 100 per request."""
    from mlflow.entities import Param

    items = [Param(k, mask_secrets(str(v))[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///…`` URI; None for any other store and for an in-memory database.

    As SQLAlchemy reads it, the path is what follows the third slash: ``sqlite:////abs/a.db`` is
    ``/abs/a.db``, ``sqlite:///a.db`` is ``a.db`` in the working directory (not ``/a.db``).
    """
    parts = urlsplit(uri)
    if parts.scheme != "sqlite" or parts.path in ("", "/", "/:memory:"):
        return None
    return Path(parts.path[1:])


@contextlib.contextmanager
def store_creation_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock while a process may create a local SQLite store's schema.

    MLflow builds the tables of a new SQLite file when a client first opens it, without a lock: two
    ``lightning-attn train`` started at once on a fresh ``mlflow.db`` both try, and one dies with
    "table experiments already exists". An ``flock`` on the database's folder (no lock file is left
    behind; the kernel drops the lock when the process dies) makes them take turns. Other stores
    need nothing: a server or PostgreSQL database exists, with its schema, before runs use it.
    """
    db = sqlite_file(uri)
    folder = db.parent if db is not None else None
    if folder is None or not folder.is_dir():
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """For a local SQLite store: ``mlartifacts/<experiment>`` next to the database file.

    Without this MLflow would put artifacts in ``./mlruns`` of whatever the working directory is.
    Other stores (servers, PostgreSQL) keep their own artifact root.
    """
    db = sqlite_file(tracking_uri)
    if db is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name).strip("_") or "experiment"
    return (db.resolve().parent / "mlartifacts" / slug).as_uri()


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """Id of experiment ``name``, creating it (with a sensible artifact location) if missing.

    The experiment is marked as one of training runs (MLflow 3's experiment kind, ``mlflow.experimentKind``):
    from MLflow 3.4 the UI opens an experiment on the view its kind names — its runs rather than GenAI traces;
    later versions choose by the UI's own switch instead (:func:`experiment_links`), and the kind stays the
    record of what the experiment holds. An experiment made before carries the mark from its next run on; a
    kind someone chose in the UI is kept.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from . import tags as T

    with store_creation_lock(tracking_uri):
        client = MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage != "deleted":
        if T.EXPERIMENT_KIND not in found.tags:
            with contextlib.suppress(MlflowException):  # a mark for the UI: no reason to stop a run
                client.set_experiment_tag(found.experiment_id, T.EXPERIMENT_KIND, T.KIND_TRAINING)
        return found.experiment_id
    if found is not None:
        raise ValueError(f"MLflow experiment {name!r} is deleted; restore it or choose another logger.experiment_name")
    try:
        return client.create_experiment(
            name,
            artifact_location=default_artifact_location(tracking_uri, name),
            tags={T.EXPERIMENT_KIND: T.KIND_TRAINING},
        )
    except MlflowException:
        # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


#: the query that opens an experiment page on its training runs. MLflow 3.9+ chooses an experiment's view from
#: its UI's own GenAI / Model training switch, which the browser keeps (GenAI until someone changes it), and no
#: longer from the experiment's kind (mlflow/mlflow#24498); a link that names the workflow opens on the runs
TRAINING_VIEW = "workflowType=machine_learning"
LINKS_SHOWN = 20


def experiment_links(tracking_uri: str, base_url: str) -> list[tuple[str, str]]:
    """``(name, page)`` of each active experiment of training runs in the store (the toolkit's, most recently
    updated first; GenAI ones and MLflow's empty Default left out): its page in the MLflow UI at ``base_url``,
    open on its runs. Empty where the store cannot be read, or is a SQLite file that does not exist yet."""
    from . import tags as T

    db = sqlite_file(tracking_uri)
    if urlsplit(tracking_uri).scheme == "sqlite" and (db is None or not db.is_file()):
        return []
    try:
        from mlflow import MlflowClient

        found = MlflowClient(tracking_uri).search_experiments(
            max_results=LINKS_SHOWN + 1, order_by=["last_update_time DESC"]
        )
    except Exception:  # the UI starts anyway, and says what is wrong itself
        return []
    base = base_url.rstrip("/")
    shown = [e for e in found if not e.tags.get(T.EXPERIMENT_KIND, "").startswith("genai")]
    shown = [e for e in shown if not (e.experiment_id == "0" and e.name == "Default")]
    return [(e.name, f"{base}/#/experiments/{e.experiment_id}?{TRAINING_VIEW}") for e in shown][:LINKS_SHOWN]


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def server_allowed_hosts(bind: str) -> str | None:
    """The Host headers an MLflow server bound to ``bind`` should answer, for MLflow's ``--allowed-hosts``:
    None on loopback (MLflow's own default: localhost and private addresses); beyond it, those plus this
    machine's names and addresses, any port — the names clients on other hosts use to reach it."""
    import socket

    from mlflow.server.security_utils import get_default_allowed_hosts

    if bind in LOOPBACK:
        return None
    names = {socket.gethostname(), socket.getfqdn()}
    if bind not in ("0.0.0.0", "::", ""):
        names.add(bind)
    for name in list(names):
        with contextlib.suppress(OSError):
            names |= {info[4][0] for info in socket.getaddrinfo(name, None)}
    ours = sorted(n for n in names if n)
    return ",".join([*ours, *(f"{n}:*" for n in ours), *get_default_allowed_hosts()])
