"""PreAct ResNet-18 (He et al. 2016, "Identity Mappings in Deep Residual
Networks"), following Kuang Liu's pytorch-cifar ``PreActResNet18``:

* stem: 3x3 conv, stride 1, ``width`` filters, no bias, no BN/ReLU after it;
* 4 stages x 2 pre-activation basic blocks, widths ``[w, 2w, 4w, 8w]``,
  strides ``[1, 2, 2, 2]``;
* block: ``a = ReLU(BN(x))``; shortcut = ``conv1x1(a, stride)`` when the
  stride or channel count changes, else ``x``;
  ``out = conv3x3(ReLU(BN(conv3x3(a, stride)))) + shortcut``;
* no final BN-ReLU; global average pool; linear classifier (see ``heads``).
"""

from __future__ import annotations

import keras
from keras import layers

from lg_tf.models.heads import bn_relu, conv1x1, conv3x3, head, image_input


def _preact_block(x, in_planes: int, planes: int, stride: int, name: str):
    out = bn_relu(x, f"{name}_preact")
    if stride != 1 or in_planes != planes:
        shortcut = conv1x1(out, planes, strides=stride, use_bias=False,
                           name=f"{name}_shortcut_conv")
    else:
        shortcut = x
    out = conv3x3(out, planes, strides=stride, use_bias=False, name=f"{name}_conv1")
    out = bn_relu(out, f"{name}_mid")
    out = conv3x3(out, planes, strides=1, use_bias=False, name=f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([out, shortcut])


def preact_resnet18(num_classes: int, *, width: int = 64,
                    input_shape: tuple[int, int, int] = (32, 32, 3),
                    dropout: float = 0.0,
                    extra_layer_units: int | None = None,
                    normalization=None, coarse_head_classes: int | None = None,
                    name: str | None = None) -> keras.Model:
    """Build a PreAct ResNet-18 producing float32 logits of shape (N, num_classes).

    ``width`` is the number of stem / first-stage filters (64 in the paper's
    CIFAR model); the pooled ``features`` layer has ``8 * width`` units. With
    ``coarse_head_classes`` the model is joint (``heads.joint_head``): ``num_classes`` fine
    logits then ``coarse_head_classes`` coarse logits in one output.
    """
    if int(width) < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    width = int(width)
    inputs, x = image_input(input_shape, normalization)
    x = conv3x3(x, width, strides=1, use_bias=False, name="stem_conv")
    in_planes = width
    for stage, (mult, stride) in enumerate(zip((1, 2, 4, 8), (1, 2, 2, 2)), start=1):
        planes = width * mult
        for block, s in enumerate((stride, 1), start=1):
            x = _preact_block(x, in_planes, planes, s, name=f"stage{stage}_block{block}")
            in_planes = planes
    outputs = head(x, num_classes, dropout=dropout, extra_layer_units=extra_layer_units,
                   coarse_head_classes=coarse_head_classes)
    return keras.Model(inputs, outputs, name=name or f"preact_resnet18_w{width}")
