"""The published results are the toolkit's: every table in docs/results.md is its report.json rendered again.

And the guide stays a guide: the README is one page with the picture of the report, and history and measured
results stay out of the code and the config (docs/ and CHANGELOG.md hold them).
"""

from __future__ import annotations

import json
import re
import shlex
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


ROOT = DOCS.parent
README = ROOT / "README.md"


def test_the_readme_is_a_one_page_guide_with_the_picture_of_the_report():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150, "README.md: a one-page guide (150 lines at most); the rest goes to docs/"
    for command in (
        "python3 -m pip install 'nox[uv]' && python3 -m nox -s demo",
        "python3 -m pip install 'nox[uv]' && python3 -m nox -s tests",
    ):
        assert command in text, f"README.md: the set-up command `{command}` is gone"
    assert "](docs/images/report.png)" in text and (DOCS / "images" / "report.png").is_file(), (
        "README.md shows docs/images/report.png, which `nox -s docs-images` makes from the demo's report"
    )
    assert "nox -s docs-images" in text, "README.md: the command that made its picture"


def test_code_and_config_say_what_a_setting_does_not_which_run_measured_it():
    """Measured results and history live in docs/ and CHANGELOG.md, not in comments, docstrings or YAML."""
    pattern = re.compile(r"issue [0-9]+|docs/results", re.IGNORECASE)
    hits = []
    for folder in ("lightning_attn", "conf"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".yaml", ".yml"}:
                lines = enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                hits += [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for n, line in lines if pattern.search(line)]
    assert not hits, "\n".join(hits)


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(file, arguments)`` of every ``lightning-attn …`` (or ``python -m lightning_attn …``) command in a shell
    block of the README and the docs, each command of a ``&&``/``|``/``;`` chain on its own."""
    found = []
    for path in [README, *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|\|\||;|\|", line):
                    tokens = shlex.split(part, comments=True)
                    at = next(
                        (i for i, t in enumerate(tokens) if t.endswith("lightning-attn") or t == "lightning_attn"),
                        None,
                    )
                    if at is not None:
                        env = [t for t in tokens[:at] if re.match(r"^[A-Z_]+=", t)]
                        found.append((path.name, env, tokens[at + 1 :]))
    return found


def test_every_command_the_docs_show_parses_and_every_train_composes():
    """A subcommand or flag renamed or removed fails here, as does a config key or choice a documented ``train``
    names (those a shell variable completes, and plugins' own mechanisms, aside)."""
    from lightning_attn.cli.parser import build_parser
    from lightning_attn.config import compose

    commands = documented_commands()
    assert len(commands) >= 50, "the README and docs show the toolkit's commands in ```bash blocks"
    parser = build_parser()
    for name, env, args in commands:
        try:
            parsed = parser.parse_args(args)
        except SystemExit as e:
            assert not e.code, f"{name}: lightning-attn {' '.join(args)}: the parser refuses it"
            continue
        plugins = any(e.startswith("LIGHTNING_ATTN_PLUGINS=") for e in env)
        completed_by_shell = any(o.startswith("$") for o in getattr(parsed, "overrides", []))
        if parsed.command == "train" and not (parsed.resume or plugins or completed_by_shell):
            compose(parsed.overrides)  # a ConfigError names the key
