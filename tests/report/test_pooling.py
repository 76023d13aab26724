"""Which runs a report pools as seeds: equal configs (the seed and where-it-logged aside) from any run kind and
any store; differing configs are named, never pooled."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from lightning_attn.report import build_report, grouping
from lightning_attn.report.aggregate import pooling_notes, summarise
from lightning_attn.report.collect import Collected, RunRecord, collect
from lightning_attn.tracking import tags as T

TAGS = {T.HEADLINE_METRIC: "test/bleu", T.VALIDATION_METRIC: "val/bleu", T.TASK: "translation"}


def record(mechanism: str, seed: int, bleu: float, kind: str = "run", **params: str) -> RunRecord:
    config = {
        "seed": str(seed),
        "task.lr": "0.002",
        "logger.tracking_uri": f"sqlite:///{seed}.db",
        "output_dir": f"out{seed}",
        "threads": str(seed),
    } | params
    run_id = f"{mechanism}-{seed}-{'-'.join(params.values())}"
    return RunRecord(
        run_id,
        run_id,
        "e",
        "translation",
        mechanism,
        "FINISHED",
        kind,
        {"test/bleu": bleu, "run/converged": 1.0},
        config,
        dict(TAGS, attention=mechanism),
    )


def test_runs_that_differ_only_in_seed_and_logging_pool_as_seeds():
    runs = [record("soft", 0, 90.0, kind="run"), record("soft", 1, 91.0, kind="seed"), record("soft", 2, 92.0)]
    found, notes = grouping.variants(runs)
    assert len(found) == 1 and found[0].label == "" and len(found[0].runs) == 3 and notes == []
    (row,) = summarise(Collected(runs=runs))
    assert row.mechanism == "soft" and row.seeds == 3 and row.mean == 91.0 and row.ci95 is not None


def test_runs_whose_configs_differ_are_variants_named_by_the_keys_that_differ():
    runs = [record("soft", s, 90.0 + s) for s in range(3)]
    runs += [record("soft", s, 80.0 + s, **{"task.lr": "0.01"}) for s in range(3)]
    rows = summarise(Collected(runs=runs))
    assert sorted(r.mechanism for r in rows) == ["soft [task.lr=0.002]", "soft [task.lr=0.01]"]
    assert all(r.seeds == 3 for r in rows)
    (note,) = pooling_notes(Collected(runs=runs))
    assert note.startswith("translation / soft: runs differ in task.lr, so they are not pooled: compared as 2 variants")


def test_runs_of_other_models_are_named_by_the_model_not_its_every_setting():
    gru = {"model.kind": "seq2seq", "model.embed_dim": "32", "choices.model": "seq2seq"}
    transformer = {"model.kind": "transformer", "model.width": "64", "choices.model": "transformer"}
    runs = [record("soft", s, 90.0 + s, **gru) for s in range(2)]
    runs += [record("soft", s, 85.0 + s, **transformer, **{"task.lr": "0.003"}) for s in range(2)]
    rows = summarise(Collected(runs=runs))
    expected = ["soft [model.kind=seq2seq, task.lr=0.002]", "soft [model.kind=transformer, task.lr=0.003]"]
    assert sorted(r.mechanism for r in rows) == expected


def test_a_seed_that_ran_twice_counts_once():
    runs = [record("soft", 0, 95.0), record("soft", 0, 90.0), record("soft", 1, 91.0)]
    found, notes = grouping.variants(runs)
    assert [r.accuracy for r in found[0].runs] == [95.0, 91.0]  # the first seen (MLflow: the newest) counts
    assert notes == ["translation / soft: seed 0 ran more than once; the latest run counts"]


def test_search_trials_are_not_seeds():
    trials = [record("soft", 0, 80.0 + i, kind="trial", **{"task.lr": str(i)}) for i in range(4)]
    (row,) = summarise(Collected(runs=trials))
    assert row.seeds == 1 and row.best == 83.0  # a search alone: its best run stands for it


def _store(path: Path, seeds: list[int]) -> str:
    """A real MLflow store holding finished soft runs of ``seeds`` (logged as ``train`` logs them)."""
    uri = f"sqlite:///{path}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("shared")
    for seed in seeds:
        run = client.create_run(experiment, tags=TAGS | {T.ATTENTION: "soft", T.SEED: str(seed)})
        for key, value in {"seed": seed, "task.lr": 0.002, "output_dir": str(path.parent)}.items():
            client.log_param(run.info.run_id, key, value)
        client.log_metric(run.info.run_id, "test/bleu", 90.0 + seed)
        client.log_metric(run.info.run_id, "run/converged", 1.0)
        client.set_terminated(run.info.run_id, "FINISHED")
    return uri


def test_two_stores_pool_into_one_report(tmp_path):
    a, b = _store(tmp_path / "a.db", [0, 1]), _store(tmp_path / "b.db", [2])
    collected = collect([a, b], ["shared"], None)
    assert {r.store for r in collected.runs} == {a, b} and len(collected.runs) == 3
    (row,) = summarise(collected)
    assert row.seeds == 3 and row.mean == 91.0
    written = build_report([a, b], tmp_path / "report", ["shared"], formats=("json", "md", "html"))
    assert written.results == 1
    md = written.paths["md"].read_text()
    assert "a.db" in md and "b.db" in md  # the report names every store it read
    data = json.loads(written.paths["json"].read_text())
    assert [(r["seed"], r["value"]) for r in data["per_seed"]] == [("0", "90.00"), ("1", "91.00"), ("2", "92.00")]
    # logged back: a report run in the experiment of each store, holding the files; the next report reads past it
    for uri in (a, b):
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("shared").experiment_id
        (report,) = [r for r in client.search_runs([experiment]) if r.data.tags.get(T.ROLE) == T.ROLE_REPORT]
        files = {f.path for f in client.list_artifacts(report.info.run_id, "report")}
        assert files == {"report/report.json", "report/report.md", "report/report.html"}
    again = build_report([a, b], tmp_path / "again", ["shared"], formats=("json",), log=False)
    assert again.results == 1 and len(collect([a, b], ["shared"], None).runs) == 3
