"""Shared settings for tests: tiny models and data that train in seconds."""

import dataclasses
import subprocess
import sys

import pytest

from lightning_attn.attention import MECHANISMS

TINY = [
    "data.n_train=96",
    "data.n_val=16",
    "data.n_test=16",
    "data.batch_size=16",
    "model.embed_dim=16",
    "model.encoder_hidden=16",
    "model.decoder_hidden=32",
    "attention.hidden_dim=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.enable_progress_bar=false",
    "task.beam_size=2",
    "task.attention_pictures_every=0",  # the pictures tests turn them on
]


def tiny(*overrides: str, mechanism: str = "soft") -> list[str]:
    """TINY for ``mechanism``: its ``attention.*`` settings only where its config has the key."""
    fields = {f.name for f in dataclasses.fields(MECHANISMS[mechanism][1])}
    keep = [o for o in TINY if not o.startswith("attention.") or o.partition("=")[0].split(".", 1)[1] in fields]
    return [f"attention={mechanism}", *keep, *overrides]


def every_mechanism(fast: tuple[str, ...] = ("soft", "hard", "uniform")) -> list:
    """Every registered mechanism as a pytest parameter; beyond ``fast``, each runs in the e2e suite (CI), so
    the fast suite keeps a few tiny training runs while CI trains every mechanism."""
    return [m if m in fast else pytest.param(m, marks=pytest.mark.e2e) for m in sorted(MECHANISMS)]


def run_cli(*argv: str, cwd) -> subprocess.CompletedProcess[str]:
    """``python -m lightning_attn ARGV`` in a fresh process in ``cwd``, its output captured."""
    command = [sys.executable, "-m", "lightning_attn", *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
