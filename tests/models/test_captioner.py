from __future__ import annotations

import pytest
import torch

from lightning_attn.attention import MECHANISMS
from lightning_attn.data.codec import PAD
from lightning_attn.models.captioner import Captioner, CaptionerConfig, GridEncoder

V = 20


def model(mechanism: str = "soft") -> Captioner:
    torch.manual_seed(0)
    sizes = CaptionerConfig(channels=[8, 8, 16, 16], embed_dim=8, hidden=16, dropout=0.0)
    return Captioner(V, {"mechanism": mechanism}, 1, 64, sizes)


def batch():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 64, 64, generator=g)
    tgt = torch.randint(4, V, (3, 6), generator=g)
    tgt[:, 0] = 1
    return images, tgt


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_teacher_forcing_shapes_and_attention_over_the_grid(mechanism):
    out = model(mechanism).train()(*batch())
    assert out.logits.shape == (3, 6, V)
    assert out.trace.weights.shape == (3, 6, 16)  # 64 px / 2**4 = a 4x4 grid
    torch.testing.assert_close(out.trace.weights.sum(-1), torch.ones(3, 6))


def test_grid_follows_image_size_and_depth():
    assert GridEncoder(3, 128, (8, 8, 8)).grid == 16
    with pytest.raises(ValueError, match="multiple of 16"):
        GridEncoder(1, 72, (8, 8, 8, 8))


def test_position_embedding_makes_context_depend_on_where_it_looks():
    m = model().eval()
    regions = m.encoder(torch.zeros(1, 1, 64, 64))
    # a blank image: the only difference between regions is their position embedding
    assert not torch.allclose(regions[0, 0], regions[0, 5])


def test_beam_of_one_is_greedy_and_beam_runs_for_hard_attention():
    m = model().eval()
    images, _ = batch()
    greedy, _ = m.greedy(images, max_len=7)
    beam = m.beam_search(images, max_len=7, beam_size=1, length_penalty=0.0)
    for g, b in zip(greedy.tolist(), beam.tolist()):
        assert [t for t in g if t != PAD] == [t for t in b if t != PAD]
    assert model("hard").eval().beam_search(images, max_len=7, beam_size=3, length_penalty=1.0).shape[0] == 3


def test_hard_attention_eval_is_deterministic():
    m = model("hard").eval()
    images, tgt = batch()
    torch.testing.assert_close(m(images, tgt).logits, m(images, tgt).logits)


def test_resnet_encoder_without_torchvision_says_how_to_get_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as on a machine without torchvision
    with pytest.raises(ImportError, match="pip install torchvision"):
        Captioner(V, {"mechanism": "soft"}, 1, 64, CaptionerConfig(encoder="resnet"))


def test_unknown_encoder_names_the_choices():
    with pytest.raises(ValueError, match="cnn or resnet"):
        Captioner(V, {"mechanism": "soft"}, 1, 64, CaptionerConfig(encoder="vit"))


def test_resnet_encoder_grid_and_local_weights(tmp_path):
    models = pytest.importorskip("torchvision.models", reason="torchvision is optional")
    torch.manual_seed(1)
    reference = models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet18.pt")
    weights = str(tmp_path / "resnet18.pt")
    config = CaptionerConfig(encoder="resnet", encoder_weights=weights, freeze_encoder=True, embed_dim=8, hidden=16)
    m = Captioner(V, {"mechanism": "hard"}, 1, 64, config)
    assert m.grid == 2 and m.encoder.dim == 512
    torch.testing.assert_close(m.encoder.cnn[0].weight, reference.conv1.weight)  # the file's weights, not random
    assert not any(p.requires_grad for p in m.encoder.cnn.parameters())
    m.train()
    assert not m.encoder.cnn.training  # frozen BatchNorm keeps its statistics
    images, tgt = batch()
    assert m(images, tgt).trace.weights.shape == (3, 6, 4)
