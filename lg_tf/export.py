"""SavedModel export with the preprocessing inside: uint8 images in, coarse/fine predictions out.

Every target serves `coarse_probs`, `coarse_label` and `coarse_name`; targets with fine
outputs (all but coarse) also serve `fine_probs`, `fine_label` and `fine_name`. A joint
model's coarse outputs are its coarse head's (what its `coarse_accuracy` measures).

A user of the SavedModel never needs the normalisation constants, the input size or the
channel count: the serving function takes grayscale, RGB or RGBA uint8 images, resizes (or
center-crops, for ImageNet-size models), normalises, runs the network and maps fine
predictions to coarse with the run's rule.

Nothing lost, ever: an export goes only where nothing of someone else's can be replaced
(a new path, an empty folder, or an earlier lg_tf export, recognised by the marker file
`lg_tf_export.json`), never over the model_dir or a folder above it, and is written to a
`.tmp` sibling first so that a kill never leaves half an export.
"""

from __future__ import annotations

import datetime
import json
import os

import keras
import tensorflow as tf

from lg_tf import metrics
from lg_tf.data import pipeline
from lg_tf.errors import RunError
from lg_tf.hierarchy import Hierarchy

MARKER = "lg_tf_export.json"
CHANNELS_MESSAGE = "images must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels"
# What TensorFlow/Keras write at a SavedModel's root, plus lg_tf's own files: all that an
# export written before the marker existed may hold.
_SAVED_MODEL_ENTRIES = frozenset(
    {"saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra", MARKER})


# --------------------------------------------------------------------------- serving

def serving_fn(model, h: Hierarchy, spec: pipeline.ImageSpec, granularity: str, mode: str):
    coarse_names = tf.constant(list(h.coarse_names))
    fine_names = tf.constant(list(h.fine_names))
    parent = h.parent_array()

    def to_rgb(images):
        # grayscale -> replicated to 3 channels, RGBA -> alpha dropped, RGB unchanged.
        channels = tf.shape(images)[-1]
        ok = tf.reduce_any(tf.equal(channels, [1, 3, 4]))
        check = tf.debugging.Assert(ok, [CHANNELS_MESSAGE + "; got", channels])
        with tf.control_dependencies([check]):
            index = tf.where(tf.equal(channels, 1), tf.zeros([3], tf.int32), tf.range(3))
            return tf.gather(images, index, axis=-1)

    def prepare(images):
        if spec.augment == "imagenet":
            # A fixed output signature: an empty batch stacks to [0, size, size, 3] uint8.
            return tf.map_fn(lambda im: pipeline.center_crop(im, spec.size), images,
                             fn_output_signature=tf.TensorSpec([spec.size, spec.size, 3],
                                                               tf.uint8))
        return pipeline.resize_exact(images, spec.size)

    def run_model(rgb):
        # The model normalises its 0-255 input itself (its `normalize` layer). An empty
        # batch fails inside the network on TF's CPU kernels ("Incompatible shapes" in a
        # BatchNormalization), so it runs as one blank image whose row is then dropped.
        n = tf.shape(rgb)[0]
        rgb = tf.cond(n > 0, lambda: rgb, lambda: tf.zeros([1, spec.size, spec.size, 3], rgb.dtype))
        return tf.cast(model(tf.cast(rgb, tf.float32), training=False), tf.float32)[:n]

    def coarse_outputs(coarse_probs, coarse):
        return {"coarse_probs": coarse_probs, "coarse_label": coarse,
                "coarse_name": tf.gather(coarse_names, coarse)}

    def fine_outputs(logits):
        fine = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"fine_probs": tf.nn.softmax(logits), "fine_label": fine,
                "fine_name": tf.gather(fine_names, fine)}

    def serve(images):
        logits = run_model(prepare(to_rgb(images)))
        if granularity == "coarse":
            coarse_probs = tf.nn.softmax(logits)
            return coarse_outputs(coarse_probs,
                                  tf.argmax(coarse_probs, axis=-1, output_type=tf.int32))
        if granularity == "joint":
            # The coarse outputs are the coarse head's, as the run's coarse_accuracy is.
            fine_logits, coarse_logits = metrics.split_heads(logits, h.num_fine)
            coarse_probs = tf.nn.softmax(coarse_logits)
            return {**coarse_outputs(coarse_probs,
                                     tf.argmax(coarse_probs, axis=-1, output_type=tf.int32)),
                    **fine_outputs(fine_logits)}
        # fine, soft_labels, hxe: fine logits, mapped to coarse with the run's rule
        coarse = tf.cast(metrics.coarse_predictions(logits, parent, mode), tf.int32)
        return {**coarse_outputs(metrics.coarse_probabilities(logits, parent), coarse),
                **fine_outputs(logits)}

    return serve


# --------------------------------------------------------------------------- where it may go

def _resolve(path: str) -> str:
    """The real local path (symlinks, `..`, trailing slashes resolved); URLs stay as given."""
    if "://" in path:
        return path.rstrip("/")
    return os.path.realpath(path)


def _within(path: str, folder: str) -> bool:
    """Whether resolved `path` is `folder` or lies below it."""
    if "://" in folder:
        return path == folder or path.startswith(folder + "/")
    return os.path.commonpath([path, folder]) == folder


def _read_marker(path: str) -> dict | None:
    marker = os.path.join(path, MARKER)
    if not tf.io.gfile.exists(marker):
        return None
    try:
        with tf.io.gfile.GFile(marker) as f:
            data = json.load(f)
    except (ValueError, OSError, tf.errors.OpError):
        return {}  # a marker cut short by a kill: still lg_tf's claim on the folder
    return data if isinstance(data, dict) else {}


def _foreign(path: str) -> list[str] | None:
    """For an existing folder: [] when lg_tf may replace it (empty, or an lg_tf export whose
    entries are all lg_tf's); else the entries that are someone else's (or `["."]`)."""
    entries = sorted(e.rstrip("/") for e in tf.io.gfile.listdir(path))
    if not entries:
        return []
    marker = _read_marker(path)
    if marker is None:
        old_export = (tf.io.gfile.exists(os.path.join(path, "saved_model.pb")) and
                      tf.io.gfile.exists(os.path.join(path, "assets.extra", "hierarchy.json")))
        if not old_export:
            return entries
        allowed = _SAVED_MODEL_ENTRIES
    else:
        files = marker.get("files")
        allowed = _SAVED_MODEL_ENTRIES | set(files if isinstance(files, list) else [])
    return [e for e in entries if e not in allowed]


def _named(entries: list[str]) -> str:
    shown = ", ".join(entries[:3])
    return shown + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")


def _check_replaceable(path: str, what: str, advice: str) -> None:
    """Raises RunError unless `path` is absent, an empty folder or lg_tf's own export."""
    if "://" not in path and os.path.islink(path):
        raise RunError(f"{what} {path} is a symbolic link; remove it or {advice}")
    if not tf.io.gfile.exists(path):
        return
    if not tf.io.gfile.isdir(path):
        raise RunError(f"{what} {path} is a file, not a folder; {advice}")
    foreign = _foreign(path)
    if foreign:
        raise RunError(f"{what} {path} holds files lg_tf did not write ({_named(foreign)}) "
                       f"and would be replaced; move them away or {advice}")


def check_export_dir(export_dir: str, model_dir: str | None) -> None:
    """Raises RunError unless exporting to `export_dir` can replace nothing lg_tf did not write.

    Accepted: a path that does not exist, an empty folder, or a folder holding an earlier
    lg_tf export (its marker file, or - exports before the marker - `saved_model.pb` and
    `assets.extra/hierarchy.json`) and nothing else. Refused: a file; the model_dir itself
    or any folder containing it; a `.tmp` sibling (where the export is written first) that
    is not lg_tf's leftover. Paths are compared after resolving symlinks.
    """
    target = _resolve(export_dir)
    tmp = target + ".tmp"
    advice = "choose another export folder (--export_dir)"
    if model_dir is not None:
        run = _resolve(model_dir)
        if target == run:
            raise RunError(f"export folder {export_dir} is the model_dir itself and exporting "
                           f"would replace the run; {advice}, e.g. {os.path.join(run, 'export')}")
        if _within(run, target):
            raise RunError(f"export folder {export_dir} contains the model_dir {model_dir} and "
                           f"exporting would replace the run; {advice} that is not above it")
        if _within(run, tmp):
            raise RunError(f"the export's temporary folder {tmp} is or contains the model_dir "
                           f"{model_dir}; {advice}")
    _check_replaceable(target, "export folder", advice)
    _check_replaceable(tmp, "temporary export folder", advice)


# --------------------------------------------------------------------------- writing

def _write_marker(path: str, granularity: str, mode: str, files: list[str] | None) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 - Python 3.10 has no UTC
    data = {"lg_tf_export": 1, "granularity": granularity, "coarse_metric": mode,
            "created": now.isoformat(timespec="seconds")}
    if files is not None:
        data["files"] = files
    with tf.io.gfile.GFile(os.path.join(path, MARKER), "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")


def _remove_own(path: str, what: str) -> None:
    """Removes `path` after verifying (again, just before) that it is lg_tf's to remove."""
    _check_replaceable(path, what, "choose another export folder (--export_dir)")
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)


def export_saved_model(model, h: Hierarchy, spec: pipeline.ImageSpec, granularity: str,
                       mode: str, export_dir: str, *, model_dir: str | None = None) -> str:
    """Writes the SavedModel (signature `serving_default`) plus hierarchy.json beside it.

    Checks `export_dir` first (`check_export_dir`; with `model_dir` None only what is
    there is checked), writes to `<export_dir>.tmp` and swaps it in once complete.
    """
    check_export_dir(export_dir, model_dir)
    target = _resolve(export_dir)
    tmp = target + ".tmp"
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve", fn=serving_fn(model, h, spec, granularity, mode),
        input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    _remove_own(tmp, "temporary export folder")  # a killed export's leftover
    tf.io.gfile.makedirs(tmp)
    _write_marker(tmp, granularity, mode, None)  # claims the folder before anything else
    archive.write_out(tmp, verbose=False)
    extra = os.path.join(tmp, "assets.extra")
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, "hierarchy.json"), "w") as f:
        f.write(json.dumps({**h.to_dict(), "granularity": granularity, "coarse_metric": mode,
                            "image_size": spec.size}, indent=2))
    _write_marker(tmp, granularity, mode,
                  sorted({e.rstrip("/") for e in tf.io.gfile.listdir(tmp)} | {MARKER}))
    # Swap in the finished export only once it is complete; the old one goes only because
    # it is (checked again now) an empty folder or lg_tf's own export.
    _remove_own(target, "export folder")
    tf.io.gfile.rename(tmp, target)
    return export_dir


def finish_or_remove_tmp(export_dir: str) -> None:
    """After `export_saved_model` was stopped part-way (a signal): its `<export_dir>.tmp`
    goes, unless it is the complete new export (its marker lists its files) and the old
    one was already removed, in which case the swap is finished instead."""
    target = _resolve(export_dir)
    tmp = target + ".tmp"
    if not tf.io.gfile.exists(tmp):
        return
    if "files" in (_read_marker(tmp) or {}) and not tf.io.gfile.exists(target):
        tf.io.gfile.rename(tmp, target)
        return
    _remove_own(tmp, "temporary export folder")
