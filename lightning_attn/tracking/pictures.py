"""Attention pictures: where the captioner looked for each word, logged to MLflow as PNGs.

For a fixed handful of validation images, every ``every_n_epochs`` epochs, one PNG per image: the
image, then one panel per generated word. Deterministic mechanisms show a heat map of the
attention over the region grid; a hard mechanism (argmax at evaluation) shows its chosen region
outlined. Files: ``attention/epoch_<NNN>/val_<i>.png``.
"""

from __future__ import annotations

import math

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


class AttentionPictures(Callback):
    """Logs attention pictures of the first ``n_images`` validation images every ``every_n_epochs`` epochs."""

    def __init__(self, every_n_epochs: int = 1, n_images: int = 4):
        self.every_n_epochs = every_n_epochs
        self.n_images = n_images

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        if trainer.sanity_checking or not trainer.is_global_zero or (epoch % self.every_n_epochs and not last):
            return
        import matplotlib.pyplot as plt

        data = trainer.datamodule
        items = data.splits["val"][: self.n_images]
        images = torch.stack([item.image for item in items]).to(pl_module.device)
        tokens, weights = pl_module.model.greedy(images, pl_module.cfg["max_decode_len"])
        hard = pl_module.model.attention.stochastic
        grid = pl_module.model.grid
        for i, item in enumerate(items):
            words = data.detokenize(tokens[i].tolist()).split()
            picture = item.image.permute(1, 2, 0).squeeze(-1).cpu().numpy()
            fig = attention_figure(picture, words, weights[i, : len(words)].cpu().numpy(), grid, outline=hard)
            trainer.logger.experiment.log_figure(trainer.logger.run_id, fig, f"attention/epoch_{epoch:03d}/val_{i}.png")
            plt.close(fig)
