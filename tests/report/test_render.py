"""Writing the report: the JSON carries the analysis; HTML escaping happens here and nowhere else."""

from __future__ import annotations

import json

from lightning_attn.report import render
from lightning_attn.report.document import Report
from lightning_attn.report.plots import Plot, Series

from .study import Study

EVIL = "<script>alert('run')</script>"


def test_the_json_carries_diagnostics_and_withheld_verdicts(tmp_path):
    study = Study()
    study.add("soft", [0.05, 0.06])
    study.add("hard", [0.6, 0.6, 0.6], converged=False)
    rows, tests, diagnoses, verdict = study.analyse()
    report = Report(rows, tests, list(diagnoses.values()), {"translation": verdict}, importance_evaluator="x")
    data = json.loads(render.write_json(tmp_path, report).read_text())
    hard = data["diagnostics"]["translation"]["hard"]
    assert hard["not_converged"] == ["hard-seed0", "hard-seed1", "hard-seed2"] and hard["flags"]
    assert data["diagnostics"]["translation"]["soft"]["too_few_seeds"] is True
    assert data["verdicts"]["translation"]["withheld"] is True
    assert next(r for r in data["rows"] if r["mechanism"] == "soft")["ci95"] is None
    assert data["significance"][0]["seed"]["test"].startswith("Welch's t-test over seeds and a two-level bootstrap")
    assert render.rows_from_json(data)[0].mechanism == rows[0].mechanism  # the committed reports re-render


def test_plotly_gets_every_text_escaped_the_plot_data_stays_plain(tmp_path):
    series = [Series(EVIL, [1.0], [2.0], labels=[EVIL]), Series(f"{EVIL}: still improving", [1.0], [2.0], "dashed")]
    plot = Plot(f"{EVIL}: latency", EVIL, "y", series)
    fig = render.plotly_figure(plot)
    assert {t.name for t in fig.data} == {
        "&lt;script&gt;alert(&#x27;run&#x27;)&lt;/script&gt;",
        "&lt;script&gt;alert(&#x27;run&#x27;)&lt;/script&gt;: still improving",
    }
    assert fig.data[0].text == ("&lt;script&gt;alert(&#x27;run&#x27;)&lt;/script&gt;",)
    plotly_html = fig.to_html(full_html=False, include_plotlyjs=False)
    assert EVIL not in plotly_html and "<script>alert" not in plotly_html
    assert plot.series[0].name == EVIL  # the PNG legend shows the name as it is
    render.png(plot, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_the_html_page_escapes_what_comes_from_runs(tmp_path):
    study = Study()
    study.add("soft", [0.05, 0.06, 0.05])
    study.add("hard", [0.3, 0.3, 0.31])
    rows, tests, diagnoses, verdict = study.analyse()
    rows[0].compared[0].name = EVIL
    report = Report(
        rows, tests, list(diagnoses.values()), {"translation": verdict}, warnings=[EVIL], source=EVIL, title="t"
    )
    page = render.write_html(tmp_path, report).read_text()
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "(best run; mean ± 95 % CI over the seed runs, from 3 seeds up).</p>" in page
    assert "the best runs logged no attention pictures" in page
