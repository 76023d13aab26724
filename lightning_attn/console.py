"""What a person sees: the toolkit's log lines, third-party noise turned down, and no secret in any of it.

Shared by the CLI and the sweep workers (which write their logs to files). :func:`setup` is the one
call each entry point makes, first thing: it wraps ``sys.stdout`` and ``sys.stderr`` so that every line
written through them — the toolkit's, and libraries' own (MLflow's "View run … at: http://user:pw@…",
warnings, tracebacks) — has its secrets masked (:mod:`lightning_attn.tracking.secrets`).
"""

from __future__ import annotations

import io
import logging
import sys
import warnings
from typing import Any

from .tracking.secrets import mask_secrets


class MaskingStream(io.TextIOBase):
    """A text stream that masks secrets in everything written to it, then passes it on."""

    def __init__(self, stream: Any):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(mask_secrets(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def mask_output() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` through :class:`MaskingStream` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, MaskingStream):
            setattr(sys, name, MaskingStream(stream))


def quiet_third_party() -> None:
    """Hide known, harmless third-party chatter; real warnings still show."""
    # Lightning's advert for litlogger, printed on every Trainer start
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
    # Lightning 2.6 calls a torch.utils._pytree API that torch 2.13 deprecates; nothing a user can act on
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    # under DDP: these are torchmetrics values (synced by compute()) or per-rank training means
    warnings.filterwarnings(
        "ignore", message=r".*self\.log\('((val|test)/(bleu\d?|align_acc|exact)|train/[a-z_]+)'.*sync_dist=True"
    )
    # a frozen encoder (model.freeze_encoder) stays in eval mode while the decoder trains, on purpose
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
    # data lives in memory: more loader workers would only add start-up time
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # Optuna options chosen on purpose: TPE's multivariate/conditional/constant-liar modes, RDB heartbeats
    optuna_options = "multivariate|group|constant_liar|heartbeat_interval|grace_period"
    warnings.filterwarnings("ignore", message=rf"Argument ``({optuna_options})`` is an experimental")
    # trials are asked for one by one (the budget needs it), with heartbeats kept by the sweep's worker
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    # MLflow announces database migrations at INFO through its own handler (set up on import)
    import mlflow  # noqa: F401

    logging.getLogger("mlflow").setLevel(logging.WARNING)


def setup_logging() -> None:
    """Our own progress lines, plainly; Lightning and MLflow bring their own handlers."""
    package_log = logging.getLogger("lightning_attn")
    if not package_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package_log.addHandler(handler)
    package_log.setLevel(logging.INFO)


def setup() -> None:
    """Everything an entry point needs before it does anything: masked output, logging, quiet libraries."""
    mask_output()
    setup_logging()
    quiet_third_party()
