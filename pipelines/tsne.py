"""Fig. 4: t-SNE of the penultimate features, coarse-trained next to fine-trained.

usage: python -m pipelines.tsne --flagfile=flags/<dataset>.cfg --out_dir=DIR
           [--max_samples=2000] [--epochs_scale=S] [--dry_run] [--report_dir=DIR]
           [lg_tf flags]

Trains (or reuses, in a shared --out_dir) the coarse and the fine run of the first seed
(--shard, --print_commands and --report_only work as for any grid: the maps are drawn once
both runs are finished),
restores each one's newest checkpoint (train_lib.restore_run), takes the `features` layer
output (global average pool) for a fixed-seed sample of the test split, and draws both
t-SNE maps side by side, coloured by coarse class with each coarse class's mean marked
(lg_tf.analysis's feature and t-SNE helpers, lg_tf.plots' scatter). The report adds two
numbers the picture shows: how well the coarse classes separate (silhouette of the coarse
labels) and how well the fine classes separate inside each coarse class (mean silhouette
of the fine labels within a coarse class), both on the features themselves, not on the
2-D map.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from lg_tf import features, plots
from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import common, report
from pipelines import published as pub
from pipelines.report import Column, Table

NAME = "tsne"
TITLE = "Fig. 4 — t-SNE of the penultimate features: coarse-trained vs fine-trained"
MAX_SAMPLES = 2000


def grid(base) -> list[grid_lib.RunSpec]:
    return [grid_lib.spec(base, "CC coarse", {"series": "CC"}, granularity="coarse"),
            grid_lib.spec(base, "FC fine", {"series": "FC"}, granularity="fine")]


def run(base, ctx: Context, max_samples: int = MAX_SAMPLES) -> dict:
    features.check_tsne_samples(max_samples)  # before anything is trained
    ctx = dataclasses.replace(ctx, seeds=1)   # one pair of models is the figure
    specs = grid(base)
    runs = grid_lib.run_grid(NAME, base, specs, ctx)
    if runs is None:   # listed, commands printed, or runs left to other shards
        if ctx.dry_run:
            print(f"  then: t-SNE of up to {max_samples} test images per run", flush=True)
        return {"specs": specs, "runs": None, "report": None}
    maps = {}
    for s in specs:
        maps[s.tag["series"]] = embed(grid_lib.model_dir(ctx, s, base.seed), max_samples)
    return {"specs": specs, "runs": runs, "maps": maps,
            "report": write(base, ctx, specs, runs, maps)}


def embed(model_dir: str, max_samples: int) -> dict:
    """Features of a fixed-seed test sample from the run's last checkpoint, and their t-SNE."""
    from lg_tf import analysis, train_lib
    m = analysis.tsne_map(train_lib.restore_run(model_dir), "test", max_samples)
    return {"points": m.points, "features": m.features, "fine": m.fine, "coarse": m.coarse,
            "hierarchy": m.hierarchy, "epoch": m.epoch, "total": m.total}


def separation(m: dict) -> tuple[float | None, float | None]:
    """(silhouette of coarse labels, mean within-coarse silhouette of fine labels) on features."""
    from sklearn.metrics import silhouette_score
    feats, coarse, fine = m["features"], m["coarse"], m["fine"]

    def score(x, labels):
        k = len(np.unique(labels))
        return float(silhouette_score(x, labels)) if 2 <= k < len(labels) else None

    outer = score(feats, coarse)
    inner = [score(feats[coarse == c], fine[coarse == c]) for c in np.unique(coarse)]
    inner = [v for v in inner if v is not None]
    return outer, (float(np.mean(inner)) if inner else None)


def figure(path: str, maps: dict, title: str) -> str:
    fig = plots.canvas((13.0, 6.2))
    h = maps["FC"]["hierarchy"]
    for i, (series, heading) in enumerate((("CC", "(a) trained with coarse labels"),
                                           ("FC", "(b) trained with fine labels")), 1):
        m = maps[series]
        ax = fig.add_subplot(1, 2, i)
        pts, coarse = m["points"], m["coarse"]
        plots.scatter_by_coarse(ax, pts, coarse, h, marker="^", centre_colour="red")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{heading} (epoch {m['epoch']})", fontsize=10)
        if i == 1:
            ax.legend(title="coarse class (▲ = mean)", markerscale=2.5, fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    plots.save(fig, path)
    return path


def _num(x: float | None) -> str | None:
    return None if x is None else f"{x:.3f}"


def write(base, ctx: Context, specs, runs: dict, maps: dict) -> str:
    key = pub.key(base)
    label = pub.name(key, base.dataset)
    rows, seps = [], {}
    for series, name in (("CC", "coarse-trained (a)"), ("FC", "fine-trained (b)")):
        outer, inner = separation(maps[series])
        seps[series] = (outer, inner)
        res = runs[next(s.name for s in specs if s.tag["series"] == series)]
        rows.append([name, common.accuracy(res), _num(outer), _num(inner),
                     str(len(maps[series]["fine"]))])
    table = Table([Column("model"), Column("test coarse acc (%)", "pct"),
                   Column("coarse-class silhouette (features)"),
                   Column("fine-class silhouette within coarse classes (features)"),
                   Column("test images")],
                  rows, title="Feature-space separation (the paper shows the picture only: "
                  "published n/a)", csv="tsne.csv",
                  notes=[("Silhouette in [-1, 1] on the penultimate features (Euclidean), "
                          "not on the t-SNE map: higher = tighter, better separated groups.")])
    findings = []
    (co, ci), (fo, fi) = seps["CC"], seps["FC"]
    if ci is not None and fi is not None:
        findings.append(
            f"Fine classes inside a coarse class are {'more' if fi > ci else 'less'} separated "
            f"in the fine-trained model (silhouette {fi:.3f}) than in the coarse-trained one "
            f"({ci:.3f})" + (" — what the paper's Fig. 4 shows (fine training keeps fine "
                             "classes apart, coarse training merges them)." if fi > ci else
                             " — the opposite of what the paper's Fig. 4 shows."))
    if co is not None and fo is not None:
        findings.append(f"Coarse classes separate with silhouette {co:.3f} (coarse-trained) vs "
                        f"{fo:.3f} (fine-trained); the paper sees a clear margin between the "
                        "coarse classes in both.")
    n = len(maps["FC"]["fine"])
    fig = figure(os.path.join(ctx.report_dir, "fig4_tsne.png"), maps,
                 f"{label}: t-SNE of the penultimate features of {n} of "
                 f"{maps['FC']['total']} test images; colour = coarse class, ▲ = coarse mean")
    return report.write_report(
        NAME, TITLE, base, ctx, specs, runs, [table], findings,
        [(os.path.basename(fig), ("t-SNE of the `features` layer: (a) coarse-trained, (b) "
                                  "fine-trained; points coloured by coarse class, red "
                                  "triangles at each coarse class's mean (Fig. 4 style)."))],
        key, "Fig. 4 of the paper (a picture; no numbers to compare)")


EXTRA_FLAGS = {"max_samples": ("integer", MAX_SAMPLES,
                               "Test images (fixed-seed sample) in each t-SNE map.")}


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx, values.max_samples))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
