"""Write the report: one self-contained HTML file (plotly inlined, pictures embedded), Markdown with PNG
plots beside it (matplotlib), and the raw table as CSV and JSON. Everything written is first written to
a temporary name and then renamed, so a report is either complete or absent."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from pathlib import Path

from ..tracking import mask_secrets
from .analysis import Comparison, Plot, Row

COLUMNS = [
    ("mechanism", "mechanism", "{}"),
    ("best", "best", "{:.2f}"),
    ("mean", "mean", "{:.2f}"),
    ("ci95", "± 95 % CI", "{:.2f}"),
    ("seeds", "seeds", "{}"),
    ("seed_std", "seed std", "{:.3f}"),
    ("failed_rate", "failed runs", "{:.0%}"),
    ("grad_norm_var", "grad-norm var", "{:.3g}"),
    ("attention_entropy", "attention entropy", "{:.2f}"),
    ("train_samples_per_s", "train samples/s", "{:.0f}"),
    ("infer_ms_p50_b1", "latency b1 (ms)", "{:.2f}"),
    ("infer_ms_p50_bB", "latency bB (ms)", "{:.2f}"),
    ("peak_rss_mb", "peak RSS (MiB)", "{:.0f}"),
    ("params", "params", "{:,.0f}"),
    ("budget", "trials ok/pruned/failed", "{}"),
]


def cells(row: Row) -> list[str]:
    data = row.as_dict() | {"budget": f"{row.trials_complete}/{row.trials_pruned}/{row.trials_failed}"}
    return ["—" if data[key] is None else fmt.format(data[key]) for key, _, fmt in COLUMNS]


SIG_HEADER = ["pair", "best", "p", "significant", "how"]


def significance_rows(tests: list[Comparison]) -> list[list[str]]:
    return [
        [f"{c.a} vs {c.b}", f"{c.a_score:.2f} vs {c.b_score:.2f}", "—" if c.p_value is None else f"{c.p_value:.4f}",
         {True: "yes", False: "no", None: "not tested"}[c.significant], c.note]
        for c in tests
    ]  # fmt: skip


def _write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


# ─── CSV / JSON ────────────────────────────────────────────────────────────────────────────────
def write_csv(path: Path, rows: list[Row]) -> None:
    buffer = io.StringIO()
    fields = list(rows[0].as_dict()) if rows else ["task", "mechanism"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())
    _write(path, buffer.getvalue())


def write_json(path: Path, rows: list[Row], comparisons: list[Comparison], verdicts: dict, warnings: list[str]) -> None:
    data = {
        "rows": [r.as_dict() for r in rows],
        "significance": [c.__dict__ | {"significant": c.significant} for c in comparisons],
        "verdicts": verdicts,
        "warnings": warnings,
    }
    _write(path, json.dumps(data, indent=2, default=str))


# ─── plots ─────────────────────────────────────────────────────────────────────────────────────
def plotly_figure(plot: Plot):
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in plot.series:
        if plot.kind == "bar":
            fig.add_trace(go.Bar(x=s.x, y=s.y, name=s.name, orientation="h"))
        elif s.mode == "band":
            fig.add_trace(go.Scatter(x=s.x + s.x[::-1], y=s.high + s.low[::-1], fill="toself", opacity=0.2,
                                     line={"width": 0}, showlegend=False, hoverinfo="skip", name=s.name))  # fmt: skip
            fig.add_trace(go.Scatter(x=s.x, y=s.y, mode="lines", name=s.name))
        else:
            fig.add_trace(go.Scatter(x=s.x, y=s.y, mode=s.mode, name=s.name, text=s.labels))
    fig.update_layout(title=plot.title, xaxis_title=plot.x_label, yaxis_title=plot.y_label, height=420,
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})  # fmt: skip
    return fig


def png(plot: Plot, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for s in plot.series:
        if plot.kind == "bar":
            ax.barh(s.y, s.x)
        elif s.mode == "band":
            ax.fill_between(s.x, s.low, s.high, alpha=0.2)
            ax.plot(s.x, s.y, label=s.name)
        elif s.mode == "lines":
            ax.plot(s.x, s.y, linestyle="--", linewidth=1, label=s.name)
        else:
            ax.scatter(s.x, s.y, label=s.name)
    ax.set_title(plot.title, fontsize=10)
    ax.set_xlabel(plot.x_label)
    ax.set_ylabel(plot.y_label)
    if plot.kind != "bar" and plot.series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    _write(path, buffer.getvalue())


# ─── Markdown ──────────────────────────────────────────────────────────────────────────────────
def _md_table(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *body]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc[1:]])


def write_markdown(out: Path, report: dict) -> Path:
    lines = [f"# {report['title']}", "", report["source"], ""]
    lines += [f"> **warning:** {w}" for w in report["warnings"]] + ([""] if report["warnings"] else [])
    for task in report["tasks"]:
        rows = [r for r in report["rows"] if r.task == task]
        lines += [f"## {task}", "", f"Accuracy: `{rows[0].metric}` (best run; mean ± 95 % CI over seeds).", ""]
        lines += [_md_table([c[1] for c in COLUMNS], [cells(r) for r in rows]), ""]
        lines += ["**Verdict**", ""] + [f"- {v}" for v in report["verdicts"].get(task, [])] + [""]
        tests = [c for c in report["comparisons"] if c.task == task]
        if tests:
            lines += ["**Significance** (p < 0.05)", "", _md_table(SIG_HEADER, significance_rows(tests)), ""]
        for i, plot in enumerate(p for p in report["plots"] if p.title.startswith(task)):
            name = f"{task}_{i}.png"
            png(plot, out / name)
            lines += [f"![{plot.title}]({name})", "", f"*{plot.note}*" if plot.note else "", ""]
        for mechanism, pictures in report["gallery"].get(task, {}).items():
            for j, picture in enumerate(pictures):
                name = f"attention_{task}_{mechanism}_{j}.png"
                _write(out / name, picture.read_bytes())
                lines += [f"![{mechanism} attention]({name})", ""]
    path = out / "report.md"
    _write(path, mask_secrets("\n".join(lines)) + "\n")
    return path


# ─── HTML ──────────────────────────────────────────────────────────────────────────────────────
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;padding:.6em;border-radius:4px}
.verdict li{margin:.3em 0}.gallery{display:flex;gap:1em;flex-wrap:wrap}.gallery figure{margin:0;max-width:48%}
.gallery img{max-width:100%;border:1px solid #ddd}.note{color:#666;font-size:.85em}"""


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def write_html(out: Path, report: dict) -> Path:
    e = html.escape
    title = e(report["title"])
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
             f"<style>{STYLE}</style></head><body><h1>{title}</h1><p>{e(report['source'])}</p>"]  # fmt: skip
    parts += [f"<p class='warn'><b>warning:</b> {e(w)}</p>" for w in report["warnings"]]
    first_plot = True
    for task in report["tasks"]:
        rows = [r for r in report["rows"] if r.task == task]
        parts.append(f"<h2>{e(task)}</h2><p>Accuracy: <code>{e(rows[0].metric)}</code> "
                     "(best run; mean ± 95 % CI over seeds).</p>")  # fmt: skip
        parts.append(_html_table([c[1] for c in COLUMNS], [cells(r) for r in rows]))
        parts.append("<h3>Verdict</h3><ul class='verdict'>"
                     + "".join(f"<li>{e(v)}</li>" for v in report["verdicts"].get(task, [])) + "</ul>")  # fmt: skip
        tests = [c for c in report["comparisons"] if c.task == task]
        if tests:
            parts.append("<h3>Significance (p &lt; 0.05)</h3>" + _html_table(SIG_HEADER, significance_rows(tests)))
        for plot in (p for p in report["plots"] if p.title.startswith(task)):
            fig = plotly_figure(plot)
            parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if first_plot else False))
            first_plot = False
            if plot.note:
                parts.append(f"<p class='note'>{e(plot.note)}</p>")
        gallery = report["gallery"].get(task, {})
        if gallery:
            parts.append("<h3>Attention gallery</h3><p class='note'>the same validation images, each mechanism's "
                         "best run, last epoch</p><div class='gallery'>")  # fmt: skip
            for mechanism, pictures in gallery.items():
                for picture in pictures:
                    data = base64.b64encode(picture.read_bytes()).decode()
                    parts.append(f"<figure><img alt='{e(mechanism)} attention' src='data:image/png;base64,{data}'>"
                                 f"<figcaption>{e(mechanism)}</figcaption></figure>")  # fmt: skip
            parts.append("</div>")
        else:
            parts.append("<p class='note'>Attention gallery: the best runs logged no attention pictures "
                         "(task.attention_pictures_every=0).</p>")  # fmt: skip
    parts.append("</body></html>")
    path = out / "report.html"
    _write(path, mask_secrets("".join(parts)))
    return path
