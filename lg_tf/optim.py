"""SGD with PyTorch-style coupled weight decay, and the paper's learning-rate schedules.

PyTorch's `SGD(weight_decay=wd)` adds `wd * w` to the gradient *before* momentum, on every
parameter (BN scales and biases included). Keras 3's `weight_decay` argument is decoupled
(AdamW style) and gives different dynamics, so the published settings need this class.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lg_tf")
class CoupledSGD(keras.optimizers.SGD):
    def __init__(self, learning_rate=0.1, momentum=0.9, coupled_weight_decay=0.0,
                 skip_nonfinite=False, **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.coupled_weight_decay = coupled_weight_decay
        self.skip_nonfinite = skip_nonfinite

    def update_step(self, gradient, variable, learning_rate):
        if self.coupled_weight_decay:
            wd = ops.cast(self.coupled_weight_decay, variable.dtype)
            gradient = ops.add(ops.cast(gradient, variable.dtype), ops.multiply(wd, variable))
        if not self.skip_nonfinite:
            super().update_step(gradient, variable, learning_rate)
            return
        # --on_nan=skip_batch: leave the variable and its momentum untouched, in the graph,
        # when its gradient holds a NaN or Inf (a non-finite loss makes every gradient so).
        sgd_step = super().update_step
        ops.cond(ops.all(ops.isfinite(gradient)),
                 lambda: sgd_step(gradient, variable, learning_rate), lambda: None)

    def get_config(self):
        return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay,
                "skip_nonfinite": self.skip_nonfinite}


def step_schedule(learning_rate: float, milestones_epochs, decay: float,
                  steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """lr * decay^k after the k-th milestone; step-based so a resumed run continues exactly.

    Like PyTorch's MultiStepLR stepped per epoch: with milestone m, epochs 1..m use the
    old rate and epoch m+1 starts with the new one. PiecewiseConstantDecay keeps the old
    value while step <= boundary, and step m*steps_per_epoch is epoch m+1's first.
    """
    if not milestones_epochs:
        return keras.optimizers.schedules.PiecewiseConstantDecay([10**12], [learning_rate] * 2)
    boundaries = [int(m * steps_per_epoch) - 1 for m in milestones_epochs]
    values = [learning_rate * decay**k for k in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
