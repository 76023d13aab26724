"""Checkpoints every host can read: when runs are tracked on a server, a run's best and last checkpoints are
uploaded as its artifacts (``checkpoints/best.ckpt``, ``checkpoints/last.ckpt``) after every epoch, so that
``lightning-attn evaluate`` and ``train --resume`` work from any host — and a sweep trial whose host died
can continue from its last epoch — not only from the host that holds the files."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from lightning.pytorch.callbacks import Callback

#: the artifact folder the checkpoints go to
ARTIFACT_DIR = "checkpoints"

log = logging.getLogger(__name__)


def uploads(tracking_uri: str) -> bool:
    """Whether checkpoints go to the tracking store: only a server's (a local store's host has the files)."""
    return tracking_uri.startswith(("http://", "https://"))


class CheckpointUpload(Callback):
    """Upload ``last.ckpt`` and — when it changed — the best checkpoint as ``best.ckpt`` once Lightning's
    checkpoint callback has written them: at the start of the next epoch (it saves in the same
    ``on_train_epoch_end`` as this would run, after it), when training ends, and when it is stopped. A
    checkpoint larger than ``max_mb`` is not uploaded (one warning)."""

    def __init__(self, max_mb: float):
        self.max_bytes = max_mb * 2**20
        self.best_sent: tuple[str, float | None] | None = None  # (path, score) of the best checkpoint uploaded
        self.warned = False

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._upload(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._upload(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        try:  # a stopped run (SIGTERM, Ctrl+C) can still continue elsewhere
            self._upload(trainer)
        except Exception as e:  # the stop is what matters: an upload error must not hide it
            log.warning("could not upload the checkpoints of a stopped run: %s", e)

    def _upload(self, trainer) -> None:
        checkpoint = trainer.checkpoint_callback
        if not trainer.is_global_zero or checkpoint is None or trainer.logger is None:
            return
        last = Path(checkpoint.dirpath or "") / "last.ckpt"
        self._send(trainer, last, "last.ckpt")
        best = checkpoint.best_model_path
        if best and Path(best).is_file():
            # a new best is a new score (the file's time can be too coarse to tell two saves in a second apart)
            score = checkpoint.best_model_score
            stamp = (best, None if score is None else float(score))
            if stamp != self.best_sent and self._send(trainer, Path(best), "best.ckpt"):
                self.best_sent = stamp

    def _send(self, trainer, path: Path, name: str) -> bool:
        if not path.is_file():
            return False
        size = path.stat().st_size
        if size > self.max_bytes:
            if not self.warned:
                log.warning(
                    "checkpoint %s is %.0f MiB, over logger.checkpoint_upload_max_mb: not uploaded (other "
                    "hosts cannot evaluate or resume this run)",
                    path,
                    size / 2**20,
                )
                self.warned = True
            return False
        with tempfile.TemporaryDirectory(dir=path.parent) as folder:  # the artifact takes the file's name
            upload = Path(folder) / name
            try:
                os.link(path, upload)  # no copy of a large file
            except OSError:
                shutil.copyfile(path, upload)
            trainer.logger.experiment.log_artifact(trainer.logger.run_id, str(upload), ARTIFACT_DIR)
        return True
