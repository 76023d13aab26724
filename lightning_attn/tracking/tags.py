"""Every MLflow tag name the toolkit writes or reads, and the one way a failure reason is written.

Runs, sweeps and reports meet only through these names, so they live here and nowhere else.
"""

from __future__ import annotations

from .secrets import mask_secrets

# ─── every run ─────────────────────────────────────────────────────────────────────────────────
TASK = "task"
MECHANISM = "mechanism"  # the compared mechanism's label (a sweep may name a variant of an attention choice)
ATTENTION = "attention"  # the conf/attention/ choice the run trained
SEED = "seed"
DATA = "data"
VERSION = "lightning_attn.version"
PARENT = "mlflow.parentRunId"  # MLflow's own: nests a run under another
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"  # MLflow's own: a run's (or an experiment's) description, Markdown
SOURCE_NAME = "mlflow.source.name"  # MLflow's own: the command that made the run (the runs table's Source column)
SOURCE_TYPE = "mlflow.source.type"  # MLflow's own: LOCAL
GIT_COMMIT = "mlflow.source.git.commit"  # MLflow's own: the commit of the working folder's git repository
DATA_CONTEXT = "mlflow.data.context"  # MLflow's own, on a dataset input: train | validation | test
FAILURE_REASON = "failure_reason"  # why a run (or a trial) failed or was stopped
PRUNED = "pruned"  # why a sweep trial was pruned
STOP_REASON = "stop_reason"  # how training ended: converged (plateau) or stopped while still improving
BEST_CHECKPOINT = "best_checkpoint"
RESUMED = "resumed"  # each time train --resume continued the run: from which checkpoint, with which changes
HEADLINE_METRIC = "metric.headline"  # the test metric a report ranks the run by (its task's)
VALIDATION_METRIC = "metric.validation"  # the validation metric of its learning curve and early stopping
ITEM_STATISTICS = "metric.item_statistics"  # how the headline metric splits into per-item statistics (the report)
LOOKS = "seeds.looks"  # a comparison run until decided: its looks, first:most seed runs a side (the report)
EQUIVALENCE_MARGIN = "metric.equivalence_margin"  # a headline difference smaller than this is none (its task's)
BLEU_SIGNATURE = "metric.bleu_signature"  # sacreBLEU's signature of the BLEU the run reports (translation)
EXPERIMENT = "experiment"  # the conf/experiment/ preset the run started from, if any
DDP_BACKEND = "ddp.backend"  # the process group's backend of a multi-device run: gloo, or cpu:gloo,cuda:nccl
VOCABULARIES = "vocabularies"  # the artifact folder holding the run's vocabularies (evaluate reads them)

# ─── experiments ───────────────────────────────────────────────────────────────────────────────
#: MLflow 3's experiment kind (an experiment tag): what the experiment holds, and so which view it opens on
EXPERIMENT_KIND = "mlflow.experimentKind"
KIND_TRAINING = "custom_model_development"  # training runs (MLflow's "Machine learning"), not GenAI traces

# ─── evaluations of a trained run (lightning-attn evaluate) ────────────────────────────────────
ROLE_EVALUATION = "evaluation"
EVALUATED_SPLIT = "evaluate.split"  # the split name, or "source -> reference" file names
#: what the trained mechanism is, asked of the mechanism itself (see ``Attention.traits``): ``attention.<trait>``
TRAIT_PREFIX = "attention."

# ─── parent runs: a multi-seed run, a sweep study ──────────────────────────────────────────────
ROLE = "lightning_attn.role"  # seeds (a parent of seed runs) | study | evaluation | report | speed_pass
ROLE_SEEDS, ROLE_STUDY = "seeds", "study"
ROLE_REPORT = "report"  # a run holding a trade-off report of its experiment (HTML, Markdown, JSON artifacts)
ROLE_SPEED_PASS = "speed_pass"  # a run holding a side-by-side speed pass over the experiment's mechanisms
SPEED_PASS_FILE = "speed_pass.json"  # its artifact: every figure, ratio and setting of the pass
SPEED_PASS_FORMAT = 1  # of that file: a report reads the passes of the format it knows
SPEED_PASS_KINDS = ("greedy", "beam", "train")  # the kinds of work a pass times, in the order it shows them

# ─── sweeps ────────────────────────────────────────────────────────────────────────────────────
SWEEP = "sweep"
STUDY = "optuna.study"
TRIAL = "optuna.trial"
TRIAL_STATE = "optuna.state"
RETRY_OF = "optuna.retry_of"
DEVICE = "device"
WORKER = "worker"
BEST_TRIAL = "best.trial"
BEST_PARAMS = "best.params"
BEST_RUN = "best.run_id"
PARETO_TRIALS = "pareto.trials"
SEEDS_PARAMS = "seeds.params"

#: the longest failure reason kept (MLflow tags hold 8000 characters; Optuna attributes any JSON)
REASON_LIMIT = 2000


def failure_reason(error: BaseException | str) -> str:
    """An exception (or a sentence) as a failure reason: ``Type: message``, secrets masked, cut to a safe length."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return mask_secrets(text)[:REASON_LIMIT]


def trait_tags(traits: dict[str, bool]) -> dict[str, str]:
    """``{"control": True}`` -> ``{"attention.control": "true"}``: what a report may ask of a run's mechanism."""
    return {f"{TRAIT_PREFIX}{name}": str(bool(value)).lower() for name, value in traits.items()}


def has_trait(tags: dict[str, str], name: str) -> bool:
    return tags.get(f"{TRAIT_PREFIX}{name}") == "true"
