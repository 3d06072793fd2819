"""TFDS imagenet2012 restricted to a hierarchy's wnids (mock data), and 224x224 augmentation."""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from lg_tf import hierarchy
from lg_tf.config import Config
from lg_tf.data import datasets, pipeline, sources

H = hierarchy.named("imagenet_dog_cat")
OUTSIDE = "n01440764"  # tench: in imagenet2012, not in the hierarchy


def _as_dataset_fn(self, split, decoders=None, **kwargs):
    """Two JPEGs of different sizes per wnid of the hierarchy, plus one outside it."""
    names = self.info.features["label"].names
    wnids = [w for w in H.fine_names for _ in range(2)] + [OUTSIDE]
    images = [tf.io.encode_jpeg(np.full((60 + 7 * i, 80, 3), 10 * i % 255, np.uint8)).numpy()
              for i in range(len(wnids))]
    labels = np.array([names.index(w) for w in wnids], np.int64)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


def test_wnid_subset_is_extracted_once_as_a_folder_cache(tmp_path):
    with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn):
        split = sources.load_imagenet_tfds(H, "train", str(tmp_path))
    assert len(split) == 2 * H.num_fine
    np.testing.assert_array_equal(np.bincount(split.labels), [2] * H.num_fine)
    cache = tmp_path / "lg_tf_cache" / "imagenet2012_imagenet_dog_cat" / "train"
    assert sorted(os.listdir(cache)) == sorted(list(H.fine_names) + ["_COMPLETE"])
    # A second call reads the cache without touching TFDS.
    again = sources.load_imagenet_tfds(H, "train", str(tmp_path))
    np.testing.assert_array_equal(again.labels, split.labels)


def test_imagenet_run_data_has_224_crops_and_coarse_labels(tmp_path):
    cfg = Config(dataset="imagenet2012", hierarchy="imagenet_dog_cat", data_dir=str(tmp_path))
    with tfds.testing.mock_data(as_dataset_fn=_as_dataset_fn):
        data = datasets.prepare(cfg)
    assert data.spec.size == 224 and data.spec.augment == "imagenet"
    train = pipeline.make_dataset(data.train, data.spec, training=True, batch_size=4, seed=0,
                                  parent=data.hierarchy.parent_array())
    test = pipeline.make_dataset(data.test, data.spec, training=False, batch_size=4, seed=0)
    x, y = next(iter(train))
    assert x.shape == (4, 224, 224, 3) and x.dtype == tf.uint8
    assert set(y.numpy()) <= {0, 1}
    xt, yt = next(iter(test))
    assert xt.shape == (4, 224, 224, 3) and set(yt.numpy()) <= set(range(10))
