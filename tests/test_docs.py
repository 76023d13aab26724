"""The published results are the toolkit's: every table in docs/results.md is its report.json rendered again."""

from __future__ import annotations

import json
from pathlib import Path

from lightning_attn.report import render

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_results_table_is_its_report_rendered_again():
    reports = sorted((DOCS / "results").glob("*/report.json"))
    assert reports, "docs/results/<name>/report.json: the reports behind docs/results.md"
    text = (DOCS / "results.md").read_text(encoding="utf-8")
    for path in reports:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = render.rows_from_json(data)
        for task in sorted({r.task for r in rows}):
            table = render.table_markdown([r for r in rows if r.task == task])
            assert table in text, f"{path}: the {task} table in docs/results.md is not the report's"
        for task, decision in data["decisions"].items():
            assert decision["text"] in text, f"{path}: the {task} decision in docs/results.md is not the report's"
        assert f"--out docs/results/{path.parent.name}" in text, f"{path}: no command in docs/results.md made it"
