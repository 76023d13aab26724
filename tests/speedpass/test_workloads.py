"""Fixed work: every decode runs exactly the steps asked, whatever the model would emit; a training step
reaches every weight the mechanism trains."""

from __future__ import annotations

import pytest
import torch

from lightning_attn.data.codec import EOS
from lightning_attn.speedpass.workloads import decode, decoder_loss, never_ends, training_step
from lightning_attn.tasks import TASKS


def _model(task: str, mechanism: str, *overrides: str):
    from lightning_attn.config import compose, section

    cfg = compose([f"task={task}", f"attention={mechanism}", *overrides])
    return TASKS[task].bare_model(section(cfg, "model"), section(cfg, "attention"), 50)


@pytest.mark.parametrize("beam", [1, 3])
def test_a_decode_runs_exactly_its_steps_even_where_the_model_would_stop(beam):
    torch.manual_seed(0)
    model = _model("translation", "soft")
    with torch.no_grad():  # a model that says </s> at once
        model.decoder.output.bias.fill_(-100.0)
        model.decoder.output.bias[EOS] = 100.0
    calls = []
    step = model.decoder.step

    def counted(prev, state):
        calls.append(prev.shape[0])
        return step(prev, state)

    model.decoder.step = counted
    memory = torch.randn(1, 7, model.memory_dim)
    decode(model, lambda: model.start(memory), 1, steps=9, beam=beam)()
    assert calls == [beam] * 9  # 9 steps of `beam` rows each
    logits, _, _ = never_ends(step)(torch.tensor([1]), model.start(memory))
    assert logits[0, EOS] == float("-inf")


@pytest.mark.parametrize(
    ("task", "mechanism", "model", "trained_by_it"),
    [
        ("translation", "hard", "seq2seq", "attention."),
        ("captioning", "local", "captioner", "attention."),
        ("translation", "local", "transformer", "cross_attention.position"),  # its predicted centre, per head
        ("captioning", "hard", "transformer", "layers.0.cross_attention.query"),  # every layer's scores, not the last's
    ],
)
def test_a_training_step_reaches_the_weights_the_mechanism_trains(task, mechanism, model, trained_by_it):
    torch.manual_seed(0)
    model = _model(task, mechanism, f"model={model}")
    memory = torch.randn(2, 16, model.memory_dim, requires_grad=True)
    tokens = torch.randint(4, 50, (2, 6))
    training_step(model, lambda: decoder_loss(model, memory, tokens[:, :-1], tokens[:, 1:]))()
    trained = [name for name, p in model.decoder.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert any(name.startswith(trained_by_it) for name in trained), trained  # the scorer (and local's position)
    assert memory.grad is not None and memory.grad.abs().sum() > 0  # into the encoder states
