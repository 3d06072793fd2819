"""Tests for lg_tf.models: exact parameter counts, tiny forward passes, head options."""

from __future__ import annotations

import numpy as np
import pytest
import keras
import tensorflow as tf

from lg_tf.models import (MODELS, build_model, count_trainable_params,
                          preact_resnet18, wide_resnet)
from lg_tf.models.heads import conv3x3


def _logits_layer_params(feat_dim: int, num_classes: int) -> int:
    return feat_dim * num_classes + num_classes


# --------------------------------------------------------------------------
# Exact trainable-parameter counts (== PyTorch parameters() of the references)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("num_classes,expected", [(2, 11_167_042), (10, 11_171_146)])
def test_preact_resnet18_full_param_count(num_classes, expected):
    model = preact_resnet18(num_classes)
    assert count_trainable_params(model) == expected
    assert model.get_layer("features").output.shape[-1] == 512


@pytest.mark.parametrize("num_classes,expected",
                         [(2, 699_730), (10, 700_762), (17, 701_665)])
def test_preact_resnet18_width16_224_param_count(num_classes, expected):
    model = preact_resnet18(num_classes, width=16, input_shape=(224, 224, 3))
    assert count_trainable_params(model) == expected
    assert model.get_layer("features").output.shape[-1] == 128
    # spatial sizes: 224 -> 224 -> 112 -> 56 -> 28 before pooling
    assert model.get_layer("stage4_block2_add").output.shape[1:] == (28, 28, 128)


@pytest.mark.parametrize("num_classes,expected",
                         [(10, 36_489_290), (20, 36_495_700),
                          (50, 36_514_930), (100, 36_546_980)])
def test_wide_resnet_28_10_param_count(num_classes, expected):
    model = wide_resnet(num_classes, depth=28, widen_factor=10)
    assert count_trainable_params(model) == expected
    assert model.get_layer("features").output.shape[-1] == 640
    assert model.get_layer("final_relu").output.shape[1:] == (8, 8, 640)


def test_build_model_registry_matches_direct_builders():
    assert set(MODELS) == {"preact_resnet18", "wide_resnet"}
    m = build_model("preact_resnet18", 10, width=4, input_shape=(8, 8, 3))
    assert count_trainable_params(m) == count_trainable_params(
        preact_resnet18(10, width=4, input_shape=(8, 8, 3)))
    m = build_model("wide_resnet", 10, depth=10, widen_factor=1, input_shape=(8, 8, 3))
    assert count_trainable_params(m) == count_trainable_params(
        wide_resnet(10, depth=10, widen_factor=1, input_shape=(8, 8, 3)))


# --------------------------------------------------------------------------
# Tiny variants: forward pass, features layer, dtype
# --------------------------------------------------------------------------

TINY = {
    "preact": (lambda nc, **kw: preact_resnet18(nc, width=4, input_shape=(8, 8, 3), **kw), 8 * 4),
    "wrn": (lambda nc, **kw: wide_resnet(nc, depth=10, widen_factor=1,
                                         input_shape=(8, 8, 3), **kw), 64 * 1),
}


@pytest.mark.parametrize("arch", sorted(TINY))
def test_tiny_forward_shape_and_features(arch):
    builder, feat_dim = TINY[arch]
    model = builder(5)
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 3)).astype("float32")
    y = model(x, training=False)
    assert tuple(y.shape) == (3, 5)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    y_train = model(x, training=True)
    assert tuple(y_train.shape) == (3, 5)
    feats = model.get_layer("features")
    assert isinstance(feats, keras.layers.GlobalAveragePooling2D)
    assert feats.output.shape[-1] == feat_dim
    logits = model.get_layer("logits")
    assert logits.activation is keras.activations.linear
    assert logits.dtype_policy.compute_dtype == "float32"
    # no dropout / extra layer by default
    names = {l.name for l in model.layers}
    assert "features_dropout" not in names and "extra_layer" not in names


@pytest.mark.parametrize("arch", sorted(TINY))
def test_tiny_mixed_precision_logits_float32(arch):
    builder, _ = TINY[arch]
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = builder(3)
    finally:
        keras.config.set_dtype_policy(old)
    assert model.get_layer("features").compute_dtype == "float16"
    y = model(np.zeros((2, 8, 8, 3), "float32"), training=False)
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


@pytest.mark.parametrize("arch", sorted(TINY))
def test_only_classifier_differs_between_10_and_2_way(arch):
    builder, feat_dim = TINY[arch]
    m10, m2 = builder(10), builder(2)
    diff = count_trainable_params(m10) - count_trainable_params(m2)
    assert diff == feat_dim * 8 + 8
    w10 = {w.path: tuple(w.shape) for w in m10.weights}
    w2 = {w.path: tuple(w.shape) for w in m2.weights}
    assert w10.keys() == w2.keys()
    differing = sorted(p for p in w10 if w10[p] != w2[p])
    assert differing == sorted(p for p in w10 if p.startswith("logits/"))
    assert w10["logits/kernel"] == (feat_dim, 10) and w2["logits/kernel"] == (feat_dim, 2)


@pytest.mark.parametrize("arch", sorted(TINY))
def test_dropout_option_adds_layer_without_params(arch):
    builder, _ = TINY[arch]
    base, with_drop = builder(4), builder(4, dropout=0.5)
    layer = with_drop.get_layer("features_dropout")
    assert isinstance(layer, keras.layers.Dropout) and layer.rate == 0.5
    assert count_trainable_params(with_drop) == count_trainable_params(base)
    assert len(with_drop.layers) == len(base.layers) + 1


@pytest.mark.parametrize("arch", sorted(TINY))
def test_extra_layer_option_param_arithmetic(arch):
    builder, feat = TINY[arch]
    n_fine, n_coarse = 7, 3
    base = builder(n_coarse)
    extra = builder(n_coarse, extra_layer_units=n_fine, dropout=0.2)
    layer = extra.get_layer("extra_layer")
    assert isinstance(layer, keras.layers.Dense)
    assert layer.units == n_fine and layer.activation is keras.activations.linear
    assert extra.get_layer("logits").units == n_coarse
    # the layer order is features -> dropout -> extra_layer -> logits
    names = [l.name for l in extra.layers]
    assert names[-4:] == ["features", "features_dropout", "extra_layer", "logits"]
    head_with_extra = feat * n_fine + n_fine + n_fine * n_coarse + n_coarse
    head_plain = feat * n_coarse + n_coarse
    assert (count_trainable_params(extra) - count_trainable_params(base)
            == head_with_extra - head_plain)
    y = extra(np.zeros((2, 8, 8, 3), "float32"), training=False)
    assert tuple(y.shape) == (2, n_coarse)


# --------------------------------------------------------------------------
# Conventions: BN, init, PyTorch-style padding, structure
# --------------------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(TINY))
def test_batchnorm_and_init_conventions(arch):
    builder, _ = TINY[arch]
    model = builder(2)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bns and all(l.epsilon == 1e-5 and l.momentum == 0.9 for l in bns)
    dense_conv = [l for l in model.layers
                  if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
    for l in dense_conv:
        init = l.kernel_initializer
        assert isinstance(init, keras.initializers.VarianceScaling)
        assert init.scale == pytest.approx(1 / 3)
        assert init.mode == "fan_in" and init.distribution == "uniform"
        assert l.kernel_regularizer is None
        if isinstance(l, keras.layers.Conv2D):
            # PyTorch's padding=1: 'same' is symmetric only for stride-1 3x3 convs
            stride1_3x3 = l.kernel_size == (3, 3) and l.strides == (1, 1)
            assert l.padding == ("same" if stride1_3x3 else "valid")
    # trainable weights: BN gamma/beta only (moving stats are non-trainable)
    assert sum(2 for _ in bns) + sum(1 + int(l.use_bias) for l in dense_conv) == len(
        model.trainable_weights)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv3x3_matches_symmetric_padding(stride):
    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, conv3x3(inputs, 3, strides=stride, name="c"))
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 2)).astype("float32")
    kernel = model.get_layer("c").kernel
    expected = tf.nn.conv2d(x, kernel, strides=stride, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])
    got = model(x)
    assert tuple(got.shape) == (1, 8 // stride, 8 // stride, 3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_preact_structure():
    model = preact_resnet18(2, width=4, input_shape=(8, 8, 3))
    names = {l.name for l in model.layers}
    stem = model.get_layer("stem_conv")
    assert stem.strides == (1, 1) and not stem.use_bias and stem.filters == 4
    # projection shortcuts only in the first block of stages 2-4
    shortcuts = sorted(n for n in names if n.endswith("shortcut_conv"))
    assert shortcuts == [f"stage{s}_block1_shortcut_conv" for s in (2, 3, 4)]
    assert all(not model.get_layer(n).use_bias for n in shortcuts)
    # shortcut reads the pre-activated tensor
    sc_in = model.get_layer("stage2_block1_shortcut_conv").input
    assert sc_in is model.get_layer("stage2_block1_preact_relu").output
    # no final BN-ReLU: features pools the last residual sum directly
    assert model.get_layer("features").input is model.get_layer("stage4_block2_add").output


def test_wide_resnet_structure():
    model = wide_resnet(2, depth=16, widen_factor=2, input_shape=(8, 8, 3))
    names = {l.name for l in model.layers}
    stem = model.get_layer("stem_conv")
    assert stem.filters == 16 and stem.use_bias
    # n = 2 blocks per stage; shortcut in block1 of every stage (16 -> 32 channels too)
    assert sorted(n for n in names if n.endswith("shortcut_conv")) == [
        f"stage{s}_block1_shortcut_conv" for s in (1, 2, 3)]
    sc = model.get_layer("stage2_block1_shortcut_conv")
    assert sc.use_bias and sc.strides == (2, 2)
    # shortcut reads the block input (previous block's sum), not the activation
    assert sc.input is model.get_layer("stage1_block2_add").output
    assert model.get_layer("stage1_block1_dropout").rate == 0.3
    assert model.get_layer("features").input is model.get_layer("final_relu").output
    no_drop = wide_resnet(2, depth=10, widen_factor=1, block_dropout=0.0,
                          input_shape=(8, 8, 3))
    assert not any(l.name.endswith("_dropout") for l in no_drop.layers)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_unknown_model_name_raises():
    with pytest.raises(ValueError, match=r"unknown model 'resnet50'; choose one of: "
                                         r"preact_resnet18, wide_resnet"):
        build_model("resnet50", 10)


@pytest.mark.parametrize("depth", [27, 29, 4, 0])
def test_bad_wrn_depth_raises(depth):
    with pytest.raises(ValueError, match="depth"):
        wide_resnet(10, depth=depth, widen_factor=1, input_shape=(8, 8, 3))
