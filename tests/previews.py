"""Pictures for the docs, made by test helpers rather than by the library.

`python tests/previews.py` rewrites docs/embedded_preview.png (the README shows it);
tests/test_embedded.py checks that it draws.
"""

from __future__ import annotations

import os

import numpy as np

from lg_tf import plots
from lg_tf.data import embedded


def save_embedded_preview(path: str = "docs/embedded_preview.png", per_class: int = 8,
                          seed: int = 0) -> str:
    """A grid of the 12 fine classes x `per_class` test images, rows labelled
    "fine (coarse)"; returns the path written."""
    images, labels = embedded.generate("test", seed=seed, num_per_class=per_class)
    rows, columns = len(embedded.FINE_NAMES), per_class
    fig = plots.canvas((1.0 * columns + 1.8, 1.0 * rows), dpi=80)
    axes = fig.subplots(rows, columns, squeeze=False)
    for k in range(rows):
        index = np.flatnonzero(labels == k)
        for j in range(columns):
            axes[k, j].imshow(images[index[j]], interpolation="nearest")
            axes[k, j].set_xticks([])
            axes[k, j].set_yticks([])
        axes[k, 0].set_ylabel(f"{embedded.FINE_NAMES[k]}\n"
                              f"({embedded.COARSE_NAMES[embedded.PARENT[k]]})",
                              rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"lg_shapes: fine (coarse), test split, seed {seed}")
    fig.tight_layout()
    plots.save(fig, path, bbox_inches=None)
    return os.fspath(path)


if __name__ == "__main__":
    print(save_embedded_preview())
