"""Aggregation: the Row record, built by keyword from pooled runs — means, CIs, per-seed values, budgets."""

from __future__ import annotations

import dataclasses

import pytest

from lightning_attn.report import render
from lightning_attn.report.aggregate import Row, by_task, failures, row_of, summarise
from lightning_attn.report.collect import Collected, RunRecord

from .study import Study

TAGS = {"metric.headline": "test/bleu", "mechanism": "soft", "task": "translation"}


def run(
    run_id: str,
    bleu: float | None,
    *,
    kind: str = "seed",
    status: str = "FINISHED",
    state: str | None = None,
    wall: float = 10.0,
    **metrics: float,
) -> RunRecord:
    values = ({} if bleu is None else {"test/bleu": bleu}) | {k.replace("__", "/"): v for k, v in metrics.items()}
    return RunRecord(
        run_id,
        run_id,
        "e",
        "translation",
        "soft",
        status,
        kind,
        values,
        {"seed": run_id[-1]},
        TAGS,
        optuna_state=state,
        wall_s=wall,
    )


def test_a_row_is_built_by_keyword_only():
    fields = {
        f.name: None
        for f in dataclasses.fields(Row)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    row = Row(**fields)
    assert row.compared == [] and row.control is False
    with pytest.raises(TypeError):
        Row(*fields.values())  # 25 positional arguments: not any more


def test_a_row_from_pooled_seed_runs_has_their_mean_ci_and_per_seed_values():
    seeds = [
        run("s0", 90.0, speed__infer_latency_ms_p50_b1=2.0, speed__infer_latency_ms_p50_b32=8.0),
        run("s1", 92.0, speed__infer_latency_ms_p50_b1=4.0, speed__infer_latency_ms_p50_b32=10.0),
        run("s2", 94.0, stability__grad_norm_std=2.0),
    ]
    trials = [
        run("t0", 80.0, kind="trial", state="COMPLETE"),
        run("t1", None, kind="trial", status="KILLED", state="PRUNED"),  # neither success nor failure
        run("t2", None, kind="trial", status="FAILED", state="FAIL", wall=5.0),
    ]
    every = seeds + trials
    row = row_of(
        "translation", "soft", every, results=[r for r in every if r.accuracy is not None], compared=seeds, min_seeds=3
    )
    assert (row.best, row.best_run, row.metric, row.seeds, row.mean) == (94.0, "s2", "test/bleu", 3, 92.0)
    assert row.ci95 == pytest.approx(4.968, abs=1e-3) and row.ci_note == "" and row.seed_std == pytest.approx(2.0)
    assert row.values("test/bleu") == [90.0, 92.0, 94.0]
    assert row.values("speed/infer_latency_ms_p50_b1") == [2.0, 4.0]  # the runs that logged it
    assert row.infer_ms_p50_b1 == 3.0 and row.infer_ms_p50_bB == 9.0 and row.grad_norm_var == 4.0
    assert (row.trials_complete, row.trials_pruned, row.trials_failed, row.trials) == (1, 1, 1, 3)
    assert row.failed_rate == pytest.approx(1 / 5) and row.compute_s == 55.0 and row.runs == 4
    assert row.peak_rss_mb is None and row.align_aer is None and not row.control
    data = row.as_dict()
    assert "compared" not in data and data["compared_runs"] == ["s0", "s1", "s2"]
    assert list(data)[:3] == ["task", "mechanism", "metric"]  # the CSV's and JSON's column order


def test_two_seeds_print_no_confidence_interval():
    study = Study()
    study.add("soft", [0.05, 0.1])
    study.add("hard", [0.3, 0.35])
    soft = next(r for r in summarise(study.collected, 3) if r.mechanism == "soft")
    assert soft.ci95 is None and soft.ci_note == "n = 2: no CI" and soft.seed_std is not None
    ci_cell = render.cells(soft)[[c[0] for c in render.COLUMNS].index("ci95")]
    assert ci_cell == "n = 2: no CI"
    assert next(r for r in summarise(study.collected, 2) if r.mechanism == "soft").ci95 is not None


def test_failed_runs_are_listed_with_their_reason():
    failed = run("f0", None, status="FAILED")
    failed.tags = TAGS | {"failure_reason": "CUDA out of memory"}
    found = failures(Collected(runs=[failed, run("f1", None, status="FAILED"), run("s0", 90.0)]))
    assert [(f.run_id, f.reason) for f in found] == [("f0", "CUDA out of memory"), ("f1", "no reason recorded")]


def test_rows_by_task_keep_their_order():
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.2, 0.2, 0.21])
    rows = summarise(study.collected)
    assert [r.mechanism for r in rows] == ["hard", "soft"]  # sorted by task, then mechanism
    assert list(by_task(rows)) == ["translation"] and by_task(rows)["translation"] == rows
