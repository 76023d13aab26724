"""Seeds until decided: the design a sweep file or `compare --until-decided` asks for, the looks a worker takes
(which mechanisms get another seed, which stop and why), and the looks a report applies to the runs it reads."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from lightning_attn.config import ConfigError
from lightning_attn.report import comparisons
from lightning_attn.report.aggregate import summarise
from lightning_attn.sweep import sequential
from lightning_attn.sweep.budget import enqueue_seeds, spent
from lightning_attn.sweep.spec import comparison, seeds_plan

from ..report.study import Study


def _spec(**kw):
    return comparison("translation", ["soft", "hard", "uniform"], [0, 1, 2], **kw)


def test_the_design_is_checked_and_planned():
    assert seeds_plan(_spec()) == [0, 1, 2]
    assert seeds_plan(_spec(until_decided=True, max_seeds=5)) == [0, 1, 2, 3, 4]
    assert seeds_plan(_spec(until_decided=True)) == list(range(8))  # the seeds and 5 more
    assert sequential.looks(_spec(until_decided=True, max_seeds=6)) == "3:6"
    with pytest.raises(ConfigError, match="at least 3"):
        comparison("translation", ["soft", "hard"], [0, 1], until_decided=True)
    with pytest.raises(ConfigError, match="fewer than the 3 seeds"):
        _spec(until_decided=True, max_seeds=2)
    with pytest.raises(ConfigError, match="set until_decided"):
        _spec(max_seeds=5)


def _studies(spec) -> dict[str, optuna.Study]:
    storage = optuna.storages.InMemoryStorage()
    return {f"{m}+seeds": optuna.create_study(study_name=f"c-{m}-seeds", storage=storage) for m in spec.mechanisms}


def _finish_round(studies: dict[str, optuna.Study]) -> None:
    for study in studies.values():
        while any(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False)):
            study.tell(study.ask(), 1.0)


def _tested(a: str, b: str, outcome: str, hopeless: bool = False) -> comparisons.PairTest:
    """A pair test that reports ``outcome`` (``better`` for ``a``, ``equivalent``, ``undecided``)."""
    test = comparisons.PairTest("translation", a, b, "test/bleu", 2.0, 1.0)

    class Seed:  # what outcome reads of a seed-level test
        delta = 1.0

    test.seed = Seed()
    test.p_adjusted = 0.01 if outcome == "better" else 0.5
    test.equivalence_p_adjusted = 0.01 if outcome == "equivalent" else 0.5
    test.hopeless = hopeless
    return test


def test_a_comparison_resumed_with_more_seeds_trains_those_it_lacks_never_one_twice():
    studies = _studies(comparison("translation", ["soft"], [0]))
    (study,) = studies.values()
    enqueue_seeds(comparison("translation", ["soft"], [0]), None, study, search_finished=True)
    _finish_round(studies)
    more = comparison("translation", ["soft"], [0, 1, 2])  # the file's seeds, then --resume
    assert enqueue_seeds(more, None, study, search_finished=True) is None
    waiting = [t.user_attrs["seed"] for t in study.get_trials() if t.state == TrialState.WAITING]
    assert waiting == [1, 2] and study.user_attrs[sequential.ROUND] == 3
    enqueue_seeds(more, None, study, search_finished=True)  # resumed again: nothing more
    assert len(study.get_trials()) == 3 and not spent(more, studies)
    _finish_round(studies)
    assert sorted(t.user_attrs["seed"] for t in study.get_trials()) == [0, 1, 2] and spent(more, studies)


def test_a_look_stops_the_decided_gives_the_undecided_another_seed_and_ends_at_the_cap(monkeypatch):
    spec = _spec(until_decided=True, max_seeds=4)
    studies = _studies(spec)
    for study in studies.values():
        assert enqueue_seeds(spec, None, study, search_finished=True) is None
        assert sorted(t.user_attrs["seed"] for t in study.get_trials()) == [0, 1, 2]  # the first round only
    looks_taken = []
    outcomes = [("soft", "hard", "undecided"), ("soft", "uniform", "better"), ("hard", "uniform", "better")]

    def pair_tests(rows, preds, margins=None, looks=None, **_):
        looks_taken.append(looks)
        return [_tested(*o) for o in outcomes]

    monkeypatch.setattr(comparisons, "pair_tests", pair_tests)
    monkeypatch.setattr("lightning_attn.report.collect.collect", lambda *a, **k: None)
    monkeypatch.setattr("lightning_attn.report.collect.predictions", lambda runs: {})
    monkeypatch.setattr("lightning_attn.report.aggregate.summarise", lambda collected: [])

    sequential.take_look(spec, studies, "unused")  # the round still runs: no look
    assert looks_taken == [] and all(sequential.next_action(s) == "ask" for s in studies.values())
    _finish_round(studies)
    sequential.take_look(spec, studies, "unused")
    assert looks_taken == [comparisons.Looks(3, 4)]
    soft, hard, uniform = (studies[f"{m}+seeds"] for m in ("soft", "hard", "uniform"))
    assert uniform.user_attrs[sequential.STOPPED] == "decided at 3 seeds" and sequential.next_action(uniform) == "done"
    for open_ in (soft, hard):  # soft vs hard is undecided: one more seed each
        assert [t.user_attrs["seed"] for t in open_.get_trials() if t.state == TrialState.WAITING] == [3]
        assert sequential.next_action(open_) == "ask" and open_.user_attrs[sequential.ROUND] == 4
    assert not spent(spec, studies)
    _finish_round(studies)
    sequential.take_look(spec, studies, "unused")  # still undecided, at the cap
    assert soft.user_attrs[sequential.STOPPED] == "the cap of 4 seeds, undecided against hard"
    assert spent(spec, studies) and sequential.summary(studies) == [
        "soft: the cap of 4 seeds, undecided against hard",
        "hard: the cap of 4 seeds, undecided against soft",
        "uniform: decided at 3 seeds",
    ]


def test_a_pair_more_seeds_would_likely_not_decide_stops_early(monkeypatch):
    spec = _spec(until_decided=True, max_seeds=8)
    studies = _studies(spec)
    for study in studies.values():
        enqueue_seeds(spec, None, study, search_finished=True)
    _finish_round(studies)
    outcomes = [("soft", "hard", "undecided", True), ("soft", "uniform", "better"), ("hard", "uniform", "better")]
    monkeypatch.setattr(comparisons, "pair_tests", lambda *a, **k: [_tested(*o) for o in outcomes])
    monkeypatch.setattr("lightning_attn.report.collect.collect", lambda *a, **k: None)
    monkeypatch.setattr("lightning_attn.report.collect.predictions", lambda runs: {})
    monkeypatch.setattr("lightning_attn.report.aggregate.summarise", lambda collected: [])
    sequential.take_look(spec, studies, "unused")
    stopped = studies["soft+seeds"].user_attrs[sequential.STOPPED]
    assert stopped == "3 seeds, undecided against hard: up to 8 seeds would likely not decide it (an estimate)"
    assert spent(spec, studies)


def test_the_report_takes_the_looks_the_runs_recorded():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05, 0.06, 0.05])
    study.add("hard", [0.25, 0.24, 0.26])  # stopped at the first look
    for run in study.collected.runs:
        run.tags = run.tags | {"seeds.looks": "3:5", "seed": run.run_id.rsplit("seed", 1)[-1]}
    rows = summarise(study.collected)
    assert comparisons.looks_of(rows) == comparisons.Looks(3, 5)
    (test,) = comparisons.pair_tests(rows, study.preds, samples=200, margins=comparisons.margins(rows))
    looks = comparisons.Looks(3, 5)
    assert test.looked == [3]  # hard has 3 runs: only the first look saw both
    assert looks.share(3) == looks.share(4) == 0.02 and looks.share(5) == pytest.approx(0.96)
    # the look at 3 seeds spends 2 % of alpha: its p (the test of the first 3 seeds of each) counts fifty times over
    first = Study()
    first.add("soft", [0.05, 0.06, 0.05])
    first.add("hard", [0.25, 0.24, 0.26])
    (at_3,) = comparisons.pair_tests(summarise(first.collected), first.preds, samples=200)
    assert test.evidence == pytest.approx(min(1.0, at_3.seed.p_value / 0.02))
    assert test.outcome == ("better" if test.p_adjusted < 0.05 else "undecided") and test.p_adjusted == test.evidence


@pytest.mark.slow  # half a minute of real training: -m slow, out of CI for its 20 minutes
def test_compare_until_decided_looks_at_real_runs_and_the_report_takes_the_same_looks():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .test_sweep_runs import RUN, mlflow_runs

    shared = [o for o in RUN if not o.startswith("attention.")]  # the uniform control has no attention settings
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "compare",
        "attention=soft,uniform",
        "seeds=0-2",
        "--until-decided",
        "--max-seeds",
        "4",
        "--devices",
        "cpu:2",
        *shared,
        "trainer.max_epochs=1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    said = [line for line in proc.stdout.splitlines() if line.startswith("until decided: ")]
    assert len(said) == 2 and all(("decided at" in s or "seeds" in s) for s in said), proc.stdout[-2000:]
    _, _, children = mlflow_runs("compare-translation")
    assert {r.data.tags["seeds.looks"] for r in children} == {"3:4"}
    seeds = {
        m: sorted(int(r.data.tags["seed"]) for r in children if r.data.tags["attention"] == m)
        for m in ("soft", "uniform")
    }
    assert all(s[:3] == [0, 1, 2] and len(s) <= 4 for s in seeds.values()), seeds
    report = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "report", "--out", "out", "--no-log", "--min-seeds", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    (test,) = json.loads(Path("out/report.json").read_text())["significance"]
    decided = all("decided at" in s for s in said)
    assert (test["outcome"] in ("better", "equivalent")) == decided, (test, said)
    assert test["looked"] == list(range(3, min(len(s) for s in seeds.values()) + 1))
