"""Which pairs are tested on which data: every pair of a task, the seed-level test with the bootstrap over test
items where both sides allow it, equivalence within the task's margin, all pairs adjusted as one family — and,
where a test cannot run, why."""

from __future__ import annotations

import pytest

from lightning_attn.report.aggregate import summarise
from lightning_attn.report.comparisons import difference, find_test, margins, pair_tests, parse_margin, row_items

from .study import Study, hypotheses


def _rows_and_tests(study: Study, margin: float | None = None):
    rows = summarise(study.collected)
    return {r.mechanism: r for r in rows}, pair_tests(
        rows, study.preds, samples=200, margins=None if margin is None else {"test/bleu": margin}
    )


def test_every_pair_is_tested_the_more_accurate_first():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])
    study.add("uniform", [0.7, 0.7, 0.7], control=True)
    _, tests = _rows_and_tests(study)
    assert [(t.a, t.b) for t in tests] == [("soft", "hard"), ("soft", "uniform"), ("hard", "uniform")]
    test = find_test(tests, "translation", "hard", "soft")
    assert test is tests[0] and test.significant and test.seed.n_items == 120 and test.seed_note == ""
    assert test.outcome == "better" and test.p_adjusted >= test.p_value and test.family == 3
    assert all(t.p_adjusted >= t.p_value for t in tests)  # adjusting never makes a p smaller
    assert difference(test, "soft") > 0 and difference(test, "hard") == -difference(test, "soft")
    assert find_test(tests, "captioning", "hard", "soft") is None


def test_identical_outputs_are_never_significant():
    study = Study()
    outputs = [hypotheses(0.2, seed=s) for s in range(3)]
    study.add("soft", [0.2] * 3, outputs=outputs)
    study.add("hard", [0.2] * 3, outputs=outputs)
    _, (test,) = _rows_and_tests(study)
    assert test.seed.p_value == 1.0 and test.p_adjusted == 1.0 and not test.significant
    assert test.outcome == "undecided"  # no margin: a tie is not shown to be equivalence


def test_without_predictions_the_test_runs_over_seeds_only_and_says_why():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])
    for run_id in [r for r in study.preds if r.startswith("hard")]:
        del study.preds[run_id]
    rows, (test,) = _rows_and_tests(study)
    assert row_items(rows["hard"], study.preds).missing == "hard logged no test predictions"
    assert test.seed is not None and test.seed.n_items == 0
    assert test.seed_note == "over seeds only: hard logged no test predictions"


def test_a_pair_that_cannot_be_tested_says_why():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25])  # one seed run
    study.add("local", [0.1, 0.1, 0.12])
    for run in study.collected.runs:
        if run.mechanism == "local":  # headlines another metric
            run.tags = run.tags | {"metric.headline": "test/bleu4"}
            run.metrics["test/bleu4"] = run.metrics.pop("test/bleu", 0.0)
    _, tests = _rows_and_tests(study)
    one_seed = find_test(tests, "translation", "soft", "hard")
    assert one_seed.seed is None and one_seed.p_value is None and one_seed.significant is None
    assert one_seed.seed_note == "the test over seeds needs at least 2 seed runs a side"
    other_metric = find_test(tests, "translation", "soft", "local")
    assert other_metric.seed is None
    assert other_metric.seed_note == "different metrics: test/bleu and test/bleu4" and other_metric.outcome is None
    data = other_metric.as_dict()
    assert data["seed"] is None and data["p_value"] is None and data["significant"] is None


def test_runs_that_name_no_item_statistics_are_tested_over_seeds_only():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])
    for run in study.collected.runs:
        if run.mechanism == "hard":
            run.tags = {k: v for k, v in run.tags.items() if k != "metric.item_statistics"}
    _, (test,) = _rows_and_tests(study)
    assert test.seed_note == "over seeds only: hard's runs record no per-item statistics of test/bleu"
    assert test.as_dict()["seed"]["test"] == "Welch's t-test over seeds"


def test_close_mechanisms_are_equivalent_within_a_wide_margin_and_undecided_within_a_narrow_one():
    study = Study()
    study.add("soft", [0.20, 0.21, 0.20])
    study.add("hard", [0.21, 0.20, 0.21])
    _, (wide,) = _rows_and_tests(study, margin=10.0)
    assert wide.outcome == "equivalent" and wide.equivalence_p_adjusted < 0.05 and not wide.significant
    assert wide.seeds_needed is None
    _, (narrow,) = _rows_and_tests(study, margin=0.01)
    assert narrow.outcome == "undecided" and narrow.equivalence_p_adjusted >= 0.05
    assert narrow.seeds_needed is None or narrow.seeds_needed > 3  # an estimate: more seeds than it has
    data = narrow.as_dict()
    assert data["outcome"] == "undecided" and "1 pair(s)" in data["correction"]
    assert data["seed"]["equivalence_p"] is not None and data["equivalence_p_adjusted"] is not None


def test_the_margin_comes_from_the_command_line_else_from_the_runs():
    study = Study(margin=None)
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])
    rows = summarise(study.collected)
    assert margins(rows) == {}  # these runs recorded none: no equivalence is claimed
    for run in study.collected.runs:
        run.tags = run.tags | {"metric.equivalence_margin": "1.0"}
    assert margins(rows) == {"test/bleu": 1.0}
    assert margins(rows, {"": 0.5}) == {"test/bleu": 0.5}
    assert margins(rows, {"test/bleu": 2.0}) == {"test/bleu": 2.0}
    assert parse_margin("0.5") == ("", 0.5) and parse_margin("test/bleu=2") == ("test/bleu", 2.0)
    for bad in ("0", "-1", "test/bleu=", "wide"):
        with pytest.raises(ValueError, match="--margin"):
            parse_margin(bad)
