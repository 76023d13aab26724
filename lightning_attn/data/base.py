"""What every DataModule here shares: in-memory splits served by plain DataLoaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from .batching import Batches, token_batches
from .codec import Codec
from .parallel import DataError


class SplitDataModule(L.LightningDataModule):
    """Subclasses fill ``self.splits`` (``train``/``val``/``test`` -> examples) in ``setup`` and set
    ``collate`` to the function that pads a list of examples into a batch.

    Batches hold ``batch_size`` examples, drawn at random for training — or, where the data config sets
    ``batch_tokens`` and the subclass says how long an example is (:meth:`lengths`), hold up to that
    many padded tokens of similar-length examples (:mod:`.batching`), the batches shuffled each epoch.

    Args:
        data: the ``data`` config section (``batch_size``, ``batch_tokens``, ``num_workers`` are read here).
    """

    collate: Callable
    #: the vocabularies a trained model's ids refer to: file stem -> the attribute holding its Codec
    VOCABULARIES: dict[str, str] = {}

    def __init__(self, data: dict):
        super().__init__()
        self.cfg = dict(data)
        self.splits: dict[str, list] = {}

    def save_vocabularies(self, folder: str | Path) -> list[Path]:
        """Write the vocabularies (``<stem>.json``) into ``folder``; returns the files."""
        paths = []
        for stem, attribute in self.VOCABULARIES.items():
            paths.append(Path(folder) / f"{stem}.json")
            getattr(self, attribute).save(paths[-1])
        return paths

    def load_vocabularies(self, folder: str | Path) -> None:
        """Use the vocabularies :meth:`save_vocabularies` wrote (a trained model's) instead of building them."""
        for stem, attribute in self.VOCABULARIES.items():
            path = Path(folder) / f"{stem}.json"
            if not path.is_file():
                raise DataError(f"{path}: missing vocabulary (expected {', '.join(self.VOCABULARIES)} .json)")
            setattr(self, attribute, Codec.load(path))

    def setup_evaluation(self, split: str | None = None, files: tuple[str, str] | None = None) -> str:
        """Make ``test`` the data to score — the split named ``split`` (default: the configured test split),
        or a file pair where the data kind reads one — using the vocabularies already loaded. Returns what
        was loaded, for the record."""
        raise NotImplementedError

    def lengths(self, split: str) -> list[tuple[int, ...]]:
        """Per example of ``split``, the padded length of each sequence in its batch tensors."""
        raise NotImplementedError(f"{type(self).__name__} has no token-based batches")

    def batch_plan(self, split: str) -> list[list[int]] | None:
        """The token-based batches of ``split``, or ``None`` for ``batch_size`` batches."""
        max_tokens = self.cfg.get("batch_tokens") or 0
        if not max_tokens:
            return None
        # ties broken by the run's seed (lightning.seed_everything sets torch's): batches differ by seed
        return token_batches(self.lengths(split), max_tokens, seed=torch.initial_seed() % 2**32)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        workers = self.cfg["num_workers"]
        common = {"num_workers": workers, "persistent_workers": workers > 0}
        plan = self.batch_plan(split)
        if plan is not None:
            return DataLoader(
                Batches(self.splits[split], plan, type(self).collate), batch_size=None, shuffle=shuffle, **common
            )
        return DataLoader(
            self.splits[split],
            batch_size=self.cfg["batch_size"],
            shuffle=shuffle,
            collate_fn=type(self).collate,
            **common,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
