"""Attention pictures: where the model looked for each word it generated, logged to MLflow as PNGs.

For a fixed handful of validation examples, every ``every_n_epochs`` epochs and at the last one, one
PNG per example. The callback picks the examples and logs the files; the task draws them
(``AttentionTask.attention_figures``) with the figure makers here — captioning, the image and one panel
per generated word (:func:`attention_figure`: a heat map over the region grid, or the one region a hard
mechanism reads, outlined); translation, the alignment matrix of generated words × source words
(:func:`alignment_figure`). Files: ``attention/epoch_<NNN>/val_<i>.png`` (the report's attention gallery
shows the last epoch's).
"""

from __future__ import annotations

import math
import warnings

import torch
from lightning.pytorch.callbacks import Callback


def attention_figure(image, words: list[str], weights, grid: int, outline: bool):
    """A matplotlib figure: ``image (S, S)`` or ``(S, S, 3)``, one panel per word with its weights ``(L, G·G)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    panels = len(words) + 1
    cols = min(panels, 6)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows), squeeze=False)
    size = image.shape[0]
    cell = size / grid
    cmap = "gray" if image.ndim == 2 else None
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(image, cmap=cmap)
    axes.flat[0].set_title("input", fontsize=9)
    for ax, word, w in zip(axes.flat[1:], words, weights):
        ax.imshow(image, cmap=cmap)
        if outline:
            row, col = divmod(int(w.argmax()), grid)
            ax.add_patch(Rectangle((col * cell - 0.5, row * cell - 0.5), cell, cell, fill=False, ec="red", lw=2))
        else:
            heat = w.reshape(grid, grid)
            ax.imshow(
                heat,
                cmap="jet",
                alpha=0.5,
                extent=(-0.5, size - 0.5, size - 0.5, -0.5),
                vmin=0,
                vmax=max(float(heat.max()), 1e-6),
            )
        ax.set_title(word, fontsize=9)
    fig.tight_layout()
    return fig


def alignment_figure(source: list[str], target: list[str], weights):
    """A matplotlib figure: the attention ``(T, S)`` of each generated target word over the source words.

    Soft attention shows as shades; hard attention (argmax at evaluation) as one dark cell per row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(0.45 * len(source) + 1.8, 0.4 * len(target) + 1.4))
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(target)), target, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("generated")
    fig.tight_layout()
    return fig


class AttentionPictures(Callback):
    """Logs attention pictures of the first ``n_images`` validation examples every ``every_n_epochs`` epochs
    and at the last epoch trained (wherever early stopping ended training), each drawn by the task
    (``pl_module.attention_figures(datamodule, examples)``): whatever its data source or cache, the callback
    never looks inside an example."""

    def __init__(self, every_n_epochs: int, n_images: int):
        self.every_n_epochs = every_n_epochs
        self.n_images = n_images
        self.validated = 0  # the last epoch validated (1-based)
        self.logged = 0  # the last epoch pictured

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self.validated = trainer.current_epoch + 1
        if self.validated % self.every_n_epochs == 0 or self.validated == trainer.max_epochs:
            self._log(trainer, pl_module, self.validated)

    def on_train_end(self, trainer, pl_module) -> None:
        # early stopping ends training at an epoch nobody knew in advance: picture it too
        if not trainer.is_global_zero or not self.validated or self.logged == self.validated:
            return
        was_training = pl_module.training
        pl_module.eval()  # the model as it is evaluated (a hard mechanism takes its argmax, not a sample)
        try:
            self._log(trainer, pl_module, self.validated)
        finally:
            pl_module.train(was_training)

    @torch.no_grad()
    def _log(self, trainer, pl_module, epoch: int) -> None:
        self.logged = epoch
        import matplotlib.pyplot as plt

        data = trainer.datamodule
        examples = data.splits["val"][: self.n_images]
        with warnings.catch_warnings():
            # words in a script the font lacks (CJK captions) are drawn as boxes: no warning per glyph
            warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
            for i, fig in enumerate(pl_module.attention_figures(data, examples)):
                path = f"attention/epoch_{epoch:03d}/val_{i}.png"
                trainer.logger.experiment.log_figure(trainer.logger.run_id, fig, path)
                plt.close(fig)
