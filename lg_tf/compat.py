"""Workarounds for Keras 3 + MultiWorkerMirroredStrategy (keras-team/keras#20585).

Keras 3's `fit` was written for MirroredStrategy; with MultiWorkerMirroredStrategy two
steps fail. Both patches apply only to multi-worker runs and leave every other path as is.
`limit_cluster_wait` gives the strategy's start a deadline TensorFlow has no argument for.
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


def limit_cluster_wait(cluster: dict, task_type: str, seconds: float) -> bool:
    """Makes MultiWorkerMirroredStrategy() raise DeadlineExceededError when not every
    worker has joined within `seconds`, instead of waiting forever (docs/reliability_inputs.md, D5).

    The strategy sets up TensorFlow's coordination service itself, with no deadline, and
    waits inside C++ holding the GIL (no Python thread or signal handler runs meanwhile).
    We set the service up first, as the strategy would (same leader and jobs), plus a
    registration barrier with a timeout; the strategy keeps a service that is already set.
    Returns False when it could not (a service set earlier in this process, another role).
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context
    import tensorflow as tf
    jobs = [j for j in ("chief", "worker") if j in cluster]
    ctx = context.context()
    if task_type not in jobs or ctx.coordination_service is not None:
        return False
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(tf.train.ClusterSpec(cluster)),
        cluster_register_timeout_in_ms=int(seconds * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=j, num_tasks=len(cluster[j]))
                          for j in jobs])
    # Without the barrier, the registration timeout is not applied (TF 2.21, measured).
    ctx.coordination_service.cluster_register_with_barrier = True
    return True
