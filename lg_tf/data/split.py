"""`Split`: the images of one split with their dense fine labels, what every source returns
and every later stage (subsets, label noise, the tf.data pipeline) takes.

A module of its own, below both `sources` and `pipeline`, so neither imports the other
for it.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class Split:
    images: np.ndarray  # uint8 [N, H, W, 3] pixels, or str [N] file paths
    labels: np.ndarray  # int32 [N] dense fine labels
    # Image folders with --skip_corrupt: the files left out, {"unreadable": [...],
    # "not_image": [...]}. Not carried over by `take`.
    skipped: dict = dataclasses.field(default_factory=dict)
    # In-memory sources: each example's index in its source split (what --labels_file rows
    # name as "<split>/<index>"); None for files, which are named by their path.
    index: np.ndarray | None = None

    @property
    def is_files(self) -> bool:
        return self.images.ndim == 1

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray, labels: np.ndarray | None = None) -> "Split":
        return Split(self.images[index], self.labels[index] if labels is None else labels,
                     index=None if self.index is None else self.index[index])

    def relabel(self, labels: np.ndarray) -> "Split":
        return Split(self.images, labels, self.skipped, self.index)
