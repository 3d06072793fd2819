"""Shared building blocks and the classification heads used by every CNN.

Conventions (chosen to mirror the PyTorch reference implementations):

* channels-last tensors;
* BatchNormalization with ``epsilon=1e-5`` and ``momentum=0.9`` (PyTorch's
  ``eps=1e-5, momentum=0.1`` -- Keras counts momentum the other way round), on
  TensorFlow's fused kernel (``batch_norm.FusedBatchNormalization``: Keras 3's layer and
  numerics, one op forward and one backward instead of about a dozen each);
* conv / dense kernels initialised like PyTorch's default
  ``kaiming_uniform_(a=sqrt(5))``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
  which is ``VarianceScaling(scale=1/3, mode='fan_in', distribution='uniform')``;
* 3x3 convolutions see exactly the windows of PyTorch's ``padding=1``: stride 2 as
  explicit symmetric zero padding of 1 followed by a ``'valid'`` convolution (Keras
  ``'same'`` pads asymmetrically for stride 2), stride 1 as ``'same'`` (which pads 1 on
  each side there: the same windows, without a Pad op and its gradient);
* no weight regularizers: weight decay belongs to the optimizer.
"""

from __future__ import annotations

import keras
from keras import layers

from lg_tf.models.batch_norm import FusedBatchNormalization

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def torch_default_kernel_init() -> keras.initializers.Initializer:
    """PyTorch's default Conv/Linear weight init (kaiming_uniform, a=sqrt(5))."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def batch_norm(name: str) -> layers.BatchNormalization:
    return FusedBatchNormalization(
        axis=-1, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def bn_relu(x, name: str):
    """BatchNorm followed by ReLU; layers are named ``{name}_bn``/``{name}_relu``."""
    x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def conv3x3(x, filters: int, *, strides: int = 1, use_bias: bool = False,
            name: str):
    """3x3 conv with PyTorch-style symmetric ``padding=1``.

    Stride 2: ``ZeroPadding2D(1)`` (``{name}_pad``) then a ``'valid'`` conv. Stride 1: a
    ``'same'`` conv (the same windows; TensorFlow's oneDNN kernels pad inside the conv and
    its gradients), after an ``Identity`` layer still named ``{name}_pad``: TensorFlow
    checkpoints key a functional model's layers by their position, so the layer keeps the
    place of the padding layer it replaces and checkpoints written before still restore.
    """
    if strides == 1:
        x = layers.Identity(name=f"{name}_pad")(x)
        padding = "same"
    else:
        x = layers.ZeroPadding2D(padding=1, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters, 3, strides=strides, padding=padding, use_bias=use_bias,
        kernel_initializer=torch_default_kernel_init(),
        bias_initializer="zeros", name=name)(x)


def conv1x1(x, filters: int, *, strides: int = 1, use_bias: bool = False,
            name: str):
    """1x1 (projection) conv, no padding."""
    return layers.Conv2D(
        filters, 1, strides=strides, padding="valid", use_bias=use_bias,
        kernel_initializer=torch_default_kernel_init(),
        bias_initializer="zeros", name=name)(x)


def image_input(input_shape, normalization=None):
    """The model input; with `normalization=(mean, std)` (per channel, [0, 1] scale) the
    model takes raw 0-255 pixels (uint8 from the pipeline) and normalises them itself,
    so the host ships 4x fewer bytes and the accelerator does the arithmetic."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    if normalization is None:
        return inputs, inputs
    mean, std = normalization
    x = layers.Normalization(mean=[m * 255.0 for m in mean],
                             variance=[(s * 255.0) ** 2 for s in std], name="normalize")(inputs)
    return inputs, x


def classification_head(x, num_classes: int, *, dropout: float = 0.0,
                        extra_layer_units: int | None = None):
    """Global average pool -> [dropout] -> [extra linear layer] -> logits.

    * ``features``: ``GlobalAveragePooling2D`` output (the penultimate features).
    * ``features_dropout``: ``Dropout(dropout)``, only when ``dropout > 0``.
    * ``extra_layer``: ``Dense(extra_layer_units)`` with *no* activation, only
      when ``extra_layer_units`` is given (the Table IV ablation: features ->
      n_fine units -> n_coarse, purely linear as in the published code).
    * ``logits``: ``Dense(num_classes)`` in float32 (no softmax), so the loss
      stays numerically stable under mixed precision.
    """
    _check_classes(num_classes)
    x = pooled_features(x, dropout)
    if extra_layer_units is not None:
        if int(extra_layer_units) < 1:
            raise ValueError(
                f"extra_layer_units must be a positive integer, got {extra_layer_units!r}")
        x = layers.Dense(
            int(extra_layer_units), activation=None,
            kernel_initializer=torch_default_kernel_init(),
            bias_initializer="zeros", name="extra_layer")(x)
    return _logits(x, num_classes, "logits")


def joint_head(x, num_fine: int, num_coarse: int, *, dropout: float = 0.0):
    """Global average pool -> [dropout] -> a fine and a coarse linear head, side by side.

    * ``features`` / ``features_dropout``: as in ``classification_head`` (shared).
    * ``fine_logits``: ``Dense(num_fine)``, ``coarse_logits``: ``Dense(num_coarse)``, both
      float32, on the same features.
    * ``logits``: their concatenation [N, num_fine + num_coarse], fine first. One output
      tensor rather than two model outputs, so that every compiled metric sees both heads
      (the combined coarse prediction needs both; Keras gives a per-output metric only
      its own output), and checkpoints, evaluate() and export handle one tensor as for
      the other targets. ``lg_tf.metrics.split_heads`` takes it apart.
    """
    _check_classes(num_fine)
    _check_classes(num_coarse)
    x = pooled_features(x, dropout)
    fine = _logits(x, num_fine, "fine_logits")
    coarse = _logits(x, num_coarse, "coarse_logits")
    return layers.Concatenate(axis=-1, dtype="float32", name="logits")([fine, coarse])


def pooled_features(x, dropout: float = 0.0):
    """The ``features`` layer (global average pool), then ``features_dropout`` if any."""
    if dropout < 0.0 or dropout >= 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    x = layers.GlobalAveragePooling2D(name="features")(x)
    if dropout > 0.0:
        x = layers.Dropout(dropout, name="features_dropout")(x)
    return x


def head(x, num_classes: int, *, dropout: float = 0.0,
         extra_layer_units: int | None = None, coarse_head_classes: int | None = None):
    """The models' one call: ``joint_head`` when ``coarse_head_classes`` is given (then
    ``num_classes`` is the fine head's size), else ``classification_head``."""
    if coarse_head_classes is None:
        return classification_head(x, num_classes, dropout=dropout,
                                   extra_layer_units=extra_layer_units)
    if extra_layer_units is not None:
        raise ValueError("extra_layer_units is an ablation of the coarse classifier; a joint "
                         "head takes none")
    return joint_head(x, num_classes, coarse_head_classes, dropout=dropout)


def _check_classes(num_classes) -> None:
    if num_classes is None or int(num_classes) < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")


def _logits(x, num_classes: int, name: str):
    """Dense(num_classes) logits in float32 (no softmax): a stable loss under mixed precision."""
    return layers.Dense(
        int(num_classes), activation=None,
        kernel_initializer=torch_default_kernel_init(),
        bias_initializer="zeros", dtype="float32", name=name)(x)
