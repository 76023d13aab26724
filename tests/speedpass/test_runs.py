"""``lightning-attn benchmark runs``: trained checkpoints timed side by side in one process, logged to MLflow,
and left out of the runs a report compares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lightning_attn import cli
from lightning_attn.config import compose
from lightning_attn.report.collect import collect
from lightning_attn.speedpass import Pass
from lightning_attn.tracking import tags as T
from lightning_attn.train import train

from ..helpers import tiny

# trains three runs: out of CI for its 20 minutes (-m slow; the pass after a comparison is CI's e2e compare test)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speedpass")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    for mechanism, seed in (("soft", 1), ("soft", 0), ("hard", 0)):
        train(
            compose(
                [
                    *tiny(mechanism=mechanism),
                    f"seed={seed}",
                    f"logger.tracking_uri={uri}",
                    "logger.experiment_name=pass",
                    f"output_dir={folder / 'outputs'}",
                ]
            )
        )
    return uri


def test_one_checkpoint_per_mechanism_timed_side_by_side_and_logged(experiment, capsys):
    code = cli.main(
        [
            "benchmark",
            "runs",
            "--experiment",
            "pass",
            "--tracking-uri",
            experiment,
            "--rounds",
            "3",
            "--steps",
            "5",
            "--batch",
            "4",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "translation: side by side, 3 interleaved rounds" in out
    assert "hard       greedy" in out and "hard       beam" in out and "soft       train" in out
    client = MlflowClient(experiment)
    (logged,) = client.search_runs(
        [client.get_experiment_by_name("pass").experiment_id], f"tags.`{T.ROLE}` = '{T.ROLE_SPEED_PASS}'"
    )
    result = Pass.from_json(Path(client.download_artifacts(logged.info.run_id, T.SPEED_PASS_FILE)).read_text())
    assert result.reference == "soft" and {f.mechanism for f in result.figures} == {"soft", "hard"}
    soft = next(f for f in result.figures if f.mechanism == "soft")
    assert client.get_run(soft.run_id).data.tags[T.SEED] == "0"  # the lowest seed stands for its mechanism
    assert set(result.ratios) == {"greedy", "beam", "train"} and result.ratio("train", "hard").level < 0.99
    assert logged.data.metrics["speed_pass/hard/train_mib"] > 0 and logged.data.params["steps"] == "5"
    # the pass is not one of the runs a report compares
    assert {r.run_id for r in collect(experiment, ["pass"], None).runs}.isdisjoint({logged.info.run_id})
    assert json.loads(result.to_json())["settings"]["batch"] == 4


def test_nothing_to_time_gets_one_line(experiment, capsys):
    assert cli.main(["benchmark", "runs", "--tracking-uri", experiment]) == 2
    assert "say what to time: --experiment NAME or --run RUN_ID" in capsys.readouterr().err
    assert cli.main(["benchmark", "runs", "--experiment", "nope", "--tracking-uri", experiment]) == 2
    assert capsys.readouterr().err.strip() == "error: no MLflow experiment 'nope'"
