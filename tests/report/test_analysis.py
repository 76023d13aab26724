"""What a report concludes, from constructed run records (no sweep, no MLflow): diagnostics, significance over
seeds, and verdicts that are withheld whenever the runs are not comparable."""

from __future__ import annotations

import json
import random
import zlib

import pytest

from lightning_attn.bleu import corpus_bleu, sentence_statistics
from lightning_attn.report import analysis, render
from lightning_attn.report import significance as sig
from lightning_attn.report.collect import Collected, RunRecord

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

    def __init__(self):
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
        }
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
        rows = analysis.summarise(self.collected, min_seeds)
        tests = analysis.pair_tests(rows, self.preds, samples=300)
        diagnoses = analysis.diagnose(rows, tests, {}, min_seeds)
        verdict = analysis.verdicts(rows, tests, diagnoses, reference, min_seeds)["translation"]
        return rows, tests, {d.mechanism: d for d in diagnoses}, verdict


def test_comparable_runs_get_a_stated_verdict_resting_on_the_seed_level_test():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])
    study.add("uniform", [0.7, 0.7, 0.7], control=True)
    rows, tests, diagnoses, verdict = study.analyse()
    assert not verdict.withheld and verdict.summary.startswith("most accurate: soft")
    hard = next(p for p in verdict.pairs if p.mechanism == "hard")
    assert not hard.withheld and hard.line == hard.text
    assert "significant (Welch's t-test over seeds and a two-level bootstrap over seeds × 120 test items" in hard.line
    assert "n = 3 and 3 seeds × 120 test items, Hedges' g" in hard.line  # the test, n and the effect size are stated
    assert all(not d.flags for d in diagnoses.values())
    assert diagnoses["hard"].at_floor is False and diagnoses["soft"].at_floor is False
    soft = next(r for r in rows if r.mechanism == "soft")
    assert soft.ci95 is not None and soft.ci_note == ""


def test_runs_that_hit_the_cap_while_improving_withhold_the_verdict():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.6, 0.6, 0.6], converged=False)
    rows, _, diagnoses, verdict = study.analyse()
    assert verdict.withheld
    assert verdict.summary == "inconclusive: hard did not converge in 3 of 3 runs; raise trainer.max_epochs"
    pair = verdict.pairs[0]
    assert pair.line.startswith("hard vs soft: inconclusive: hard did not converge in 3 of 3 runs")
    assert diagnoses["hard"].flags == ["not converged: 3 of 3 runs stopped while still improving"]
    assert next(r for r in rows if r.mechanism == "hard").not_converged == 3


def test_two_seeds_print_no_confidence_interval_and_give_no_verdict():
    study = Study()
    study.add("soft", [0.05, 0.1])
    study.add("hard", [0.3, 0.35])
    rows, _, diagnoses, verdict = study.analyse()
    soft = next(r for r in rows if r.mechanism == "soft")
    assert soft.ci95 is None and soft.ci_note == "n = 2: no CI" and soft.seed_std is not None
    ci_cell = render.cells(soft)[[c[0] for c in render.COLUMNS].index("ci95")]
    assert ci_cell == "n = 2: no CI"
    assert diagnoses["soft"].too_few_seeds and "too few seeds: n = 2" in diagnoses["soft"].flags[0]
    assert verdict.withheld and "too few seed runs (hard 2, soft 2; a verdict needs 3" in verdict.summary
    # the minimum is the report's to choose
    assert not study.analyse(min_seeds=2)[3].withheld


def test_a_mechanism_no_better_than_the_control_is_flagged_at_the_floor():
    study = Study()
    study.add("soft", [0.05, 0.05, 0.06])
    study.add("lazy", [0.7, 0.7, 0.7])  # the same quality as the control
    study.add("uniform", [0.7, 0.7, 0.7], control=True)
    _, _, diagnoses, verdict = study.analyse()
    assert diagnoses["lazy"].at_floor is True and diagnoses["lazy"].flags[0].startswith("at the floor")
    assert diagnoses["soft"].at_floor is False
    assert diagnoses["uniform"].control and diagnoses["uniform"].at_floor is None


def test_the_seed_level_test_gives_the_known_answers():
    stats = {
        name: [sentence_statistics(hypotheses(noise, seed=s + 100 * k), REFS) for s in range(3)]
        for k, (name, noise) in enumerate([("good", 0.05), ("bad", 0.4), ("good_too", 0.05)])
    }
    values = {name: [corpus_bleu(s.sum(0)) for s in runs] for name, runs in stats.items()}

    def test(a: str, b: str) -> sig.SeedTest:
        return sig.seed_test(values[a], values[b], stats[a], stats[b], "sacrebleu", samples=500)

    better = test("good", "bad")
    assert better.significant and better.delta > 20 and better.ci_low > 0 and better.items_ci_low > 0
    assert better.n_items == len(REFS) and better.hedges_g > 3 and better.detectable < better.delta
    equal = test("good", "good_too")
    assert not equal.significant and equal.ci_low < 0 < equal.ci_high
    same = test("good", "good")
    assert same.p_value == 1.0 and same.delta == 0.0
    alone = sig.seed_test(values["good"], values["bad"])  # no per-item statistics: the test over seeds alone
    assert alone.significant and alone.n_items == 0 and alone.items_p is None


def test_identical_outputs_are_never_significant_and_a_tie_names_no_winner():
    study = Study()
    outputs = [hypotheses(0.2, seed=s) for s in range(3)]
    study.add("soft", [0.2] * 3, outputs=outputs)
    study.add("hard", [0.2] * 3, outputs=outputs)
    _, tests, _, verdict = study.analyse()
    assert tests[0].seed.p_value == 1.0 and tests[0].best_p == 1.0 and not tests[0].significant
    assert verdict.summary.startswith("no single winner") and "most accurate" not in verdict.summary
    assert ", tie (" in verdict.pairs[0].line


def test_equal_scores_from_different_outputs_are_not_significant():
    refs = [["the cat sees a bird"]] * 50
    same_score = ["the cat sees the bird"] * 25 + ["the cat sees the dog"] * 25
    flipped = ["the cat sees the dog"] * 25 + ["the cat sees the bird"] * 25
    assert same_score != flipped
    items = [sentence_statistics(h, refs) for h in (same_score, flipped)]
    assert sig.best_run_test(*items, "sacrebleu") == 1.0


def test_unequal_tuning_budgets_withhold_the_verdict():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], trials=6)
    study.add("hard", [0.3, 0.3, 0.3], trials=2)
    _, _, diagnoses, verdict = study.analyse()
    assert verdict.withheld and "unequal tuning budgets in trials (hard 2, soft 6)" in verdict.summary
    assert diagnoses["soft"].trials == 6 and diagnoses["soft"].compute_s == pytest.approx(90.0)


def test_ratios_that_are_noise_are_not_printed_as_facts():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], latency=[10.0, 12.0, 11.0])
    study.add("hard", [0.2, 0.21, 0.2], latency=[11.0, 10.0, 12.5])
    line = study.analyse()[3].pairs[0].line
    assert "inference at batch 1: no significant difference" in line
    assert "faster" not in line and "slower" not in line
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], latency=[20.0, 20.2, 19.8])
    study.add("hard", [0.2, 0.21, 0.2], latency=[10.0, 10.1, 9.9])
    assert "inference at batch 1: 2.00× faster" in study.analyse()[3].pairs[0].line


def test_a_seed_variance_ratio_from_two_runs_is_not_a_finding():
    study = Study()
    study.add("soft", [0.05, 0.3])  # very different spreads, but two runs each
    study.add("hard", [0.2, 0.2001])
    assert "seed variance" not in study.analyse(min_seeds=2)[3].pairs[0].line


def test_the_json_carries_diagnostics_and_withheld_verdicts(tmp_path):
    study = Study()
    study.add("soft", [0.05, 0.06])
    study.add("hard", [0.6, 0.6, 0.6], converged=False)
    rows, tests, diagnoses, verdict = study.analyse()
    report = {
        "tasks": ["translation"],
        "rows": rows,
        "tests": tests,
        "diagnoses": list(diagnoses.values()),
        "verdicts": {"translation": verdict},
        "warnings": [],
        "failures": [],
        "min_seeds": 3,
        "importance_evaluator": "x",
    }
    data = json.loads(render.write_json(tmp_path, report).read_text())
    hard = data["diagnostics"]["translation"]["hard"]
    assert hard["not_converged"] == ["hard-seed0", "hard-seed1", "hard-seed2"] and hard["flags"]
    assert data["diagnostics"]["translation"]["soft"]["too_few_seeds"] is True
    assert data["verdicts"]["translation"]["withheld"] is True
    assert next(r for r in data["rows"] if r["mechanism"] == "soft")["ci95"] is None
    assert data["significance"][0]["seed"]["test"].startswith("Welch's t-test over seeds and a two-level bootstrap")
