"""How each mechanism's cost grows with the input: ``lightning-attn benchmark sizes``.

For every task and every mechanism, the task's default model (its ``model`` and ``attention`` sections as
configured, untrained: only cost is measured) is given synthetic encoder states of ``N`` positions — source
tokens, or image regions on an ``√N × √N`` grid — and, at each ``N``:

* **decode**: milliseconds per decoder step at batch 1 (a greedy decode of a fixed number of steps, the keys
  prepared once at its start: :mod:`.workloads`);
* **train**: milliseconds per training step at a fixed batch and target length (the decoder's teacher-forced
  loss with the mechanism's own terms, and its backward pass into the encoder states);
* the **peak tensor memory** of each (:mod:`.memory`).

The encoder is left out: it is the same for every mechanism, and only adds the same cost to each. The mechanisms
of one size are timed side by side in interleaved rounds (:mod:`.timing`), so their ratios at the largest size
come with intervals. Each mechanism's *growth exponent* is the slope of log time against log ``N`` over the
largest sizes, where the part that depends on ``N`` dominates: about 1 for a mechanism that scores every position,
about 0 for one whose cost does not grow (local attention at inference).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import timing
from .memory import peak_tensor_mib
from .workloads import decode, decoder_loss, training_step

log = logging.getLogger(__name__)

SIZES = (16, 64, 256, 1024, 4096)
VOCAB = 256  # words each side: the output layer is the same for every mechanism but marginal's (N of them)
DECODE_STEPS = 20
TRAIN_BATCH, TRAIN_LENGTH = 4, 16
FIT_SIZES = 3  # the exponent is fitted over this many of the largest sizes
KINDS = ("decode", "train")


@dataclass
class Point:
    """One mechanism at one size."""

    task: str
    mechanism: str
    positions: int
    decode_ms: float  # per decoder step, batch 1 (median over rounds)
    train_ms: float  # per training step, batch TRAIN_BATCH
    decode_mib: float  # peak tensor memory of a decode (DECODE_STEPS steps)
    train_mib: float  # peak tensor memory of a training step
    decode_spread: float  # interquartile range / median of the per-round times
    train_spread: float


@dataclass
class Sizes:
    """The cost of every mechanism at every size, and what it says."""

    points: list[Point]
    exponents: dict[str, dict[str, dict[str, float]]]  # task -> mechanism -> kind -> growth exponent
    at_largest: dict[str, dict[str, list[dict]]]  # task -> kind -> ratios to the reference at the largest size
    reference: str
    settings: dict = field(default_factory=dict)

    def sentences(self, task: str) -> list[str]:
        """One line per mechanism: its exponents, and its speed against the reference at the largest size."""
        largest = max(p.positions for p in self.points if p.task == task)
        lines = []
        for mechanism, kinds in self.exponents[task].items():
            said = [f"time grows as N^{kinds['decode']:.2f} per decoder step, N^{kinds['train']:.2f} per training step"]
            for kind in KINDS:
                ratio = next((r for r in self.at_largest[task][kind] if r["name"] == mechanism), None)
                if ratio is not None:
                    said.append(f"{kind} at {largest:,} positions: {timing.Ratio(**ratio).words()}")
            lines.append(f"{mechanism}: " + "; ".join(said))
        return lines

    def table(self, task: str) -> str:
        """A Markdown table: each mechanism's time and memory at each size, then its exponents."""
        points = [p for p in self.points if p.task == task]
        sizes = sorted({p.positions for p in points})
        head = [
            "mechanism",
            *(f"{kind} ms @ {n:,}" for kind in KINDS for n in sizes),
            "decode exp.",
            "train exp.",
            f"decode MiB @ {sizes[-1]:,}",
            f"train MiB @ {sizes[-1]:,}",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for mechanism, kinds in self.exponents[task].items():
            mine = {p.positions: p for p in points if p.mechanism == mechanism}
            cells = [
                mechanism,
                *(f"{getattr(mine[n], kind + '_ms'):.3g}" for kind in KINDS for n in sizes),
                f"{kinds['decode']:.2f}",
                f"{kinds['train']:.2f}",
                f"{mine[sizes[-1]].decode_mib:.3g}",
                f"{mine[sizes[-1]].train_mib:.3g}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Sizes:
        data = json.loads(text)
        return cls([Point(**p) for p in data.pop("points")], **data)


def exponent(sizes: list[int], times: list[float]) -> float:
    """The least-squares slope of log time against log size."""
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def measure(
    *,
    tasks: list[str] | None = None,
    mechanisms: list[str] | None = None,
    sizes: tuple[int, ...] = SIZES,
    reference: str = "soft",
    rounds: int = 11,
    block_s: float = 0.05,
    vocab: int = VOCAB,
    threads: int | None = None,
    device: str = "cpu",
    overrides: list[str] | None = None,
    seed: int = 0,
) -> Sizes:
    """Measure every mechanism of every task at every size (see the module's docstring).

    Args:
        tasks: task names (default: every registered task).
        mechanisms: mechanism names (default: every registered mechanism).
        sizes: numbers of positions; a captioning size must be a square (its grid).
        reference: the mechanism the others' ratios are taken against.
        rounds: interleaved timing rounds per size.
        block_s: about how long each timed block of calls lasts.
        vocab: the models' vocabulary, each side.
        threads: torch's intra-op threads (default: as now).
        device: where the models run (``cpu``, ``cuda``, ``cuda:1``).
        overrides: ``dotted.key=value`` changes to every model's config (e.g. ``model.decoder_hidden=256``).
        seed: the synthetic inputs and the rounds' order.
    """
    import torch

    from ..attention import MECHANISMS
    from ..tasks import TASKS

    tasks = tasks or list(TASKS)
    mechanisms = mechanisms or list(MECHANISMS)
    _check(tasks, mechanisms, sizes, reference)
    points, exponents, at_largest = [], {}, {}
    family = len(tasks) * len(KINDS) * (len(mechanisms) - 1)
    for task in tasks:
        models = _models(task, mechanisms, overrides or [], vocab=vocab, device=device, seed=seed)
        for n in sizes:
            log.info("%s: %d positions, %d mechanisms side by side", task, n, len(mechanisms))
            work, inputs = _work(models, n, vocab=vocab, device=device, seed=seed)
            memory = _peaks(work, models, inputs, device)
            rounds_ = timing.interleaved(work, rounds=rounds, block_s=block_s, threads=threads, seed=seed + n)
            points += [_point(task, m, n, rounds_, memory) for m in mechanisms]
            if n == max(sizes):  # the ratios to the reference, with their intervals
                at_largest[task] = _ratios(rounds_, mechanisms, reference, family=family)
        exponents[task] = _exponents([p for p in points if p.task == task], mechanisms, sizes)
    settings = {
        "sizes": list(sizes),
        "vocab": vocab,
        "rounds": rounds,
        "threads": threads or torch.get_num_threads(),
        "device": device,
        "overrides": list(overrides or []),
    }
    settings |= {"decode_steps": DECODE_STEPS, "train_batch": TRAIN_BATCH, "train_length": TRAIN_LENGTH}
    return Sizes(points, exponents, at_largest, reference, settings | {"fit_sizes": FIT_SIZES})


def _exponents(points: list[Point], mechanisms: list[str], sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """One task's growth exponent per mechanism and kind of work, fitted over the largest sizes."""
    fit = sorted(sizes)[-FIT_SIZES:]
    found: dict[str, dict[str, float]] = {}
    for mechanism in mechanisms:
        mine = {p.positions: p for p in points if p.mechanism == mechanism}
        found[mechanism] = {kind: exponent(fit, [getattr(mine[n], kind + "_ms") for n in fit]) for kind in KINDS}
    return found


def _ratios(rounds: timing.Rounds, mechanisms: list[str], reference: str, *, family: int) -> dict[str, list[dict]]:
    """Per kind of work, each mechanism's time ratio to the reference with its interval (``family``: how many
    ratios the result states in all, which the intervals are widened for)."""
    found = {}
    for kind in KINDS:
        one_kind = rounds.only([f"{m}/{kind}" for m in mechanisms], renamed=mechanisms)
        found[kind] = [asdict(r) for r in timing.compare(one_kind, reference, family=family)]
    return found


def _models(task: str, mechanisms: list[str], overrides: list[str], *, vocab: int, device: str, seed: int) -> dict:
    """The task's bare model with each mechanism, as configured with ``overrides``, the same initial seed each."""
    import torch

    from ..config import compose, section
    from ..tasks import TASKS

    models = {}
    for mechanism in mechanisms:
        cfg = compose([f"task={task}", f"attention={mechanism}", *overrides])
        torch.manual_seed(seed)
        models[mechanism] = TASKS[task].bare_model(section(cfg, "model"), section(cfg, "attention"), vocab)
        models[mechanism].to(device)
    return models


def _check(tasks: list[str], mechanisms: list[str], sizes: tuple[int, ...], reference: str) -> None:
    """Known tasks and mechanisms, the reference among them, two sizes or more, squares for a grid (ValueError)."""
    from ..attention import MECHANISMS
    from ..tasks import TASKS

    if reference not in mechanisms:
        raise ValueError(f"the reference {reference!r} is not among the mechanisms measured")
    if len(sizes) < 2:
        raise ValueError("cost against size needs at least two sizes")
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        squares = [n for n in sizes if TASKS[task].grid and math.isqrt(n) ** 2 != n]
        if squares:
            raise ValueError(f"{task} attends over a square grid of regions: {squares[0]} is not a square")
    unknown = [m for m in mechanisms if m not in MECHANISMS]
    if unknown:
        raise ValueError(f"unknown mechanism {unknown[0]!r}; choose from {', '.join(MECHANISMS)}")


def _work(models: dict, n: int, *, vocab: int, device: str, seed: int) -> tuple[dict, dict]:
    """Each mechanism's decode and training step at ``n`` positions, on synthetic inputs (the same for every
    mechanism), as ``{"<mechanism>/<kind>": call}``, and each training step's input (its gradient is counted)."""
    import torch

    work, inputs = {}, {}
    for mechanism, model in models.items():
        generator = torch.Generator().manual_seed(seed + n)
        one = torch.randn(1, n, model.memory_dim, generator=generator).to(device)
        batch = torch.randn(TRAIN_BATCH, n, model.memory_dim, generator=generator).to(device)
        batch.requires_grad_(True)  # as an encoder's output: the backward pass reaches it
        inputs[mechanism] = batch
        tgt = torch.randint(4, vocab, (TRAIN_BATCH, TRAIN_LENGTH + 1), generator=generator).to(device)
        work[f"{mechanism}/decode"] = decode(model, lambda m=model, x=one: m.start(x), 1, steps=DECODE_STEPS)
        work[f"{mechanism}/train"] = training_step(
            model, lambda m=model, x=batch, t=tgt: decoder_loss(m, x, t[:, :-1], t[:, 1:])
        )
    return work, inputs


def _peaks(work: dict, models: dict, inputs: dict, device: str) -> dict[str, float]:
    """Each call's peak tensor memory (MiB), after a warm-up call (lazily built buffers are not the call's own)."""
    memory = {}
    for name, call in work.items():
        call()
        mechanism = name.split("/")[0]
        models[mechanism].zero_grad(set_to_none=True)  # a training step's gradients are counted in its peak
        inputs[mechanism].grad = None
        memory[name] = peak_tensor_mib(call, device)
    return memory


def _point(task: str, mechanism: str, n: int, rounds: timing.Rounds, memory: dict[str, float]) -> Point:
    decode_, train_ = f"{mechanism}/decode", f"{mechanism}/train"
    return Point(
        task=task,
        mechanism=mechanism,
        positions=n,
        decode_ms=rounds.median(decode_) * 1000 / DECODE_STEPS,
        train_ms=rounds.median(train_) * 1000,
        decode_mib=memory[decode_],
        train_mib=memory[train_],
        decode_spread=rounds.spread(decode_),
        train_spread=rounds.spread(train_),
    )


def plot(result: Sizes, path: Path) -> Path:
    """Log-log plots, one row per task: time per decoder step and per training step against positions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result.exponents)
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 4.2 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks, strict=True):
        for ax, kind in zip(row, KINDS, strict=True):
            for mechanism, kinds in result.exponents[task].items():
                mine = sorted(
                    (p for p in result.points if p.task == task and p.mechanism == mechanism), key=lambda p: p.positions
                )
                ax.plot(
                    [p.positions for p in mine],
                    [getattr(p, kind + "_ms") for p in mine],
                    marker="o",
                    label=f"{mechanism} (N^{kinds[kind]:.2f})",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            what = "per decoder step, batch 1" if kind == "decode" else f"per training step, batch {TRAIN_BATCH}"
            ax.set_title(f"{task}: ms {what}")
            ax.set_xlabel("positions attended over (N)")
            ax.set_ylabel("ms")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
