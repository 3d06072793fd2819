"""BatchNormalization on TensorFlow's fused kernel, with Keras 3's numerics.

Keras 3's ``BatchNormalization`` on the TensorFlow backend is not a fused kernel: a
training step runs ``tf.nn.moments`` (Mean, SquaredDifference, Mean) and
``tf.nn.batch_normalization`` (Rsqrt, Mul, Sub, AddV2) as separate ops, and their
gradients as another dozen (Tile, Sum, Mul, ...), for every BN layer of the network.
``FusedBatchNormalization`` computes the same thing with one ``FusedBatchNormV3`` op
forward and one ``FusedBatchNormGradV3`` backward (oneDNN's kernels on CPU).

It is the same layer otherwise: the constructor, ``get_config`` and the four variables
(``gamma``, ``beta``, ``moving_mean``, ``moving_variance``, same names, shapes and dtypes),
so checkpoints of models built with ``keras.layers.BatchNormalization`` restore into it.
What stays exactly Keras 3's:

* the moving statistics: ``moving = momentum * moving + (1 - momentum) * batch`` with the
  *biased* batch variance (``FusedBatchNormV3`` returns the Bessel-corrected one in
  training; it is multiplied back by ``max(n - 1, 1) / n``, ``n`` = examples x height x
  width of the replica's batch, the factor the kernel divided by);
* ``epsilon`` as given (``tf.compat.v1.nn.fused_batch_norm`` would raise anything below
  1.001e-5 to 1.001e-5; the op is called directly);
* float32 statistics under mixed precision: float16/bfloat16 inputs go into the kernel
  as they are with float32 ``scale``/``offset``/statistics (the kernel accumulates in
  float32, as Keras does after upcasting), and the output has the layer's compute dtype;
* ``training and self.trainable`` selects batch statistics; otherwise the moving ones;
* the moving statistics are assigned in the replica context, as the parent does, so
  MirroredStrategy aggregates them the same way.

Everything the fused kernel does not cover falls back to the parent's ``call``: inputs
that are not 4-D channels-last, masks, ``renorm``, ``synchronized``, ``center=False`` or
``scale=False``, float64, other backends, and XLA (``jit_compile``): XLA expands
``FusedBatchNormV3`` with a one-pass variance, E[x^2] - E[x]^2, off by ~1e-3 relative
where |mean| >> std (measured: tests/test_fused_bn.py), and fuses the parent's ops itself.
"""

from __future__ import annotations

import keras
from keras import layers

_FUSED_DTYPES = ("float32", "float16", "bfloat16")


def _in_xla() -> bool:
    """Whether the op being built will be compiled by XLA (tf.function(jit_compile=True))."""
    try:
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util
        return control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph())
    except (ImportError, AttributeError):  # a TensorFlow without it: take the safe path
        return True


@keras.saving.register_keras_serializable(package="lg_tf")
class FusedBatchNormalization(layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose 4-D NHWC path is ``FusedBatchNormV3``."""

    def _fused(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None
                and not self.renorm and not self.synchronized and self.scale and self.center
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and keras.backend.standardize_dtype(inputs.dtype) in _FUSED_DTYPES
                and not _in_xla())

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        moving_mean = tf.cast(self.moving_mean, tf.float32)
        moving_variance = tf.cast(self.moving_variance, tf.float32)
        if training and self.trainable:
            out = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta, mean=tf.zeros([0], tf.float32),
                variance=tf.zeros([0], tf.float32), epsilon=self.epsilon,
                exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
            shape = tf.shape(inputs)
            n = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
            # The kernel's batch_variance is sum((x - mean)^2) / max(n - 1, 1); Keras's
            # is the biased sum / n.
            variance = out.batch_variance * (tf.maximum(n - 1.0, 1.0) / n)
            self.moving_mean.assign(
                moving_mean * self.momentum + out.batch_mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            out = tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta, mean=moving_mean,
                variance=moving_variance, epsilon=self.epsilon, exponential_avg_factor=1.0,
                data_format="NHWC", is_training=False)
        return tf.cast(out.y, self.compute_dtype)
