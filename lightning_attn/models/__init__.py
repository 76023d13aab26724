"""Plain ``nn.Module`` models (no Lightning), built from their config dataclasses.

:data:`MODELS` is the model registry: ``kind`` (what ``conf/model/*.yaml`` names) -> (class, config).
"""

from ..attention import build_attention, config_fields
from ..registry import Registry
from .captioner import Captioner, CaptionerConfig
from .decoding import DecoderOutput, beam_search, greedy, teacher_forcing
from .seq2seq import Seq2Seq, Seq2SeqConfig
from .transformer import CaptionTransformer, Transformer, TransformerConfig, mechanisms

#: kind -> (the translation or captioning class, its config); a kind both tasks use (``transformer``) names its
#: translation class here, and each task says which class it builds (``TranslationModule.model_classes``)
MODELS: Registry[tuple[type, type]] = Registry(
    "model kind",
    {
        "seq2seq": (Seq2Seq, Seq2SeqConfig),
        "captioner": (Captioner, CaptionerConfig),
        "transformer": (Transformer, TransformerConfig),
    },
)


def check_attention(model: dict, attention: dict) -> None:
    """Whether the mechanism can be used where the model would use it, without building the model: a ``ValueError``
    with the reason in one line if not (a Transformer's places, ``attention.where`` with a recurrent decoder)."""
    if model.get("kind") == "transformer":
        mechanisms(attention, model["width"] // model["heads"] or 1)
    elif config_fields(attention).get("where", "cross") != "cross":
        build_attention(attention, 8, 8)  # refuses, saying why


__all__ = [
    "check_attention",
    "MODELS",
    "CaptionTransformer",
    "Captioner",
    "CaptionerConfig",
    "DecoderOutput",
    "Seq2Seq",
    "Seq2SeqConfig",
    "Transformer",
    "TransformerConfig",
    "beam_search",
    "greedy",
    "teacher_forcing",
]
