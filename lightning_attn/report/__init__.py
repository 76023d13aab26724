"""Trade-off reports: runs read back from MLflow (and Optuna studies) → tables, plots, significance,
verdicts → HTML / Markdown / CSV / JSON.

:mod:`.collect` reads, :mod:`.analysis` computes, :mod:`.render` writes; :func:`build_report` is the
``lightning-attn report`` command.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..tracking import mask_secrets
from . import analysis, render
from .collect import attention_pictures, collect

FORMATS = ("html", "md", "csv", "json")


def build_report(tracking_uri: str, out: Path, experiments: list[str] | None = None,
                 studies: list[str] | None = None, formats: tuple[str, ...] = FORMATS,
                 bootstrap_samples: int = 1000) -> dict[str, Path]:  # fmt: skip
    """Write the report into ``out``; returns ``{format: path}``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; choose from: {', '.join(FORMATS)}")
    collected = collect(tracking_uri, experiments, studies)
    rows = analysis.summarise(collected)
    if not rows:
        raise LookupError(f"no finished runs with test metrics in {mask_secrets(tracking_uri)} "
                          f"(experiments: {', '.join(collected.experiments) or 'none'})")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    tasks = sorted({r.task for r in rows})
    comparisons = analysis.significance(rows, tracking_uri, bootstrap_samples)
    verdicts = analysis.verdicts(rows, comparisons)
    warnings = analysis.budget_warnings(rows)
    written: dict[str, Path] = {}
    if "csv" in formats:
        written["csv"] = out / "report.csv"
        render.write_csv(written["csv"], rows)
    if "json" in formats:
        written["json"] = out / "report.json"
        render.write_json(written["json"], rows, comparisons, verdicts, warnings)
    if "html" in formats or "md" in formats:
        plots = []
        for task in tasks:
            task_rows = [r for r in rows if r.task == task]
            plots += analysis.pareto_plots(task, task_rows, collected)
            plots.append(analysis.learning_curves(task, task_rows, tracking_uri))
        plots += analysis.importances(collected, rows)
        with tempfile.TemporaryDirectory() as tmp:
            gallery: dict[str, dict[str, list[Path]]] = {}
            for row in rows:
                pictures = attention_pictures(tracking_uri, row.best_run, Path(tmp) / row.best_run)
                if pictures:
                    gallery.setdefault(row.task, {})[row.mechanism] = pictures
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            source = (f"{len(collected.runs)} runs from {mask_secrets(tracking_uri)}, experiments "
                      f"{', '.join(collected.experiments)}; generated {stamp}")  # fmt: skip
            report = {"title": "Attention trade-offs", "source": source, "tasks": tasks, "rows": rows,
                      "comparisons": comparisons, "verdicts": verdicts, "warnings": warnings, "plots": plots,
                      "gallery": gallery}  # fmt: skip
            if "html" in formats:
                written["html"] = render.write_html(out, report)
            if "md" in formats:
                written["md"] = render.write_markdown(out, report)
    return written
