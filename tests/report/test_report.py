"""The trade-off report, built from a real tiny sweep's MLflow runs; checked against MLflow, and in a browser."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from PIL import Image

from lightning_attn.cli import main

from ..sweep.test_sweep_runs import studies, sweep, sweep_file

pytestmark = pytest.mark.e2e  # sweeps, servers, browsers, DDP, wheels: the CI suite


EVIL = "<script>alert('run')</script>"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A tiny sweep comparing soft and hard (2 trials each, then 2 seeds of each best), in its own folder."""
    folder = tmp_path_factory.mktemp("swept")
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        body = "mechanisms: {soft: {}, hard: {}}\nspace: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2}}\n"
        path = sweep_file("rep", body + "n_trials: 2\nseeds: [0, 1]\n")
        proc = sweep(str(path), "--devices", "cpu:2", "trainer.max_epochs=1", "task.attention_pictures_every=1")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        exp = client.get_experiment_by_name("rep")
        trial = next(r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("optuna.trial") == "0")
        client.set_tag(trial.info.run_id, "mlflow.runName", EVIL)  # a run name with HTML in it
        yield folder
    finally:
        os.chdir(cwd)


def report(folder: Path, *args: str) -> Path:
    out = folder / "report"
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert main(["report", "--experiment", "rep", "--tracking-uri", uri, "--out", str(out), *args]) == 0
    return out


def test_table_values_are_what_mlflow_holds(swept):
    out = report(swept)
    rows = {r["mechanism"]: r for r in csv.DictReader(io.StringIO((out / "report.csv").read_text()))}
    assert set(rows) == {"soft", "hard"}
    client = MlflowClient(f"sqlite:///{swept / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("rep").experiment_id])
    found = studies("rep", swept)
    for mechanism, row in rows.items():
        mine = [r for r in runs if r.data.tags.get("mechanism") == mechanism and "test/bleu" in r.data.metrics]
        best = max(mine, key=lambda r: r.data.metrics["test/bleu"])
        assert float(row["best"]) == pytest.approx(best.data.metrics["test/bleu"])
        assert row["best_run"] == best.info.run_id
        seeds = [r for r in mine if r.data.tags["optuna.study"] == f"rep-{mechanism}-seeds"]
        assert int(row["seeds"]) == len(seeds) == 2
        values = [r.data.metrics["test/bleu"] for r in seeds]
        assert float(row["mean"]) == pytest.approx(sum(values) / 2)
        assert row["ci95"] == "" and row["ci_note"] == "n = 2: no CI"  # two seeds: no interval to trust
        latency = [r.data.metrics["speed/infer_latency_ms_p50_b1"] for r in seeds]
        assert float(row["infer_ms_p50_b1"]) == pytest.approx(sum(latency) / 2)
        assert float(row["params"]) == seeds[0].data.metrics["speed/params"]
        trials = found[f"rep-{mechanism}"].get_trials()
        assert int(row["trials_complete"]) == sum(t.state.name == "COMPLETE" for t in trials)
    data = json.loads((out / "report.json").read_text())
    assert {c["a"] for c in data["significance"]} | {c["b"] for c in data["significance"]} == {"soft", "hard"}
    # one epoch each: every compared run stopped at the cap while improving, and two seeds are too few
    verdict = data["verdicts"]["translation"]
    assert verdict["withheld"] and verdict["summary"].startswith("inconclusive: ")
    for mechanism in ("soft", "hard"):
        diagnosis = data["diagnostics"]["translation"][mechanism]
        assert diagnosis["not_converged"] and diagnosis["too_few_seeds"] and diagnosis["compute_s"] > 0
        assert diagnosis["trials"] == 2 and set(diagnosis["curves"]) == set(diagnosis["not_converged"])
    assert data["importance_evaluator"].startswith("fANOVA")


def test_markdown_has_the_table_verdict_significance_and_plots(swept):
    out = report(swept)
    text = (out / "report.md").read_text()
    assert "| mechanism | best | mean |" in text and "| soft |" in text and "| hard |" in text
    assert "**Verdict** (reference: soft)" in text and "hard vs soft: inconclusive: " in text
    assert "**Diagnostics**" in text and "not converged: 2 of 2 runs" in text and "n = 2: no CI" in text
    assert "**Significance**" in text and "two-level bootstrap" in text and "**Per seed**" in text
    assert text.index("## Decision") < text.index("## translation")  # the decision comes first
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images and all((out / name).is_file() and (out / name).stat().st_size > 1000 for name in images)
    assert EVIL not in (out / "report.html").read_text()  # escaped, wherever the name appears
    # the attention gallery: each mechanism's alignment pictures of the same validation sentences
    assert (
        "![soft attention](attention_translation_soft_0.png)" in text and "(attention_translation_hard_0.png)" in text
    )
    assert (out / "report.html").read_text().count("<figure><img alt=") == 4  # 2 mechanisms x 2 sentences


def test_unknown_experiment_and_format_are_one_line_errors(swept, capsys):
    uri = f"sqlite:///{swept / 'mlflow.db'}"
    assert main(["report", "--experiment", "nope", "--tracking-uri", uri, "--out", "x"]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err and not Path("x").exists()
    assert main(["report", "--tracking-uri", uri, "--out", "x", "--format", "pdf"]) == 2
    assert "unknown format 'pdf'" in capsys.readouterr().err


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    return found


def test_html_renders_in_a_headless_browser(swept, tmp_path):
    chromium = _chromium()
    page = (report(swept, "--format", "html") / "report.html").as_uri()
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", page], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="main-svg"') >= 2  # plotly drew its figures
    # the decision opens the page; one epoch a run: withheld, with the reason
    assert '<section id="decision">' in dom.stdout and "No decision for translation: the runs are not comparable" in (
        dom.stdout
    )
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--window-size=1280,2000", f"--screenshot={shot}", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # not a blank page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_optuna_serves_the_sweep_studies(swept):
    port = _free_port()
    cmd = [sys.executable, "-m", "lightning_attn", "ui", "--optuna", "--port", str(port)]  # the one sweep here
    proc = subprocess.Popen(
        cmd, cwd=swept, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline, studies_found = time.monotonic() + 60, None
        while time.monotonic() < deadline and studies_found is None:
            try:
                body = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5))
                studies_found = {s["study_name"] for s in body["study_summaries"]}
            except OSError:
                time.sleep(1)
        assert studies_found == {"rep-soft", "rep-hard", "rep-soft-seeds", "rep-hard-seeds"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
