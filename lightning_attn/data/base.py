"""What every DataModule here shares: in-memory splits served by plain DataLoaders."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader


class SplitDataModule(L.LightningDataModule):
    """Subclasses fill ``self.splits`` (``train``/``val``/``test`` -> examples) in ``setup`` and set
    ``collate`` to the function that pads a list of examples into a batch.

    Args:
        data: the ``data`` config section (``batch_size`` and ``num_workers`` are read here).
    """

    collate: Callable

    def __init__(self, data: dict):
        super().__init__()
        self.cfg = dict(data)
        self.splits: dict[str, list] = {}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.splits[split],
            batch_size=self.cfg["batch_size"],
            shuffle=shuffle,
            collate_fn=type(self).collate,
            num_workers=self.cfg["num_workers"],
            persistent_workers=self.cfg["num_workers"] > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
