"""docs/python.md runs as it is written: two mechanisms trained from Python on the built-in data, the report as
an object, its decision read, its tables as DataFrames, and its Jupyter view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # trains six small runs

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def test_the_python_page_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2, "docs/python.md: the example and its tables"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    found = namespace["found"]
    printed = capsys.readouterr().out
    assert found.decisions["translation"].text.replace("**", "")[:40] in printed.replace("**", "")
    table = namespace["table"]
    assert sorted(table["mechanism"]) == ["soft", "uniform"] and (table["seeds"] == 3).all()
    view = found._repr_html_()
    assert "<table>" in view and "Decision" in view and "<!doctype" not in view  # a fragment for a notebook
    assert {"significance", "per_seed", "decisions"} <= set(namespace["frames"])
