"""Built-in digit scenes: deterministic, disjoint handwriting per split, gold regions point at the ink."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_attn.data.digits import COL_WORDS, DIGIT_WORDS, ROW_WORDS, DigitsDataConfig, handwriting_pool
from lightning_attn.data.digits import generate_scenes as generate


def generate_scenes(n: int, split: str = "train", seed: int = 0, **settings):
    return generate(n, split, DigitsDataConfig(scene_seed=seed, **settings))


def test_same_seed_same_scenes():
    a, b = generate_scenes(20, seed=3), generate_scenes(20, seed=3)
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert [s.caption for s in generate_scenes(20, seed=4)] != [s.caption for s in a]


def test_splits_use_disjoint_handwriting():
    pools = [set(handwriting_pool(s).tolist()) for s in ("train", "val", "test")]
    assert not (pools[0] & pools[1]) and not (pools[0] & pools[2]) and not (pools[1] & pools[2])
    assert sum(map(len, pools)) == 1797


def test_caption_grammar_and_reading_order():
    for scene in generate_scenes(200, seed=0):
        groups = " ".join(scene.words).split(" , ")
        assert 2 <= len(groups) <= 4
        cells = [r for r, w in zip(scene.regions, scene.words) if w in DIGIT_WORDS]
        assert cells == sorted(cells)  # row-major reading order
        for group in groups:
            digit, row, col = group.split(" ")
            assert digit in DIGIT_WORDS and row in ROW_WORDS[4] and col in COL_WORDS[4]


def test_gold_region_holds_the_ink_of_its_word():
    for scene in generate_scenes(100, seed=0):
        cell = scene.image.shape[0] // scene.grid
        described = set()
        for word, region in zip(scene.words, scene.regions):
            if region < 0:
                assert word == ","
                continue
            row, col = divmod(region, scene.grid)
            assert ROW_WORDS[4][row] in scene.words and COL_WORDS[4][col] in scene.words
            assert scene.image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell].sum() > 1.0
            described.add(region)
        # without clutter, no ink outside the described cells
        mask = np.zeros_like(scene.image, dtype=bool)
        for region in described:
            row, col = divmod(region, scene.grid)
            mask[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = True
        assert scene.image[~mask].sum() == 0


def test_clutter_adds_ink_the_caption_does_not_mention():
    cluttered = generate_scenes(50, seed=0, clutter=2)
    cell = 16
    extra = 0
    for scene in cluttered:
        described = {r for r in scene.regions if r >= 0}
        for region in set(range(16)) - described:
            row, col = divmod(region, 4)
            extra += scene.image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell].sum() > 0
    assert extra >= 50  # most of the 100 fragments land visibly


@pytest.mark.parametrize("canvas,cell,grid", [(48, 16, 3), (32, 16, 2), (96, 24, 4)])
def test_other_layouts(canvas, cell, grid):
    (scene,) = generate_scenes(1, canvas=canvas, cell=cell, min_digits=2, max_digits=2)
    assert scene.image.shape == (canvas, canvas) and scene.grid == grid


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"canvas": 60}, "multiple of cell"),
        ({"canvas": 80}, "2x2, 3x3 or 4x4"),
        ({"min_digits": 3, "max_digits": 2}, "min_digits"),
        ({"max_digits": 10, "clutter": 10}, "do not fit"),
    ],
)
def test_bad_settings_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_scenes(1, **kwargs)
