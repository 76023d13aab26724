"""Read what a comparison needs back from MLflow (and, for importances, from the Optuna studies).

Every finished run with the task's test metric is a *result*: a sweep trial, a seed run (a child of
a seeds parent, from ``train seeds=[…]`` or a sweep's ``seeds``), or a single ``train`` run. Parent
runs are bookkeeping and are read only to tell seed runs apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# a report downloads a few small artifacts per run: no progress bar for each
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

#: per task: the accuracy metric a report ranks by (test) and its learning curve (validation)
HEADLINE = {"translation": ("test/bleu", "val/bleu"), "captioning": ("test/bleu4", "val/bleu4")}


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

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get(HEADLINE.get(self.task, ("",))[0])


@dataclass
class Collected:
    runs: list[RunRecord] = field(default_factory=list)
    storages: dict[str, str] = field(default_factory=dict)  # study name -> storage URL (from its parent run)
    experiments: list[str] = field(default_factory=list)


def collect(tracking_uri: str, experiments: list[str] | None, studies: list[str] | None) -> Collected:
    """All runs of the named experiments (default: every experiment), optionally only those of the named studies."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    if experiments:
        found = []
        for name in experiments:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                known = ", ".join(e.name for e in client.search_experiments())
                raise LookupError(f"no MLflow experiment {name!r} in {tracking_uri}; experiments: {known or 'none'}")
            found.append(exp)
    else:
        found = [e for e in client.search_experiments() if e.name != "Default"]
    out = Collected(experiments=[e.name for e in found])
    runs = []
    for exp in found:
        runs += [(exp.name, r) for r in client.search_runs([exp.experiment_id], max_results=50000)]
    seed_parents = {r.info.run_id for _, r in runs if _role(r) == "seeds"}
    for exp_name, r in runs:
        tags = r.data.tags
        if _role(r) in ("study", "seeds"):
            if "storage" in r.data.params and "optuna.study" in tags:
                out.storages[tags["optuna.study"]] = r.data.params["storage"]
            continue
        study = tags.get("optuna.study")
        if studies and (study is None or study.removesuffix("-seeds") not in studies and study not in studies):
            continue
        kind = (
            "seed" if tags.get("mlflow.parentRunId") in seed_parents else ("trial" if "optuna.trial" in tags else "run")
        )
        out.runs.append(
            RunRecord(
                r.info.run_id, r.info.run_name or r.info.run_id, exp_name, _task(r), _mechanism(r), r.info.status,
                kind, dict(r.data.metrics),
                dict(r.data.params), dict(tags), study, tags.get("optuna.state"),
            )
        )  # fmt: skip
    return out


def _task(run: Any) -> str:
    return run.data.tags.get("task") or run.data.params.get("task.name", "?")


def _mechanism(run: Any) -> str:
    """A sweep's mechanism label (it may name a variant of an attention choice), else the attention choice."""
    tags, params = run.data.tags, run.data.params
    return tags.get("mechanism") or tags.get("attention") or params.get("attention.mechanism", "?")


def _role(run: Any) -> str | None:
    return run.data.tags.get("sweep.role") or run.data.tags.get("lightning_attn.role")


def metric_history(tracking_uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    return [(m.step, m.value) for m in MlflowClient(tracking_uri).get_metric_history(run_id, key)]


def read_artifact(tracking_uri: str, run_id: str, path: str, dst: Path) -> Path | None:
    """Download one artifact of a run (``None`` if the run has none at that path)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return Path(MlflowClient(tracking_uri).download_artifacts(run_id, path, str(dst)))
    except (MlflowException, OSError):
        return None


def attention_pictures(tracking_uri: str, run_id: str, dst: Path, n: int = 2) -> list[Path]:
    """The last epoch's attention pictures of a run (captioning logs them), at most ``n``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    epochs = sorted(a.path for a in client.list_artifacts(run_id, "attention") if a.is_dir)
    if not epochs:
        return []
    files = sorted(a.path for a in client.list_artifacts(run_id, epochs[-1]) if a.path.endswith(".png"))[:n]
    return [p for f in files if (p := read_artifact(tracking_uri, run_id, f, dst)) is not None]
