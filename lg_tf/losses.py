"""Training losses of the targets beyond plain cross-entropy (`--granularity`).

Every loss takes the pipeline's fine labels (int, [N]) and the model's float32 logits:

* `soft_label_targets` / `SoftLabelCrossEntropy` (`soft_labels`): cross-entropy against
  fine targets smoothed by hierarchy distance, as in Bertinetto et al., "Making Better
  Mistakes", CVPR 2020: target_i ∝ exp(-beta * d(i, y)), d the height of the lowest
  common ancestor (two levels: 0 itself, 1 a sibling, 2 any other coarse class).
* `HierarchicalCrossEntropy` (`hxe`, same paper): for the two-level tree, with P(c) the
  summed softmax of c's fine classes, HXE = -log P(parent(y)) - exp(-alpha) * log
  P(y | parent(y)). Each edge's term is weighted exp(-alpha * its depth) as in the paper's
  published code, scaled so the coarse term weighs 1: alpha = 0 is exactly the fine
  cross-entropy, a large alpha tends to the coarse cross-entropy of the fine head.
* `JointCrossEntropy` (`joint`): CE(fine head, y) + weight * CE(coarse head, parent(y)) on
  a joint model's output (fine logits first, then the coarse head's; see models.heads).
* `PartialFineCrossEntropy` (`fine` on partly fine-labelled data): an image with a fine
  label y < F contributes -log p_y; an image known only by its coarse class c, labelled
  F + c (Hierarchy.extended_parent), contributes -log sum_{f in c} p_f, so one fine softmax
  learns from both kinds of label.

`coarse` and `fine` keep Keras' SparseCategoricalCrossentropy (train_lib.compile_model).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from lg_tf import metrics


def _labels(y_true):
    return ops.cast(ops.reshape(y_true, (-1,)), "int32")


def _picked(values, labels):
    """values[n, labels[n]] for every row n."""
    return ops.take_along_axis(values, labels[:, None], axis=-1)[:, 0]


def soft_label_targets(parent, beta: float) -> np.ndarray:
    """[fine, fine] float32: row y is the soft target of fine class y (rows sum to 1)."""
    parent = np.asarray(parent)
    sibling = parent[:, None] == parent[None, :]
    distance = np.where(sibling, 1.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    weights = np.exp(-float(beta) * distance)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


@keras.saving.register_keras_serializable(package="lg_tf")
class SoftLabelCrossEntropy(keras.losses.Loss):
    """Cross-entropy of fine logits against `soft_label_targets(parent, beta)[y]`."""

    def __init__(self, parent, beta: float, name: str = "soft_label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.parent = [int(p) for p in parent]
        self.beta = float(beta)
        self._targets = soft_label_targets(self.parent, self.beta)

    def call(self, y_true, y_pred):
        targets = ops.take(ops.convert_to_tensor(self._targets), _labels(y_true), axis=0)
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        return -ops.sum(targets * log_probs, axis=-1)

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "beta": self.beta}


@keras.saving.register_keras_serializable(package="lg_tf")
class HierarchicalCrossEntropy(keras.losses.Loss):
    """Two-level HXE on fine logits (see the module docstring for the weighting)."""

    def __init__(self, parent, alpha: float, name: str = "hierarchical_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.parent = [int(p) for p in parent]
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        labels = _labels(y_true)
        logits = ops.cast(y_pred, "float32")
        log_fine = _picked(ops.log_softmax(logits, axis=-1), labels)
        coarse = ops.take(ops.convert_to_tensor(self.parent, "int32"), labels)
        log_coarse = _picked(metrics.coarse_log_probabilities(logits, self.parent), coarse)
        # log P(y | c) = log P(y) - log P(c): y's probability within its coarse class.
        return -(log_coarse + np.exp(-self.alpha) * (log_fine - log_coarse))

    def get_config(self):
        return {**super().get_config(), "parent": self.parent, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="lg_tf")
class JointCrossEntropy(keras.losses.Loss):
    """CE of the fine head plus `coarse_weight` times CE of the coarse head."""

    def __init__(self, parent, coarse_weight: float, name: str = "joint_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.parent = [int(p) for p in parent]
        self.coarse_weight = float(coarse_weight)

    def call(self, y_true, y_pred):
        labels = _labels(y_true)
        fine, coarse = metrics.split_heads(ops.cast(y_pred, "float32"), len(self.parent))
        coarse_labels = ops.take(ops.convert_to_tensor(self.parent, "int32"), labels)
        fine_ce = -_picked(ops.log_softmax(fine, axis=-1), labels)
        coarse_ce = -_picked(ops.log_softmax(coarse, axis=-1), coarse_labels)
        return fine_ce + self.coarse_weight * coarse_ce

    def get_config(self):
        return {**super().get_config(), "parent": self.parent,
                "coarse_weight": self.coarse_weight}


@keras.saving.register_keras_serializable(package="lg_tf")
class PartialFineCrossEntropy(keras.losses.Loss):
    """Fine cross-entropy where a label is fine (y < F), coarse cross-entropy of the summed
    fine softmax where only the coarse class is known (label F + c).

    The log-probabilities of the F fine classes and of the C coarse classes (logsumexp over
    each one's fine classes) form one [N, F + C] table; the loss picks the label's column.
    On a batch of fine labels only this is the plain fine cross-entropy, on coarse labels
    only the coarse cross-entropy of the fine head.
    """

    def __init__(self, parent, name: str = "partial_fine_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.parent = [int(p) for p in parent]

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        table = ops.concatenate([ops.log_softmax(logits, axis=-1),
                                 metrics.coarse_log_probabilities(logits, self.parent)],
                                axis=-1)
        return -_picked(table, _labels(y_true))

    def get_config(self):
        return {**super().get_config(), "parent": self.parent}
