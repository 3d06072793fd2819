"""CNN models (Keras 3 functional) and a small name -> builder registry."""

from __future__ import annotations

import math
from typing import Callable

import keras

from lg_tf.models.preact_resnet import preact_resnet18
from lg_tf.models.wide_resnet import wide_resnet

MODELS: dict[str, Callable[..., keras.Model]] = {
    "preact_resnet18": preact_resnet18,
    "wide_resnet": wide_resnet,
}


def build_model(name: str, num_classes: int, **kwargs) -> keras.Model:
    """Build the registered model ``name`` with ``num_classes`` logits."""
    try:
        builder = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}"
        ) from None
    return builder(num_classes, **kwargs)


def count_trainable_params(model: keras.Model) -> int:
    """Number of trainable scalars (== PyTorch ``sum(p.numel() for p in parameters())``)."""
    return int(sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights))


__all__ = ["MODELS", "build_model", "count_trainable_params",
           "preact_resnet18", "wide_resnet"]
