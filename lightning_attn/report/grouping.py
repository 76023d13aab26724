"""Which runs are seeds of one configuration: pooled when their configs match, never when they differ.

A report compares configurations, not run kinds. Runs of one task and mechanism pool as seed runs when
their configs are equal once the seed and the settings that do not change what is trained are left out
(where a run logs, how it is watched: :data:`NOT_CONFIG`) — whether they came from separate
``train seed=N`` runs, a sweep's seed runs, a ``compare`` or several stores. Runs of one mechanism whose
configs differ in anything else are compared as **variants**, each its own row named by the keys that
tell them apart, and the report says so. A search's trials are tuning, not seeds: they are never pooled
(a mechanism with nothing but trials is compared by its best run alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import wording
from .collect import RunRecord

#: run params that say where and how a run was logged or watched, not what was trained
NOT_CONFIG = frozenset(
    {
        "seed",
        "seeds",
        "threads",
        "output_dir",
        "data.num_workers",
        "trainer.enable_progress_bar",
        "trainer.enable_model_summary",
        "choices.logger",
    }
)
NOT_CONFIG_PREFIXES = ("logger.", "speed.", "task.attention_pictures")


def config_of(run: RunRecord) -> dict[str, str]:
    """The run's config with the seed and the settings in :data:`NOT_CONFIG` left out."""
    return {k: v for k, v in run.params.items() if k not in NOT_CONFIG and not k.startswith(NOT_CONFIG_PREFIXES)}


@dataclass
class Variant:
    """Runs of one configuration: ``label`` is empty when the mechanism has one, else the keys that set it
    apart (``task.lr=0.001``)."""

    label: str
    runs: list[RunRecord]


def variants(runs: list[RunRecord]) -> tuple[list[Variant], list[str]]:
    """Pool ``runs`` (of one task and mechanism, none a search trial) by configuration, one run per seed.

    Returns the variants (one when every config matches) and notes for the report: which keys differ and
    how the runs were grouped, and which seeds ran more than once (the latest run counts)."""
    groups: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(tuple(sorted(config_of(run).items())), []).append(run)
    notes: list[str] = []
    mechanism = f"{runs[0].task} / {runs[0].mechanism}" if runs else ""
    configs = [dict(key) for key in groups]
    differing = sorted({k for c in configs for k in c if len({c.get(k) for c in configs}) > 1})
    if "model.kind" in differing:  # other models (a GRU, a Transformer): their own settings follow from the kind
        differing = ["model.kind", *(k for k in differing if not k.startswith(("model.", "choices.model")))]
    out = []
    for key, members in groups.items():
        config = dict(key)
        label = ", ".join(f"{k}={config.get(k, '(unset)')}" for k in differing)
        by_seed: dict[str, RunRecord] = {}
        for run in members:  # runs come newest first (MLflow's order): the first of a seed is its latest
            by_seed.setdefault(run.params.get("seed", run.run_id), run)
        repeated = sorted(
            {
                s
                for s in (r.params.get("seed", r.run_id) for r in members)
                if sum(r.params.get("seed", r.run_id) == s for r in members) > 1
            }
        )
        if repeated:
            notes.append(wording.seed_repeated(mechanism, label, repeated))
        out.append(Variant(label, list(by_seed.values())))
    if len(out) > 1:
        notes.insert(0, wording.not_pooled(mechanism, differing, [(v.label, len(v.runs)) for v in out]))
    return out, notes
