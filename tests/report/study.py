"""Constructed runs of one translation comparison (no sweep, no MLflow) with a known answer, and their test
predictions: what the report's tests build their studies from."""

from __future__ import annotations

import json
import random
import zlib

from lightning_attn.bleu import corpus_bleu, sentence_statistics
from lightning_attn.report.aggregate import summarise
from lightning_attn.report.collect import Collected, RunRecord
from lightning_attn.report.comparisons import margins, pair_tests
from lightning_attn.report.diagnostics import diagnose
from lightning_attn.report.speed import SpeedPass
from lightning_attn.report.verdict import verdicts
from lightning_attn.speedpass import Pass
from lightning_attn.speedpass.timing import Rounds

PASS_ROUNDS = 15

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
        self.decoding_ms: dict[str, float] = {}  # mechanism -> what the speed pass finds (from ``latency``)

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
                self.decoding_ms[mechanism] = sum(latency) / len(latency)
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

    def speed(self) -> dict[str, SpeedPass]:
        """The speed pass of the mechanisms added with a ``latency``: each decodes at the mean of its latencies
        (ms per token) in every one of 15 rounds, give or take 1 %."""
        if not self.decoding_ms:
            return {}

        def jitter(mechanism: str) -> list[float]:
            rng = random.Random(zlib.crc32(mechanism.encode()))
            return [1 + rng.uniform(-0.01, 0.01) for _ in range(PASS_ROUNDS)]

        seconds = {f"{m}/greedy": [ms / 1000 * 20 * j for j in jitter(m)] for m, ms in self.decoding_ms.items()}
        timed = Pass.from_rounds(
            task="translation",
            reference="soft" if "soft" in self.decoding_ms else next(iter(self.decoding_ms)),
            rounds=Rounds(list(seconds), seconds),
            memory={(m, "greedy"): 1.0 for m in self.decoding_ms},
            steps=20,
            run_ids={m: f"{m}-seed0" for m in self.decoding_ms},
            settings={"rounds": PASS_ROUNDS, "threads": 1, "steps": 20, "batch": 4, "device": "cpu"},
        )
        return {"translation": SpeedPass(json.loads(timed.to_json()))}

    def analyse(self, min_seeds: int = 3, reference: str | None = None):
        """The report's pipeline on these runs: rows, pair tests, diagnoses by mechanism, the task's verdict."""
        rows = summarise(self.collected, min_seeds)
        tests = pair_tests(rows, self.preds, samples=300, margins=margins(rows))
        diagnoses = diagnose(rows, tests, {}, min_seeds)
        verdict = verdicts(rows, tests, diagnoses, reference=reference, min_seeds=min_seeds, speed=self.speed())[
            "translation"
        ]
        return rows, tests, {d.mechanism: d for d in diagnoses}, verdict
