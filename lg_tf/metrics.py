"""Coarse accuracy through fine->coarse aggregation, the fine and coarse confusion
matrices, per coarse class recall, and ACR.

Every run reports the same `coarse_accuracy` and `coarse_confusion`: a fine-trained
model's predictions are mapped to coarse through the hierarchy's parent table (rule
`mode`), a coarse-trained model's are compared directly. The metric states are sums, so
MirroredStrategy's cross-replica sum makes them exact with any number of replicas.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

MODES = ("map_argmax", "sum_probs")
COARSE_CONFUSION = "coarse_confusion"  # CoarseConfusion's name in every compiled run


def coarse_predictions(logits, parent, mode: str = "map_argmax"):
    """Coarse class per example from fine logits.

    map_argmax (published): parent[argmax_f logits]. sum_probs: argmax_c of the summed
    softmax probabilities of c's fine classes.
    """
    if mode == "map_argmax":
        return ops.take(ops.convert_to_tensor(parent, "int32"), ops.argmax(logits, axis=-1))
    if mode == "sum_probs":
        return ops.argmax(coarse_probabilities(logits, parent), axis=-1)
    raise ValueError(f"unknown coarse mode '{mode}'; choose one of: {', '.join(MODES)}")


def coarse_probabilities(logits, parent):
    """P(coarse c) = sum of softmax over the fine classes whose parent is c (parent: a list)."""
    num_coarse = int(np.max(parent)) + 1
    probs = ops.softmax(ops.cast(logits, "float32"), axis=-1)
    return ops.matmul(probs, ops.one_hot(ops.convert_to_tensor(parent, "int32"), num_coarse))


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown coarse mode '{mode}'; choose one of: {', '.join(MODES)}")


def coarse_pairs(y_true, y_pred, parent=None, mode: str = "map_argmax"):
    """(true coarse, predicted coarse) int32 vectors of a batch.

    With `parent` the model is fine-trained: y_true holds fine labels (mapped through
    parent) and y_pred fine logits (mapped by `mode`); without, both are coarse already.
    """
    y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    if parent is None:
        return y_true, ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    pred = ops.cast(coarse_predictions(y_pred, parent, mode), "int32")
    return ops.take(ops.convert_to_tensor(parent, "int32"), y_true), pred


def _weights(sample_weight, like):
    if sample_weight is None:
        return ops.ones_like(like, dtype="float32")
    return ops.cast(ops.reshape(sample_weight, (-1,)), "float32")


def _pair_counts(y_true, pred, num_classes: int, weight):
    """[num_classes, num_classes] sums of `weight` per (true, predicted) pair."""
    index = y_true * num_classes + pred
    counts = ops.segment_sum(weight, index, num_segments=num_classes**2)
    return ops.reshape(counts, (num_classes, num_classes))


@keras.saving.register_keras_serializable(package="lg_tf")
class CoarseAccuracy(keras.metrics.Metric):
    """Accuracy on coarse labels. With `parent` the model is fine-trained and y_true is fine."""

    def __init__(self, parent=None, mode: str = "map_argmax", name: str = "coarse_accuracy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        _check_mode(mode)
        self.parent = None if parent is None else [int(p) for p in parent]
        self.mode = mode
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, pred = coarse_pairs(y_true, y_pred, self.parent, self.mode)
        hit = ops.cast(ops.equal(pred, y_true), "float32")
        weight = _weights(sample_weight, hit)
        self.correct.assign_add(ops.sum(hit * weight))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.total)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "mode": self.mode}


@keras.saving.register_keras_serializable(package="lg_tf")
class ConfusionMatrix(keras.metrics.Metric):
    """Streaming confusion counts (rows true, columns predicted); exact across replicas."""

    def __init__(self, num_classes: int, name: str = "confusion", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.counts = self.add_variable((self.num_classes, self.num_classes),
                                        initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        pred = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        self.counts.assign_add(_pair_counts(y_true, pred, self.num_classes,
                                            ops.ones_like(pred, dtype="float32")))

    def result(self):
        # A tensor, not the variable: distribution strategies reduce step outputs, and a
        # mirrored variable handed back from a replica cannot be reduced.
        return ops.multiply(self.counts, 1.0)

    def reset_state(self):
        self.counts.assign(ops.zeros_like(self.counts))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="lg_tf")
class CoarseConfusion(ConfusionMatrix):
    """Streaming coarse confusion counts [true coarse, predicted coarse] of any run.

    With `parent` the model is fine-trained: y_true is fine and mapped through `parent`,
    and the predicted coarse class follows `mode` (the same rule as CoarseAccuracy, so the
    diagonal over the total is `coarse_accuracy`); without, both are coarse (argmax).
    Sample weights are summed, like CoarseAccuracy's. Exact across replicas.
    """

    def __init__(self, num_classes: int, parent=None, mode: str = "map_argmax",
                 name: str = COARSE_CONFUSION, **kwargs):
        super().__init__(num_classes, name=name, **kwargs)
        _check_mode(mode)
        self.parent = None if parent is None else [int(p) for p in parent]
        self.mode = mode
        if self.parent and not 0 <= min(self.parent) <= max(self.parent) < self.num_classes:
            raise ValueError(f"parent holds coarse classes {min(self.parent)}..."
                             f"{max(self.parent)}, outside 0..{self.num_classes - 1}")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, pred = coarse_pairs(y_true, y_pred, self.parent, self.mode)
        self.counts.assign_add(_pair_counts(y_true, pred, self.num_classes,
                                            _weights(sample_weight, pred)))

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "mode": self.mode}


def per_class_recall(confusion, names) -> dict:
    """{name: diagonal / row sum} of a [true, predicted] confusion matrix, in class order.

    A class without examples (row sum 0) is left out rather than given NaN.
    """
    c = np.asarray(confusion, dtype=np.float64)
    names = list(names)
    if c.shape != (len(names), len(names)):
        raise ValueError(f"confusion matrix is {c.shape}, expected ({len(names)}, "
                         f"{len(names)}) for {len(names)} class names")
    rows = c.sum(axis=1)
    return {name: float(c[k, k] / rows[k]) for k, name in enumerate(names) if rows[k] > 0}


# --------------------------------------------------------------------------- ACR

@dataclasses.dataclass(frozen=True)
class ACRResult:
    """ACR with its parts; `value` is None and `reason` says why when it is undefined.

    `note` is set when some coarse classes have a single fine class: they contribute no
    same-parent pair (their fine class still counts in the cross-parent pairs).
    """
    value: float | None
    inter: float
    intra: float | None
    per_coarse: dict  # coarse name -> {'intra': mean within, 'inter': mean with the others}
    reason: str = ""
    normalization: str = "column"
    note: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def normalized_confusion(confusion: np.ndarray, normalization: str = "column") -> np.ndarray:
    """Column-normalised (published: share of each *predicted* class) or row-normalised."""
    c = np.asarray(confusion, dtype=np.float64)
    if normalization == "column":
        sums = c.sum(axis=0, keepdims=True)
    elif normalization == "row":
        sums = c.sum(axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown normalization '{normalization}'; use 'column' or 'row'")
    return np.divide(c, sums, out=np.zeros_like(c), where=sums > 0)


def acr(confusion, parent, coarse_names=None, normalization: str = "column") -> ACRResult:
    """Average Confusion Ratio (paper eq. 1, as implemented for the published numbers).

    Normalise the fine confusion matrix, symmetrise S = (N + N^T) / 2, then over pairs
    i < j: ACR = mean S over pairs with different parents / mean S over same-parent pairs.
    A coarse class with a single fine class has no same-parent pair and simply adds none
    (`note` names it); ACR is undefined (value None, `reason`) only when no same-parent
    pair exists at all, no cross-parent pair exists, or intra is 0.
    """
    parent = np.asarray(parent)
    n = len(parent)
    confusion = np.asarray(confusion)
    if confusion.shape != (n, n):
        raise ValueError(f"confusion matrix is {confusion.shape}, expected ({n}, {n})")
    names = list(coarse_names) if coarse_names is not None else [
        str(c) for c in range(int(parent.max()) + 1)]
    norm = normalized_confusion(confusion, normalization)
    s = (norm + norm.T) / 2
    i, j = np.triu_indices(n, k=1)
    same = parent[i] == parent[j]
    inter = float(s[i, j][~same].mean()) if np.any(~same) else float("nan")
    per_coarse = _per_coarse(s, parent, names)
    parts = dict(per_coarse=per_coarse, normalization=normalization)
    if not np.any(same):
        return ACRResult(None, inter, None, **parts,
                         reason="every coarse class has a single fine class, so no "
                                "same-parent pair exists")
    singletons = [names[c] for c in range(len(names)) if np.sum(parent == c) < 2]
    if singletons:
        parts["note"] = (f"coarse class(es) {', '.join(singletons)} have a single fine class "
                         "and contribute no same-parent pair")
    intra = float(s[i, j][same].mean())
    if not np.any(~same):
        return ACRResult(None, inter, intra, **parts,
                         reason="there is only one coarse class, so no cross-parent pair exists")
    if intra == 0:
        return ACRResult(None, inter, intra, **parts,
                         reason="no fine class is ever confused with a sibling (intra "
                                "confusion is 0), so the ratio is unbounded")
    return ACRResult(inter / intra, inter, intra, **parts)


def _per_coarse(s: np.ndarray, parent: np.ndarray, names: list[str]) -> dict:
    """Each coarse class's mean within-class pair confusion and mean confusion with others."""
    out = {}
    for c, name in enumerate(names):
        members = np.flatnonzero(parent == c)
        others = np.flatnonzero(parent != c)
        iu = np.triu_indices(len(members), k=1)
        within = s[np.ix_(members, members)][iu]
        across = s[np.ix_(members, others)]
        out[name] = {"intra": float(within.mean()) if within.size else None,
                     "inter": float(across.mean()) if across.size else None}
    return out
