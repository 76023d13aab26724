"""Every private name of Optuna (and of Lightning's MLflow logger) that lightning-attn uses, and nothing else:
the one place to change when a release moves one. Other modules call these wrappers, never the private
names; ``tests/test_private_apis.py`` checks each still exists with the shape used here and, when one does
not, fails naming the installed version and what changed.

Why each is needed (no public API does it):

* Optuna's heartbeat machinery, ``optuna.storages._heartbeat``: Optuna's journal storage has no heartbeats,
  so :class:`~lightning_attn.sweep.storage.HeartbeatJournalStorage` implements ``BaseHeartbeat`` (:class:`Heartbeat`
  below, whose abstract ``_get_stale_trial_ids`` it implements under a public name); a sweep worker beats with
  Optuna's own heartbeat thread (:func:`heartbeat_thread`).
* ``BaseHeartbeat._get_stale_trial_ids``: which RUNNING trials stopped beating (:func:`stale_trial_ids`).
  Optuna's public ``optuna.storages.fail_stale_trials`` fails them too, but cannot retry them with the
  sweep's budget and ``max_retries`` rules.
* ``Study._storage``, ``Study._study_id``, ``Trial._trial_id`` / ``FrozenTrial._trial_id``: the storage calls
  take ids, and neither a study nor a trial gives them publicly.
* ``optuna.storages._CachedStorage._backend``: Optuna wraps an ``RDBStorage`` in this cache; the sweep's
  PostgreSQL advisory lock needs the SQLAlchemy engine of the storage behind it (:func:`storage_layers`).
* Lightning's ``MLFlowLogger._initialized``: whether the logger already created (or reopened) its MLflow run;
  asking ``logger.experiment`` would create one (:func:`mlflow_run_started`).

optuna-dashboard is used through its public ``run_server`` only, and MLflow through public names only.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import optuna
from optuna.storages import BaseStorage, _CachedStorage
from optuna.storages._heartbeat import BaseHeartbeat, BaseHeartbeatThread, get_heartbeat_thread

if TYPE_CHECKING:
    from lightning.pytorch.loggers import MLFlowLogger

__all__ = [
    "Heartbeat",
    "has_heartbeats",
    "heartbeat_thread",
    "mlflow_run_started",
    "stale_trial_ids",
    "storage_layers",
    "storage_of",
    "trial_id_of",
]


class Heartbeat(BaseHeartbeat):
    """Optuna's heartbeat interface for a storage (``record_heartbeat``, ``get_heartbeat_interval``,
    ``get_heartbeat_stale_trial_callback``), with the private abstract method under a public name: a subclass
    implements :meth:`stale_trial_ids`."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    @abc.abstractmethod
    def stale_trial_ids(self, study_id: int) -> list[int]:
        """The ids of the study's RUNNING trials whose last heartbeat is older than the grace period."""


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes (for an RDB URL, Optuna's cache around the ``RDBStorage``)."""
    return study._storage


def trial_id_of(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of ``trial`` (not its number: ids are unique across a storage's studies)."""
    return trial._trial_id


def has_heartbeats(storage: BaseStorage) -> bool:
    """Whether ``storage`` records heartbeats (an RDB storage only when opened with ``heartbeat_interval``)."""
    return isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """The ids of ``study``'s RUNNING trials whose worker stopped sending heartbeats; ``[]`` when its storage
    keeps no heartbeats."""
    storage = study._storage
    if not has_heartbeats(storage):
        return []
    return storage._get_stale_trial_ids(study._study_id)


def heartbeat_thread(study: optuna.Study, trial: optuna.Trial) -> BaseHeartbeatThread:
    """Optuna's thread that records ``trial``'s heartbeat every interval (``start()``, then ``join()``); a thread
    that does nothing when the storage keeps no heartbeats."""
    return get_heartbeat_thread(trial._trial_id, study._storage)


def storage_layers(storage: BaseStorage) -> tuple[BaseStorage, ...]:
    """``storage`` and, when it is Optuna's cache around an ``RDBStorage``, the storage behind it."""
    if isinstance(storage, _CachedStorage):
        return storage, storage._backend
    return (storage,)


def mlflow_run_started(logger: MLFlowLogger) -> bool:
    """Whether Lightning's MLflow logger has created (or reopened) its run: ``logger.experiment`` would start
    one, so a failure before it must not touch it."""
    return logger._initialized
