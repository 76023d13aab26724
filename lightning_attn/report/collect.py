"""Everything a report reads: runs from one or several MLflow stores, their artifacts and metric histories,
and hyperparameter importances from the Optuna studies. The rest of the report only computes (:mod:`.aggregate`
onwards) and writes (:mod:`.render`).

Every finished run with its task's headline test metric is a *result*: a sweep trial, a seed run (a
child of a seeds parent, from ``train seeds=[…]`` or a sweep's ``seeds``), or a single ``train`` run.
Parent runs are bookkeeping and are read only to tell seed runs apart. A run names its own headline
and validation metrics (tags ``metric.headline``, ``metric.validation``), so the report needs to know
nothing about tasks.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tracking import mask_secrets
from ..tracking import tags as T

# a report downloads a few small artifacts per run: no progress bar for each
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

PREDICTIONS = ("predictions/test.hyp.txt", "predictions/test.ref.txt")
#: Optuna's importance evaluator, pinned: Optuna 5 changed its default (fANOVA -> PED-ANOVA), and a
#: report must say which one it used and give the same answer twice
IMPORTANCE_EVALUATOR = "fANOVA (optuna.importance.FanovaImportanceEvaluator, seed 0)"
IMPORTANCE_MIN_TRIALS = 4  # importances from a handful of trials are noise (Optuna warns as much)


@dataclass
class RunRecord:
    run_id: str
    name: str
    experiment: str
    task: str
    mechanism: str
    status: str
    kind: str  # trial | seed | run
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    study: str | None = None
    optuna_state: str | None = None  # COMPLETE | PRUNED | FAIL for sweep trials
    wall_s: float | None = None  # from start to end, as MLflow recorded them
    store: str = ""  # the tracking URI it was read from (a report may read several)

    @property
    def headline(self) -> str | None:
        return self.tags.get(T.HEADLINE_METRIC)

    @property
    def validation_metric(self) -> str | None:
        return self.tags.get(T.VALIDATION_METRIC)

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get(self.headline) if self.headline else None

    @property
    def converged(self) -> bool | None:
        """``None``: the run recorded no outcome (it predates the record, or failed before the end)."""
        value = self.metrics.get("run/converged")
        return None if value is None else value >= 0.5

    def trait(self, name: str) -> bool:
        return T.has_trait(self.tags, name)


@dataclass
class Collected:
    runs: list[RunRecord] = field(default_factory=list)
    storages: dict[str, str] = field(default_factory=dict)  # study name -> storage URL (from its parent run)
    experiments: list[str] = field(default_factory=list)
    stores: list[str] = field(default_factory=list)  # the tracking URIs read
    #: store -> experiment name -> id, for logging the report back (see :func:`lightning_attn.report.build_report`)
    experiment_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    #: task -> its latest speed pass (``speed_pass.json`` of a ``speed_pass`` run: lightning-attn benchmark runs)
    speed_passes: dict[str, dict] = field(default_factory=dict)
    passes: list[tuple[int, str, str, str]] = field(default_factory=list)  # (start, store, run id, task) found


def collect(tracking_uris: str | list[str], experiments: list[str] | None, studies: list[str] | None) -> Collected:
    """All runs of the named experiments (default: every experiment) of every store, optionally only those of
    the named studies. A run found in two stores (a copied database) counts once.

    Raises:
        LookupError: an experiment named that no store has (one line).
    """
    uris = [tracking_uris] if isinstance(tracking_uris, str) else list(dict.fromkeys(tracking_uris))
    out = Collected(stores=uris)
    seen: set[str] = set()
    for uri in uris:
        for record in _collect_store(uri, experiments, studies, out, missing_ok=len(uris) > 1):
            if record.run_id not in seen:
                seen.add(record.run_id)
                out.runs.append(record)
    _read_speed_passes(out)
    if experiments:
        lacking = [e for e in experiments if e not in out.experiments]
        if lacking:
            where = ", ".join(mask_secrets(u) for u in uris)
            raise LookupError(f"no MLflow experiment {lacking[0]!r} in {where}")
    return out


def _collect_store(
    tracking_uri: str, experiments: list[str] | None, studies: list[str] | None, out: Collected, missing_ok: bool
) -> list[RunRecord]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    if experiments:
        found = []
        for name in experiments:
            exp = client.get_experiment_by_name(name)
            if exp is None and not missing_ok:
                known = ", ".join(e.name for e in client.search_experiments())
                where = mask_secrets(tracking_uri)
                raise LookupError(f"no MLflow experiment {name!r} in {where}; experiments: {known or 'none'}")
            if exp is not None:
                found.append(exp)
    else:
        found = [e for e in client.search_experiments() if e.name != "Default"]
    out.experiments += [e.name for e in found if e.name not in out.experiments]
    out.experiment_ids[tracking_uri] = {e.name: e.experiment_id for e in found}
    records: list[RunRecord] = []
    runs = []
    for exp in found:
        runs += [(exp.name, r) for r in client.search_runs([exp.experiment_id], max_results=50000)]
    seed_parents = {r.info.run_id for _, r in runs if r.data.tags.get(T.ROLE) == T.ROLE_SEEDS}
    for exp_name, r in runs:
        tags = r.data.tags
        if tags.get(T.ROLE) in (T.ROLE_STUDY, T.ROLE_SEEDS):
            if "storage" in r.data.params and T.STUDY in tags:
                out.storages[tags[T.STUDY]] = r.data.params["storage"]
            continue
        if tags.get(T.ROLE) == T.ROLE_SPEED_PASS and r.info.status == "FINISHED":
            out.passes.append((r.info.start_time or 0, tracking_uri, r.info.run_id, tags.get(T.TASK, "?")))
        if tags.get(T.ROLE) in (T.ROLE_EVALUATION, T.ROLE_REPORT, T.ROLE_SPEED_PASS):  # made from the runs, later
            continue
        study = tags.get(T.STUDY)
        if studies and (study is None or study.removesuffix("-seeds") not in studies and study not in studies):
            continue
        kind = "seed" if tags.get(T.PARENT) in seed_parents else ("trial" if T.TRIAL in tags else "run")
        info = r.info
        wall = (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None
        records.append(
            RunRecord(
                info.run_id,
                info.run_name or info.run_id,
                exp_name,
                _task(r),
                _mechanism(r),
                info.status,
                kind,
                dict(r.data.metrics),
                dict(r.data.params),
                dict(tags),
                study,
                tags.get(T.TRIAL_STATE),
                wall,
                tracking_uri,
            )
        )
    return records


def _read_speed_passes(out: Collected) -> None:
    """Each task's latest speed pass among the runs found, into ``out.speed_passes``."""
    with tempfile.TemporaryDirectory() as tmp:
        for _, store, run_id, task in sorted(out.passes, reverse=True):
            if task in out.speed_passes:
                continue
            path = read_artifact(store, run_id, T.SPEED_PASS_FILE, Path(tmp) / run_id)
            data = json.loads(path.read_text(encoding="utf-8")) if path is not None else {}
            if data.get("format") == T.SPEED_PASS_FORMAT:  # another version's pass is not read as this one's
                out.speed_passes[task] = data | {"run_id": run_id}


def _task(run: Any) -> str:
    return run.data.tags.get(T.TASK) or run.data.params.get("task.name", "?")


def _mechanism(run: Any) -> str:
    """A sweep's mechanism label (it may name a variant of an attention choice), else the attention choice."""
    tags, params = run.data.tags, run.data.params
    return tags.get(T.MECHANISM) or tags.get(T.ATTENTION) or params.get("attention.mechanism", "?")


def metric_histories(runs: list[RunRecord], key: str) -> dict[str, list[tuple[int, float]]]:
    """``{run id: [(step, value), …]}`` of one metric, in step order, each read from its run's store."""
    from mlflow import MlflowClient

    return {
        r.run_id: sorted((m.step, m.value) for m in MlflowClient(r.store).get_metric_history(r.run_id, key))
        for r in runs
    }


def read_artifact(tracking_uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """Download one artifact of a run (``None`` if the run has none at that path)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return Path(MlflowClient(tracking_uri).download_artifacts(run_id, path, str(dst)))
    except (MlflowException, OSError):
        return None


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def predictions(runs: list[RunRecord]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """``{run id: (hypotheses, references per sentence)}`` of the runs that logged their test predictions."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in {r.run_id: r for r in runs}.values():
            hyp, ref = (read_artifact(run.store, run.run_id, p, Path(tmp) / run.run_id) for p in PREDICTIONS)
            if hyp and ref:
                out[run.run_id] = (_lines(hyp), [line.split("\t") for line in _lines(ref)])
    return out


def attention_pictures(run: RunRecord, dst: Path, n: int = 2) -> list[Path]:
    """The last epoch's attention pictures of a run, at most ``n``."""
    from mlflow import MlflowClient

    client = MlflowClient(run.store)
    epochs = sorted(a.path for a in client.list_artifacts(run.run_id, "attention") if a.is_dir)
    if not epochs:
        return []
    files = sorted(a.path for a in client.list_artifacts(run.run_id, epochs[-1]) if a.path.endswith(".png"))[:n]
    return [p for f in files if (p := read_artifact(run.store, run.run_id, f, dst)) is not None]


def importances(collected: Collected) -> dict[str, dict[str, float]]:
    """``{study name: {parameter: importance}}`` for every search study the report can open that has at
    least :data:`IMPORTANCE_MIN_TRIALS` completed trials, by the pinned :data:`IMPORTANCE_EVALUATOR`."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    out: dict[str, dict[str, float]] = {}
    studies = sorted({r.study for r in collected.runs if r.kind == "trial" and r.study})
    for study_name in studies:
        url = collected.storages.get(study_name, "")
        try:
            if url.startswith("journal:") and Path(url.removeprefix("journal:")).is_file():
                storage: Any = JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
            elif url and "***" not in url:  # a masked password cannot be used to connect
                storage = url
            else:
                continue
            study = optuna.load_study(study_name=study_name, storage=storage)
            complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if len(complete) < IMPORTANCE_MIN_TRIALS:
                continue
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            values = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError, KeyError):  # too few trials, or one value per parameter
            continue
        if values:
            out[study_name] = dict(values)
    return out


def log_report(collected: Collected, files: dict[str, Path]) -> None:
    """Log a report's files as artifacts of one ``report`` run in every experiment it covers (in its store),
    so the MLflow UI links the runs to what was concluded from them. A later report reads past these runs."""
    from mlflow import MlflowClient

    covered = {(r.store, r.experiment) for r in collected.runs}
    for store, experiment in sorted(covered):
        client = MlflowClient(store)
        experiment_id = collected.experiment_ids[store][experiment]
        run = client.create_run(experiment_id, run_name="report", tags={T.ROLE: T.ROLE_REPORT})
        for path in files.values():
            client.log_artifact(run.info.run_id, str(path), "report")
        client.set_terminated(run.info.run_id, "FINISHED")
