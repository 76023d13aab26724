"""Cost against input size: every mechanism of every task at every size, its growth, its table and plot.

Times are measured, never asserted (the suite runs on loaded machines); the tensor memory is exact, and it shows
the physical facts: marginal attention keeps a prediction per position, the uniform control scores nothing."""

from __future__ import annotations

import pytest

from lightning_attn import cli
from lightning_attn.speedpass import sizes


@pytest.fixture(scope="module")
def measured():
    return sizes.measure(
        tasks=["translation", "captioning"],
        mechanisms=["soft", "uniform", "marginal", "local"],
        sizes=(16, 64),
        rounds=2,
        block_s=0.001,
        vocab=50,
        threads=1,
    )


def test_every_mechanism_of_every_task_is_measured_at_every_size(measured):
    assert {(p.task, p.mechanism, p.positions) for p in measured.points} == {
        (t, m, n)
        for t in ("translation", "captioning")
        for m in ("soft", "uniform", "marginal", "local")
        for n in (16, 64)
    }
    assert all(p.decode_ms > 0 and p.train_ms > 0 and p.train_mib > 0 for p in measured.points)
    assert set(measured.exponents["captioning"]["local"]) == {"decode", "train"}
    # ratios to soft at the largest size, for every other mechanism and both kinds of work
    assert {r["name"] for r in measured.at_largest["translation"]["train"]} == {"uniform", "marginal", "local"}


def test_memory_shows_what_each_mechanism_keeps(measured):
    at = {(p.task, p.mechanism, p.positions): p for p in measured.points}
    for task in ("translation", "captioning"):
        soft, marginal, uniform = (at[task, m, 64] for m in ("soft", "marginal", "uniform"))
        assert marginal.train_mib > 1.5 * soft.train_mib  # a prediction for every position at every step
        assert uniform.train_mib < soft.train_mib  # no scores to keep

        growth = {m: at[task, m, 64].train_mib - at[task, m, 16].train_mib for m in ("marginal", "soft")}
        assert growth["marginal"] > 3 * growth["soft"] > 0  # and it grows with N faster than a context does


def test_the_table_sentences_and_json_say_it(measured, tmp_path):
    table = measured.table("translation")
    assert table.splitlines()[0].startswith("| mechanism | decode ms @ 16 | decode ms @ 64 | train ms @ 16")
    assert len(table.splitlines()) == 2 + 4
    lines = measured.sentences("captioning")
    assert lines[0].startswith("soft: time grows as N^") and any("at 64 positions" in line for line in lines)
    again = sizes.Sizes.from_json(measured.to_json())
    assert again.points == measured.points and again.exponents == measured.exponents
    assert sizes.plot(measured, tmp_path / "sizes.png").stat().st_size > 10_000


def test_the_command_writes_its_table_plot_and_json(tmp_path, capsys):
    code = cli.main(
        [
            "benchmark",
            "sizes",
            "--task",
            "translation",
            "--mechanism",
            "soft",
            "--mechanism",
            "hard",
            "--sizes",
            "8,16",
            "--rounds",
            "2",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"sizes.json", "sizes.md", "sizes.png"}
    assert "| hard |" in (tmp_path / "out" / "sizes.md").read_text() and "## translation" in capsys.readouterr().out


def test_bad_sizes_get_one_line(capsys):
    assert cli.main(["benchmark", "sizes", "--task", "captioning", "--sizes", "16,20", "--rounds", "2"]) == 2
    assert (
        capsys.readouterr().err.strip() == "error: captioning attends over a square grid of regions: 20 is not a square"
    )
    assert cli.main(["benchmark", "sizes", "--mechanism", "soft", "--mechanism", "fast"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown mechanism 'fast'; choose from soft, hard")
