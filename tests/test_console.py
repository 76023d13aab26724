"""Secrets never reach the screen or a log: the masking of URLs, known secret values and output streams."""

from __future__ import annotations

import io

from lightning_attn.console import MaskingStream
from lightning_attn.tracking import secrets
from lightning_attn.tracking.secrets import mask_secrets


def test_url_passwords_are_masked_wherever_they_appear():
    text = "see http://user:pa55word@host:5000/#/runs and postgresql://optuna:x%40y@db/sweeps"
    assert mask_secrets(text) == "see http://user:***@host:5000/#/runs and postgresql://optuna:***@db/sweeps"


def test_registered_secrets_are_masked_outside_urls_too(monkeypatch):
    monkeypatch.setattr(secrets, "_known", set())
    secrets.register_url("http://user:hunter22@host:5000")
    monkeypatch.setenv("PGPASSWORD", "pgSecret9")
    secrets.register_environment()
    assert mask_secrets("auth hunter22 failed; PGPASSWORD=pgSecret9") == "auth *** failed; PGPASSWORD=***"
    assert mask_secrets("abc") == "abc"  # a short value would mask ordinary words: never registered
    secrets.register("abc")
    assert mask_secrets("abc") == "abc"


def test_library_output_through_the_masking_stream_is_masked():
    sink = io.StringIO()
    stream = MaskingStream(sink)
    stream.write("🏃 View run tiny at: http://user:s3cretPW@127.0.0.1:5000/#/experiments/1/runs/abc\n")
    assert "s3cretPW" not in sink.getvalue() and "http://user:***@127.0.0.1:5000" in sink.getvalue()
