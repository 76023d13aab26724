"""The report's sentences, from the facts the policy modules hand over: one place, and each reads as intended."""

from __future__ import annotations

from collections import namedtuple

import pytest

from lightning_attn.report import wording
from lightning_attn.report.diagnostics import Blocker
from lightning_attn.report.significance import SeedTest


def test_units_are_written_as_their_metric_is_known():
    assert wording.unit_of("test/bleu") == "BLEU" and wording.unit_of("test/bleu4") == "BLEU-4"
    assert wording.unit_of("test/cider") == "CIDEr-D" and wording.unit_of("test/accuracy") == "accuracy"


def test_reasons_are_grouped_by_kind_in_order_and_each_said_once():
    reasons = [
        Blocker("not converged", "hard", 3, 3),
        Blocker("too few seeds", "soft", 2, 3),
        Blocker("not converged", "gumbel", 1, 3),
        Blocker("unequal budgets", "hard", 2, 6, ("soft",)),
        Blocker("not converged", "hard", 3, 3),
        Blocker("too few seeds", "hard", 1, 3),
    ]
    assert wording.explain(reasons) == (
        "hard did not converge in 3 of 3 runs, gumbel in 1 of 3 runs; raise trainer.max_epochs; "
        "too few seed runs (soft 2, hard 1; a verdict needs 3: seeds: [0, 1, 2]); "
        "unequal tuning budgets in trials (hard 2, soft 6)"
    )
    assert wording.explain([Blocker("too few seeds", "soft", 1, 2)]) == (
        "too few seed runs (soft 1; a verdict needs 2: seeds: [0, 1])"  # the report's minimum, not a default
    )
    assert wording.explain(
        [
            Blocker("unrecorded", "soft", 2, 3),
            Blocker("floor", "hard", against=("soft",)),
            Blocker("untestable", "hard", note="different metrics: a and b"),
            Blocker("untestable", "topk"),
        ]
    ) == (
        "no convergence record (soft 2 of 3 runs): rerun with this version; neither hard nor soft beats the "
        "control significantly; significance cannot be tested: different metrics: a and b; significance cannot "
        "be tested: no pair"
    )
    assert wording.explain([Blocker("untested", "soft", against=("hard", "topk"))]) == (
        "significance cannot be tested against hard, topk"
    )
    assert wording.explain([]) == ""


def _test(**fields) -> SeedTest:
    base = {
        "n_a": 3,
        "n_b": 3,
        "mean_a": 90.0,
        "mean_b": 88.0,
        "delta": 2.0,
        "ci_low": 0.5,
        "ci_high": 3.5,
        "welch_p": 0.012,
        "hedges_g": -2.345,
        "detectable": 1.5,
    }
    return SeedTest(**(base | fields))


def test_p_values_read_one_way():
    assert wording.p_text(0.0004) == "< 0.001" and wording.p_text(0.0123) == "0.012"
    assert wording.p_is(0.0004) == "< 0.001" and wording.p_is(0.0123) == "= 0.012"


def test_a_pair_reads_as_its_outcome():
    plain = wording.comparison("hard", "soft", -1.234, unit="BLEU", seeds=3, reference_seeds=3)
    assert plain == "hard vs soft: -1.23 BLEU (3 vs 3 seeds)"
    said = namedtuple("said", "kind value text")
    facts = [
        said("greedy", 1 / 1.5, "decoding 1.50× slower"),
        said("train", None, "training step not shown different"),
        said("compute", 2.5, "C"),
    ]
    full = wording.comparison(
        "hard", "soft", -1.234, unit="BLEU", seeds=3, reference_seeds=3, outcome="worse", facts=facts
    )
    assert full == plain + ": worse; speed pass: decoding 1.50× slower, training step not shown different; C"
    same = [
        said("greedy", None, "decoding not shown different"),
        said("train", None, "training step not shown different"),
    ]
    equal = wording.comparison(
        "hard", "soft", -0.2, unit="BLEU", seeds=3, reference_seeds=3, outcome="equivalent", margin=1.0, facts=same
    )
    assert (
        equal == "hard vs soft: -0.20 BLEU (3 vs 3 seeds): equivalent within ±1 BLEU; speed pass: no difference shown"
    )
    assert wording.outcome("equivalent", 1.0, "BLEU", None) == "equivalent within ±1 BLEU"
    assert (
        wording.outcome("undecided", 1.0, "BLEU", 7) == "undecided (about 7 seeds a side would decide it, an estimate)"
    )
    assert (
        wording.outcome("undecided", 1.0, "BLEU", None) == "undecided (no estimate of the seeds that would decide it)"
    )
    assert wording.inconclusive("hard", "soft", "why") == "hard vs soft: inconclusive: why"
    assert wording.pair_outcomes(
        [
            ("soft", "hard", "better", 1.0, None),
            ("soft", "topk", "equivalent", 1.0, None),
            ("hard", "topk", "undecided", 1.0, 9),
        ],
        "BLEU",
    ) == (
        " On accuracy, for all pairs together: soft better than hard; soft and topk equivalent within ±1 BLEU; "
        "hard vs topk undecided (about 9 seeds a side would decide it, an estimate)."
    )
    many = [(a, "uniform", "better", 1.0, None) for a in ("soft", "hard", "topk")] + [
        ("soft", "hard", "undecided", 1.0, 9),
        ("soft", "topk", "undecided", 1.0, 12),
        ("hard", "topk", "undecided", 1.0, None),
        ("topk", "local", "undecided", 1.0, 101),
    ]
    assert wording.pair_outcomes(many, "BLEU") == (
        " On accuracy, for all pairs together: soft, hard and topk better than uniform; 4 pairs undecided (the seeds "
        "each would need: the significance table)."
    )


def test_facts_read_with_their_test():
    assert wording.fact("greedy", 2.0) == "decoding 2.00× faster"
    assert wording.fact("train", 0.5) == "training step 2.00× slower"
    assert wording.fact("beam", None) == "beam search not shown different"
    assert wording.fact("seed spread", 3.04) == "seed spread 3.0× (observed, not tested)"
    assert wording.fact("seed spread", 0.25) == "seed spread 1/4.0 (observed, not tested)"
    assert wording.fact("failed runs", 0.5, reference=0.0) == "50% of runs failed (vs 0%)"
    assert wording.fact("compute", 2.5) == "2.5× the run time"
    with pytest.raises(ValueError, match="no wording"):
        wording.fact("colour", 1.0)


def test_summaries_name_a_winner_only_in_their_own_words():
    assert wording.most_accurate("soft", "test/bleu", 90.0, 1.0, 3) == (
        "most accurate: soft (test/bleu 90.00 ± 1.00 (95 % CI) over 3 seeds), better than every other mechanism, all "
        "pairs tested together"
    )
    tied = [("hard", "equivalent"), ("topk", "undecided"), ("local", "undecided")]
    assert wording.no_single_winner("soft", "test/bleu", 90.0, None, tied) == (
        "no single winner: soft (test/bleu 90.00) is equivalent within the margin to hard; undecided against topk, "
        "local"
    )
    assert wording.summary_withheld("x") == "inconclusive: x"


def test_flags_and_notes_of_a_diagnosis():
    assert wording.flags(
        2, 1, 3, seeds=2, min_seeds=3, at_floor=True, floor="+0.10 BLEU against the uniform control (p = 0.400)"
    ) == [
        "not converged: 2 of 3 runs stopped while still improving",
        "convergence unknown: 1 of 3 runs recorded none",
        "too few seeds: n = 2 (a CI and a verdict need 3)",
        "at the floor: +0.10 BLEU against the uniform control (p = 0.400)",
    ]
    assert wording.flags(0, 0, 3, seeds=3, min_seeds=3, at_floor=False, floor="") == []
    assert wording.floor_note(0.1, "BLEU", "uniform", 0.4) == (
        "+0.10 BLEU against the uniform control (adjusted p = 0.400)"
    )
    assert wording.floor_untested("uniform", None) == "not tested against uniform: no pair"
    assert wording.no_ci(2) == "n = 2: no CI"


def test_decisions_read_as_what_was_decided():
    assert wording.interval(1.234, None, None, 1) == "1.23 (n = 1)"
    assert wording.interval(1.234, 1.1, 1.3, 3) == "1.23 (95 % CI 1.1–1.3)"
    text = wording.pick(
        task="translation",
        mechanism="marginal",
        limits="lat <= 2",
        met=[("lat", "1.2 (n = 1)")],
        feasible=3,
        metric="test/bleu",
        score=99.0,
        tied=["soft"],
        resource="lat",
        saving=" (1.2 vs soft's 1.8, Welch p = 0.001)",
        beaten=[("hard", 0.002)],
        excluded={"local": "lat 2.6 fails <= 2"},
        borderlines=["soft (lat 1.9 (95 % CI 1.7–2.1))"],
        margin=1.0,
    )
    assert text == (
        "**Pick marginal** for translation: it meets lat <= 2 (lat 1.2 (n = 1)); on test/bleu it is equivalent within "
        "±1 to soft, and these are the most accurate of the 3 that meet it; it is the cheapest of them in lat (1.2 vs "
        "soft's 1.8, Welch p = 0.001). Less accurate: hard (adjusted p = 0.002). Excluded: local (lat 2.6 "
        "fails <= 2). Borderline (the interval crosses a limit): soft (lat 1.9 (95 % CI 1.7–2.1))."
    )
    common = {"task": "t", "metric": "m", "resource": "lat"}
    open_pair = wording.pick(
        **common,
        mechanism="soft",
        limits="lat <= 2",
        met=[("lat", "1.8")],
        feasible=2,
        score=90.0,
        undecided=[("hard", 6)],
    )
    assert open_pair == (
        "**Pick soft** for t: it meets lat <= 2 (lat 1.8), and of the 2 that do it is the most "
        "accurate (m 90.00). Undecided on accuracy: hard (about 6 seeds a side would decide it, an "
        "estimate)."
    )
    only = wording.pick(**common, mechanism="hard", limits="lat <= 1", met=[("lat", "0.9")], feasible=1, score=1.0)
    assert only == "**Pick hard** for t: it meets lat <= 1 (lat 0.9), the only mechanism that does."
    saving = wording.cost_saving(1.2, "soft", 1.25, p=0.4, clear=False)
    assert saving == " (1.2 vs soft's 1.25, not beyond noise: Welch p = 0.400)"
    assert wording.decision_withheld("t", "why") == "No decision for t: the runs are not comparable — why."
    plain = {"task": "t", "metric": "m", "best": "soft", "score": 9.0, "unit": "BLEU", "fastest": None, "cost": "c"}
    assert wording.undominated(**plain, names=["soft"], timed=True) == (
        "**soft** for t: no other mechanism is better on m or faster at decoding (the speed pass) without being worse "
        "on the other."
    )
    several = wording.undominated(**plain, names=["soft", "hard"], timed=True)
    assert (
        "soft is the most accurate (9.00 BLEU) and neither shown faster at decoding than the other (the speed pass)"
        in several
    )
    three = wording.undominated(**plain, names=["soft", "hard", "topk"], timed=True)
    assert (
        "and none shown faster at decoding than the rest (the speed pass). Say what you need to get one pick" in three
    )
    quick = wording.undominated(**plain | {"fastest": "hard"}, names=["soft", "hard", "topk"], timed=True)
    assert "hard the fastest of them at decoding (the speed pass shows it faster than soft, topk)" in quick
    untimed = wording.undominated(**plain, names=["soft", "hard"], timed=False)
    assert untimed.startswith("For t, no other mechanism is better on m than soft, hard") and "faster" not in untimed
    assert "No speed pass was found, so cost is not weighed" in untimed


def test_pooling_notes():
    assert wording.not_pooled("translation / soft", ["task.lr"], [("task.lr=0.1", 3), ("task.lr=0.2", 2)]) == (
        "translation / soft: runs differ in task.lr, so they are not pooled: compared as 2 variants "
        "([task.lr=0.1] 3 run(s); [task.lr=0.2] 2 run(s))"
    )
    assert wording.seed_repeated("translation / soft", "", ["0", "2"]) == (
        "translation / soft: seed 0, 2 ran more than once; the latest run counts"
    )
