"""Wide ResNet (Zagoruyko & Komodakis 2016), following
``meliketoy/wide-resnet.pytorch`` (``networks/wide_resnet.py``):

* stem: 3x3 conv, 16 filters, with bias;
* 3 stages of ``n = (depth - 4) / 6`` ``wide_basic`` blocks, widths
  ``16k, 32k, 64k`` (``k = widen_factor``), strides ``1, 2, 2``;
* wide_basic: ``out = conv3x3(ReLU(BN(x)), bias)`` -> ``Dropout(block_dropout)``
  -> ``conv3x3(ReLU(BN(out)), stride, bias)``; plus shortcut: ``conv1x1(x,
  stride, bias)`` applied to the block *input* ``x`` when the stride or
  channel count changes, else identity;
* final BN-ReLU, global average pool, linear classifier (see ``heads``).
"""

from __future__ import annotations

import keras
from keras import layers

from lg_tf.models.heads import bn_relu, conv1x1, conv3x3, head, image_input


def _wide_basic(x, in_planes: int, planes: int, stride: int, block_dropout: float,
                name: str):
    out = bn_relu(x, f"{name}_pre1")
    out = conv3x3(out, planes, strides=1, use_bias=True, name=f"{name}_conv1")
    if block_dropout > 0.0:
        out = layers.Dropout(block_dropout, name=f"{name}_dropout")(out)
    out = bn_relu(out, f"{name}_pre2")
    out = conv3x3(out, planes, strides=stride, use_bias=True, name=f"{name}_conv2")
    if stride != 1 or in_planes != planes:
        shortcut = conv1x1(x, planes, strides=stride, use_bias=True,
                           name=f"{name}_shortcut_conv")
    else:
        shortcut = x
    return layers.Add(name=f"{name}_add")([out, shortcut])


def wide_resnet(num_classes: int, *, depth: int = 28, widen_factor: int = 10,
                input_shape: tuple[int, int, int] = (32, 32, 3),
                block_dropout: float = 0.3, dropout: float = 0.0,
                extra_layer_units: int | None = None,
                normalization=None, coarse_head_classes: int | None = None,
                name: str | None = None) -> keras.Model:
    """Build a WRN-``depth``-``widen_factor`` producing float32 logits.

    ``depth`` must satisfy ``(depth - 4) % 6 == 0`` (e.g. 10, 16, 22, 28, 40).
    The pooled ``features`` layer has ``64 * widen_factor`` units. With
    ``coarse_head_classes`` the model is joint (``heads.joint_head``).
    """
    depth = int(depth)
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(
            f"Wide ResNet depth must be 6n+4 with n >= 1 (e.g. 10, 16, 22, 28, 40); "
            f"got depth={depth}")
    if int(widen_factor) < 1:
        raise ValueError(f"widen_factor must be a positive integer, got {widen_factor!r}")
    if block_dropout < 0.0 or block_dropout >= 1.0:
        raise ValueError(f"block_dropout must be in [0, 1), got {block_dropout!r}")
    k = int(widen_factor)
    n = (depth - 4) // 6
    inputs, x = image_input(input_shape, normalization)
    x = conv3x3(x, 16, strides=1, use_bias=True, name="stem_conv")
    in_planes = 16
    for stage, (planes, stride) in enumerate(zip((16 * k, 32 * k, 64 * k), (1, 2, 2)),
                                             start=1):
        for block in range(1, n + 1):
            s = stride if block == 1 else 1
            x = _wide_basic(x, in_planes, planes, s, block_dropout,
                            name=f"stage{stage}_block{block}")
            in_planes = planes
    x = bn_relu(x, "final")
    outputs = head(x, num_classes, dropout=dropout, extra_layer_units=extra_layer_units,
                   coarse_head_classes=coarse_head_classes)
    return keras.Model(inputs, outputs, name=name or f"wide_resnet_{depth}_{k}")
