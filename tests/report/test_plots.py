"""Plot data: what each plot shows, as plain records — names kept as they are (escaping is render's)."""

from __future__ import annotations

from lightning_attn.report.aggregate import summarise
from lightning_attn.report.plots import frontier, importance_plots, learning_curves, pareto_plots

from .study import Study

EVIL = "<b>run</b>"


def test_the_frontier_keeps_the_points_no_other_beats_on_both():
    points = [(1.0, 10.0), (2.0, 12.0), (2.0, 11.0), (3.0, 11.5), (0.5, 5.0), (4.0, 13.0)]
    assert frontier(points) == [(0.5, 5.0), (1.0, 10.0), (2.0, 12.0), (4.0, 13.0)]


def _study() -> Study:
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05], latency=[2.0, 2.1, 1.9])
    study.add("hard", [0.3, 0.3, 0.31], latency=[1.0, 1.1, 0.9], converged=False)
    study.collected.runs[0].name = EVIL
    return study


def test_pareto_plots_hold_every_finished_run_and_the_seed_spread():
    study = _study()
    rows = summarise(study.collected)
    latency, spread = pareto_plots("translation", rows, study.collected)
    assert latency.title == "translation: accuracy vs inference latency" and latency.y_label == "test/bleu"
    names = [s.name for s in latency.series]
    assert names == ["hard", "hard frontier", "soft", "soft frontier"]
    soft = latency.series[2]
    assert soft.x == [2.0, 2.1, 1.9] and soft.labels[0] == EVIL  # plain text: render escapes it for HTML
    assert latency.note.startswith("every finished run") and latency.task == "translation"
    assert [s.name for s in spread.series] == ["hard (n = 3)", "soft (n = 3)", "frontier"]


def test_learning_curves_draw_the_runs_that_did_not_converge_on_their_own():
    study = _study()
    rows = summarise(study.collected)
    curves = {r.run_id: [1.0, 2.0, 3.0] for row in rows for r in row.compared}
    curves["soft-seed1"] = [1.0, 3.0]
    plot = learning_curves("translation", rows, curves, "val/bleu")
    bands = [s for s in plot.series if s.mode == "band"]
    assert [s.name for s in bands] == ["hard (3 run(s))", "soft (3 run(s))"]
    soft = bands[1]
    assert soft.x == [1, 2, 3] and soft.y == [1.0, 7 / 3, 3.0] and soft.low == [1.0, 2.0, 3.0] and soft.high[1] == 3.0
    dashed = [s.name for s in plot.series if s.mode == "dashed"]
    assert dashed == ["hard-seed0: still improving", "hard-seed1: still improving", "hard-seed2: still improving"]
    assert plot.y_label == "val/bleu" and "dashed" in plot.note


def test_importance_plots_one_bar_chart_per_study():
    study = _study()
    (plot,) = importance_plots(study.collected, {"e-soft": {"task.lr": 0.8, "task.dropout": 0.2}})
    assert plot.kind == "bar" and plot.title == "translation / soft: hyperparameter importance (e-soft)"
    assert plot.series[0].x == [0.8, 0.2] and plot.series[0].y == ["task.lr", "task.dropout"]
    assert plot.note.startswith("evaluator: fANOVA")
