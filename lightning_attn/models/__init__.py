"""Plain ``nn.Module`` models (no Lightning)."""

from .decoding import DecoderOutput, beam_search, greedy, teacher_forcing
from .seq2seq import Seq2Seq

__all__ = ["DecoderOutput", "Seq2Seq", "beam_search", "greedy", "teacher_forcing"]
