"""Where Optuna keeps a sweep, and how a dead worker's trial is noticed.

* default: a journal file in the sweep's folder — safe for several worker processes on one host
  (SQLite is not: concurrent writers lock each other out);
* ``sqlite:///…``: one worker;
* ``postgresql://…``: several hosts (:func:`sweep_lock` keeps the budget exact across them).

Every running trial sends a heartbeat. Optuna's RDB storage has heartbeats built in; its journal
storage does not, so :class:`HeartbeatJournalStorage` adds them (the heartbeat is a trial system
attribute with a timestamp). :func:`fail_stale_trials` then fails a trial whose worker stopped
beating and enqueues a retry with the same parameters.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from ..private_apis import Heartbeat, has_heartbeats, stale_trial_ids, storage_layers, storage_of, trial_id_of
from ..tracking import database_url, mask_secrets
from ..tracking.secrets import gist, register_url

JOURNAL = "optuna.journal"
HEARTBEAT_ATTR = "heartbeat"
# the attributes a sweep keeps on Optuna's studies and trials
FAILURE_REASON = "failure_reason"  # trial user attribute, also an MLflow tag
RETRY_OF = "retry_of"  # user attribute of a retry: the number of the trial it repeats
STALE = "stale"  # user attribute: True on a trial failed because its worker died (not counted in the budget)
PARENT_RUN = "mlflow_parent_run_id"  # study user attribute: the study's MLflow parent run
RUN_ID = "mlflow_run_id"  # trial user attribute: the trial's MLflow run
WORKER = "worker"  # trial user attribute: which worker runs it
FOLDER = "folder"  # trial user attribute: the folder its checkpoints go to, on the host that runs it


class HeartbeatJournalStorage(JournalStorage, Heartbeat):
    """A journal storage whose running trials beat every ``heartbeat_interval`` seconds."""

    def __init__(self, path: str | Path, heartbeat_interval: int, grace_period: int):
        super().__init__(JournalFileBackend(str(path)))
        self.path = Path(path)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            last = trial.system_attrs.get(HEARTBEAT_ATTR, trial.datetime_start.timestamp())
            if now - last > self.grace_period:
                stale.append(trial_id_of(trial))
        return stale

    def get_heartbeat_interval(self) -> int:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return None  # fail_stale_trials below does the retrying


CONNECT_TIMEOUT_S = 10  # a database that does not answer within this is reported, not waited for


def open_storage(url: str | None, folder: Path, heartbeat_interval: int, grace_period: int) -> BaseStorage:
    """The storage for ``url`` (``None``: the journal file in ``folder``), with heartbeats on.

    Raises:
        StorageUnavailable: the database cannot be reached or opened (one line, URL masked).
    """
    register_url(url)
    if url is None or url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")) if url else folder / JOURNAL
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return HeartbeatJournalStorage(path, heartbeat_interval, grace_period)
        except OSError as e:
            raise StorageUnavailable(f"cannot open the Optuna journal {path}: {e.strerror or e}") from None
    engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}} if url.startswith("postgres") else {}
    try:
        return RDBStorage(
            database_url(url), engine_kwargs=engine, heartbeat_interval=heartbeat_interval, grace_period=grace_period
        )
    except ModuleNotFoundError as e:
        raise StorageUnavailable(
            f"the database driver for {mask_secrets(url)} is not installed ({e}); for "
            "PostgreSQL: pip install 'lightning-attn[postgres]'"
        ) from None
    except Exception as e:  # SQLAlchemy and its drivers raise many kinds: the message is what matters
        raise StorageUnavailable(f"cannot reach the Optuna storage {mask_secrets(url)}: {gist(e)}") from None


class StorageUnavailable(ConnectionError):
    """The Optuna storage cannot be reached or opened; the message is one line, secrets masked."""


def describe(url: str | None, folder: Path) -> str:
    """The storage URL for people and logs (password masked)."""
    return mask_secrets(url) if url else f"journal:{folder / JOURNAL}"


@contextmanager
def sweep_lock(storage: BaseStorage, folder: Path, name: str) -> Iterator[None]:
    """Serialise "is there budget left? then ask" (and a launch's setting up of the studies) between every
    worker of the sweep ``name``, so a study never runs more than its ``n_trials``.

    Where the studies live in PostgreSQL this is a PostgreSQL advisory lock, so it is exact across hosts;
    the server drops it if the holder's connection dies, so a killed worker cannot leave it taken.
    With a journal file it is a file lock beside the journal, so hosts that share the journal on a file
    system (a job array's tasks, each with its own sweep folder) share the lock too; with SQLite, a file
    lock in the sweep folder.
    """
    engine = _postgres_engine(storage)
    if engine is None:
        path = folder / "budget.lock"
        if isinstance(storage, HeartbeatJournalStorage):
            path = storage.path.with_name(f"{storage.path.name}.budget.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    from sqlalchemy import text

    key = int.from_bytes(hashlib.sha256(f"lightning-attn sweep {name}".encode()).digest()[:8], "big", signed=True)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


def _postgres_engine(storage: BaseStorage):
    """The SQLAlchemy engine behind ``storage`` when it is PostgreSQL (Optuna may wrap it in a cache)."""
    for candidate in storage_layers(storage):
        if isinstance(candidate, RDBStorage) and candidate.engine.dialect.name == "postgresql":
            return candidate.engine
    return None


def fail_stale_trials(
    study: optuna.Study, max_retries: int, on_failed: Callable[[FrozenTrial], None] | None = None
) -> list[int]:
    """Fail the RUNNING trials whose worker stopped sending heartbeats, and enqueue a retry of each.

    The failed trial keeps its reason (user attribute ``failure_reason``) and is marked ``stale``, so
    it does not count against the budget; its retry does. A trial already retried ``max_retries`` times
    is not retried again: it stays FAILED for good (not stale, so it uses its budget) and its reason
    says so — a configuration that kills its worker every time must not come back on every launch.
    Returns the failed trial numbers.
    """
    storage = storage_of(study)
    if not has_heartbeats(storage):
        return []
    failed = []
    for trial_id in stale_trial_ids(study):
        reason = f"worker stopped sending heartbeats for more than {_grace(storage)} s (killed or lost)"
        trial = record_worker_death(study, trial_id, reason, max_retries)
        if trial is not None:
            failed.append(trial.number)
            if on_failed is not None:
                on_failed(trial)
    return failed


def record_worker_death(study: optuna.Study, trial_id: int, reason: str, max_retries: int) -> FrozenTrial | None:
    """Fail a trial whose worker died, with ``reason``; retry it unless it was retried ``max_retries`` times
    already (then it is FAILED for good and uses its budget). None when another worker got there first."""
    storage = storage_of(study)
    retries = retries_before(study, storage.get_trial(trial_id))
    final = retries >= max_retries
    if final:
        reason += f"; not retried: already retried {retries} time(s) (max_retries={max_retries})"
    try:
        storage.set_trial_user_attr(trial_id, FAILURE_REASON, reason)
        storage.set_trial_user_attr(trial_id, STALE, not final)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    trial = storage.get_trial(trial_id)
    if not final:
        study.enqueue_trial(trial.params, user_attrs=retry_attrs(trial), skip_if_exists=False)
    return trial


def retries_before(study: optuna.Study, trial: FrozenTrial) -> int:
    """How many times the configuration ``trial`` runs was already retried: the length of its
    ``retry_of`` chain (0 for a first attempt)."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    count, current = 0, trial
    while (previous := current.user_attrs.get(RETRY_OF)) is not None and previous in by_number:
        count, current = count + 1, by_number[previous]
    return count


#: user attributes a retry keeps from the trial it repeats (a seed run must be retried with its own seed)
INHERITED = ("seed", "best_of")


def retry_attrs(trial: FrozenTrial | optuna.Trial) -> dict:
    """The user attributes of a retry of ``trial``: what it inherits, and which trial it repeats."""
    return {k: trial.user_attrs[k] for k in INHERITED if k in trial.user_attrs} | {RETRY_OF: trial.number}


def _grace(storage: BaseStorage) -> int | str:
    """The storage's grace period: ours keeps it as an attribute; an RDB storage may come wrapped in a cache."""
    for candidate in storage_layers(storage):
        value = getattr(candidate, "grace_period", None)
        if value:
            return int(value)
    return "the grace period"
