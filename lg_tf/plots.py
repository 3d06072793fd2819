"""Every lg_tf and pipelines figure: one Agg canvas, one PNG writer, no pyplot state.

* `canvas`, `save`: a matplotlib Figure on its own Agg canvas, and its PNG bytes (written
  to a path when given). `pipelines.plots` builds the report figures on these two.
* `plot_confusion` / `ConfusionFigure`: the fine confusion matrix like the paper's Fig. 5.
* `scatter_by_coarse`, `plot_tsne`: 2-D points coloured by coarse class (Fig. 4).

Nothing here imports TensorFlow, and matplotlib only when a figure is drawn.
"""

from __future__ import annotations

import io
import os

import numpy as np

DPI = 100


def canvas(figsize, dpi: int = DPI):
    """A matplotlib Figure on its own Agg canvas (thread-safe, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str | None = None, bbox_inches="tight") -> bytes:
    """The figure as PNG bytes; also written to `path` (parent folders created) when given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches=bbox_inches)
    data = buf.getvalue()
    if path:
        from lg_tf import files
        files.write_bytes(path if "://" in path else os.path.abspath(path), data)
    return data


# --------------------------------------------------------------------------- confusion

def plot_confusion(confusion, h, path: str | None = None, title: str = "") -> bytes:
    """The fine confusion matrix like the paper's Fig. 5; returns PNG bytes (and writes path).

    Fine classes are ordered by coarse parent; cells are column-normalised (each column
    sums to 1: the share of a predicted class coming from each true class, as ACR uses);
    each coarse class's block is outlined and named on the top and right axes.
    """
    return ConfusionFigure(h).render(confusion, title, path)


class ConfusionFigure:
    """The `plot_confusion` figure, built once and redrawn with new counts.

    `analysis.ACRCallback` renders one per ACR epoch: reusing the axes, ticks and cell
    labels and fixing the crop after the first render saves about half of the drawing time.
    """

    def __init__(self, h):
        from matplotlib.patches import Rectangle

        parent = h.parent_array()
        self.order = np.argsort(parent, kind="stable")
        n = self.n = len(self.order)
        side = float(np.clip(0.42 * n + 3.0, 5.0, 16.0))
        self.fig = fig = canvas((side + 1.6, side + 0.6))
        ax = self.ax = fig.add_subplot()
        self.image = ax.imshow(np.zeros((n, n)), cmap="Blues", vmin=0.0, vmax=1.0,
                               interpolation="nearest")
        fig.colorbar(self.image, ax=ax, fraction=0.046, pad=0.12,
                     label="share of the predicted column")
        self.cells = [[ax.text(j, i, "", ha="center", va="center", fontsize=7)
                       for j in range(n)] for i in range(n)] if n <= 16 else None
        start, centres = 0, []
        for c in range(h.num_coarse):
            k = int(np.sum(parent == c))
            ax.add_patch(Rectangle((start - 0.5, start - 0.5), k, k, fill=False,
                                   edgecolor="crimson", linewidth=2.0, clip_on=False))
            centres.append(start + (k - 1) / 2)
            start += k
        if n <= 40:
            names = [h.fine_names[f] for f in self.order]
            ax.set_xticks(range(n), names, rotation=90, fontsize=8)
            ax.set_yticks(range(n), names, fontsize=8)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_xlabel("predicted fine class")
        ax.set_ylabel("true fine class")
        ax.secondary_xaxis("top").set_xticks(centres, list(h.coarse_names), fontsize=9,
                                             fontweight="bold")
        ax.secondary_yaxis("right").set_yticks(centres, list(h.coarse_names), fontsize=9,
                                               fontweight="bold", rotation=90, va="center")
        self.heading = "Fine confusion matrix, column-normalised (boxes: coarse classes)"
        self._crop = None

    def render(self, confusion, title: str = "", path: str | None = None) -> bytes:
        from lg_tf.stats import normalized_confusion
        norm = normalized_confusion(confusion, "column")[np.ix_(self.order, self.order)]
        self.image.set_data(norm)
        if self.cells is not None:
            for i, row in enumerate(self.cells):
                for j, cell in enumerate(row):
                    v = norm[i, j]
                    cell.set_text(f"{v:.2f}" if v >= 0.005 else "")
                    cell.set_color("white" if v > 0.5 else "black")
        self.ax.set_title(self.heading + (f"\n{title}" if title else ""), fontsize=10, pad=28)
        if self._crop is None:  # the tight crop needs a draw: measure it once, with a margin
            from matplotlib.transforms import Bbox
            tight = self.fig.get_tightbbox(self.fig.canvas.get_renderer())
            self._crop = Bbox.from_extents(tight.x0 - 0.1, tight.y0 - 0.1,
                                           tight.x1 + 0.1, tight.y1 + 0.1)
        return save(self.fig, path, bbox_inches=self._crop)


# --------------------------------------------------------------------------- t-SNE

def scatter_by_coarse(ax, points, coarse, h, marker: str = "X", centre_colour=None) -> None:
    """2-D points coloured by coarse class, each class's mean marked and named (Fig. 4)."""
    import matplotlib
    cmap = matplotlib.colormaps["tab10" if h.num_coarse <= 10 else "tab20"]
    size = float(np.clip(6000.0 / max(len(points), 1), 4.0, 20.0))
    for c, name in enumerate(h.coarse_names):
        mine = points[coarse == c]
        if not len(mine):
            continue
        colour = cmap(c % cmap.N)
        ax.scatter(mine[:, 0], mine[:, 1], s=size, alpha=0.6, color=colour, label=name,
                   linewidths=0)
        centre = mine.mean(axis=0)
        ax.scatter([centre[0]], [centre[1]], s=240, marker=marker,
                   color=centre_colour or colour, edgecolors="black", linewidths=1.5, zorder=5)
        ax.annotate(name, centre, xytext=(8, 8), textcoords="offset points", fontsize=10,
                    fontweight="bold", zorder=6,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour,
                          "alpha": 0.85})


def plot_tsne(points: np.ndarray, coarse: np.ndarray, h, path: str | None = None,
              title: str = "") -> bytes:
    """Points coloured by coarse class, each coarse class's mean marked and named (Fig. 4)."""
    fig = canvas((8.0, 7.0))
    ax = fig.add_subplot()
    scatter_by_coarse(ax, points, coarse, h)
    ax.legend(title="coarse class (X = mean)", markerscale=3, fontsize=8, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "t-SNE of penultimate-layer features", fontsize=10)
    return save(fig, path)
