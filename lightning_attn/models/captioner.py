"""Show, Attend and Tell (Xu et al., 2015): a CNN grid encoder and an attention LSTM decoder.

Encoder: a small CNN trained from scratch (:class:`GridEncoder`, the default) or a torchvision ResNet
(:class:`ResNetGridEncoder`, when torchvision is installed) turns an image ``(B, C, S, S)`` into
``N = G x G`` region features ``(B, N, D)``, each with a learned position embedding added so that a
context vector says *where* it was read (captions name positions). A frozen encoder's features can be
computed once and cached (the usual practice with a pretrained CNN): the model then takes them instead
of images.

Decoder step t (same order as the translation decoder, see :mod:`.seq2seq`)::

    1. update the state:   h_t, c_t = LSTMCell([E y_{t-1}; z_{t-1}], (h_{t-1}, c_{t-1}))
    2. attend:             ĉ_t = Attention(h_t, regions)
    3. gate (§4.2.1):      z_t = sigmoid(W_β h_t) · ĉ_t
    4. deep output (eq 7): p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t))

The initial ``h_0, c_0`` come from the mean region feature (§3.1.2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..attention import Attention, AttentionOutput, build_attention
from .decoding import BatchState, DecoderOutput, beam_search, greedy, teacher_forcing


@dataclass
class GridEncoderConfig:
    """The CNN that turns an image into the regions a decoder attends over (:func:`build_grid_encoder`)."""

    encoder: str = "cnn"  # cnn (from scratch) | resnet (needs torchvision)
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])  # cnn: each block halves the image
    resnet_depth: int = 18  # resnet: 18 | 34 | 50 | 101 | 152; its grid is image_size / 32
    # the encoder's weights from a local file (nothing is downloaded): resnet, torchvision's state_dict; cnn,
    # a captioning run's checkpoint or the CNN's own state_dict
    encoder_weights: str | None = None
    freeze_encoder: bool = False  # keep the encoder's CNN fixed (BatchNorm statistics too)
    # with freeze_encoder and data=karpathy: extract the frozen CNN's grid features once, into a cache keyed
    # by the encoder's weights and the image set, and train the decoder on them (no CNN in the training step)
    cache_features: bool = False


@dataclass
class CaptionerConfig(GridEncoderConfig):
    """Show-Attend-Tell: CNN grid encoder (from scratch, or a torchvision ResNet), attention LSTM decoder."""

    kind: str = "captioner"
    embed_dim: int = 64
    hidden: int = 256
    dropout: float = 0.1


class GridFeatureEncoder(nn.Module):
    """What both encoders share: a CNN (``self.cnn``) whose last feature map is the attention's regions.

    ``backbone(images (B, C, S, S)) -> (B, G·G, D)`` is the CNN alone; ``forward`` adds a learned position
    embedding (so a context vector says *where* it was read) and also takes features ``backbone`` computed
    earlier, ``(B, G·G, D)`` — what a feature cache holds. A frozen CNN keeps its weights and BatchNorm
    statistics; :meth:`backbone_key` identifies its weights, which is what a feature cache is keyed by.
    """

    cnn: nn.Module
    grid: int
    dim: int
    frozen: bool = False

    def backbone(self, images: Tensor) -> Tensor:
        return self.cnn(images).flatten(2).transpose(1, 2)  # (B, G·G, D), row-major regions

    def forward(self, images_or_features: Tensor) -> Tensor:
        x = images_or_features
        features = x if x.dim() == 3 else self.backbone(x)
        return features + self.position

    def freeze(self) -> None:
        self.frozen = True
        self.cnn.requires_grad_(False)
        self.cnn.eval()

    def train(self, mode: bool = True) -> GridFeatureEncoder:
        super().train(mode)
        if self.frozen:
            self.cnn.eval()
        return self

    def backbone_key(self) -> str:
        """A digest of the CNN's class and every weight and buffer: equal keys, equal features."""
        h = hashlib.sha256(type(self).__name__.encode())
        for name, tensor in self.cnn.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def _load_cnn_weights(cnn: nn.Module, path: str) -> None:
    """A CNN state_dict, or a captioning run's checkpoint (its ``model.encoder.cnn.*`` weights)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    prefix = "model.encoder.cnn."
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    cnn.load_state_dict(state)


class GridEncoder(GridFeatureEncoder):
    """``(B, C, S, S) -> (B, G·G, D)``: conv-BN-ReLU-maxpool blocks, then a learned position embedding.

    ``G = S / 2**len(channels)``.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        weights: str | None = None,
        freeze: bool = False,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *channels[:-1]), channels):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.cnn = nn.Sequential(*layers)
        self.grid = image_size // 2 ** len(channels)
        if self.grid < 1 or image_size % 2 ** len(channels):
            raise ValueError(
                f"image size {image_size} must be a multiple of {2 ** len(channels)} ({len(channels)} blocks)"
            )
        self.dim = channels[-1]
        self.position = nn.Parameter(torch.randn(self.grid * self.grid, self.dim) * 0.02)
        if weights is not None:
            _load_cnn_weights(self.cnn, weights)
        if freeze:
            self.freeze()


RESNET_DEPTHS = (18, 34, 50, 101, 152)


class ResNetGridEncoder(GridFeatureEncoder):
    """``(B, C, S, S) -> (B, G·G, D)`` from a torchvision ResNet's last convolutional block (``G = S / 32``).

    As in Show, Attend and Tell the regions are the CNN's last feature map, before pooling. Weights
    come only from a local file (``weights``: a ``state_dict`` saved with ``torch.save``, loaded with
    ``weights_only=True``) — never downloaded. ``freeze`` keeps them fixed (BatchNorm statistics too).
    Grey images are repeated to three channels.
    """

    def __init__(self, in_channels: int, image_size: int, depth: int, weights: str | None, freeze: bool = False):
        super().__init__()
        try:
            from torchvision import models
        except ImportError as err:  # torchvision is optional: say how to get it
            raise ImportError(
                "model.encoder=resnet needs torchvision (pip install torchvision, matching your torch); "
                "model.encoder=cnn needs nothing more"
            ) from err
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"model.resnet_depth={depth}: choose one of {', '.join(map(str, RESNET_DEPTHS))}")
        if image_size % 32:
            raise ValueError(f"image size {image_size} must be a multiple of 32 for a ResNet encoder")
        resnet = getattr(models, f"resnet{depth}")(weights=None)
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            resnet.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        self.repeat = 3 if in_channels == 1 else 1
        if in_channels not in (1, 3):
            raise ValueError(f"a ResNet encoder takes 1- or 3-channel images, not {in_channels}")
        self.cnn = nn.Sequential(*list(resnet.children())[:-2])  # drop avgpool and fc
        self.grid = image_size // 32
        self.dim = resnet.fc.in_features
        self.position = nn.Parameter(torch.randn(self.grid * self.grid, self.dim) * 0.02)
        if freeze:
            self.freeze()

    def backbone(self, images: Tensor) -> Tensor:
        return super().backbone(images.repeat(1, self.repeat, 1, 1))


@dataclass
class CaptionState(BatchState):
    hidden: Tensor  # (B, H)
    cell: Tensor  # (B, H)
    context: Tensor  # (B, D) previous gated context z_{t-1}
    regions: Tensor  # (B, N, D) the attention values
    keys: Tensor  # (B, N, *) the attention's prepared keys
    mask: Tensor  # (B, N) all True: every region is real


class CaptionDecoder(nn.Module):
    def __init__(
        self, vocab_size: int, embed_dim: int, hidden: int, *, feature_dim: int, attention: Attention, dropout: float
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.attention = attention
        self.init_h = nn.Linear(feature_dim, hidden)
        self.init_c = nn.Linear(feature_dim, hidden)
        self.cell = nn.LSTMCell(embed_dim + feature_dim, hidden)
        self.beta = nn.Linear(hidden, 1)
        self.out_h = nn.Linear(hidden, embed_dim)
        self.out_z = nn.Linear(feature_dim, embed_dim)
        self.output = nn.Linear(embed_dim, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def start(self, regions: Tensor) -> CaptionState:
        mean = regions.mean(dim=1)
        mask = torch.ones(regions.shape[:2], dtype=torch.bool, device=regions.device)
        return CaptionState(
            torch.tanh(self.init_h(mean)),
            torch.tanh(self.init_c(mean)),
            torch.zeros_like(mean),
            regions,
            self.attention.prepare(regions),
            mask,
        )

    def step(self, prev_tokens: Tensor, state: CaptionState) -> tuple[Tensor, CaptionState, AttentionOutput]:
        """One step. ``prev_tokens (B,) -> logits (B, V)``."""
        emb = self.dropout(self.embed(prev_tokens))
        # 1. update the state with the previous word and the previous gated context
        hidden, cell = self.cell(torch.cat([emb, state.context], dim=-1), (state.hidden, state.cell))
        # 2. attend over the regions
        att = self.attention.attend(hidden, state.keys, state.regions, state.mask)
        # 3. the gating scalar β decides how much of the context to let through
        gate = torch.sigmoid(self.beta(hidden))
        context = gate * att.context

        # 4. deep output, read as the mechanism reads (marginal attention: every region's prediction, mixed)
        def predict(regions: Tensor) -> Tensor:
            """Contexts ``(B, …, F)`` -> logits ``(B, …, V)``."""
            extra = regions.shape[1:-1]
            fixed = (emb + self.out_h(hidden)).view(hidden.size(0), *(1,) * len(extra), -1)
            gated = gate.view(hidden.size(0), *(1,) * len(extra), 1) * regions
            return self.output(self.dropout(fixed + self.out_z(gated)))

        logits = self.attention.readout(att, state.regions, predict)
        return logits, CaptionState(hidden, cell, context, state.regions, state.keys, state.mask), att

    def teacher_forced(self, state: CaptionState, tgt_in: Tensor) -> DecoderOutput:
        """Every step over the gold previous tokens ``tgt_in (B, T)``."""
        return teacher_forcing(self.step, state, tgt_in)


def build_grid_encoder(config: GridEncoderConfig, in_channels: int, image_size: int) -> GridFeatureEncoder:
    """The grid encoder a config names: ``cnn`` (from scratch; ``channels`` its block widths) or ``resnet``."""
    c = config
    if c.encoder == "cnn":
        encoder: GridFeatureEncoder = GridEncoder(
            in_channels, image_size, tuple(c.channels), c.encoder_weights, c.freeze_encoder
        )
    elif c.encoder == "resnet":
        encoder = ResNetGridEncoder(in_channels, image_size, c.resnet_depth, c.encoder_weights, c.freeze_encoder)
    else:
        raise ValueError(f"model.encoder={c.encoder!r}: choose cnn or resnet")
    if c.cache_features and not c.freeze_encoder:
        raise ValueError(
            "model.cache_features=true needs model.freeze_encoder=true: only a frozen encoder's "
            "features stay the same from one step to the next"
        )
    return encoder


class ImageCaptioner(nn.Module):
    """A captioning model as the task uses it: images (or their cached grid features) encoded to regions
    ``(B, G·G, D)`` by ``self.encoder`` (a :class:`GridFeatureEncoder`), read by ``self.decoder`` from the state
    :meth:`start` makes: training, greedy and beam-search decoding. A subclass builds the two."""

    encoder: GridFeatureEncoder
    decoder: nn.Module

    @property
    def attention(self) -> Attention:
        return self.decoder.attention

    @property
    def grid(self) -> int:
        return self.encoder.grid

    @property
    def memory_dim(self) -> int:
        """``D``: the size of each region's features the decoder attends over."""
        return self.encoder.dim

    def start(self, regions: Tensor):
        """The decoder's first state over given region features ``(B, N, D)`` (what the speed pass measures a
        decoder step on, at any grid size)."""
        return self.decoder.start(regions)

    def encode(self, images: Tensor):
        return self.start(self.encoder(images))

    def forward(self, images: Tensor, tgt_in: Tensor) -> DecoderOutput:
        """Teacher forcing: ``images (B, C, S, S)`` (or their cached grid features ``(B, G·G, D)``),
        ``tgt_in (B, T)`` starting with ``<s>``."""
        return self.decoder.teacher_forced(self.encode(images), tgt_in)

    @torch.no_grad()
    def greedy(self, images: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
        """Tokens ``(B, L)`` and attention over regions ``(B, L, G·G)``."""
        return greedy(self.decoder.step, self.encode(images), images.size(0), max_len, images.device)

    @torch.no_grad()
    def beam_search(self, images: Tensor, max_len: int, beam_size: int, length_penalty: float) -> Tensor:
        state = self.encode(images)
        return beam_search(
            self.decoder.step,
            state,
            images.size(0),
            max_len=max_len,
            beam_size=beam_size,
            length_penalty=length_penalty,
            device=images.device,
        )


class Captioner(ImageCaptioner):
    """Show, Attend and Tell with any attention mechanism.

    Args:
        vocab: caption vocabulary size (ids 0-3 are ``<pad> <s> </s> <unk>``).
        attention: the mechanism config (see :func:`lightning_attn.attention.build_attention`).
        in_channels: channels of the input images ``(B, in_channels, image_size, image_size)``.
        image_size: height and width of the input images.
        config: encoder and decoder (:class:`CaptionerConfig`, its defaults when omitted): ``cnn`` (from
            scratch; ``channels`` are its block widths, each halves the resolution) or ``resnet``
            (torchvision; ``resnet_depth``); ``encoder_weights`` a local file, ``freeze_encoder``.
    """

    def __init__(
        self, vocab: int, attention: Any, in_channels: int, image_size: int, config: CaptionerConfig | None = None
    ):
        super().__init__()
        c = config or CaptionerConfig()
        self.encoder = build_grid_encoder(c, in_channels, image_size)
        mechanism = build_attention(attention, query_dim=c.hidden, key_dim=self.encoder.dim)
        self.decoder = CaptionDecoder(
            vocab, c.embed_dim, c.hidden, feature_dim=self.encoder.dim, attention=mechanism, dropout=c.dropout
        )
