"""SavedModel export with the preprocessing inside: uint8 images in, coarse/fine predictions out.

A user of the SavedModel never needs the normalisation constants or the input size:
the serving function resizes (or center-crops, for ImageNet-size models), normalises,
runs the network and maps fine predictions to coarse with the run's rule.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from lg_tf import metrics
from lg_tf.data import pipeline
from lg_tf.hierarchy import Hierarchy


def serving_fn(model, h: Hierarchy, spec: pipeline.ImageSpec, granularity: str, mode: str):
    coarse_names = tf.constant(list(h.coarse_names))
    fine_names = tf.constant(list(h.fine_names))
    parent = h.parent_array()

    def prepare(images):
        if spec.augment == "imagenet":
            return tf.map_fn(lambda im: pipeline.center_crop(im, spec.size), images)
        return pipeline.resize_exact(images, spec.size)

    def serve(images):
        # The model normalises its 0-255 input itself (its `normalize` layer).
        logits = tf.cast(model(tf.cast(prepare(images), tf.float32), training=False), tf.float32)
        if granularity == "coarse":
            coarse_probs = tf.nn.softmax(logits)
            coarse = tf.argmax(coarse_probs, axis=-1, output_type=tf.int32)
            return {"coarse_probs": coarse_probs, "coarse_label": coarse,
                    "coarse_name": tf.gather(coarse_names, coarse)}
        fine_probs = tf.nn.softmax(logits)
        fine = tf.argmax(logits, axis=-1, output_type=tf.int32)
        coarse = tf.cast(metrics.coarse_predictions(logits, parent, mode), tf.int32)
        return {"coarse_probs": metrics.coarse_probabilities(logits, parent),
                "coarse_label": coarse, "coarse_name": tf.gather(coarse_names, coarse),
                "fine_probs": fine_probs, "fine_label": fine,
                "fine_name": tf.gather(fine_names, fine)}

    return serve


def export_saved_model(model, h: Hierarchy, spec: pipeline.ImageSpec, granularity: str,
                       mode: str, export_dir: str) -> str:
    """Writes the SavedModel (signature `serving_default`) plus hierarchy.json beside it."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve", fn=serving_fn(model, h, spec, granularity, mode),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    tmp = export_dir.rstrip("/") + ".tmp"
    if tf.io.gfile.exists(tmp):
        tf.io.gfile.rmtree(tmp)
    archive.write_out(tmp, verbose=False)
    extra = os.path.join(tmp, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "hierarchy.json"), "w") as f:
        json.dump({**h.to_dict(), "granularity": granularity, "coarse_metric": mode,
                   "image_size": spec.size}, f, indent=2)
    # Swap in the finished export only once it is complete.
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(tmp, export_dir)
    return export_dir
