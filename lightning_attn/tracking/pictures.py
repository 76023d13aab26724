"""Attention pictures: where the model looked for each word it generated, logged to MLflow as PNGs.

For a fixed handful of validation examples, every ``every_n_epochs`` epochs and at the last one, one
PNG per example. Captioning: the image, then one panel per generated word — deterministic mechanisms
show a heat map over the region grid, a hard mechanism (argmax at evaluation) its chosen region
outlined. Translation: the alignment matrix, generated words × source words. Files:
``attention/epoch_<NNN>/val_<i>.png`` (the report's attention gallery shows the last epoch's).
"""

from __future__ import annotations

import math

import torch
from lightning.pytorch.callbacks import Callback

from ..data.codec import EOS


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


def _token(codec, i: int) -> str:
    return codec.tokenizer.id_to_token(i) or "<unk>"


class AttentionPictures(Callback):
    """Logs attention pictures of the first ``n_images`` validation examples every ``every_n_epochs`` epochs
    and at the last epoch trained (wherever early stopping ended training): captioning, the image with one
    panel per word; translation, the alignment matrix of generated words over source words."""

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
        items = data.splits["val"][: self.n_images]
        if not hasattr(items[0], "image"):
            self._alignments(trainer, pl_module, items, epoch)
            return
        images = torch.stack([item.image for item in items]).to(pl_module.device)
        tokens, weights = pl_module.model.greedy(images, pl_module.cfg["max_decode_len"])
        one = pl_module.model.attention.selects_one  # one region read: outline it; a distribution: heat map
        grid = pl_module.model.grid
        for i, item in enumerate(items):
            words = data.detokenize(tokens[i].tolist()).split()
            picture = item.image.permute(1, 2, 0).squeeze(-1).cpu().numpy()
            fig = attention_figure(picture, words, weights[i, : len(words)].cpu().numpy(), grid, outline=one)
            trainer.logger.experiment.log_figure(trainer.logger.run_id, fig, f"attention/epoch_{epoch:03d}/val_{i}.png")
            plt.close(fig)

    def _alignments(self, trainer, pl_module, items, epoch: int) -> None:
        import matplotlib.pyplot as plt

        data = trainer.datamodule
        batch = pl_module.transfer_batch_to_device(type(data).collate(items), pl_module.device, 0)
        tokens, weights = pl_module.model.greedy(batch.src, batch.src_lengths, pl_module.cfg["max_decode_len"])
        for i, item in enumerate(items):
            ids = tokens[i].tolist()
            length = ids.index(EOS) + 1 if EOS in ids else len(ids)  # words and the final </s>
            source = [_token(data.src_codec, t) for t in item.src]
            target = [_token(data.tgt_codec, t) for t in ids[:length]]
            fig = alignment_figure(source, target, weights[i, :length, : len(source)].cpu().numpy())
            trainer.logger.experiment.log_figure(trainer.logger.run_id, fig, f"attention/epoch_{epoch:03d}/val_{i}.png")
            plt.close(fig)
