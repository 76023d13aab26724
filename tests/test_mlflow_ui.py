"""What a person sees in ``lightning-attn ui``: MLflow's UI, in a real headless browser, on a tiny comparison.

The experiment's page opens on its training runs (not MLflow 3's GenAI overview), each study's parent run is
listed with its runs nested under it, and the Dataset and Source columns say what data and command made them.

The screenshot in the docs (docs/images/mlflow-experiment.png) comes from this test::

    LIGHTNING_ATTN_SCREENSHOT=docs/images/mlflow-experiment.png python -m pytest -m e2e tests/test_mlflow_ui.py
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from PIL import Image

from .browser import Browser
from .helpers import TINY
from .report.test_report import _chromium, _free_port

pytestmark = pytest.mark.e2e  # sweeps, servers, browsers, DDP, wheels: the CI suite

NAME = "ui"
EXPANDER = 'button[data-component-id$="runnamecellrenderer.tsx_46"]'  # the +/- beside a parent run's name
ASSISTANT_CLOSE = 'button[data-component-id="mlflow.assistant.chat_panel.close"]'
#: where to keep the screenshot of the experiment page (the docs' picture); relative to where pytest starts
SCREENSHOT = os.environ.get("LIGHTNING_ATTN_SCREENSHOT") and Path(os.environ["LIGHTNING_ATTN_SCREENSHOT"]).resolve()


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """``lightning-attn compare`` of soft and hard, one tiny run each, in its own folder."""
    _chromium()  # without a browser: skipped before anything trains
    folder = tmp_path_factory.mktemp("ui")
    overrides = [o for o in TINY if not o.startswith("trainer.enable_progress_bar")]
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "compare",
        "attention=soft,hard",
        "seeds=0",
        "--devices",
        "cpu:2",
        "--name",
        NAME,
        *overrides,
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def ui(compared) -> str:
    """``lightning-attn ui`` on that folder's store; the experiment's link as the command prints it."""
    port = _free_port()
    cmd = [sys.executable, "-m", "lightning_attn", "ui", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # an earlier test's store: not ours
    proc = subprocess.Popen(
        cmd, cwd=compared, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and status != 200:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status
            except OSError:
                time.sleep(0.5)
        assert status == 200, "".join(lines)[-3000:]
        link = next((m[1] for line in lines if (m := re.match(rf"\s+experiment {NAME}: (\S+)", line))), None)
        assert link is not None, "".join(lines)[-3000:]
        yield link
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_experiment_opens_on_its_runs_with_data_and_source(compared, ui, tmp_path):
    client = MlflowClient(f"sqlite:///{compared / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(NAME)
    runs = client.search_runs([experiment.experiment_id])
    parents = {r.data.tags["mechanism"]: r for r in runs if r.data.tags.get("lightning_attn.role") == "seeds"}
    children = {r.data.tags["mechanism"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert set(parents) == set(children) == {"soft", "hard"}
    (speed_pass,) = [r for r in runs if r.data.tags.get("lightning_attn.role") == "speed_pass"]
    train = next(d.dataset for d in children["soft"].inputs.dataset_inputs if d.tags[0].value == "train")
    with Browser(_chromium(), tmp_path / "profile", tmp_path / "chromium.log") as browser:
        # 1. the link `lightning-attn ui` prints opens the experiment on its training runs
        assert ui.endswith(f"/#/experiments/{experiment.experiment_id}?workflowType=machine_learning")
        browser.open(ui)
        browser.wait_for(f"document.querySelectorAll('{EXPANDER}').length === 2", what="two parent runs, foldable")
        browser.wait_for("location.hash.includes('/runs') && document.title.startsWith('Runs')", what="the Runs tab")
        # 2. the Dataset column names the data (and the digest MLflow holds), the Source column the command
        page = browser.wait_for_text(
            *(p.info.run_name for p in parents.values()),
            f"synthetic ({train.digest})",
            "Train",
            "lightning-attn compare",
        )
        assert "Token Usage" not in page and "Traces 0" not in page  # not the GenAI overview
        assert not any(child.info.run_name in page for child in children.values())  # nested, folded
        # 3. unfolded, each parent shows its run; beside them, the speed pass the comparison ended with
        assert browser.click_all(EXPANDER) == 2
        browser.wait_for_text(*(c.info.run_name for c in children.values()), speed_pass.info.run_name)
        rows = browser.evaluate("[...document.querySelectorAll('.ag-center-cols-container [role=row]')].length")
        assert rows == len(parents) + len(children) + 1
        # 4. the picture of it: the docs' screenshot
        browser.click_all(ASSISTANT_CLOSE)  # MLflow's chat panel covers a third of the page
        browser.wait_for(f"!document.querySelector('{ASSISTANT_CLOSE}')", timeout=10, what="the chat panel closed")
        shot = browser.screenshot(tmp_path / "mlflow-experiment.png")
        colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # not a blank page
        if SCREENSHOT:
            shutil.copyfile(shot, SCREENSHOT)
        # 5. a parent run's page: its description says what it compares
        browser.open(ui.replace("?", f"/runs/{parents['soft'].info.run_id}?"))
        browser.wait_for_text("Comparison ui", "soft attention", "Compared with hard")
