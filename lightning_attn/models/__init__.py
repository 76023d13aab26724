"""Plain ``nn.Module`` models (no Lightning)."""

from .beam import beam_search
from .seq2seq import Seq2Seq, Seq2SeqOutput

__all__ = ["Seq2Seq", "Seq2SeqOutput", "beam_search"]
