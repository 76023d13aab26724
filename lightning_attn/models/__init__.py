"""Plain ``nn.Module`` models (no Lightning)."""

from .decoding import beam_search, greedy
from .seq2seq import Seq2Seq, Seq2SeqOutput

__all__ = ["Seq2Seq", "Seq2SeqOutput", "beam_search", "greedy"]
