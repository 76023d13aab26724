"""The speed pass over trained runs: ``lightning-attn benchmark runs`` (an experiment's mechanisms, or named runs).

One process loads one trained checkpoint per mechanism — seeds of a mechanism share its architecture, so the
lowest seed stands for all — and times them side by side (:mod:`.timing`: interleaved, randomised rounds, threads
fixed, warm-up excluded, a GPU synchronised) on the same fixed work (:mod:`.workloads`):

* ``greedy``: milliseconds per token of a greedy decode of one test input, exactly ``steps`` tokens;
* ``beam``: the same with the task's beam (``task.beam_size``), where it is more than 1;
* ``train``: milliseconds per training step (forward and backward of the task's own loss) on the first
  ``batch`` test examples;

and the peak tensor memory of each (:mod:`.memory`). Every mechanism's time is a ratio to the reference's, with an
interval that holds for all the pass's ratios together; a ratio is "faster" or "slower" only where that interval
excludes 1 and it is at least 5 % from 1. The pass is logged to MLflow as a run of the experiment (role
``speed_pass``): a metric per figure and ``speed_pass.json`` with everything.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..tracking import tags as T
from . import timing
from .memory import peak_tensor_mib
from .workloads import decode, training_step

log = logging.getLogger(__name__)

KINDS = ("greedy", "beam", "train")
UNITS = {"greedy": "ms per token, batch 1", "beam": "ms per token, batch 1", "train": "ms per training step"}


@dataclass
class Figures:
    """One mechanism's cost, from one of its runs."""

    mechanism: str
    run_id: str
    ms: dict[str, float]  # kind -> median over rounds (per token, or per training step)
    mib: dict[str, float]  # kind -> peak tensor memory of one call
    spread: dict[str, float]  # kind -> interquartile range / median of the per-round times


@dataclass
class Pass:
    """A speed pass over one task's mechanisms."""

    task: str
    reference: str
    figures: list[Figures]
    ratios: dict[str, list[dict]]  # kind -> each mechanism's time ratio to the reference (see timing.Ratio)
    settings: dict = field(default_factory=dict)

    def ratio(self, kind: str, mechanism: str) -> timing.Ratio | None:
        found = next((r for r in self.ratios.get(kind, []) if r["name"] == mechanism), None)
        return timing.Ratio(**found) if found else None

    def lines(self) -> list[str]:
        """What the pass found, one line per mechanism and kind of work."""
        out = []
        for f in self.figures:
            for kind, ms in f.ms.items():
                said = f"{f.mechanism:<10} {kind:<6} {ms:8.3f} {UNITS[kind]}, {f.mib[kind]:.2f} MiB"
                ratio = self.ratio(kind, f.mechanism)
                if ratio is not None:
                    said += f": {ratio.words()}" + (" (noisy)" if ratio.noisy else "")
                out.append(said)
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Pass:
        data = json.loads(text)
        return cls(figures=[Figures(**f) for f in data.pop("figures")], **data)


def pick_runs(client: Any, experiments: list[str], run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{task: {mechanism: run}}``: the named runs, or each finished training run of the experiments that has a
    checkpoint, one per mechanism (its lowest seed)."""
    runs = [client.get_run(r) for r in run_ids]
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise LookupError(f"no MLflow experiment {name!r}")
        runs += [
            r
            for r in client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=50000)
            if T.ROLE not in r.data.tags and T.BEST_CHECKPOINT in r.data.tags
        ]
    picked: dict[str, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: int(r.data.tags.get(T.SEED, "0") or 0)):
        tags = run.data.tags
        task, mechanism = tags.get(T.TASK, "?"), tags.get(T.MECHANISM) or tags.get(T.ATTENTION, "?")
        picked.setdefault(task, {}).setdefault(mechanism, run)
    if not picked:
        raise LookupError("no finished training run with a checkpoint to time")
    return picked


def measure(
    *,
    tracking_uri: str,
    experiments: Sequence[str] = (),
    run_ids: Sequence[str] = (),
    reference: str | None = None,
    rounds: int = 15,
    threads: int | None = None,
    steps: int = 20,
    batch: int = 32,
    device: str = "cpu",
    seed: int = 0,
    log_to_mlflow: bool = True,
) -> list[Pass]:
    """Time the mechanisms of the experiments' (or the named) runs side by side, one pass per task.

    Args:
        tracking_uri: the MLflow store the runs are in (and the pass is logged to).
        experiments: experiment names: one run per mechanism of each.
        run_ids: runs to time (with or instead of ``experiments``).
        reference: the mechanism the ratios are to (default: ``soft`` if there, else the first by name).
        rounds: interleaved timing rounds.
        threads: torch's intra-op threads while timing (default: as now).
        steps: decoder steps of every decode.
        batch: test examples in the training step's batch (fewer if the split has fewer).
        device: where the models run.
        seed: the order of the rounds.
        log_to_mlflow: log each pass as a run of its mechanisms' experiment.
    """
    import torch
    from mlflow import MlflowClient

    from ..saved_runs import load_trained

    client = MlflowClient(tracking_uri)
    passes = []
    for task, runs in pick_runs(client, list(experiments), list(run_ids)).items():
        ref = reference or ("soft" if "soft" in runs else sorted(runs)[0])
        if ref not in runs:
            raise LookupError(f"the reference {ref!r} has no run here; mechanisms: {', '.join(sorted(runs))}")
        work, memory, kinds = {}, {}, {}
        with tempfile.TemporaryDirectory() as tmp:
            for mechanism, run in runs.items():
                log.info("%s: loading %s (run %s)", task, mechanism, run.info.run_id)
                trained = load_trained(client, run, Path(tmp) / run.info.run_id)
                module, data = trained.module.to(device), trained.data
                test = list(data.splits["test"])
                one = module.transfer_batch_to_device(type(data).collate(test[:1]), torch.device(device), 0)
                many = module.transfer_batch_to_device(type(data).collate(test[:batch]), torch.device(device), 0)
                beam = int(trained.config.task.beam_size)
                calls = {"greedy": decode(module.model, lambda m=module, b=one: m.start_decoding(b), 1, steps=steps)}
                if beam > 1:
                    calls["beam"] = decode(
                        module.model, lambda m=module, b=one: m.start_decoding(b), 1, steps=steps, beam=beam
                    )
                calls["train"] = training_step(module, lambda m=module, b=many: m.training_loss(b))
                kinds[mechanism] = list(calls)
                for kind, call in calls.items():
                    call()
                    memory[mechanism, kind] = peak_tensor_mib(call, device)
                    work[f"{mechanism}/{kind}"] = call
        log.info("%s: %d mechanisms side by side, %d rounds", task, len(runs), rounds)
        measured = timing.interleaved(work, rounds=rounds, threads=threads, seed=seed)
        per_token = {"greedy": steps, "beam": steps, "train": 1}
        figures = [
            Figures(
                mechanism=m,
                run_id=run.info.run_id,
                ms={k: measured.median(f"{m}/{k}") * 1000 / per_token[k] for k in kinds[m]},
                mib={k: memory[m, k] for k in kinds[m]},
                spread={k: measured.spread(f"{m}/{k}") for k in kinds[m]},
            )
            for m, run in runs.items()
        ]
        shared = [k for k in KINDS if all(k in kinds[m] for m in runs)]
        family = max(1, len(shared) * (len(runs) - 1))
        ratios = {}
        for kind in shared:
            names = [f"{m}/{kind}" for m in runs]
            one_kind = timing.Rounds(names, {n: measured.seconds[n] for n in names}, threads=measured.threads)
            ratios[kind] = [
                asdict(r) | {"name": r.name.split("/")[0], "reference": ref}
                for r in timing.compare(one_kind, f"{ref}/{kind}", family=family)
            ]
        settings = {
            "rounds": rounds,
            "threads": measured.threads,
            "steps": steps,
            "batch": min(batch, len(test)),
            "device": device if device != "cuda" else torch.cuda.get_device_name(),
        }
        result = Pass(task=task, reference=ref, figures=figures, ratios=ratios, settings=settings)
        if log_to_mlflow:
            log_pass(client, next(iter(runs.values())).info.experiment_id, result)
        passes.append(result)
    return passes


def log_pass(client: Any, experiment_id: str, result: Pass) -> str:
    """Log ``result`` as a run of the experiment: its settings, a metric per figure, ``speed_pass.json``."""
    tags = {T.ROLE: T.ROLE_SPEED_PASS, T.TASK: result.task}
    run_id = client.create_run(experiment_id, run_name=f"speed-pass-{result.task}", tags=tags).info.run_id
    for key, value in result.settings.items():
        client.log_param(run_id, key, value)
    for f in result.figures:
        for kind in f.ms:
            client.log_metric(run_id, f"speed_pass/{f.mechanism}/{kind}_ms", f.ms[kind])
            client.log_metric(run_id, f"speed_pass/{f.mechanism}/{kind}_mib", f.mib[kind])
    client.log_text(run_id, result.to_json(), T.SPEED_PASS_FILE)
    client.set_terminated(run_id, "FINISHED")
    return run_id
