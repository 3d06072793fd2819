"""Coarse accuracy through fine->coarse aggregation, the fine and coarse confusion
matrices, per coarse class recall, calibration (ECE, NLL), sibling mistakes, and ACR.

Every run reports the same `coarse_accuracy` and `coarse_confusion`: a fine-trained
model's predictions are mapped to coarse through the hierarchy's parent table (rule
`mode`), a coarse-trained model's are compared directly. The metric states are sums, so
MirroredStrategy's cross-replica sum makes them exact with any number of replicas.

A joint model (`--granularity=joint`) has one output tensor holding both heads: its first
`num_fine` columns are the fine head's logits, the rest the coarse head's. Metrics given
`num_fine` read it that way and take the coarse prediction from `source`: the coarse head
(what a joint run reports as `coarse_accuracy`), the fine head mapped to coarse (`mode`),
or the two heads' coarse probabilities averaged.
"""

from __future__ import annotations


import keras
import numpy as np
from keras import ops


MODES = ("map_argmax", "sum_probs")
COARSE_CONFUSION = "coarse_confusion"  # CoarseConfusion's name in every compiled run
# Where a joint model's coarse prediction comes from (see the module docstring).
SOURCES = ("coarse_head", "fine_head", "combined")
ECE_BINS = 15


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


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown coarse source '{source}'; choose one of: {', '.join(SOURCES)}")


def split_heads(y_pred, num_fine: int):
    """(fine logits, coarse logits) of a joint model's output (fine head first)."""
    return y_pred[:, :num_fine], y_pred[:, num_fine:]


def coarse_log_probabilities(logits, parent):
    """log P(coarse c) of fine logits: logsumexp over c's fine classes minus logsumexp over
    all, so a confident wrong prediction gives a large finite value, never log(0)."""
    logits = ops.cast(logits, "float32")
    member = ops.transpose(ops.one_hot(ops.convert_to_tensor(parent, "int32"),
                                       int(np.max(parent)) + 1)) > 0      # [coarse, fine]
    masked = ops.where(member[None], logits[:, None, :], float("-inf"))  # [N, coarse, fine]
    return ops.logsumexp(masked, axis=-1) - ops.logsumexp(logits, axis=-1, keepdims=True)


def coarse_log_probs(y_pred, parent=None, num_fine: int = 0, source: str = "coarse_head"):
    """log P(coarse) [N, num_coarse] of any model's output.

    Without `parent`: coarse logits. With `parent` and no `num_fine`: fine logits (their
    softmax summed per coarse class). With both, a joint model's output, read by `source`.
    """
    if parent is None:
        return ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
    if not num_fine:
        return coarse_log_probabilities(y_pred, parent)
    fine, coarse = split_heads(ops.cast(y_pred, "float32"), num_fine)
    if source == "fine_head":
        return coarse_log_probabilities(fine, parent)
    head = ops.log_softmax(coarse, axis=-1)
    if source == "coarse_head":
        return head
    # combined: log((p_head + p_fine) / 2), computed in log space
    return ops.logaddexp(head, coarse_log_probabilities(fine, parent)) - np.log(2.0)


def true_coarse(y_true, parent):
    """The coarse class of each label: a fine label f < F is parent[f]; a label F + c marks an
    image known only by its coarse class c (partial fine labels, Hierarchy.extended_parent)."""
    extended = list(parent) + list(range(int(np.max(parent)) + 1))
    return ops.take(ops.convert_to_tensor(extended, "int32"), y_true)


def fine_known(y_true, num_fine: int):
    """1.0 where the label is a fine class, 0.0 where only the coarse class is known."""
    return ops.cast(ops.less(y_true, num_fine), "float32")


def coarse_pairs(y_true, y_pred, parent=None, mode: str = "map_argmax", num_fine: int = 0,
                 source: str = "coarse_head"):
    """(true coarse, predicted coarse) int32 vectors of a batch.

    With `parent` the model is fine-trained: y_true holds fine labels (mapped through
    parent) and y_pred fine logits (mapped by `mode`); without, both are coarse already.
    With `parent` and `num_fine`, y_pred is a joint model's output and `source` says which
    coarse prediction counts (the fine head's follows `mode`).
    """
    y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
    if parent is None:
        return y_true, ops.cast(ops.argmax(y_pred, axis=-1), "int32")
    if num_fine and source != "fine_head":
        pred = ops.argmax(coarse_log_probs(y_pred, parent, num_fine, source), axis=-1)
    else:
        fine = split_heads(y_pred, num_fine)[0] if num_fine else y_pred
        pred = coarse_predictions(fine, parent, mode)
    return true_coarse(y_true, parent), ops.cast(pred, "int32")


def _weights(sample_weight, like):
    if sample_weight is None:
        return ops.ones_like(like, dtype="float32")
    return ops.cast(ops.reshape(sample_weight, (-1,)), "float32")


def _pair_counts(y_true, pred, num_classes: int, weight):
    """[num_classes, num_classes] sums of `weight` per (true, predicted) pair."""
    index = y_true * num_classes + pred
    counts = ops.segment_sum(weight, index, num_segments=num_classes**2)
    return ops.reshape(counts, (num_classes, num_classes))


class _Ratio(keras.metrics.Metric):
    """A sum over a sum (two scalar variables, `divide_no_nan`: 0 until anything is
    counted). Both are sums, so MirroredStrategy's cross-replica sum keeps it exact.
    Subclasses say what one batch adds to each (`_counts`)."""

    def __init__(self, name: str, numerator: str, denominator: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.numerator = self.add_variable((), initializer="zeros", name=numerator)
        self.denominator = self.add_variable((), initializer="zeros", name=denominator)

    def _counts(self, y_true, y_pred, sample_weight):
        """(numerator, denominator) of one batch."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        numerator, denominator = self._counts(y_true, y_pred, sample_weight)
        self.numerator.assign_add(numerator)
        self.denominator.assign_add(denominator)

    def result(self):
        return ops.divide_no_nan(self.numerator, self.denominator)

    def reset_state(self):
        self.numerator.assign(0.0)
        self.denominator.assign(0.0)


def _hits(pred, y_true, sample_weight):
    """(weighted hits, total weight) of a batch of int32 predictions."""
    hit = ops.cast(ops.equal(pred, y_true), "float32")
    weight = _weights(sample_weight, hit)
    return ops.sum(hit * weight), ops.sum(weight)


@keras.saving.register_keras_serializable(package="lg_tf")
class CoarseAccuracy(_Ratio):
    """Accuracy on coarse labels. With `parent` the model is fine-trained and y_true is fine;
    with `num_fine` too, y_pred is a joint model's output read by `source`."""

    def __init__(self, parent=None, mode: str = "map_argmax", name: str = "coarse_accuracy",
                 num_fine: int = 0, source: str = "coarse_head", **kwargs):
        super().__init__(name, "correct", "total", **kwargs)
        _check_mode(mode)
        _check_source(source)
        self.parent = None if parent is None else [int(p) for p in parent]
        self.mode = mode
        self.num_fine, self.source = int(num_fine), source

    def _counts(self, y_true, y_pred, sample_weight):
        y_true, pred = coarse_pairs(y_true, y_pred, self.parent, self.mode, self.num_fine,
                                    self.source)
        return _hits(pred, y_true, sample_weight)

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "mode": self.mode,
                "num_fine": self.num_fine, "source": self.source}


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
        # The first num_classes columns: all of a fine model's, a joint model's fine head.
        pred = ops.cast(ops.argmax(y_pred[:, :self.num_classes], axis=-1), "int32")
        # An image known only by its coarse class (label >= num_classes) is not counted.
        known = fine_known(y_true, self.num_classes)
        y_true = ops.minimum(y_true, self.num_classes - 1)
        self.counts.assign_add(_pair_counts(y_true, pred, self.num_classes, known))

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
                 name: str = COARSE_CONFUSION, num_fine: int = 0, source: str = "coarse_head",
                 **kwargs):
        super().__init__(num_classes, name=name, **kwargs)
        _check_mode(mode)
        _check_source(source)
        self.parent = None if parent is None else [int(p) for p in parent]
        self.mode = mode
        self.num_fine, self.source = int(num_fine), source
        if self.parent and not 0 <= min(self.parent) <= max(self.parent) < self.num_classes:
            raise ValueError(f"parent holds coarse classes {min(self.parent)}..."
                             f"{max(self.parent)}, outside 0..{self.num_classes - 1}")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, pred = coarse_pairs(y_true, y_pred, self.parent, self.mode, self.num_fine,
                                    self.source)
        self.counts.assign_add(_pair_counts(y_true, pred, self.num_classes,
                                            _weights(sample_weight, pred)))

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "mode": self.mode,
                "num_fine": self.num_fine, "source": self.source}


# --------------------------------------------------------------------------- beyond accuracy

@keras.saving.register_keras_serializable(package="lg_tf")
class FineAccuracy(_Ratio):
    """Fine accuracy of the first `num_fine` columns of y_pred (a joint model's fine head)."""

    def __init__(self, num_fine: int, name: str = "fine_accuracy", **kwargs):
        super().__init__(name, "correct", "total", **kwargs)
        self.num_fine = int(num_fine)

    def _counts(self, y_true, y_pred, sample_weight):
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        pred = ops.cast(ops.argmax(y_pred[:, :self.num_fine], axis=-1), "int32")
        known = fine_known(y_true, self.num_fine)   # coarse-only images have no fine answer
        return _hits(pred, y_true, known * _weights(sample_weight, known))

    def get_config(self):
        return {**super().get_config(), "num_fine": self.num_fine}


class _CoarseProbabilityMetric(keras.metrics.Metric):
    """Base of the metrics of a run's coarse probabilities (`coarse_log_probs`): labels and
    outputs are read like CoarseAccuracy's (parent / num_fine / source)."""

    def __init__(self, parent=None, num_fine: int = 0, source: str = "coarse_head",
                 name: str = "", **kwargs):
        super().__init__(name=name, **kwargs)
        _check_source(source)
        self.parent = None if parent is None else [int(p) for p in parent]
        self.num_fine, self.source = int(num_fine), source

    def _read(self, y_true, y_pred):
        """(true coarse int32 [N], log P(coarse) float32 [N, C])."""
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        if self.parent is not None:
            y_true = true_coarse(y_true, self.parent)
        return y_true, coarse_log_probs(y_pred, self.parent, self.num_fine, self.source)

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "num_fine": self.num_fine,
                "source": self.source}


@keras.saving.register_keras_serializable(package="lg_tf")
class CoarseECE(_CoarseProbabilityMetric):
    """Expected calibration error of the coarse probabilities (Guo et al. 2017).

    Confidence = max_c P(c), correct = (argmax_c P(c) == true coarse), `bins` equal-width
    bins (lo, hi] over [0, 1]; ECE = sum_b |sum correct - sum confidence|_b / N. The state
    is per-bin sums, so it is exact across replicas. For a fine-output model P(c) sums the
    fine softmax over c's fine classes, so its argmax is the sum_probs prediction even when
    `coarse_accuracy` is map_argmax.
    """

    def __init__(self, parent=None, num_fine: int = 0, source: str = "coarse_head",
                 bins: int = ECE_BINS, name: str = "coarse_ece", **kwargs):
        super().__init__(parent, num_fine, source, name=name, **kwargs)
        self.bins = int(bins)
        self.confidence = self.add_variable((self.bins,), initializer="zeros", name="confidence")
        self.correct = self.add_variable((self.bins,), initializer="zeros", name="correct")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, log_probs = self._read(y_true, y_pred)
        confidence = ops.exp(ops.max(log_probs, axis=-1))
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(log_probs, axis=-1), "int32"), y_true),
                       "float32")
        weight = _weights(sample_weight, hit)
        index = ops.clip(ops.cast(ops.ceil(confidence * self.bins), "int32") - 1, 0,
                         self.bins - 1)
        self.confidence.assign_add(ops.segment_sum(confidence * weight, index,
                                                   num_segments=self.bins))
        self.correct.assign_add(ops.segment_sum(hit * weight, index, num_segments=self.bins))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(ops.sum(ops.abs(self.correct - self.confidence)), self.total)

    def reset_state(self):
        for v in (self.confidence, self.correct):
            v.assign(ops.zeros_like(v))
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}


@keras.saving.register_keras_serializable(package="lg_tf")
class CoarseNLL(_CoarseProbabilityMetric):
    """Mean coarse log-loss -log P(true coarse), from log-probabilities (never log 0)."""

    def __init__(self, parent=None, num_fine: int = 0, source: str = "coarse_head",
                 name: str = "coarse_nll", **kwargs):
        super().__init__(parent, num_fine, source, name=name, **kwargs)
        self.nll = self.add_variable((), initializer="zeros", name="nll")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, log_probs = self._read(y_true, y_pred)
        true = ops.take_along_axis(log_probs, y_true[:, None], axis=-1)[:, 0]
        weight = _weights(sample_weight, true)
        self.nll.assign_add(-ops.sum(true * weight))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return ops.divide_no_nan(self.nll, self.total)

    def reset_state(self):
        self.nll.assign(0.0)
        self.total.assign(0.0)


@keras.saving.register_keras_serializable(package="lg_tf")
class SiblingMistakes(_Ratio):
    """Share of fine mistakes whose predicted fine class has the true one's parent.

    y_true fine, y_pred fine logits (the first `num_fine` columns when given: a joint
    model's fine head). 0 while there is no mistake at all. Exact across replicas (sums).
    """

    def __init__(self, parent, num_fine: int = 0, name: str = "sibling_mistakes", **kwargs):
        super().__init__(name, "siblings", "mistakes", **kwargs)
        self.parent = [int(p) for p in parent]
        self.num_fine = int(num_fine)

    def _counts(self, y_true, y_pred, sample_weight):
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        fine = y_pred[:, :self.num_fine] if self.num_fine else y_pred
        pred = ops.cast(ops.argmax(fine, axis=-1), "int32")
        parent = ops.convert_to_tensor(self.parent, "int32")
        known = fine_known(y_true, len(self.parent))   # coarse-only images make no fine mistake
        wrong = ops.cast(ops.not_equal(pred, y_true), "float32") * known
        same = ops.cast(ops.equal(ops.take(parent, pred), true_coarse(y_true, self.parent)),
                        "float32")
        weight = _weights(sample_weight, wrong)
        return ops.sum(wrong * same * weight), ops.sum(wrong * weight)

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "num_fine": self.num_fine}


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
