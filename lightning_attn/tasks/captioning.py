"""``CaptioningModule``: a thin LightningModule around a captioning model — Show, Attend and Tell's
:class:`~lightning_attn.models.Captioner` (``model=captioner``, the default) or a Transformer decoder over the same
grid encoder, :class:`~lightning_attn.models.CaptionTransformer` (``model=transformer``).

Loss: token NLL + Show-Attend-Tell's doubly stochastic penalty ``λ Σ_i (1 − Σ_t α_ti)²`` (+ the
mechanism's own training terms, e.g. hard attention's REINFORCE surrogate). Evaluation decodes each
image and scores BLEU-1..4 (torchmetrics, multi-reference), CIDEr-D (:mod:`lightning_attn.cider`, equal to
the coco-caption code's), exact-caption accuracy (the hypothesis equals a reference) and, on the built-in
scenes, alignment accuracy (the most-attended region lies in the gold cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.text import BLEUScore

from ..cider import cider_d
from ..data.captioning import CaptionBatch, CaptioningDataModule
from ..models import MODELS, CaptionTransformer, DecoderOutput
from ..models.captioner import Captioner, CaptionerConfig, ImageCaptioner
from ..tracking.pictures import attention_figure
from .base import AttentionTask, TaskConfig


@dataclass
class CaptioningTaskConfig(TaskConfig):
    """Training objective, optimiser and decoding for image captioning."""

    name: str = "captioning"
    lr: float = 5e-4  # at 2e-3 the CNN never learnt digit identity (digit-word NLL stayed at ln 10)
    beam_size: int = 3
    max_decode_len: int = 30
    # λ of Show-Attend-Tell's doubly stochastic penalty Σ_i (1 − Σ_t α_ti)²; 0 by default because the
    # built-in scenes leave most regions empty (on COCO/Flickr the paper's 1.0 is the usual choice)
    doubly_stochastic: float = 0.0
    attention_pictures_every: int = 1  # attention pictures in MLflow every N epochs and at the last; 0: off
    attention_pictures: int = 4  # how many validation images get a picture


class CaptioningModule(AttentionTask):
    """Image captioning: captioned images (:class:`~lightning_attn.data.CaptionSource`), BLEU-1..4, CIDEr-D.

    Args:
        task: the ``task`` config section.
        model: the ``model`` config section.
        attention: the ``attention`` config section.
        vocab: caption vocabulary size.
        channels: input image channels.
        image_size: input image height and width.
        layout_grid: cells per side of the built-in scenes' layout (for alignment accuracy), else ``None``.
    """

    config = CaptioningTaskConfig
    datamodule = CaptioningDataModule
    #: the model kinds it builds, each its class (configured by the kind's schema in :data:`..models.MODELS`)
    model_classes = {"captioner": Captioner, "transformer": CaptionTransformer}
    models = tuple(model_classes)
    sources = ("digits", "karpathy", "caption_table")
    defaults = {"model": "captioner", "data": "digits"}
    monitor, mode, headline = "val/bleu4", "max", "test/bleu4"
    margin = 1.0  # BLEU-4: a smaller difference is as good as none (report --margin overrides)
    item_statistics = "bleu4"  # torchmetrics' BLEU-4 counts per image: the BLEU-4 the run reports
    patience = 3
    grid = True  # the decoder attends over the encoder's G x G regions

    def __init__(
        self,
        task: dict,
        model: dict,
        attention: dict,
        *,
        vocab: int,
        channels: int,
        image_size: int,
        layout_grid: int | None,
    ):
        super().__init__(task)
        self.save_hyperparameters(logger=False)
        self.model = self._build(model, attention, channels, image_size, vocab)
        self.bleu = torch.nn.ModuleDict(
            {s: torch.nn.ModuleList([BLEUScore(n_gram=n) for n in range(1, 5)]) for s in ("val", "test")}
        )
        self.exact = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self._hyps: list[str] = []
        self._refs: list[list[str]] = []
        # which layout cell each encoder region's centre falls in (the gold alignment is in layout cells)
        grid = self.model.grid
        centre = ((torch.arange(grid) + 0.5) * (layout_grid or grid) / grid).long()
        self.register_buffer("region_to_cell", (centre[:, None] * (layout_grid or grid) + centre[None, :]).flatten())

    @classmethod
    def from_data(cls, task: dict, model: dict, attention: dict, data) -> CaptioningModule:
        """The module for a set-up :class:`~lightning_attn.data.captioning.CaptioningDataModule`."""
        return cls(
            task,
            model,
            attention,
            vocab=len(data.codec),
            channels=data.channels,
            image_size=data.image_size,
            layout_grid=data.layout_grid,
        )

    @classmethod
    def _build(cls, model: dict, attention: dict, channels: int, image_size: int, vocab: int) -> ImageCaptioner:
        schema = MODELS[model["kind"]][1]
        return cls.model_classes[model["kind"]](vocab, attention, channels, image_size, schema(**model))

    @staticmethod
    def grid_encoder(model: dict) -> dict:
        """The grid encoder's settings in a ``model`` section: the section itself (captioner), or its ``image``."""
        return model.get("image", model)

    @classmethod
    def bare_model(cls, model: dict, attention: dict, vocab: int) -> ImageCaptioner:
        """The task's model without data, ``vocab`` words (the speed pass measures cost with it, on region
        features of its own: the smallest images the encoder takes)."""
        image = cls.grid_encoder(model)
        size = 32 if image.get("encoder") == "resnet" else 2 ** len(image.get("channels") or CaptionerConfig().channels)
        return cls._build(model, attention, 3, size, vocab)

    def start_decoding(self, batch: CaptionBatch):
        """The decoder's first state for ``batch``: the images encoded."""
        return self.model.encode(batch.images)

    def bind_data(self, data) -> None:
        """With ``model.cache_features``, the data serves the frozen encoder's cached grid features instead
        of images (extracted on first use, see :meth:`CaptioningDataModule.use_features`)."""
        if self.grid_encoder(self.hparams["model"]).get("cache_features"):
            encoder = self.model.encoder
            encoder.eval()  # BatchNorm's running statistics, as a frozen encoder uses in training too
            data.use_features(encoder.backbone, encoder.backbone_key(), batch_size=data.cfg["batch_size"])

    @torch.no_grad()
    def attention_figures(self, data, examples: list) -> list:
        """Per example: the image, then one panel per generated word — a heat map of the weights over the
        region grid, or the one region a mechanism that reads one position chose, outlined. The model reads
        what it trains on (images, or a frozen encoder's cached features); the picture is the image."""
        if not examples:
            return []
        batch = self.transfer_batch_to_device(type(data).collate(examples), self.device, 0)
        tokens, weights = self.model.greedy(batch.images, self.cfg["max_decode_len"])
        outline = self.model.attention.selects_one
        figures = []
        for i, example in enumerate(examples):
            words = data.detokenize(tokens[i].tolist()).split()
            attended = weights[i, : len(words)].cpu().numpy()
            figures.append(attention_figure(data.picture(example), words, attended, self.model.grid, outline))
        return figures

    def teacher_forced(self, batch: CaptionBatch) -> DecoderOutput:
        return self.model(batch.images, batch.tgt_in)

    def attended_gold_index(self, attention: Tensor) -> Tensor:
        return self.region_to_cell[attention.argmax(dim=-1)]

    def extra_loss(self, out: DecoderOutput, step_mask: Tensor, n_tokens: Tensor) -> dict[str, Tensor]:
        weight = self.cfg["doubly_stochastic"]
        if not weight:
            return {}
        # every region should receive, summed over the caption, about one unit of attention
        received = (out.trace.probs * step_mask.unsqueeze(-1)).sum(dim=1)  # (B, N)
        return {"doubly_stochastic": weight * ((1 - received) ** 2).sum() / n_tokens}

    def decode(self, batch: CaptionBatch, beam_size: int) -> list[list[int]]:
        limit = self.cfg["max_decode_len"]
        if beam_size > 1:
            return self.model.beam_search(batch.images, limit, beam_size, self.cfg["length_penalty"]).tolist()
        return self.model.greedy(batch.images, limit)[0].tolist()

    def _evaluate(self, batch: CaptionBatch, stage: str) -> None:
        hypotheses = self._hypotheses(batch, stage)
        for metric in self.bleu[stage]:
            metric.update(hypotheses, batch.references)
        exact = torch.tensor([h in refs for h, refs in zip(hypotheses, batch.references)], dtype=torch.float)
        self.exact[stage].update(exact)
        self._hyps += hypotheses
        self._refs += batch.references

    def _log_epoch_metrics(self, stage: str) -> None:
        for n, metric in enumerate(self.bleu[stage], start=1):
            self.log(f"{stage}/bleu{n}", metric.compute() * 100, prog_bar=stage == "val" and n == 4)
            metric.reset()
        self.log(f"{stage}/exact", self.exact[stage].compute() * 100, prog_bar=stage == "val")
        self.exact[stage].reset()
        # CIDEr-D's document frequencies come from this rank's references (one process: the whole split)
        self.log(f"{stage}/cider", cider_d(self._hyps, self._refs))
        if stage == "test":
            self.test_hypotheses, self.test_references = self._hyps, self._refs
        self._hyps, self._refs = [], []
        self._log_alignment(stage)
