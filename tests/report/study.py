"""Constructed runs of one translation comparison (no sweep, no MLflow) with a known answer, and their test
predictions: what the report's tests build their studies from."""

from __future__ import annotations

import random
import zlib

from lightning_attn.bleu import corpus_bleu, sentence_statistics
from lightning_attn.report.aggregate import summarise
from lightning_attn.report.collect import Collected, RunRecord
from lightning_attn.report.comparisons import margins, pair_tests
from lightning_attn.report.diagnostics import diagnose
from lightning_attn.report.verdict import verdicts

WORDS = "the a cat dog bird sees likes red big small near house tree river".split()
_rng = random.Random(0)
REFS = [[" ".join(_rng.choices(WORDS, k=_rng.randint(5, 9)))] for _ in range(120)]


def hypotheses(noise: float, seed: int) -> list[str]:
    """The references with each word replaced by a random one with probability ``noise``."""
    rng = random.Random(seed)
    return [" ".join(w if rng.random() >= noise else rng.choice(WORDS) for w in r[0].split()) for r in REFS]


def score(hyps: list[str]) -> float:
    """The corpus BLEU a translation run logs (sacreBLEU's defaults)."""
    return corpus_bleu(sentence_statistics(hyps, REFS).sum(0))


class Study:
    """Constructed runs of one sweep-like comparison, and their test predictions."""

    def __init__(self, margin: float | None = 1.0):
        """``margin``: of equivalence, recorded by every run as its task's (None: none recorded)."""
        self.margin = margin
        self.collected = Collected(experiments=["e"])
        self.preds: dict[str, tuple[list[str], list[list[str]]]] = {}

    def add(
        self,
        mechanism: str,
        noises: list[float],
        *,
        converged: bool = True,
        control: bool = False,
        trials: int = 2,
        latency: list[float] | None = None,
        outputs: list[list[str]] | None = None,
    ) -> None:
        tags = {
            "metric.headline": "test/bleu",
            "metric.validation": "val/bleu",
            "mechanism": mechanism,
            "attention.control": str(control).lower(),
            "task": "translation",
            "metric.item_statistics": "sacrebleu",
        } | ({"metric.equivalence_margin": str(self.margin)} if self.margin is not None else {})
        for i, noise in enumerate(noises):
            hyps = outputs[i] if outputs else hypotheses(noise, seed=zlib.crc32(f"{mechanism}{i}".encode()))
            metrics = {"test/bleu": score(hyps), "run/converged": float(converged)}
            if latency:
                metrics["speed/infer_latency_ms_p50_b1"] = latency[i]
            run_id = f"{mechanism}-seed{i}"
            self.collected.runs.append(
                RunRecord(
                    run_id,
                    run_id,
                    "e",
                    "translation",
                    mechanism,
                    "FINISHED",
                    "seed",
                    metrics,
                    {},
                    tags,
                    f"e-{mechanism}-seeds",
                    "COMPLETE",
                    10.0,
                )
            )
            self.preds[run_id] = (hyps, REFS)
        for t in range(trials):
            self.collected.runs.append(
                RunRecord(
                    f"{mechanism}-t{t}",
                    f"{mechanism}-t{t}",
                    "e",
                    "translation",
                    mechanism,
                    "FINISHED",
                    "trial",
                    {"run/converged": 1.0},
                    {},
                    tags,
                    f"e-{mechanism}",
                    "COMPLETE",
                    10.0,
                )
            )

    def analyse(self, min_seeds: int = 3, reference: str | None = None):
        """The report's pipeline on these runs: rows, pair tests, diagnoses by mechanism, the task's verdict."""
        rows = summarise(self.collected, min_seeds)
        tests = pair_tests(rows, self.preds, samples=300, margins=margins(rows))
        diagnoses = diagnose(rows, tests, {}, min_seeds)
        verdict = verdicts(rows, tests, diagnoses, reference, min_seeds)["translation"]
        return rows, tests, {d.mechanism: d for d in diagnoses}, verdict
