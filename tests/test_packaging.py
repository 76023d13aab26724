"""A wheel (a non-editable install) carries conf/ and sweeps/ and finds them without the repository."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # sweeps, servers, browsers, DDP, wheels: the CI suite


REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_config_and_finds_it_outside_the_repo(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("lightning_attn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for group in ("task", "model", "attention", "data", "trainer", "logger"):
        assert any(n.startswith(f"lightning_attn/conf/{group}/") and n.endswith(".yaml") for n in names), group
    assert "lightning_attn/conf/config.yaml" in names
    assert any(n.startswith("lightning_attn/sweeps/") for n in names)

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import lightning_attn.resources as r, lightning_attn.config as c;"
        "print(r.conf_dir());"
        "print(c.compose(['attention=hard']).attention.mechanism)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == [str(site / "lightning_attn" / "conf"), "hard"]
