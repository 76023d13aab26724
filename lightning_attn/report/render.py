"""Write the report: one self-contained HTML file (plotly inlined, pictures embedded), Markdown with PNG
plots beside it (matplotlib), and the raw table as CSV and JSON. Everything written is first written to
a temporary name and then renamed, so a report is either complete or absent."""

from __future__ import annotations

import base64
import csv
import dataclasses
import html
import io
import json
import os
import re
from pathlib import Path

from ..tracking import mask_secrets
from . import wording
from .aggregate import Failure, Row
from .comparisons import PairTest
from .diagnostics import Diagnosis
from .document import Report
from .plots import Plot
from .speed import SpeedPass
from .verdict import TaskVerdict

COLUMNS = [
    ("mechanism", "mechanism", "{}"),
    ("best", "best", "{:.2f}"),
    ("mean", "mean", "{:.2f}"),
    ("ci95", "± 95 % CI", "{:.2f}"),
    ("seeds", "seeds", "{}"),
    ("seed_std", "seed std", "{:.3f}"),
    ("failed_rate", "failed runs", "{:.0%}"),
    ("grad_norm_var", "grad-norm var", "{:.3g}"),
    ("estimator_var", "estimator var", "{:.3g}"),
    ("attention_entropy", "attention entropy", "{:.2f}"),
    ("zero_share", "zero weights", "{:.0%}"),
    ("attended_positions", "positions read", "{:.2f}"),
    ("align_aer", "AER", "{:.3f}"),
    ("train_samples_per_s", "train samples/s (in training)", "{:.0f}"),
    ("infer_ms_p50_b1", "latency b1 (ms, in training)", "{:.2f}"),
    ("infer_ms_p50_bB", "latency bB (ms, in training)", "{:.2f}"),
    ("peak_rss_mb", "peak RSS (MiB)", "{:.0f}"),
    ("rss_growth_mb", "RSS growth (MiB)", "{:.0f}"),
    ("params", "params", "{:,.0f}"),
    ("budget", "trials ok/pruned/failed", "{}"),
    ("compute_s", "compute (s)", "{:.0f}"),
]


def cells(row: Row) -> list[str]:
    data = row.as_dict() | {"budget": f"{row.trials_complete}/{row.trials_pruned}/{row.trials_failed}"}
    if row.ci95 is None:
        data["ci95"] = row.ci_note or None  # "n = 2: no CI": never an interval from too few seeds
    return [
        "—"
        if data[key] is None
        else (data[key] if isinstance(data[key], str) and key == "ci95" else fmt.format(data[key]))
        for key, _, fmt in COLUMNS
    ]


def speed_header(timed: SpeedPass) -> list[str]:
    units = {"greedy": "ms/token", "beam": "ms/token", "train": "ms/step"}
    kinds = timed.kinds()
    return ["mechanism", *(f"{k} {units[k]}" for k in kinds), *(f"{k} MiB" for k in kinds)]


def speed_rows(timed: SpeedPass) -> list[list[str]]:
    """The speed pass's figures: each mechanism's time and tensor memory at each kind of work."""
    kinds = timed.kinds()
    return [
        [r["mechanism"], *(f"{r[f'{k}_ms']:.3g}" for k in kinds), *(f"{r[f'{k}_mib']:.3g}" for k in kinds)]
        for r in timed.rows()
    ]


def speed_lines(timed: SpeedPass) -> list[str]:
    """Each mechanism against the pass's reference, in the pass's words."""
    return [
        f"{wording.SPEED_WORK[k]}: {r[f'{k}_vs_reference']}"
        for r in timed.rows()
        for k in timed.kinds()
        if r.get(f"{k}_vs_reference")
    ]


DIAG_HEADER = ["mechanism", "compared runs", "converged", "seeds", "at the floor", "trials", "compute (s)", "flags"]


def diagnosis_rows(diagnoses: list[Diagnosis]) -> list[list[str]]:
    out = []
    for d in diagnoses:
        converged = d.compared_runs - len(d.not_converged) - len(d.unrecorded)
        floor = "control" if d.control else {True: "yes", False: "no", None: "—"}[d.at_floor]
        if d.floor_note and not d.control:
            floor += f" ({d.floor_note})"
        seeds = f"{d.seeds}" + (" (too few)" if d.too_few_seeds else "")
        out.append(
            [
                d.mechanism,
                str(d.compared_runs),
                f"{converged} of {d.compared_runs}",
                seeds,
                floor,
                str(d.trials),
                f"{d.compute_s:.0f}",
                "; ".join(d.flags) or "none",
            ]
        )
    return out


SEED_HEADER = ["mechanism", "seed", "value", "epochs", "best epoch", "converged", "run"]


def seed_rows(rows: list[Row]) -> list[list[str]]:
    """Each compared run of each row: the seed, its value of the metric, how its training ended."""
    out = []
    for row in rows:
        for run in sorted(row.compared, key=lambda r: int(r.params.get("seed", r.tags.get("seed", "0")) or 0)):
            epochs, best = run.metrics.get("run/epochs"), run.metrics.get("run/best_epoch")
            converged = {True: "yes", False: "no", None: "—"}[run.converged]
            out.append(
                [
                    row.mechanism,
                    run.params.get("seed", run.tags.get("seed", "?")),
                    f"{run.accuracy:.2f}",
                    "—" if epochs is None else f"{epochs:.0f}",
                    "—" if best is None else f"{best:.0f}",
                    converged,
                    run.name,
                ]
            )
    return out


FAIL_HEADER = ["task", "mechanism", "run", "kind", "reason"]


def failure_rows(failures: list[Failure]) -> list[list[str]]:
    return [[f.task, f.mechanism, f.run, f.kind, f.reason.splitlines()[0][:300]] for f in failures]


SIG_HEADER = [
    "pair",
    "mean",
    "Δ (95 % CI over seeds); Hedges' g",
    "p",
    "adjusted p",
    "equivalence p (adjusted)",
    "outcome",
    "power",
    "note",
]


def significance_rows(tests: list[PairTest]) -> list[list[str]]:
    out = []
    for t in tests:
        s = t.seed
        delta = "—" if s is None else f"{s.delta:+.2f} ({s.ci_low:+.2f} to {s.ci_high:+.2f})"
        if s is not None and s.hedges_g is not None:
            delta += f"; g {abs(s.hedges_g):.1f}"
        n = "" if s is None else f" (n = {s.n_a}, {s.n_b}" + (f"; {s.n_items} items)" if s.n_items else ")")
        p = "—" if s is None else f"{wording.p_text(s.p_value)}{n}"
        adjusted = "—" if t.p_adjusted is None else wording.p_text(t.p_adjusted)
        equivalence = (
            "—"
            if s is None or s.equivalence_p is None
            else f"{wording.p_text(s.equivalence_p)} ({wording.p_text(t.equivalence_p_adjusted)}), ±{s.margin:g}"
        )
        if s is None:
            outcome = "not tested"
        elif s.delta == 0:
            outcome = "tie"
        else:
            outcome = wording.outcome(t.outcome, s.margin, wording.unit_of(t.metric), t.seeds_needed)
        power = "—" if s is None or s.detectable is None else f"4 in 5 at {s.detectable:.2f} (estimate)"
        out.append(
            [
                f"{t.a} vs {t.b}",
                f"{t.a_mean:.2f} vs {t.b_mean:.2f}",
                delta,
                p,
                adjusted,
                equivalence,
                outcome,
                power,
                t.seed_note,
            ]
        )
    return out


def _write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(tmp, path)


# ─── CSV / JSON ────────────────────────────────────────────────────────────────────────────────
def write_csv(out: Path, rows: list[Row]) -> Path:
    buffer = io.StringIO()
    fields = list(rows[0].as_dict()) if rows else ["task", "mechanism"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict() | {"compared_runs": " ".join(row.as_dict()["compared_runs"])})
    path = out / "report.csv"
    _write(path, buffer.getvalue())
    return path


def per_seed_records(rows: list[Row]) -> list[dict]:
    """One record per seed run of ``rows``: the per-seed table's columns and the task (the JSON's ``per_seed``)."""
    return [dict(zip(SEED_HEADER, cells)) | {"task": row.task} for row in rows for cells in seed_rows([row])]


def write_json(out: Path, report: Report) -> Path:
    data = {
        "rows": [r.as_dict() for r in report.rows],
        "diagnostics": {
            task: {d.mechanism: d.as_dict() for d in report.diagnoses if d.task == task} for task in report.tasks
        },
        "significance": [t.as_dict() for t in report.tests],
        "verdicts": {task: v.as_dict() for task, v in report.verdicts.items()},
        "decisions": {task: d.as_dict() for task, d in report.decisions.items()},
        "per_seed": per_seed_records(report.rows),
        "constraints": report.constraints,
        "warnings": report.warnings,
        "failures": [dataclasses.asdict(f) for f in report.failures],
        "min_seeds": report.min_seeds,
        "importance_evaluator": report.importance_evaluator,
        "speed_pass": {task: timed.data for task, timed in report.speed.items()},
    }
    path = out / "report.json"
    _write(path, mask_secrets(json.dumps(data, indent=2, default=str)))
    return path


# ─── plots ─────────────────────────────────────────────────────────────────────────────────────
def plotly_figure(plot: Plot):
    """``plot`` as a plotly figure. plotly renders names, hover text, category labels and titles as HTML:
    each is escaped here (run and mechanism names are text)."""
    import plotly.graph_objects as go

    e = html.escape
    fig = go.Figure()
    for s in plot.series:
        name = e(s.name)
        if plot.kind == "bar":
            fig.add_trace(go.Bar(x=s.x, y=[e(str(v)) for v in s.y], name=name, orientation="h"))
        elif s.mode == "band":
            fig.add_trace(
                go.Scatter(
                    x=s.x + s.x[::-1],
                    y=s.high + s.low[::-1],
                    fill="toself",
                    opacity=0.2,
                    line={"width": 0},
                    showlegend=False,
                    hoverinfo="skip",
                    name=name,
                )
            )
            fig.add_trace(go.Scatter(x=s.x, y=s.y, mode="lines", name=name))
        elif s.mode == "dashed":
            fig.add_trace(go.Scatter(x=s.x, y=s.y, mode="lines", name=name, line={"dash": "dash", "width": 1}))
        else:
            labels = None if s.labels is None else [e(label) for label in s.labels]
            fig.add_trace(go.Scatter(x=s.x, y=s.y, mode=s.mode, name=name, text=labels))
    fig.update_layout(
        title=e(plot.title),
        xaxis_title=e(plot.x_label),
        yaxis_title=e(plot.y_label),
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
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
        elif s.mode in ("lines", "dashed"):
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
def table_markdown(rows: list[Row]) -> str:
    """The report's main table of ``rows`` (one task's) in Markdown, as ``report.md`` has it."""
    return _md_table([c[1] for c in COLUMNS], [cells(r) for r in rows])


def rows_from_json(data: dict) -> list[Row]:
    """The table rows of a ``report.json`` (their runs aside): what re-renders a committed report's tables."""
    return [Row(**{k: v for k, v in r.items() if k != "compared_runs"}) for r in data["rows"]]


def decision_lines(report: Report) -> list[str]:
    """The decision paragraph of each task, and what it was asked (constraints) — Markdown emphasis kept."""
    head = [wording.constraints_asked(report.constraints)] if report.constraints else []
    return head + [d.text for d in report.decisions.values()]


def _bold(escaped: str) -> str:
    """``**x**`` (the decision's Markdown emphasis) as <b>, in text already escaped for HTML."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)


def _md_table(header: list[str], body: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [header, *body]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc[1:]])


def write_markdown(out: Path, report: Report) -> Path:
    """``report.md`` in ``out``, its plots and attention pictures as PNG files beside it."""
    path = out / "report.md"
    _write(path, mask_secrets(_walk(report, _Markdown(out))) + "\n")
    return path


class _Markdown:
    """The Markdown page, part by part (:func:`_walk` says which parts, in which order)."""

    def __init__(self, out: Path):
        self.out, self.lines = out, []

    def start(self, report: Report) -> None:
        self.lines += [f"# {report.title}", "", report.source, ""]
        self.lines += ["## Decision", ""] + [part for line in decision_lines(report) for part in (line, "")]
        self.lines += [f"> **warning:** {w}" for w in report.warnings] + ([""] if report.warnings else [])

    def task(self, task: str, metric: str, note: str) -> None:
        self.lines += [f"## {task}", "", f"Accuracy: `{metric}` {note}", ""]

    def block(
        self, title: str | None, header: list[str], body: list[list[str]], *, said: list[str] = (), note: str = ""
    ) -> None:
        self.lines += ([f"**{title}**", ""] if title else []) + [_md_table(header, body), ""]
        self.lines += [f"- {line}" for line in said] + ([""] if said else [])
        self.lines += [f"*{note}*", ""] if note else []

    def verdict(self, verdict: TaskVerdict) -> None:
        self.lines += [f"**Verdict** (reference: {verdict.reference})", ""] + [f"- {v}" for v in verdict.lines] + [""]

    def plots(self, task: str, plots: list[Plot]) -> None:
        for i, plot in enumerate(plots):
            name = f"{task}_{i}.png"
            png(plot, self.out / name)
            self.lines += [f"![{plot.title}]({name})", "", f"*{plot.note}*" if plot.note else "", ""]

    def gallery(self, task: str, gallery: dict[str, list[Path]]) -> None:
        for mechanism, pictures in gallery.items():
            for j, picture in enumerate(pictures):
                name = f"attention_{task}_{mechanism}_{j}.png"
                _write(self.out / name, picture.read_bytes())
                self.lines += [f"![{mechanism} attention]({name})", ""]

    def failures(self, failures: list[Failure]) -> None:
        self.lines += ["## Failed runs", "", _md_table(FAIL_HEADER, failure_rows(failures)), ""]

    def finish(self) -> str:
        return "\n".join(self.lines)


def _walk(report: Report, page: _Markdown | _Html) -> str:
    """The report's parts in the order both pages show them; ``page`` writes each in its format."""
    page.start(report)
    for section in report.sections():
        page.task(section.task, section.rows[0].metric, wording.accuracy_note(report.min_seeds))
        page.block(None, [c[1] for c in COLUMNS], [cells(r) for r in section.rows])
        page.block("Diagnostics", DIAG_HEADER, diagnosis_rows(section.diagnoses), note=wording.FLAGS_NOTE)
        page.block("Per seed", SEED_HEADER, seed_rows(section.rows))
        page.verdict(section.verdict)
        if (timed := section.speed) is not None:
            note = wording.speed_note(timed.settings)
            page.block("Speed pass", speed_header(timed), speed_rows(timed), said=speed_lines(timed), note=note)
        if section.tests:
            note = f"{wording.correction(len(section.tests))}. {wording.SIG_NOTE}"
            page.block("Significance", SIG_HEADER, significance_rows(section.tests), note=note)
        page.plots(section.task, section.plots)
        page.gallery(section.task, section.gallery)
    if report.failures:
        page.failures(report.failures)
    return page.finish()


# ─── HTML ──────────────────────────────────────────────────────────────────────────────────────
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;padding:.6em;border-radius:4px}
.verdict li{margin:.3em 0}.verdict .withheld{color:#8a4b00}
.gallery{display:flex;gap:1em;flex-wrap:wrap}.gallery figure{margin:0;max-width:48%}
.gallery img{max-width:100%;border:1px solid #ddd}.note{color:#666;font-size:.85em}
#decision{background:#eef6ee;padding:.2em 1em;border-radius:4px}"""


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def write_html(out: Path, report: Report) -> Path:
    """``report.html`` in ``out``: one self-contained page (plotly inlined once, pictures embedded); every text
    from runs, tasks and the analysis escaped."""
    path = out / "report.html"
    _write(path, mask_secrets(_walk(report, _Html())))
    return path


def _text(words: str) -> str:
    """Element content: the report's own sentences keep their apostrophes."""
    return html.escape(words, quote=False)


def html_fragment(report: Report) -> str:
    """The report as an HTML fragment (Jupyter's view of it): the decision and, per task, its tables, verdict, speed
    pass and tests, without the page's style, plots and pictures."""
    return mask_secrets(_walk(report, _Html(page=False)))


class _Html:
    """The HTML page, part by part (:func:`_walk` says which parts, in which order); not ``page``: a fragment."""

    def __init__(self, *, page: bool = True):
        self.parts: list[str] = []
        self.plotly_inlined = False
        self.page = page

    def start(self, report: Report) -> None:
        e, title = html.escape, html.escape(report.title)
        if self.page:
            self.parts.append(
                f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
                f"<style>{STYLE}</style></head><body><h1>{title}</h1><p>{e(report.source)}</p>"
            )
        decided = "".join(f"<p class='decision'>{_bold(e(line))}</p>" for line in decision_lines(report))
        self.parts.append(f"<section id='decision'><h2>Decision</h2>{decided}</section>")
        self.parts += [f"<p class='warn'><b>warning:</b> {e(w)}</p>" for w in report.warnings]

    def task(self, task: str, metric: str, note: str) -> None:
        self.parts.append(
            f"<h2>{html.escape(task)}</h2><p>Accuracy: <code>{html.escape(metric)}</code> {_text(note)}</p>"
        )

    def block(
        self, title: str | None, header: list[str], body: list[list[str]], *, said: list[str] = (), note: str = ""
    ) -> None:
        e = html.escape
        self.parts.append((f"<h3>{e(title)}</h3>" if title else "") + _html_table(header, body))
        self.parts.append(f"<ul>{''.join(f'<li>{e(line)}</li>' for line in said)}</ul>" if said else "")
        self.parts.append(f"<p class='note'>{e(note)}</p>" if note else "")

    def verdict(self, verdict: TaskVerdict) -> None:
        e = html.escape
        items = "".join(f"<li class='{'withheld' if p.withheld else 'stated'}'>{e(p.line)}</li>" for p in verdict.pairs)
        summary = f"<li class='{'withheld' if verdict.withheld else 'stated'}'><b>{e(verdict.summary)}</b></li>"
        self.parts.append(
            f"<h3>Verdict <span class='note'>(reference: {e(verdict.reference)})</span></h3>"
            f"<ul class='verdict'>{summary}{items}</ul>"
        )

    def plots(self, task: str, plots: list[Plot]) -> None:
        for plot in plots if self.page else ():
            inline = "inline" if not self.plotly_inlined else False
            self.parts.append(plotly_figure(plot).to_html(full_html=False, include_plotlyjs=inline))
            self.plotly_inlined = True
            self.parts.append(f"<p class='note'>{html.escape(plot.note)}</p>" if plot.note else "")

    def gallery(self, task: str, gallery: dict[str, list[Path]]) -> None:
        if not self.page:
            return
        if not gallery:
            self.parts.append(f"<p class='note'>{_text(wording.NO_GALLERY)}</p>")
            return
        e = html.escape
        self.parts.append(
            f"<h3>Attention gallery</h3><p class='note'>{_text(wording.GALLERY_NOTE)}</p><div class='gallery'>"
        )
        for mechanism, pictures in gallery.items():
            for picture in pictures:
                data = base64.b64encode(picture.read_bytes()).decode()
                self.parts.append(
                    f"<figure><img alt='{e(mechanism)} attention' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{e(mechanism)}</figcaption></figure>"
                )
        self.parts.append("</div>")

    def failures(self, failures: list[Failure]) -> None:
        self.parts.append("<h2>Failed runs</h2>" + _html_table(FAIL_HEADER, failure_rows(failures)))

    def finish(self) -> str:
        return "".join([*self.parts, "</body></html>" if self.page else ""])
