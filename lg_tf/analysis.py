"""The paper's analysis tools: fine confusion matrix, ACR during and after training,
the confusion-matrix figure (Fig. 5), Embedding Projector files and t-SNE (Fig. 4).

* `confusion_matrix`: one distributed pass over a dataset, exact on any number of replicas.
* `ACRCallback`: ACR every `--acr_every` epochs of a fine run, into the epoch logs (so
  `EpochEnd` writes `test/acr*` to TensorBoard and results.json) plus a confusion image.
* `final_analysis`: at the end of a run: confusion.json/.png, ACR with its per-coarse
  breakdown, and penultimate-layer features for TensorBoard's Embedding Projector.
* `plot_confusion`, `plot_tsne`: matplotlib figures (Agg canvas, no pyplot state).

ACR itself (`metrics.acr`) is a pure numpy function of the confusion counts.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from lg_tf import metrics
from lg_tf.callbacks import write_json_atomic
from lg_tf.data import pipeline
from lg_tf.data.sources import Split

log = logging.getLogger("lg_tf")

MAX_PROJECTOR_SAMPLES = 2000
EMBEDDING_TENSOR = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
SAMPLE_SEED = 0
ACR_NEEDS_FINE = "ACR needs a fine-trained model (this run trained on coarse labels)"


# --------------------------------------------------------------------------- confusion

class ConfusionPass:
    """A reusable distributed confusion-matrix pass: the step is traced once, not per call.

    The metric lives in `strategy.scope()` (a sum-on-read variable), so the counts of all
    replicas add up exactly, partial final batches included.
    """

    def __init__(self, model, num_classes: int, strategy: tf.distribute.Strategy):
        self.model, self.strategy = model, strategy
        with strategy.scope():
            self.metric = metrics.ConfusionMatrix(num_classes, name="analysis_confusion")

        def replica_step(images, labels):
            self.metric.update_state(labels, self.model(images, training=False))

        @tf.function(reduce_retracing=True)
        def step(batch):
            images, labels = batch[0], batch[1]
            strategy.run(replica_step, args=(images, labels))

        self._step = step

    def __call__(self, dataset: tf.data.Dataset, steps: int | None = None) -> np.ndarray:
        self.metric.reset_state()
        for k, batch in enumerate(self.strategy.experimental_distribute_dataset(dataset)):
            if steps and k >= steps:
                break
            self._step(batch)
        return np.rint(self.metric.result().numpy()).astype(np.int64)


def confusion_matrix(model, dataset: tf.data.Dataset, num_classes: int,
                     strategy: tf.distribute.Strategy | None = None,
                     steps: int | None = None) -> np.ndarray:
    """Counts [true, predicted] of `model` over a batched (images, labels) dataset.

    `dataset` is an ordinary (non-distributed) tf.data dataset; it is distributed here.
    `steps` limits the number of batches (None: the whole dataset).
    """
    strategy = strategy or tf.distribute.get_strategy()
    return ConfusionPass(model, num_classes, strategy)(dataset, steps)


def _local_strategy(strategy):
    """The strategy for a pass that only this process runs (the chief's final analysis).

    A multi-worker strategy's collectives need every worker, so the chief alone falls
    back to the default (single-device) strategy there.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and len(resolver.cluster_spec().as_dict().get("worker", [])) > 1:
        return tf.distribute.get_strategy()
    return strategy


# --------------------------------------------------------------------------- ACR callback

def acr_scalars(result: metrics.ACRResult) -> dict:
    """The finite ACR numbers as `test/` scalars (undefined parts are left out, never NaN)."""
    out = {"test/acr": result.value, "test/acr_inter": result.inter,
           "test/acr_intra": result.intra}
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


class ACRCallback(keras.callbacks.Callback):
    """ACR of a fine-trained model on the test split every `every` epochs.

    Writes `test/acr`, `test/acr_inter`, `test/acr_intra` and `test/acr_seconds` into the
    epoch logs, so it must come *before* `EpochEnd` in the callback list; also writes the
    column-normalised confusion matrix as the TensorBoard image `test/confusion`.
    `test/acr_seconds` is the whole cost of this callback (pass, ACR, figure).
    """

    def __init__(self, dataset: tf.data.Dataset, hierarchy, strategy, writer, every: int,
                 steps: int | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        self.dataset, self.h, self.strategy, self.writer = dataset, hierarchy, strategy, writer
        self.every, self.steps = int(every), steps
        self._pass, self._figure = None, None
        self._reported: set[str] = set()
        self._epoch_start, self._epoch_cpu = time.perf_counter(), time.process_time()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_cpu = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        start, start_cpu = time.perf_counter(), time.process_time()
        before = start - self._epoch_start  # training + evaluation time of this epoch
        before_cpu = start_cpu - self._epoch_cpu
        # Fine runs count the confusion matrix during validation (`val_confusion`); only an
        # epoch without validation (--eval_every > 1) needs a pass of its own.
        confusion = None if logs is None else logs.get("val_confusion")
        if confusion is None:
            if self._pass is None:
                self._pass = ConfusionPass(self.model, self.h.num_fine, self.strategy)
            confusion = self._pass(self.dataset, self.steps)
        confusion = np.asarray(confusion)
        pass_seconds = time.perf_counter() - start
        result = metrics.acr(confusion, self.h.parent_array(), self.h.coarse_names)
        if result.value is None and result.reason not in self._reported:
            self._reported.add(result.reason)
            log.info("ACR undefined at epoch %d: %s (left out of the logs, not NaN)",
                     epoch + 1, result.reason)
        if self._figure is None:
            self._figure = ConfusionFigure(self.h)
        png = self._figure.render(confusion, f"test split, epoch {epoch + 1}, "
                                  + _acr_text(result))
        with self.writer.as_default(step=epoch + 1):
            tf.summary.image("test/confusion", tf.io.decode_png(png)[None])
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if logs is not None:
            logs.update(acr_scalars(result))
            logs["test/acr_seconds"] = seconds
        # The CPU-time share is the steadier number on a machine shared with other jobs.
        log.info("ACR pass at epoch %d: %.2fs (confusion %.2fs) = %.1f%% of the epoch's wall "
                 "time, %.1f%% of its CPU time; %s", epoch + 1, seconds, pass_seconds,
                 100 * _share(seconds, before), 100 * _share(cpu, before_cpu),
                 _acr_text(result))


def _share(part: float, rest: float) -> float:
    return part / (part + rest) if part + rest > 0 else 0.0


def _acr_text(result: metrics.ACRResult) -> str:
    if result.value is None:
        return "ACR undefined"
    return f"ACR {result.value:.4g} (inter {result.inter:.4g} / intra {result.intra:.4g})"


# --------------------------------------------------------------------------- end of run

def final_analysis(run, model_dir: str, writer, max_samples: int = MAX_PROJECTOR_SAMPLES) -> dict:
    """Confusion matrix, ACR and projector files at the end of a run (the chief only).

    Returns `test/acr` (None when undefined, with `test/acr_undefined_reason`),
    `test/acr_inter`, `test/acr_intra` and `acr_breakdown` (per coarse class) for fine
    runs; an empty dict for coarse runs. Like `evaluate`, the passes honour --eval_steps.
    """
    cfg, h = run.cfg, run.data.hierarchy
    steps = cfg.eval_steps or None
    step = run.checkpointer.latest_epoch or cfg.scaled_epochs
    out: dict = {}
    if run.fine:
        confusion = run.test_confusion  # counted by the final evaluate()
        if confusion is None:
            confusion = confusion_matrix(run.model, run.test_ds, h.num_fine,
                                         _local_strategy(run.strategy), steps)
        result = metrics.acr(confusion, h.parent_array(), h.coarse_names)
        out = {"test/acr": result.value, "test/acr_inter": _finite(result.inter),
               "test/acr_intra": _finite(result.intra), "acr_breakdown": result.per_coarse}
        if result.value is None:
            out["test/acr_undefined_reason"] = result.reason
            log.info("ACR undefined: %s", result.reason)
        else:
            log.info("ACR %.4g (inter %.4g / intra %.4g) on %d test images",
                     result.value, result.inter, result.intra, int(confusion.sum()))
        write_confusion_json(os.path.join(model_dir, "confusion.json"), confusion, h,
                             split="test", epoch=step, acr_result=result)
        png = plot_confusion(confusion, h, os.path.join(model_dir, "confusion.png"),
                             title=f"test split, epoch {step}, " + _acr_text(result))
        with writer.as_default(step=step):
            tf.summary.image("test/confusion", tf.io.decode_png(png)[None])
        writer.flush()
    else:
        log.info("ACR skipped: %s; writing projector features only", ACR_NEEDS_FINE)
    limit = max_samples if not steps else min(max_samples, steps * cfg.eval_batch_size)
    write_projector(run.model, run.data.test, run.data.spec, h, run.fine,
                    os.path.join(model_dir, "tensorboard", "projector"), limit,
                    cfg.eval_batch_size)
    return out


def _finite(x):
    return float(x) if x is not None and math.isfinite(x) else None


def write_confusion_json(path: str, confusion: np.ndarray, h, split: str, epoch: int | None,
                         acr_result: metrics.ACRResult | None = None) -> None:
    payload = {"split": split, "epoch": epoch, "rows": "true fine class",
               "columns": "predicted fine class", "matrix": np.asarray(confusion).tolist(),
               "fine_names": list(h.fine_names), "coarse_names": list(h.coarse_names),
               "parent": list(h.parent), "examples": int(np.sum(confusion))}
    if acr_result is not None:
        payload["acr"] = {**acr_result.to_dict(), "inter": _finite(acr_result.inter)}
    write_json_atomic(path, payload)


# --------------------------------------------------------------------------- features

def sample_indices(n: int, max_samples: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """A fixed-seed subset of up to max_samples indices, in their original order.

    Random rather than the first ones: folder-based splits are stored class by class.
    """
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))


def penultimate_features(model, split: Split, spec, batch_size: int = 200,
                         with_logits: bool = False):
    """Features of the layer named `features` (global average pool) for every image of split.

    Returns float32 [N, D] (and the logits [N, K] when with_logits).
    """
    probe = keras.Model(model.inputs, [model.get_layer("features").output, model.outputs[0]])

    @tf.function(reduce_retracing=True)
    def forward(images):
        feats, logits = probe(images, training=False)
        return tf.cast(feats, tf.float32), tf.cast(logits, tf.float32)

    ds = pipeline.make_dataset(split, spec, training=False, batch_size=batch_size, seed=0)
    feats, logits = [], []
    for images, _ in ds:
        f, lg = forward(images)
        feats.append(f.numpy())
        logits.append(lg.numpy())
    feats, logits = np.concatenate(feats), np.concatenate(logits)
    return (feats, logits) if with_logits else feats


def write_projector(model, split: Split, spec, h, fine: bool, projector_dir: str,
                    max_samples: int = MAX_PROJECTOR_SAMPLES, batch_size: int = 200) -> dict:
    """Embedding Projector files for up to max_samples images of split.

    Writes a checkpoint of the tf.Variable `embedding` [N, D], metadata.tsv (header +
    one row per image: `fine`, `coarse` names for fine runs; `coarse`, `predicted_coarse`
    for coarse runs, which know no fine classes), projector_config.pbtxt and an event
    file so TensorBoard lists the folder as the run `projector`.
    """
    from tensorboard.plugins import projector

    index = sample_indices(len(split), max_samples)
    sample = split.take(index)
    feats, logits = penultimate_features(model, sample, spec, batch_size, with_logits=True)
    parent = h.parent_array()
    if fine:
        header = ("fine", "coarse")
        rows = [(h.fine_names[y], h.coarse_names[parent[y]]) for y in sample.labels]
    else:
        header = ("coarse", "predicted_coarse")
        rows = [(h.coarse_names[parent[y]], h.coarse_names[p])
                for y, p in zip(sample.labels, logits.argmax(-1))]
    if tf.io.gfile.exists(projector_dir):
        tf.io.gfile.rmtree(projector_dir)  # a re-run (resume) replaces the old files
    os.makedirs(projector_dir, exist_ok=True)
    with open(os.path.join(projector_dir, "metadata.tsv"), "w") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(_tsv_safe(v) for v in row) + "\n")
    embedding = tf.Variable(feats, name="embedding", trainable=False)
    tf.train.CheckpointManager(tf.train.Checkpoint(embedding=embedding), projector_dir,
                               max_to_keep=1, checkpoint_name="embedding.ckpt").save()
    config = projector.ProjectorConfig()
    emb = config.embeddings.add()
    emb.tensor_name = EMBEDDING_TENSOR
    emb.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(projector_dir, config)
    note = (f"penultimate-layer ('features') outputs of {len(index)} of the {len(split)} "
            f"test images (capped at {max_samples}, fixed-seed sample); metadata columns: "
            f"{', '.join(header)}")
    writer = tf.summary.create_file_writer(projector_dir)
    with writer.as_default(step=0):
        tf.summary.text("projector/about", note)
    writer.close()
    log.info("Embedding Projector: %s -> %s", note, projector_dir)
    return {"samples": len(index), "dim": int(feats.shape[1]), "dir": projector_dir}


def _tsv_safe(value: str) -> str:
    return str(value).replace("\t", " ").replace("\n", " ")


# --------------------------------------------------------------------------- figures

def _canvas(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig, path: str | None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    data = buf.getvalue()
    if path:
        with open(path, "wb") as f:
            f.write(data)
    return data


def plot_confusion(confusion, h, path: str | None = None, title: str = "") -> bytes:
    """The fine confusion matrix like the paper's Fig. 5; returns PNG bytes (and writes path).

    Fine classes are ordered by coarse parent; cells are column-normalised (each column
    sums to 1: the share of a predicted class coming from each true class, as ACR uses);
    each coarse class's block is outlined and named on the top and right axes.
    """
    return ConfusionFigure(h).render(confusion, title, path)


class ConfusionFigure:
    """The `plot_confusion` figure, built once and redrawn with new counts.

    `ACRCallback` renders one per ACR epoch: reusing the axes, ticks and cell labels and
    fixing the crop after the first render saves about half of the drawing time.
    """

    def __init__(self, h):
        from matplotlib.patches import Rectangle

        parent = h.parent_array()
        self.order = np.argsort(parent, kind="stable")
        n = self.n = len(self.order)
        side = float(np.clip(0.42 * n + 3.0, 5.0, 16.0))
        self.fig = fig = _canvas((side + 1.6, side + 0.6))
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
        norm = metrics.normalized_confusion(confusion, "column")[np.ix_(self.order, self.order)]
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
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", bbox_inches=self._crop)
        data = buf.getvalue()
        if path:
            with open(path, "wb") as f:
                f.write(data)
        return data


def tsne_points(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the features (sklearn, init='pca', fixed random_state)."""
    from sklearn.manifold import TSNE
    n = len(features)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(n_components=2, random_state=seed, init="pca",
                perplexity=perplexity).fit_transform(np.asarray(features, np.float64))


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
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=colour, alpha=0.85))


def plot_tsne(points: np.ndarray, coarse: np.ndarray, h, path: str | None = None,
              title: str = "") -> bytes:
    """Points coloured by coarse class, each coarse class's mean marked and named (Fig. 4)."""
    fig = _canvas((8.0, 7.0))
    ax = fig.add_subplot()
    scatter_by_coarse(ax, points, coarse, h)
    ax.legend(title="coarse class (X = mean)", markerscale=3, fontsize=8, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "t-SNE of penultimate-layer features", fontsize=10)
    return _png(fig, path)
