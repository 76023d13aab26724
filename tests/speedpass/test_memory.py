"""Peak tensor memory counts the tensors a call allocates, not the process."""

from __future__ import annotations

import torch

from lightning_attn.speedpass.memory import peak_tensor_mib


def test_the_peak_counts_tensors_alive_together_and_not_those_freed_before():
    def call():
        kept = torch.ones(1024, 1024)  # 4 MiB
        temporary = torch.ones(2048, 1024)  # 8 MiB, alive with the first
        del temporary
        again = torch.ones(1024, 1024)  # 4 MiB: the peak stays 12
        return kept, again

    assert 12.0 <= peak_tensor_mib(call) < 12.5


def test_a_call_that_allocates_nothing_has_no_peak():
    x = torch.ones(512, 512)
    assert peak_tensor_mib(lambda: x.shape) == 0.0
