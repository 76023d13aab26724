"""Diagnostics: what keeps a mechanism's figures from a fair comparison, as flags and as blockers."""

from __future__ import annotations

import pytest

from lightning_attn.report.aggregate import summarise
from lightning_attn.report.diagnostics import Blocker, budget_blockers, budget_warnings, diagnose, not_comparable

from .study import Study


def test_runs_that_hit_the_cap_while_improving_are_flagged_with_their_curves():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.6, 0.6, 0.6], converged=False)
    rows = summarise(study.collected)
    curves = {"hard-seed0": [1.0, 2.0], "soft-seed0": [3.0]}
    hard, soft = diagnose(rows, [], curves)
    assert hard.flags == ["not converged: 3 of 3 runs stopped while still improving"]
    assert hard.curves == {"hard-seed0": [1.0, 2.0]}  # the evidence: only the runs that did not converge
    assert soft.flags == [] and soft.curves == {} and soft.at_floor is None  # no control: no floor
    assert not_comparable(rows[0], hard) == [Blocker("not converged", "hard", 3, 3)]
    assert next(r for r in rows if r.mechanism == "hard").not_converged == 3


def test_runs_without_a_convergence_record_are_unknown():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    for run in study.collected.runs:
        run.metrics.pop("run/converged")
    (row,) = summarise(study.collected)
    (d,) = diagnose([row], [])
    assert d.unrecorded == ["soft-seed0", "soft-seed1", "soft-seed2"]
    assert d.flags == ["convergence unknown: 3 of 3 runs recorded none"]
    assert not_comparable(row, d) == [Blocker("unrecorded", "soft", 3, 3)]


def test_too_few_seeds_are_flagged_against_the_reports_minimum():
    study = Study()
    study.add("soft", [0.05, 0.1])
    (row,) = summarise(study.collected)
    (d,) = diagnose([row], [], min_seeds=3)
    assert d.too_few_seeds and d.flags == ["too few seeds: n = 2 (a CI and a verdict need 3)"]
    assert not_comparable(row, d) == [Blocker("too few seeds", "soft", 2, 3)]
    assert not diagnose([row], [], min_seeds=2)[0].too_few_seeds


def test_a_mechanism_no_better_than_the_control_is_flagged_at_the_floor():
    study = Study()
    study.add("soft", [0.05, 0.05, 0.06])
    study.add("lazy", [0.7, 0.7, 0.7])  # the same quality as the control
    study.add("uniform", [0.7, 0.7, 0.7], control=True)
    _, _, diagnoses, _ = study.analyse()
    assert diagnoses["lazy"].at_floor is True and diagnoses["lazy"].flags[0].startswith("at the floor")
    assert diagnoses["soft"].at_floor is False
    assert diagnoses["soft"].floor_note == "+80.61 BLEU against the uniform control (adjusted p < 0.001)"
    assert diagnoses["uniform"].control and diagnoses["uniform"].at_floor is None


def test_unequal_budgets_are_a_warning_and_a_blocker():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], trials=6)
    study.add("hard", [0.3, 0.3, 0.3], trials=2)
    hard, soft = summarise(study.collected)
    (d_hard, d_soft) = diagnose([hard, soft], [])
    assert d_soft.trials == 6 and d_soft.compute_s == pytest.approx(90.0)
    assert budget_warnings([hard, soft]) == [
        "translation: tuning budgets differ between mechanisms (trials: hard 2, soft 6)"
    ]
    assert budget_blockers(hard, soft) == [Blocker("unequal budgets", "hard", 2, 6, ("soft",))]
    assert budget_blockers(hard, hard) == []


def test_the_json_entry_carries_the_flags():
    study = Study()
    study.add("soft", [0.05, 0.1])
    (row,) = summarise(study.collected)
    data = diagnose([row], [])[0].as_dict()
    assert data["too_few_seeds"] is True and data["flags"] == ["too few seeds: n = 2 (a CI and a verdict need 3)"]
    assert list(data)[:2] == ["task", "mechanism"] and list(data)[-2:] == ["too_few_seeds", "flags"]


def test_a_blocker_of_a_kind_the_report_does_not_know_fails_where_it_is_made():
    from lightning_attn.report.diagnostics import Blocker
    from lightning_attn.report.kinds import BlockerKind

    assert Blocker("floor", "hard").kind is BlockerKind.FLOOR and f"{BlockerKind.FLOOR}" == "floor"
    with pytest.raises(ValueError, match="'flor' is not a valid BlockerKind"):
        Blocker("flor", "hard")
