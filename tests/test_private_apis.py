"""The private names of Optuna and Lightning's MLflow logger that lightning_attn.private_apis wraps still exist and
behave as it assumes; when one does not, the test fails naming the installed version and what changed. And no
other module uses a private name of those libraries directly."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

import lightning_attn

PACKAGE = Path(lightning_attn.__file__).parent
WRAPPER = PACKAGE / "private_apis.py"
LIBRARIES = ("optuna", "optuna_integration", "optuna_dashboard", "mlflow", "lightning")
#: the private attributes private_apis reads; reading them anywhere else is what this file forbids
ATTRIBUTES = {"_storage", "_study_id", "_trial_id", "_backend", "_initialized", "_get_stale_trial_ids"}


@contextmanager
def relied_on(distribution: str, what: str) -> Iterator[None]:
    """Turn any failure inside into one message: the library's installed version and what changed."""
    try:
        yield
    except Exception as e:  # ImportError, AttributeError, TypeError, an assertion: all mean "it changed"
        pytest.fail(
            f"{distribution} {version(distribution)}: {what} is not what lightning_attn/private_apis.py relies on "
            f"({type(e).__name__}: {e}); update private_apis.py (and this test) for this release",
            pytrace=False,
        )


def private_apis():
    with relied_on("optuna", "a private module or name that private_apis.py imports"):
        return importlib.import_module("lightning_attn.private_apis")


def test_optuna_heartbeat_classes_have_the_shape_used():
    with relied_on("optuna", "optuna.storages._heartbeat"):
        heartbeat = importlib.import_module("optuna.storages._heartbeat")
        abstract = set(heartbeat.BaseHeartbeat.__abstractmethods__)
        expected = {
            "record_heartbeat",
            "_get_stale_trial_ids",
            "get_heartbeat_interval",
            "get_heartbeat_stale_trial_callback",
        }
        assert abstract == expected, f"BaseHeartbeat's abstract methods are now {sorted(abstract)}"
        stale = inspect.signature(heartbeat.BaseHeartbeat._get_stale_trial_ids)
        assert list(stale.parameters) == ["self", "study_id"], f"_get_stale_trial_ids{stale}"
        thread = inspect.signature(heartbeat.get_heartbeat_thread)
        assert list(thread.parameters) == ["trial_id", "storage"], f"get_heartbeat_thread{thread}"
        assert issubclass(heartbeat.HeartbeatThread, heartbeat.BaseHeartbeatThread)
    with relied_on("optuna", "optuna.storages._CachedStorage"):
        from optuna.storages import _CachedStorage

        assert issubclass(_CachedStorage, heartbeat.BaseHeartbeat)


def test_the_journal_storage_beats_with_optunas_thread_and_finds_its_stale_trials(tmp_path):
    apis = private_apis()
    from lightning_attn.sweep.storage import HEARTBEAT_ATTR, HeartbeatJournalStorage

    with relied_on("optuna", "BaseHeartbeat (an abstract method private_apis.Heartbeat does not provide)"):
        assert not HeartbeatJournalStorage.__abstractmethods__, sorted(HeartbeatJournalStorage.__abstractmethods__)
    storage = HeartbeatJournalStorage(tmp_path / "optuna.journal", heartbeat_interval=60, grace_period=0)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    with relied_on("optuna", "Study._storage, Study._study_id or Trial._trial_id"):
        assert apis.storage_of(study) is storage
        assert study._study_id == storage.get_study_id_from_name("s")
        trial_id = apis.trial_id_of(trial)
        assert isinstance(trial_id, int) and storage.get_trial(trial_id).number == trial.number
        frozen = study.get_trials(deepcopy=False)[0]
        assert apis.trial_id_of(frozen) == trial_id
    with relied_on("optuna", "get_heartbeat_thread(trial_id, storage) (start, join)"):
        thread = apis.heartbeat_thread(study, trial)
        assert type(thread).__name__ == "HeartbeatThread", f"a {type(thread).__name__} for a heartbeat storage"
        thread.start()
        thread.join()
        assert HEARTBEAT_ATTR in storage.get_trial(trial_id).system_attrs  # the thread beat through our storage
    with relied_on("optuna", "BaseHeartbeat._get_stale_trial_ids(study_id)"):
        assert apis.has_heartbeats(storage)
        assert apis.stale_trial_ids(study) == [trial_id]  # grace period 0: stale at once


@pytest.mark.filterwarnings("ignore:Argument ``heartbeat_interval`` is an experimental")
def test_an_rdb_storage_comes_wrapped_in_optunas_cache_with_its_backend_behind(tmp_path):
    apis = private_apis()
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=60, grace_period=120)
    study = optuna.create_study(study_name="s", storage=rdb)
    study.ask()
    with relied_on("optuna", "_CachedStorage._backend (the RDBStorage behind Optuna's cache)"):
        layers = apis.storage_layers(apis.storage_of(study))
        assert layers[-1] is rdb, f"the storage's layers are {[type(s).__name__ for s in layers]}"
    with relied_on("optuna", "_CachedStorage._get_stale_trial_ids(study_id)"):
        assert apis.has_heartbeats(apis.storage_of(study))
        assert apis.stale_trial_ids(study) == []  # a trial that never beat is not stale


def test_lightning_mlflow_logger_says_whether_its_run_started(tmp_path, monkeypatch):
    apis = private_apis()
    from lightning.pytorch.loggers import MLFlowLogger

    class Client:  # an MLflow store only answers where the run is: what the logger does is under test
        def __init__(self, *args, **kwargs):
            pass

        def get_run(self, run_id: str) -> SimpleNamespace:
            return SimpleNamespace(info=SimpleNamespace(experiment_id="1", run_id=run_id))

    monkeypatch.setattr("mlflow.tracking.MlflowClient", Client)
    with relied_on("lightning", "MLFlowLogger._initialized (False until .experiment opens the run)"):
        logger = MLFlowLogger(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", run_id="r1")
        assert apis.mlflow_run_started(logger) is False
        assert logger.experiment is not None  # reopens the run, as train --resume does
        assert apis.mlflow_run_started(logger) is True


def test_the_failure_message_names_the_version_and_what_changed():
    with pytest.raises(pytest.fail.Exception) as failed, relied_on("optuna", "Study._storage"):
        raise AttributeError("'Study' object has no attribute '_storage'")
    message = str(failed.value)
    assert message.startswith(f"optuna {optuna.__version__}: Study._storage is not what")
    assert "AttributeError: 'Study' object has no attribute '_storage'" in message


def private_uses(path: Path) -> list[str]:
    """Where ``path`` imports a private module or name of the wrapped libraries, or reads one of ``ATTRIBUTES``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules, names = [node.module], [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [a.name for a in node.names], []
        elif isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{path.name}:{node.lineno} reads .{node.attr}")
            continue
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and name.value in ATTRIBUTES:
                found.append(f"{path.name}:{node.lineno} {node.func.id}(…, {name.value!r})")
            continue
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] in LIBRARIES and (
                any(p.startswith("_") for p in parts) or any(n.startswith("_") for n in names)
            ):
                found.append(f"{path.name}:{node.lineno} imports from {module}: {', '.join(names) or module}")
    return found


def test_only_private_apis_touches_those_libraries_private_names():
    assert private_uses(WRAPPER), "the scan finds nothing even in private_apis.py: it is broken"
    offences = [use for path in sorted(PACKAGE.rglob("*.py")) if path != WRAPPER for use in private_uses(path)]
    assert not offences, "use lightning_attn.private_apis instead:\n" + "\n".join(offences)
