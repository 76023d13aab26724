"""Built-in captioning data: digit scenes.

Real handwritten digits (scikit-learn's bundled ``load_digits``, 8×8, no download) are scaled up and
placed on the cells of a canvas (default 64×64 → a 4×4 layout of 16-pixel cells). The caption reads
the digits in reading order and says where each one is::

    "seven top left , two upper centre-right , nine bottom right"

A digit word and its two position words can only be produced by looking at the right cell, which
the generator records as the **gold attention** of every caption word (``-1`` for ``,``). Scenes are
deterministic from a seed, and the three splits draw their digits from disjoint sets of
handwriting samples, so test scenes show digits the model has never seen. Optional *clutter* adds
digit fragments in empty cells: ink the caption does not mention.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .source import Captioned, CaptionSource


@dataclass
class DigitsDataConfig:
    """Built-in digit scenes (see :mod:`lightning_attn.data.digits`)."""

    kind: str = "digits"
    n_train: int = 12000
    n_val: int = 500
    n_test: int = 1000
    scene_seed: int = 1234
    canvas: int = 64
    cell: int = 16  # 64/16: a 4x4 layout, matching the encoder's 4x4 grid
    min_digits: int = 2
    max_digits: int = 4
    clutter: int = 0  # digit fragments in empty cells
    batch_size: int = 64
    num_workers: int = 0


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ROW_WORDS = {2: ("top", "bottom"), 3: ("top", "middle", "bottom"), 4: ("top", "upper", "lower", "bottom")}
COL_WORDS = {2: ("left", "right"), 3: ("left", "centre", "right"), 4: ("left", "centre-left", "centre-right", "right")}
SPLIT_SHARE = {"train": (0.0, 0.7), "val": (0.7, 0.85), "test": (0.85, 1.0)}


@dataclass(frozen=True)
class Scene:
    """One image and its caption.

    Attributes:
        image: ``(canvas, canvas)`` float32 in [0, 1].
        words: caption words.
        regions: for each word, the layout cell it refers to (row-major index), or -1.
        grid: cells per side of the layout.
    """

    image: np.ndarray
    words: tuple[str, ...]
    regions: tuple[int, ...]
    grid: int

    @property
    def caption(self) -> str:
        return " ".join(self.words)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def handwriting_pool(split: str) -> np.ndarray:
    """Indices of the handwriting samples a split may use (a fixed shuffle, then disjoint slices)."""
    images, _ = _digits()
    order = np.random.default_rng(20151102).permutation(len(images))
    lo, hi = SPLIT_SHARE[split]
    return order[int(lo * len(order)) : int(hi * len(order))]


def _scaled(image: np.ndarray, size: int) -> np.ndarray:
    factor = size // image.shape[0]
    return np.kron(image, np.ones((factor, factor), dtype=np.float32))


def generate_scenes(n: int, split: str, config: DigitsDataConfig) -> list[Scene]:
    """``n`` scenes of one split, deterministic from ``config.scene_seed``.

    From the config: ``canvas`` (image side in pixels, a multiple of ``cell``), ``cell`` (layout cell side,
    a multiple of 8, the digits' native size), ``min_digits``/``max_digits`` per scene, and ``clutter``
    (digit fragments, a random quarter of a digit, added in empty cells).
    """
    c = config
    canvas, cell, min_digits, max_digits, clutter, seed = (
        c.canvas,
        c.cell,
        c.min_digits,
        c.max_digits,
        c.clutter,
        c.scene_seed,
    )
    if canvas % cell or cell % 8:
        raise ValueError(f"canvas ({canvas}) must be a multiple of cell ({cell}), and cell a multiple of 8")
    grid = canvas // cell
    if grid not in ROW_WORDS:
        raise ValueError(f"canvas/cell must give a 2x2, 3x3 or 4x4 layout, got {grid}x{grid}")
    if not 1 <= min_digits <= max_digits <= grid * grid:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= {grid * grid}, got {min_digits}..{max_digits}")
    if max_digits + clutter > grid * grid:
        raise ValueError(f"{max_digits} digits and {clutter} clutter fragments do not fit {grid * grid} cells")
    images, labels = _digits()
    pool = handwriting_pool(split)
    rng = np.random.default_rng([seed, list(SPLIT_SHARE).index(split)])
    scenes = []
    for _ in range(n):
        k = int(rng.integers(min_digits, max_digits + 1))
        cells = rng.choice(grid * grid, size=k + clutter, replace=False)
        digit_cells, clutter_cells = np.sort(cells[:k]), cells[k:]  # sorted cell index = reading order
        picks = rng.choice(pool, size=k + clutter)
        image = np.zeros((canvas, canvas), dtype=np.float32)
        words: list[str] = []
        regions: list[int] = []
        for i, (c, sample) in enumerate(zip(digit_cells, picks[:k])):
            row, col = divmod(int(c), grid)
            image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = _scaled(images[sample], cell)
            if i:
                words.append(",")
                regions.append(-1)
            words += [DIGIT_WORDS[labels[sample]], ROW_WORDS[grid][row], COL_WORDS[grid][col]]
            regions += [int(c)] * 3
        for c, sample in zip(clutter_cells, picks[k:]):
            row, col = divmod(int(c), grid)
            fragment = np.zeros((8, 8), dtype=np.float32)
            top, left = rng.integers(0, 5, size=2)
            fragment[top : top + 4, left : left + 4] = images[sample][top : top + 4, left : left + 4]
            image[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = _scaled(fragment, cell)
        scenes.append(Scene(image, tuple(words), tuple(regions), grid))
    return scenes


class DigitsSource(CaptionSource):
    """The built-in digit scenes, generated in memory: one-channel images, one caption each, with the gold
    layout cell of every word."""

    schema = DigitsDataConfig
    builtin = True
    channels = 1

    @property
    def image_size(self) -> int:
        return self.cfg["canvas"]

    @property
    def layout_grid(self) -> int:
        return self.cfg["canvas"] // self.cfg["cell"]

    def read(self, splits: tuple[str, ...]) -> dict[str, list[Captioned]]:
        c = self.cfg
        sizes, config = {"train": c["n_train"], "val": c["n_val"], "test": c["n_test"]}, DigitsDataConfig(**c)
        return {
            split: [
                Captioned(torch.from_numpy(s.image).unsqueeze(0), [s.caption], list(s.regions))
                for s in generate_scenes(sizes[split], split, config)
            ]
            for split in splits
        }
