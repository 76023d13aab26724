"""The speed pass over trained runs: ``lightning-attn benchmark runs`` (an experiment's mechanisms, or named runs).

One process loads one trained checkpoint per mechanism — seeds of a mechanism share its architecture, so the
lowest seed stands for all — and times them side by side (:mod:`.timing`: interleaved, randomised rounds, threads
fixed, warm-up excluded, a GPU synchronised) on the same fixed work (:mod:`.workloads`):

* ``greedy``: milliseconds per token of a greedy decode of one test input, exactly ``steps`` tokens;
* ``beam``: the same with the task's beam (``task.beam_size``), where it is more than 1;
* ``train``: milliseconds per training step (forward and backward of the task's own loss) on the first
  ``batch`` test examples;

and the peak tensor memory of each (:mod:`.memory`). Every pair of mechanisms is compared — each one's time over the
other's, with an interval that holds for all the pass's ratios together — so a report can state any of them; a
ratio is "faster" or "slower" only where that interval excludes 1 and it is at least 5 % from 1. The pass is logged
to MLflow as a run of the experiment (role ``speed_pass``): a metric per figure and ``speed_pass.json`` with
everything.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..tracking import tags as T
from . import timing
from .memory import peak_tensor_mib
from .workloads import decode, training_step

log = logging.getLogger(__name__)

KINDS = T.SPEED_PASS_KINDS
FORMAT = T.SPEED_PASS_FORMAT
BLOCK_S = 0.02  # seconds per timed block: many short rounds rather than few long ones (the sign test counts rounds)
UNITS = {"greedy": "ms per token, batch 1", "beam": "ms per token, batch 1", "train": "ms per training step"}


@dataclass
class Figures:
    """One mechanism's cost, from one of its runs."""

    mechanism: str
    run_id: str
    ms: dict[str, float]  # kind -> median over rounds (per token, or per training step)
    mib: dict[str, float]  # kind -> peak tensor memory of one call
    spread: dict[str, float]  # kind -> interquartile range / median of the per-round times
    interval: dict[str, list[float]]  # kind -> 95 % interval of the median (order statistics over the rounds)


@dataclass
class Pass:
    """A speed pass over one task's mechanisms."""

    task: str
    reference: str
    figures: list[Figures]
    ratios: dict[str, list[dict]]  # kind -> every pair's time ratio, both directions (timing.Ratio.as_dict)
    settings: dict = field(default_factory=dict)
    format: int = FORMAT

    @classmethod
    def from_rounds(
        cls,
        *,
        task: str,
        reference: str,
        rounds: timing.Rounds,
        memory: dict[tuple[str, str], float],
        steps: int,
        run_ids: dict[str, str],
        settings: dict,
    ) -> Pass:
        """The pass from its timed ``rounds`` (pieces named ``mechanism/kind``; per call: ``steps`` tokens of a
        decode, one training step) and ``memory`` (MiB by mechanism and kind): each figure, and every pair's ratio
        with an interval that holds for all of them."""
        per_call = {"greedy": steps, "beam": steps, "train": 1}
        kinds = {m: [k for k in KINDS if f"{m}/{k}" in rounds.seconds] for m in run_ids}

        def ms(value: float, kind: str) -> float:
            return value * 1000 / per_call[kind]

        figures = [
            Figures(
                mechanism=m,
                run_id=run_id,
                ms={k: ms(rounds.median(f"{m}/{k}"), k) for k in kinds[m]},
                mib={k: memory[m, k] for k in kinds[m]},
                spread={k: rounds.spread(f"{m}/{k}") for k in kinds[m]},
                interval={k: [ms(v, k) for v in rounds.median_interval(f"{m}/{k}")] for k in kinds[m]},
            )
            for m, run_id in run_ids.items()
        ]
        shared = [k for k in KINDS if all(k in kinds[m] for m in run_ids)]
        names = list(run_ids)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        family = max(1, len(shared) * len(pairs))  # every pair's ratio of every kind holds together
        ratios: dict[str, list[dict]] = {kind: [] for kind in shared}
        for kind, (a, b) in ((k, p) for k in shared for p in pairs):
            one_pair = rounds.only([f"{a}/{kind}", f"{b}/{kind}"], renamed=[a, b])
            for found in timing.compare(one_pair, b, family=family):  # each direction, as a report reads it
                ratios[kind] += [r.as_dict() for r in (found, found.inverse())]
        return cls(task=task, reference=reference, figures=figures, ratios=ratios, settings=settings)

    def ratio(self, kind: str, mechanism: str, reference: str | None = None) -> timing.Ratio | None:
        """``mechanism``'s time over ``reference``'s (default: the pass's reference) for ``kind`` of work."""
        reference = reference or self.reference
        found = next(
            (r for r in self.ratios.get(kind, []) if (r["name"], r["reference"]) == (mechanism, reference)), None
        )
        return timing.Ratio.from_dict(found) if found else None

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


def pick_runs(
    client: Any, experiments: list[str], run_ids: list[str], studies: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``{task: {name: run}}``: the named runs (``RUN_ID``, or ``RUN_ID=NAME`` to time it under a name of its own:
    the same checkpoint twice is an A/A check), and one finished training run with a checkpoint per mechanism of
    the experiments (only of ``studies``, where given; a mechanism's seed runs where it has any; its lowest seed)."""
    from mlflow.exceptions import MlflowException

    picked: dict[str, dict[str, Any]] = {}
    for entry in run_ids:
        run_id, _, name = entry.partition("=")
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise LookupError(f"no run {run_id!r} in the tracking store") from None
        task, mechanism = _key(run)
        picked.setdefault(task, {})[name or mechanism] = run
    runs = []
    for name in experiments:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise LookupError(f"no MLflow experiment {name!r}")
        found = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'", max_results=50000)
        seed_parents = {r.info.run_id for r in found if r.data.tags.get(T.ROLE) == T.ROLE_SEEDS}
        found = [r for r in found if T.ROLE not in r.data.tags and T.BEST_CHECKPOINT in r.data.tags]
        if studies is not None:
            found = [r for r in found if r.data.tags.get(T.STUDY) in studies]
        seeded = {_key(r) for r in found if r.data.tags.get(T.PARENT) in seed_parents}
        runs += [r for r in found if _key(r) not in seeded or r.data.tags.get(T.PARENT) in seed_parents]
    for run in sorted(runs, key=lambda r: int(r.data.tags.get(T.SEED, "0") or 0)):
        task, mechanism = _key(run)
        picked.setdefault(task, {}).setdefault(mechanism, run)
    if not picked:
        raise LookupError("no finished training run with a checkpoint to time")
    return picked


def _key(run: Any) -> tuple[str, str]:
    tags = run.data.tags
    return tags.get(T.TASK, "?"), tags.get(T.MECHANISM) or tags.get(T.ATTENTION, "?")


def measure(
    *,
    tracking_uri: str,
    experiments: Sequence[str] = (),
    run_ids: Sequence[str] = (),
    studies: Sequence[str] | None = None,
    reference: str | None = None,
    rounds: int = 30,
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
        studies: only the experiments' runs of these sweep studies.
        reference: the mechanism the ratios are to (default: ``soft`` if there, else the first by name).
        rounds: interleaved timing rounds.
        threads: torch's intra-op threads while timing (default: as now).
        steps: decoder steps of every decode.
        batch: test examples in the training step's batch (fewer if the split has fewer).
        device: where the models run.
        seed: the order of the rounds.
        log_to_mlflow: log each pass as a run of its mechanisms' experiment.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    passes = []
    for task, runs in pick_runs(client, list(experiments), list(run_ids), studies and list(studies)).items():
        ref = reference or ("soft" if "soft" in runs else sorted(runs)[0])
        if ref not in runs:
            raise LookupError(f"the reference {ref!r} has no run here; mechanisms: {', '.join(sorted(runs))}")
        result = _one_pass(
            client, task, runs, ref, rounds=rounds, threads=threads, steps=steps, batch=batch, device=device, seed=seed
        )
        if log_to_mlflow:
            log_pass(client, next(iter(runs.values())).info.experiment_id, result)
        passes.append(result)
    return passes


def _one_pass(
    client: Any,
    task: str,
    runs: dict[str, Any],
    ref: str,
    *,
    rounds: int,
    threads: int | None,
    steps: int,
    batch: int,
    device: str,
    seed: int,
) -> Pass:
    """One task's pass: each run's model loaded, its peak memory per kind of work, then all timed interleaved."""
    import torch

    from ..saved_runs import load_trained

    work, memory, n_test = {}, {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        for mechanism, run in runs.items():
            log.info("%s: loading %s (run %s)", task, mechanism, run.info.run_id)
            trained = load_trained(client, run, Path(tmp) / mechanism)
            calls, n_test = _calls(trained, steps=steps, batch=batch, device=device)
            for kind, call in calls.items():
                call()  # warm: lazily built buffers are not the call's own
                trained.module.zero_grad(set_to_none=True)  # a training step's gradients are counted in its peak
                memory[mechanism, kind] = peak_tensor_mib(call, device)
                work[f"{mechanism}/{kind}"] = call
    log.info("%s: %d mechanisms side by side, %d rounds", task, len(runs), rounds)
    measured = timing.interleaved(work, rounds=rounds, block_s=BLOCK_S, threads=threads, seed=seed)
    settings = {
        "rounds": rounds,
        "threads": measured.threads,
        "steps": steps,
        "batch": min(batch, n_test),
        "device": device if device != "cuda" else torch.cuda.get_device_name(),
    }
    run_ids = {m: run.info.run_id for m, run in runs.items()}
    return Pass.from_rounds(
        task=task, reference=ref, rounds=measured, memory=memory, steps=steps, run_ids=run_ids, settings=settings
    )


def _calls(trained: Any, *, steps: int, batch: int, device: str) -> tuple[dict[str, Callable[[], Any]], int]:
    """A trained run's work to time, by kind — greedy decoding (and beam, where the run decodes with a beam) of
    one test example for ``steps`` steps, a training step on ``batch`` test examples — and the test split's size."""
    import torch

    module, data = trained.module.to(device), trained.data
    test = list(data.splits["test"])
    one = module.transfer_batch_to_device(type(data).collate(test[:1]), torch.device(device), 0)
    many = module.transfer_batch_to_device(type(data).collate(test[:batch]), torch.device(device), 0)
    beam = int(trained.config.task.beam_size)
    calls = {"greedy": decode(module.model, lambda m=module, b=one: m.start_decoding(b), 1, steps=steps)}
    if beam > 1:
        calls["beam"] = decode(module.model, lambda m=module, b=one: m.start_decoding(b), 1, steps=steps, beam=beam)
    calls["train"] = training_step(module, lambda m=module, b=many: m.training_loss(b))
    return calls, len(test)


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
