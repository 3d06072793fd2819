"""The paper's analysis tools: fine confusion matrix, ACR during and after training,
Embedding Projector files and t-SNE maps (Fig. 4); the figures are in `lg_tf.plots`.

* `confusion_matrix`: `model.evaluate` with the compiled `ConfusionMatrix` metric (the one
  confusion-matrix path), exact on any number of replicas.
* `ACRCallback`: ACR every `--acr_every` epochs of a fine run, into the epoch logs (so
  `EpochEnd` writes `test/acr*` to TensorBoard and results.json) plus a confusion image.
* `final_analysis`: at the end of a run: confusion.json/.png, ACR with its per-coarse
  breakdown, and penultimate-layer features for TensorBoard's Embedding Projector.
* `tsne_map`: the t-SNE of a finished run's features (`lg_tf.analyze tsne`, pipelines.tsne).

ACR itself (`stats.acr`) is a pure numpy function of the
confusion counts; features come from `lg_tf.features.extract`."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from lg_tf import features as features_lib
from lg_tf import metrics, plots, stats
from lg_tf.data.split import Split
from lg_tf.files import write_json_atomic

log = logging.getLogger("lg_tf")

MAX_PROJECTOR_SAMPLES = 2000
EMBEDDING_TENSOR = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
SAMPLE_SEED = 0
CONFUSION = "confusion"  # the compiled metric's name, hence the key of evaluate()'s dict
# Every target but coarse has fine outputs, hence a fine confusion matrix and ACR.
ACR_NEEDS_FINE = "ACR needs a fine-trained model (this run trained on coarse labels)"


# --------------------------------------------------------------------------- confusion

def confusion_matrix(model, dataset: tf.data.Dataset, steps: int | None = None) -> np.ndarray:
    """Counts [true, predicted] of a compiled fine model over a batched (images, labels) dataset.

    The one confusion-matrix path: `model.evaluate` with the compiled `ConfusionMatrix`
    metric named "confusion" (train_lib.compile_model adds it to every model with fine
    outputs; a joint model's is counted on its fine head), so the
    counts of all replicas add up exactly, partial final batches included. `dataset` is an
    ordinary tf.data dataset; `steps` limits the number of batches (None: all of them).
    """
    if not getattr(model, "compiled", False):
        raise ValueError("confusion_matrix needs a compiled model with a ConfusionMatrix "
                         f"metric named '{CONFUSION}' (train_lib.compile_model adds it)")
    result = model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    if CONFUSION not in result:
        raise ValueError(f"the model has no '{CONFUSION}' metric (it reported "
                         f"{', '.join(sorted(result))}); compile it with "
                         f"metrics.ConfusionMatrix(num_classes, name='{CONFUSION}'), as "
                         "train_lib.compile_model does for fine runs")
    return as_counts(result[CONFUSION])


def as_counts(confusion) -> np.ndarray:
    """The ConfusionMatrix metric's float result as int64 counts."""
    return np.rint(np.asarray(confusion)).astype(np.int64)


# --------------------------------------------------------------------------- ACR callback

def acr_scalars(result: stats.ACRResult) -> dict:
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

    def __init__(self, dataset: tf.data.Dataset, hierarchy, writer, every: int,
                 steps: int | None = None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        self.dataset, self.h, self.writer = dataset, hierarchy, writer
        self.every, self.steps = int(every), steps
        self._figure = None
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
        # epoch without validation (--eval_every > 1) needs an evaluate() of its own.
        confusion = None if logs is None else logs.get("val_" + CONFUSION)
        if confusion is None:
            confusion = confusion_matrix(self.model, self.dataset, self.steps)
        confusion = as_counts(confusion)
        pass_seconds = time.perf_counter() - start
        result = stats.acr(confusion, self.h.parent_array(), self.h.coarse_names)
        if result.value is None and result.reason not in self._reported:
            self._reported.add(result.reason)
            log.info("ACR undefined at epoch %d: %s (left out of the logs, not NaN)",
                     epoch + 1, result.reason)
        if self._figure is None:
            self._figure = plots.ConfusionFigure(self.h)
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


def _acr_text(result: stats.ACRResult) -> str:
    if result.value is None:
        return "ACR undefined"
    return f"ACR {result.value:.4g} (inter {result.inter:.4g} / intra {result.intra:.4g})"


# --------------------------------------------------------------------------- end of run

def final_analysis(run, model_dir: str, writer, max_samples: int = MAX_PROJECTOR_SAMPLES) -> dict:
    """Confusion matrix, ACR, per coarse class recall and projector files at the end of a
    run (the chief only).

    Returns `test/acr` (None when undefined, with `test/acr_undefined_reason`),
    `test/acr_inter`, `test/acr_intra`, `test/acr_note` (when some coarse classes have a
    single fine class) and `acr_breakdown` (per coarse class) for fine runs; an empty dict
    for coarse runs. Every run's `test/recall/<coarse name>` (train_lib.evaluate puts them
    in the final results) are written as TensorBoard scalars at the final step. The counts
    are those of the final `train_lib.evaluate` (`run.test_confusion`,
    `run.test_coarse_confusion`); the projector sample honours --eval_steps like that
    evaluation.
    """
    cfg, h = run.cfg, run.data.hierarchy
    steps = cfg.eval_steps or None
    step = run.checkpointer.latest_epoch or cfg.scaled_epochs
    out: dict = {}
    coarse_confusion = getattr(run, "test_coarse_confusion", None)
    if coarse_confusion is not None:
        recall = metrics.per_class_recall(coarse_confusion, h.coarse_names)
        with writer.as_default(step=step):
            for name, value in recall.items():
                tf.summary.scalar(f"test/recall/{name}", value)
        writer.flush()
        log.info("test recall per coarse class: %s", "  ".join(
            f"{name} {value:.4f}" for name, value in recall.items()))
    if run.fine:
        if run.test_confusion is None:
            raise ValueError("final_analysis needs run.test_confusion: call "
                             "train_lib.evaluate(run) first")
        confusion = as_counts(run.test_confusion)  # counted by the final evaluate()
        result = stats.acr(confusion, h.parent_array(), h.coarse_names)
        out = {"test/acr": result.value, "test/acr_inter": finite(result.inter),
               "test/acr_intra": finite(result.intra), "acr_breakdown": result.per_coarse}
        if result.value is None:
            out["test/acr_undefined_reason"] = result.reason
            log.info("ACR undefined: %s", result.reason)
        else:
            log.info("ACR %.4g (inter %.4g / intra %.4g) on %d test images",
                     result.value, result.inter, result.intra, int(confusion.sum()))
        if result.note:
            out["test/acr_note"] = result.note
            log.info("ACR note: %s", result.note)
        write_confusion_json(os.path.join(model_dir, "confusion.json"), confusion, h,
                             split="test", epoch=step, acr_result=result)
        png = plots.plot_confusion(confusion, h, os.path.join(model_dir, "confusion.png"),
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


def finite(x) -> float | None:
    """x as a float, None when it is undefined (None, NaN, inf): JSON has no NaN."""
    return float(x) if x is not None and math.isfinite(x) else None


def write_confusion_json(path: str, confusion: np.ndarray, h, split: str, epoch: int | None,
                         acr_result: stats.ACRResult | None = None) -> None:
    payload = {"split": split, "epoch": epoch, "rows": "true fine class",
               "columns": "predicted fine class", "matrix": np.asarray(confusion).tolist(),
               "fine_names": list(h.fine_names), "coarse_names": list(h.coarse_names),
               "parent": list(h.parent), "examples": int(np.sum(confusion))}
    if acr_result is not None:
        payload["acr"] = {**acr_result.to_dict(), "inter": finite(acr_result.inter)}
    write_json_atomic(path, payload)


# --------------------------------------------------------------------------- features

def sample_indices(n: int, max_samples: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """A fixed-seed subset of up to max_samples indices, in their original order.

    Random rather than the first ones: folder-based splits are stored class by class.
    """
    if n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))


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
    out = features_lib.extract(model, sample, spec, ["penultimate", features_lib.LOGITS],
                               batch_size)
    feats, logits = out["penultimate"], out[features_lib.LOGITS]
    parent = h.extended_parent()
    if fine:
        header = ("fine", "coarse")
        rows = [(h.fine_name_of(y), h.coarse_names[parent[y]]) for y in sample.labels]
    else:
        header = ("coarse", "predicted_coarse")
        rows = [(h.coarse_names[parent[y]], h.coarse_names[p])
                for y, p in zip(sample.labels, logits.argmax(-1))]
    if tf.io.gfile.exists(projector_dir):
        tf.io.gfile.rmtree(projector_dir)  # a re-run (resume) replaces the old files
    tf.io.gfile.makedirs(projector_dir)
    with tf.io.gfile.GFile(os.path.join(projector_dir, "metadata.tsv"), "w") as f:
        f.write("\t".join(header) + "\n")
        f.write("".join("\t".join(_tsv_safe(v) for v in row) + "\n" for row in rows))
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


# --------------------------------------------------------------------------- t-SNE

def tsne_points(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the features (sklearn, init='pca', fixed random_state)."""
    from sklearn.manifold import TSNE
    n = len(features)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(n_components=2, random_state=seed, init="pca",
                perplexity=perplexity).fit_transform(np.asarray(features, np.float64))


@dataclasses.dataclass
class TsneMap:
    """The t-SNE of the penultimate features of a fixed-seed sample of one split of a run."""
    points: np.ndarray       # [n, 2]
    features: np.ndarray     # [n, D]
    fine: np.ndarray         # [n] fine labels of the sample
    coarse: np.ndarray       # [n] their coarse classes
    hierarchy: object
    cfg: object              # the run's Config
    epoch: int               # of the checkpoint restored
    total: int               # images in the split
    text: str                # "n of N <split> images[, capped at --max_samples=...]"


def tsne_map(run, split_name: str = "test",
             max_samples: int = MAX_PROJECTOR_SAMPLES) -> TsneMap:
    """t-SNE of a restored run's (`train_lib.restore_run`) features of up to `max_samples`
    images of a split (`sample_indices`): what `lg_tf.analyze tsne` and `pipelines.tsne`
    draw."""
    features_lib.check_tsne_samples(max_samples)
    split = getattr(run.data, split_name)
    index = sample_indices(len(split), max_samples)
    sample = split.take(index)
    text = (f"{len(index)} of {len(split)} {split_name} images"
            + (f", capped at --max_samples={max_samples}" if len(index) < len(split) else ""))
    log.info("t-SNE of the penultimate features of %s (checkpoint epoch %d)", text, run.epoch)
    feats = features_lib.extract(run.model, sample, run.data.spec, ["penultimate"],
                                 run.cfg.eval_batch_size)["penultimate"]
    h = run.data.hierarchy
    fine = np.asarray(sample.labels)
    return TsneMap(tsne_points(feats), feats, fine, h.extended_parent()[fine], h, run.cfg,
                   run.epoch, len(split), text)
