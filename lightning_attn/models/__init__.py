"""Plain ``nn.Module`` models (no Lightning), built from their config dataclasses.

:data:`MODELS` is the model registry: ``kind`` (what ``conf/model/*.yaml`` names) -> (class, config).
"""

from ..registry import Registry
from .captioner import Captioner, CaptionerConfig
from .decoding import DecoderOutput, beam_search, greedy, teacher_forcing
from .seq2seq import Seq2Seq, Seq2SeqConfig

MODELS: Registry[tuple[type, type]] = Registry(
    "model kind",
    {
        "seq2seq": (Seq2Seq, Seq2SeqConfig),
        "captioner": (Captioner, CaptionerConfig),
    },
)

__all__ = [
    "MODELS",
    "Captioner",
    "CaptionerConfig",
    "DecoderOutput",
    "Seq2Seq",
    "Seq2SeqConfig",
    "beam_search",
    "greedy",
    "teacher_forcing",
]
