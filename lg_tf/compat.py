"""Workarounds for Keras 3 + MultiWorkerMirroredStrategy (keras-team/keras#20585).

Keras 3's `fit` was written for MirroredStrategy; with MultiWorkerMirroredStrategy two
steps fail. Both patches apply only to multi-worker runs and leave every other path as is.
"""

from __future__ import annotations

import numpy as np


def build_before_fit(model, strategy, input_shape, batch_size: int) -> None:
    """fit builds the compiled metrics by reducing a distributed batch in eager mode, which
    the collective strategy rejects; build them from a local batch and skip that step."""
    x = np.zeros((batch_size,) + tuple(input_shape), np.float32)
    y = np.zeros((batch_size,), np.int32)
    with strategy.scope():
        model._symbolic_build(data_batch=(x, y))
    model._maybe_symbolic_build = lambda *args, **kwargs: None


def patch_multi_worker_reduce() -> None:
    """Keras reduces each step's logs with `strategy.reduce("MEAN", v, axis=0)` on multi-worker
    strategies, which fails for scalar losses and metrics and would average a confusion
    matrix over its rows. Metric state is already summed across replicas, so the replicas
    hold equal values and a plain element-wise cross-replica mean is exact."""
    from keras.src.backend.tensorflow import trainer
    from keras.src import tree
    if getattr(trainer, "_lg_tf_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    trainer._lg_tf_patched = True
