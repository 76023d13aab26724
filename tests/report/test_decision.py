"""The decision a report ends in, on constructed runs with a known answer."""

from __future__ import annotations

import pytest

from lightning_attn.report.decision import Constraint, Objective, decide

from .study import Study


def _decide(study: Study, constraints: list[str], objective: Objective | None = None):
    rows, tests, diagnoses, _ = study.analyse()
    return decide(
        rows,
        tests,
        list(diagnoses.values()),
        constraints=[Constraint.parse(c) for c in constraints],
        objective=objective,
        speed=study.speed(),
    )["translation"]


def _four() -> Study:
    """soft and marginal equivalent at the top (within a margin of 10 BLEU), marginal cheaper; local is as accurate
    but too slow; hard is worse."""
    study = Study(margin=10.0)
    study.add("soft", [0.05, 0.06, 0.05], latency=[1.80, 1.82, 1.79])
    study.add("marginal", [0.05, 0.05, 0.06], latency=[1.20, 1.22, 1.19])
    study.add("local", [0.05, 0.06, 0.05], latency=[2.60, 2.55, 2.62])
    study.add("hard", [0.35, 0.36, 0.34], latency=[0.90, 0.92, 0.91])
    return study


def test_the_pick_meets_the_constraints_ties_on_accuracy_and_is_the_cheapest():
    decision = _decide(_four(), ["speed/infer_latency_ms_p50_b1<=2"])
    assert decision.pick == "marginal" and set(decision.candidates) == {"soft", "marginal"}
    assert set(decision.feasible) == {"soft", "marginal", "hard"} and list(decision.excluded) == ["local"]
    text = decision.text
    assert text.startswith("**Pick marginal** for translation: it meets speed/infer_latency_ms_p50_b1 <= 2 (")
    assert "95 % CI" in text  # each constraint with its interval, not only the mean
    assert "it is equivalent within ±10 to soft" in text and "cheapest of them" in text
    assert "Less accurate: hard (adjusted p < 0.001)" in text and "Excluded: local" in text


def test_a_mechanism_not_shown_equivalent_is_no_candidate_and_says_what_would_decide_it():
    study = Study(margin=1.0)  # too narrow to show with 3 seeds and 120 test sentences
    for mechanism, noises, latency in (
        ("soft", [0.05, 0.06, 0.05], 1.8),
        ("marginal", [0.05, 0.05, 0.06], 1.2),
        ("hard", [0.35, 0.36, 0.34], 0.9),
    ):
        study.add(mechanism, noises, latency=[latency, latency + 0.02, latency - 0.01])
    decision = _decide(study, ["speed/infer_latency_ms_p50_b1<=2"])
    assert decision.candidates == [decision.pick]  # the most accurate alone: nothing is shown as good as it
    assert "Undecided on accuracy: soft (" in decision.text and "will do" not in decision.text
    unconstrained = _decide(study, []).text
    assert "On accuracy, for all pairs together: marginal and soft better than hard; marginal vs soft undecided (" in (
        unconstrained
    )


def test_a_constraint_nothing_meets_says_so():
    decision = _decide(_four(), ["speed/infer_latency_ms_p50_b1<=0.5"])
    assert decision.pick is None and decision.text.startswith("No mechanism meets")


def test_without_constraints_it_names_the_undominated_set():
    decision = _decide(_four(), [])
    # nothing is beaten on both: hard is the fastest, the others tie on accuracy (local is slower, but not
    # significantly less accurate than anything: claiming it worse would be more than the data says)
    assert set(decision.candidates) == {"marginal", "hard", "soft", "local"} and decision.pick is None
    assert "is the most accurate" in decision.text and "hard the fastest" in decision.text
    assert "--constraint" in decision.text


def test_a_mechanism_beaten_on_both_accuracy_and_latency_is_left_out():
    study = _four()
    study.add("gumbel", [0.35, 0.34, 0.36], latency=[2.0, 2.1, 2.05])  # as bad as hard, and slower than marginal
    assert "gumbel" not in _decide(study, []).candidates


def test_the_decision_is_withheld_when_a_run_did_not_converge():
    study = _four()
    study.add("gumbel", [0.05, 0.05, 0.05], latency=[1.0, 1.0, 1.0], converged=False)
    decision = _decide(study, ["speed/infer_latency_ms_p50_b1<=2"])
    assert decision.pick is None and decision.withheld.startswith("gumbel did not converge in 3 of 3 runs")
    assert decision.text.startswith("No decision for translation: the runs are not comparable")


def test_constraints_and_objectives_are_read_or_refused_in_one_line():
    c = Constraint.parse(" speed/peak_rss_mb >= 1e3 ")
    assert (c.metric, c.op, c.limit) == ("speed/peak_rss_mb", ">=", 1000.0) and c.holds(1000.0)
    with pytest.raises(ValueError, match="write METRIC<=VALUE"):
        Constraint.parse("latency below 2")
    assert Objective.parse("speed/params:min") == Objective("speed/params", maximize=False)
    with pytest.raises(ValueError, match="METRIC:max or METRIC:min"):
        Objective.parse("test/bleu:most")


def test_a_constraint_on_the_speed_pass_is_judged_on_its_figures_and_the_saving_on_its_ratio():
    decision = _decide(_four(), ["speed_pass/greedy_ms<=2"])
    # the pass times soft at 1.8 ms a token, marginal 1.2, local 2.6, hard 0.9 (each within 1 % over 15 rounds)
    assert decision.pick == "marginal" and list(decision.excluded) == ["local"]
    assert "(speed_pass/greedy_ms 1.21 (95 % CI 1.2–1.21))" in decision.text  # the median and its interval
    # the tie-break's saving, as the pass found it
    assert (
        "(1.21 vs soft's 1.81; speed pass: marginal 1.49× faster than soft (time ratio 0.66×–0.68×))" in decision.text
    )
    # without a speed pass the figure does not exist: nothing meets the constraint, and the decision says why
    study = Study(margin=10.0)
    for mechanism in ("soft", "marginal"):
        study.add(mechanism, [0.05, 0.06, 0.05])
    untimed = _decide(study, ["speed_pass/greedy_ms<=2"])
    assert untimed.pick is None and untimed.text.startswith("No mechanism meets")
