"""``TranslationModule``: a thin LightningModule around a translation model — :class:`~lightning_attn.models.Seq2Seq`
(``model=seq2seq``, the default) or :class:`~lightning_attn.models.Transformer` (``model=transformer``).

Loss: token-level NLL under teacher forcing, plus the mechanism's own training terms (hard attention:
its REINFORCE surrogate, rewarded with the target's log-likelihood). Validation/test decode the source
and score BLEU as papers report it (:mod:`lightning_attn.bleu`: sacreBLEU on the detokenised, case-sensitive
output; the run records the signature). The test logs ``test/bleu`` with the configured beam and, when
that is a beam, ``test/bleu_greedy`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import bleu
from ..data.codec import EOS
from ..data.translation import TranslationBatch, TranslationDataModule
from ..models import MODELS, DecoderOutput, Seq2Seq, Transformer
from ..models.seq2seq import EncoderDecoder
from ..tracking import tags as T
from ..tracking.pictures import alignment_figure
from .base import AttentionTask, TaskConfig
from .metrics import CorpusBLEU


@dataclass
class TranslationTaskConfig(TaskConfig):
    """Training objective, optimiser and decoding for translation."""

    name: str = "translation"
    decode_len_ratio: float = 2.0  # per batch: at most ratio x longest source + 5 tokens
    # alignment pictures (target words x source words) in MLflow: every N epochs and at the last one
    # trained (wherever early stopping ends the run); 0 turns them off
    attention_pictures_every: int = 4
    attention_pictures: int = 2  # how many validation sentences get a picture


class TranslationModule(AttentionTask):
    """Translation: sentence pairs (:class:`~lightning_attn.data.TextPairSource`), BLEU.

    Args:
        task: the ``task`` config section (optimiser, decoding).
        model: the ``model`` config section (sizes).
        attention: the ``attention`` config section.
        src_vocab: source vocabulary size.
        tgt_vocab: target vocabulary size.
    """

    config = TranslationTaskConfig
    datamodule = TranslationDataModule
    #: the model kinds it builds, each its class (configured by the kind's schema in :data:`..models.MODELS`)
    model_classes = {"seq2seq": Seq2Seq, "transformer": Transformer}
    models = tuple(model_classes)
    sources = ("synthetic", "parallel", "table", "hf")
    defaults = {"model": "seq2seq", "data": "synthetic"}
    monitor, mode, headline = "val/bleu", "max", "test/bleu"
    margin = 1.0  # BLEU: a smaller difference is as good as none (report --margin overrides)
    item_statistics = "sacrebleu"  # sacreBLEU's sentence statistics
    # built-in translation climbs in steps, each a plateau of several epochs with metric and loss flat, left
    # suddenly: a patience long enough to outlast a plateau (the documentation's Training page, early stopping)
    patience = 12

    def __init__(self, task: dict, model: dict, attention: dict, src_vocab: int, tgt_vocab: int):
        super().__init__(task)
        # plain dicts only: the checkpoint must load with torch.load(weights_only=True)
        self.save_hyperparameters(logger=False)
        self.model = self.bare_model(model, attention, src_vocab, tgt_vocab)
        self.bleu = torch.nn.ModuleDict({"val": CorpusBLEU(), "test": CorpusBLEU(), "test_greedy": CorpusBLEU()})
        self._test_outputs: list[tuple[int, str, str]] = []  # (index in the split, hypothesis, reference)

    @classmethod
    def from_data(cls, task: dict, model: dict, attention: dict, data) -> TranslationModule:
        """The module for a set-up :class:`~lightning_attn.data.TranslationDataModule` (its vocabularies)."""
        return cls(task, model, attention, src_vocab=len(data.src_codec), tgt_vocab=len(data.tgt_codec))

    @classmethod
    def bare_model(cls, model: dict, attention: dict, vocab: int, tgt_vocab: int | None = None) -> EncoderDecoder:
        """The task's model without data, ``vocab`` words each side, or ``vocab`` source and ``tgt_vocab``
        target words (the speed pass measures cost with it)."""
        schema = MODELS[model["kind"]][1]
        return cls.model_classes[model["kind"]](vocab, tgt_vocab or vocab, attention, schema(**model))

    def start_decoding(self, batch: TranslationBatch):
        """The decoder's first state for ``batch``: the sources encoded."""
        return self.model.encode(batch.src, batch.src_lengths)

    def run_tags(self) -> dict[str, str]:
        """The BLEU signature, and that its significance test resamples sacreBLEU's sentence statistics."""
        return {T.BLEU_SIGNATURE: bleu.signature(), **super().run_tags()}

    def memory_mask(self, batch: TranslationBatch, weights: Tensor) -> Tensor:
        """The real source positions of each sentence."""
        positions = torch.arange(weights.size(-1), device=weights.device).unsqueeze(0)
        return positions < batch.src_lengths.to(weights.device).unsqueeze(1)

    @torch.no_grad()
    def attention_figures(self, data, examples: list) -> list:
        """Per sentence: the alignment matrix, generated words (and the final ``</s>``) over source words —
        shades for a distribution, one dark cell per row for a mechanism that reads one position."""
        if not examples:
            return []
        batch = self.transfer_batch_to_device(type(data).collate(examples), self.device, 0)
        tokens, weights = self.model.greedy(batch.src, batch.src_lengths, self.cfg["max_decode_len"])
        figures = []
        for i, example in enumerate(examples):
            ids = tokens[i].tolist()
            length = ids.index(EOS) + 1 if EOS in ids else len(ids)
            source = [data.src_codec.token(t) for t in example.src]
            target = [data.tgt_codec.token(t) for t in ids[:length]]
            figures.append(alignment_figure(source, target, weights[i, :length, : len(source)].cpu().numpy()))
        return figures

    def teacher_forced(self, batch: TranslationBatch) -> DecoderOutput:
        return self.model(batch.src, batch.src_lengths, batch.tgt_in)

    # ── evaluation ─────────────────────────────────────────────────────────────────────────────
    def decode(self, batch: TranslationBatch, beam_size: int) -> list[list[int]]:
        """Translate a batch; returns token ids per sentence."""
        limit = min(
            self.cfg["max_decode_len"], math.ceil(self.cfg["decode_len_ratio"] * int(batch.src_lengths.max())) + 5
        )
        if beam_size > 1:
            tokens = self.model.beam_search(batch.src, batch.src_lengths, limit, beam_size, self.cfg["length_penalty"])
        else:
            tokens, _ = self.model.greedy(batch.src, batch.src_lengths, limit)
        return tokens.tolist()

    def _evaluate(self, batch: TranslationBatch, stage: str) -> None:
        hypotheses = self._hypotheses(batch, stage)
        references = [[r] for r in batch.references]
        self.bleu[stage].update(hypotheses, references)
        if stage == "test":
            self._test_outputs += zip(batch.indices, hypotheses, batch.references)
            if self.cfg["beam_size"] > 1:  # papers report both: greedy is the cheap baseline of the beam
                greedy = [self.trainer.datamodule.detokenize(ids) for ids in self.decode(batch, 1)]
                self.bleu["test_greedy"].update(greedy, references)

    def _log_epoch_metrics(self, stage: str) -> None:
        # torchmetrics objects synchronise across ranks themselves in compute()
        self.log(f"{stage}/bleu", self.bleu[stage].compute(), prog_bar=stage == "val")
        self.bleu[stage].reset()
        if stage == "test":
            greedy = self.bleu["test_greedy"]
            if greedy.update_called:
                self.log("test/bleu_greedy", greedy.compute())
            greedy.reset()
            # batches may be length-sorted: predictions go back into the split's order
            ordered = sorted(self._test_outputs)
            self.test_hypotheses, self.test_references = [h for _, h, _ in ordered], [r for _, _, r in ordered]
            self._test_outputs = []
        self._log_alignment(stage)

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []
