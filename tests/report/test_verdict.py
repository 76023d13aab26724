"""The verdict policy on constructed runs with a known answer: claims stated only when the runs are comparable,
resting on the seed-level test, and returned as structured results beside their sentences."""

from __future__ import annotations

import pytest

from lightning_attn.report.aggregate import summarise
from lightning_attn.report.diagnostics import Blocker
from lightning_attn.report.verdict import Fact, choose_reference, facts

from .study import Study, hypotheses


def test_comparable_runs_get_a_stated_verdict_resting_on_the_seed_level_test():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])
    study.add("uniform", [0.7, 0.7, 0.7], control=True)
    rows, tests, diagnoses, verdict = study.analyse()
    assert not verdict.withheld and verdict.summary.startswith("most accurate: soft")
    assert verdict.winner == verdict.leader == "soft" and verdict.tied == [] and verdict.blockers == []
    hard = next(p for p in verdict.pairs if p.mechanism == "hard")
    assert not hard.withheld and hard.line == hard.text and hard.outcome == "worse" and hard.blockers == []
    # the claim and the family's outcome in one short line; the test behind it is the significance table's row
    assert hard.line.startswith("hard vs soft: -") and hard.line.endswith("BLEU (3 vs 3 seeds): worse")
    assert all(len(line) <= 200 for line in verdict.lines)
    assert all(not d.flags for d in diagnoses.values())
    assert diagnoses["hard"].at_floor is False and diagnoses["soft"].at_floor is False
    soft = next(r for r in rows if r.mechanism == "soft")
    assert soft.ci95 is not None and soft.ci_note == ""
    assert verdict.lines == [verdict.summary, *(p.line for p in verdict.pairs)]


def test_runs_that_hit_the_cap_while_improving_withhold_the_verdict():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.6, 0.6, 0.6], converged=False)
    _, _, _, verdict = study.analyse()
    assert verdict.withheld and verdict.winner is None
    assert verdict.summary == "inconclusive: hard did not converge in 3 of 3 runs; raise trainer.max_epochs"
    assert verdict.blockers == [Blocker("not converged", "hard", 3, 3)]
    pair = verdict.pairs[0]
    assert pair.line.startswith("hard vs soft: inconclusive: hard did not converge in 3 of 3 runs")
    assert pair.text.startswith("hard vs soft: -75.14 BLEU")  # the claim, kept though not shown
    assert pair.blockers == [Blocker("not converged", "hard", 3, 3)]


def test_too_few_seeds_give_no_verdict_and_the_minimum_is_the_reports():
    study = Study()
    study.add("soft", [0.05, 0.1])
    study.add("hard", [0.3, 0.35])
    verdict = study.analyse()[3]
    assert verdict.withheld and "too few seed runs (hard 2, soft 2; a verdict needs 3" in verdict.summary
    assert not study.analyse(min_seeds=2)[3].withheld


def test_a_tie_names_no_winner():
    study = Study()
    outputs = [hypotheses(0.2, seed=s) for s in range(3)]
    study.add("soft", [0.2] * 3, outputs=outputs)
    study.add("hard", [0.2] * 3, outputs=outputs)
    _, _, _, verdict = study.analyse()
    assert verdict.summary.startswith("no single winner") and "most accurate" not in verdict.summary
    assert verdict.tied == ["soft"] and verdict.winner is None and not verdict.withheld  # hard leads by name
    # the same outputs on each seed: no difference, but the seeds spread by several BLEU, so equivalence within
    # 1 BLEU is not shown either — not significant is not the same
    assert verdict.pairs[0].line.endswith(": undecided") and verdict.pairs[0].outcome == "undecided"
    assert verdict.summary.endswith("undecided against soft")


def test_unequal_tuning_budgets_withhold_the_verdict():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], trials=6)
    study.add("hard", [0.3, 0.3, 0.3], trials=2)
    _, _, _, verdict = study.analyse()
    assert verdict.withheld and "unequal tuning budgets in trials (hard 2, soft 6)" in verdict.summary
    assert verdict.pairs[0].blockers == [Blocker("unequal budgets", "hard", 2, 6, ("soft",))]


def test_an_untestable_pair_is_withheld_with_why():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.3])
    _, _, _, verdict = study.analyse(min_seeds=1)
    (pair,) = verdict.pairs
    assert pair.outcome == "" and pair.text == "hard vs soft: -41.30 BLEU (1 vs 3 seeds)"
    assert pair.withheld == "significance cannot be tested: the test over seeds needs at least 2 seed runs a side"
    assert verdict.summary == "inconclusive: significance cannot be tested against hard"
    assert verdict.blockers == [Blocker("untested", "soft", against=("hard",))]


def test_speed_is_stated_only_as_the_speed_pass_found_it():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], latency=[10.0, 12.0, 11.0])
    study.add("hard", [0.2, 0.21, 0.2], latency=[11.0, 10.0, 12.0])  # the same mean: the pass finds no difference
    pair = study.analyse()[3].pairs[0]
    assert "; speed pass: no difference shown" in pair.line
    assert "faster" not in pair.line and "slower" not in pair.line
    assert pair.facts[0].kind == "greedy" and pair.facts[0].value is None
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], latency=[20.0, 20.2, 19.8])
    study.add("hard", [0.2, 0.21, 0.2], latency=[10.0, 10.1, 9.9])
    pair = study.analyse()[3].pairs[0]
    assert "; speed pass: decoding 2.00× faster" in pair.line
    assert pair.facts[0].value == pytest.approx(2.0, rel=0.01)
    # without a speed pass, the figures measured while training are never a speed claim
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.2, 0.21, 0.2])
    for run in study.collected.runs:
        run.metrics["speed/infer_latency_ms_p50_b1"] = 20.0 if run.mechanism == "soft" else 10.0
    pair = study.analyse()[3].pairs[0]
    assert "faster" not in pair.line and not any(f.kind in ("greedy", "beam", "train") for f in pair.facts)


def test_a_seed_spread_is_observed_never_tested_and_not_from_two_runs():
    study = Study()
    study.add("soft", [0.05, 0.3])  # very different spreads, but two runs each
    study.add("hard", [0.2, 0.2001])
    pair = study.analyse(min_seeds=2)[3].pairs[0]
    assert "seed spread" not in pair.line and all(f.kind != "seed spread" for f in pair.facts)
    study = Study()
    study.add("soft", [0.05, 0.06, 0.07])
    study.add("hard", [0.2, 0.3, 0.4])  # ten times the spread: stated as seen, with no p of its own
    pair = study.analyse()[3].pairs[0]
    (spread,) = [f for f in pair.facts if f.kind == "seed spread"]
    assert spread.value > 5
    assert f"; seed spread {spread.value:.1f}× (observed, not tested)" in pair.line
    assert "F-test" not in pair.line


def test_facts_name_failures_and_compute_that_differ():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.2, 0.21, 0.2])
    for run in study.collected.runs:
        if run.mechanism == "hard":
            run.wall_s = 100.0
    hard, soft = summarise(study.collected)
    hard.failed_rate = 0.25
    found = facts(hard, soft)[-2:]
    assert found == [Fact("failed runs", 0.25, reference=0.0), Fact("compute", 10.0)]
    assert [f.text for f in found] == ["25% of runs failed (vs 0%)", "10.0× the run time"]


def test_the_reference_is_asked_for_soft_or_the_most_accurate():
    study = Study()
    study.add("hard", [0.2, 0.21, 0.2])
    study.add("topk", [0.1, 0.1, 0.1])
    study.add("uniform", [0.0, 0.0, 0.0], control=True)  # the most accurate, but the control
    rows = summarise(study.collected)
    assert choose_reference(rows).mechanism == "topk"
    assert choose_reference(rows, "hard").mechanism == "hard"
    with pytest.raises(LookupError, match="reference mechanism 'soft' is not in the report"):
        choose_reference(rows, "soft")
    study.add("soft", [0.3, 0.3, 0.3])
    assert choose_reference(summarise(study.collected)).mechanism == "soft"


def test_the_json_entry_is_the_claim_and_why_withheld():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.6, 0.6, 0.6], converged=False)
    data = study.analyse()[3].as_dict()
    assert list(data) == ["task", "reference", "summary", "pairs", "withheld", "lines"]
    assert list(data["pairs"][0]) == ["mechanism", "reference", "text", "withheld"]
