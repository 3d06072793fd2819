"""Analysis of a finished run: `python -m lg_tf.analyze acr|tsne --model_dir=DIR [...]`.

  acr   ACR of the fine confusion matrix (paper eq. 1) from model_dir's last checkpoint, or
        from a SavedModel export (--saved_model), on --split=test|train with
        --normalization=column (published) or row; prints ACR, inter, intra and the
        per-coarse breakdown, and writes <model_dir>/acr_<split>.json.
  tsne  t-SNE of the penultimate-layer features of up to --max_samples images, coloured by
        coarse class with each coarse class's mean marked (paper Fig. 4); writes
        --out or <model_dir>/tsne_<split>.png.

The run is rebuilt from model_dir/config.json, so the data must be where it was trained.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter out of the log

import logging  # noqa: E402

from absl import app, flags  # noqa: E402

from lg_tf import cli  # noqa: E402

FLAGS = flags.FLAGS
COMMANDS = ("acr", "tsne")
log = logging.getLogger("lg_tf")


def define_flags() -> None:
    flags.DEFINE_string("model_dir", "", "Folder of a run written by lg_tf.train.")
    flags.DEFINE_enum("split", "test", ["test", "train"],
                      "Split to analyse (train: the images and labels the run trained on, "
                      "after --train_fraction and --label_noise, without augmentation).")
    flags.DEFINE_enum("normalization", "column", ["column", "row"],
                      "[acr] Confusion normalisation: column (published) or row.")
    flags.DEFINE_string("saved_model", "", "[acr] Use this SavedModel export instead of "
                        "model_dir's last checkpoint.")
    flags.DEFINE_integer("max_samples", 2000, "[tsne] At most this many images (fixed-seed "
                         "sample).")
    flags.DEFINE_string("out", "", "[tsne] PNG path (default: <model_dir>/tsne_<split>.png).")


_ONLY = {"acr": ("saved_model", "normalization"), "tsne": ("max_samples", "out")}


def main(argv):
    args = argv[1:]
    if not args:
        cli.fail("give a subcommand: acr or tsne, e.g. python -m lg_tf.analyze acr "
                 "--model_dir=DIR")
    if args[0] not in COMMANDS:
        cli.fail(f"unknown subcommand '{args[0]}'; use one of: {', '.join(COMMANDS)}")
    if len(args) > 1:
        cli.fail(f"unexpected argument(s) {' '.join(args[1:])}; flags look like --name=value")
    command = args[0]
    for other, names in _ONLY.items():
        for name in names:
            if other != command and FLAGS[name].present:
                cli.fail(f"--{name} applies to '{other}' only, not '{command}'")
    check_model_dir(FLAGS.model_dir)  # before TensorFlow loads: a typo costs no time
    cli.setup_logging()
    with cli.clean_errors():
        cfg = load_config(FLAGS.model_dir)
        if command == "acr":
            acr_command(cfg, FLAGS.model_dir, FLAGS.split, FLAGS.normalization,
                        FLAGS.saved_model)
        else:
            tsne_command(cfg, FLAGS.model_dir, FLAGS.split, FLAGS.max_samples, FLAGS.out)


# --------------------------------------------------------------------------- loading

def check_model_dir(model_dir: str) -> None:
    if not model_dir:
        cli.fail("--model_dir is required: the folder of a run written by lg_tf.train")
    if not os.path.isdir(model_dir):
        cli.fail(f"--model_dir={model_dir} does not exist")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        cli.fail(f"no config.json in {model_dir}; point --model_dir at a folder written by "
                 "lg_tf.train")


def load_config(model_dir: str):
    from lg_tf import config as config_lib
    check_model_dir(model_dir)
    try:
        cfg = config_lib.load_saved(model_dir)
    except (ValueError, TypeError) as e:
        cli.fail(f"cannot read {os.path.join(model_dir, 'config.json')} ({e})")
    if cfg is None:
        cli.fail(f"no config.json in {model_dir}; point --model_dir at a folder written by "
                 "lg_tf.train")
    return config_lib.validate(cfg)


def restored_run(cfg, model_dir: str):
    """The run rebuilt from its config, with model_dir's last checkpoint restored."""
    import tensorflow as tf
    from lg_tf import train_lib
    if not tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")):
        cli.fail(f"no checkpoint in {os.path.join(model_dir, 'checkpoints')}; train first "
                 f"(python -m lg_tf.train ... --model_dir={model_dir})")
    train_lib.configure_devices(cfg)
    run = train_lib.build_run(cfg, model_dir)
    return run, run.checkpointer.restore()


# --------------------------------------------------------------------------- acr

def checkpoint_confusion(run, split_name: str):
    from lg_tf import analysis
    from lg_tf.data import pipeline
    split = getattr(run.data, split_name)
    ds = pipeline.make_dataset(split, run.data.spec, training=False,
                               batch_size=run.cfg.eval_batch_size, seed=run.cfg.seed)
    return analysis.confusion_matrix(run.model, ds, run.data.hierarchy.num_fine, run.strategy)


def saved_model_confusion(path: str, split, num_fine: int, batch_size: int):
    """Confusion counts of a SavedModel's `fine_label` output fed the split's raw uint8 images."""
    import numpy as np
    import tensorflow as tf
    from lg_tf.data import pipeline
    try:
        serve = tf.saved_model.load(path).signatures["serving_default"]
    except Exception as e:  # noqa: BLE001 - any load failure is one sentence for the user
        cli.fail(f"cannot load a SavedModel with a serving_default signature from "
                 f"--saved_model={path} ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    if "fine_label" not in serve.structured_outputs:
        cli.fail(f"the SavedModel at {path} has no fine_label output (it was exported from a "
                 "coarse-trained run); ACR needs a fine-trained model")
    preds = []
    if split.is_files:  # images of different sizes: one at a time
        for p in split.images:
            preds.append(serve(images=pipeline.decode(tf.constant(p))[None])["fine_label"].numpy())
    else:
        for i in range(0, len(split), batch_size):
            out = serve(images=tf.constant(split.images[i:i + batch_size]))
            preds.append(out["fine_label"].numpy())
    pred = np.concatenate(preds).astype(np.int64)
    confusion = np.zeros((num_fine, num_fine), np.int64)
    np.add.at(confusion, (split.labels.astype(np.int64), pred), 1)
    return confusion


def acr_command(cfg, model_dir: str, split_name: str, normalization: str,
                saved_model: str = "") -> dict:
    from lg_tf import analysis, metrics
    from lg_tf.data import datasets
    if cfg.granularity != "fine":
        cli.fail(f"ACR needs a fine-trained model; {model_dir} was trained with "
                 f"--granularity={cfg.granularity}")
    if saved_model:
        data = datasets.prepare(cfg)
        split = getattr(data, split_name)
        confusion = saved_model_confusion(saved_model, split, data.hierarchy.num_fine,
                                          cfg.eval_batch_size)
        source, epoch = f"SavedModel {saved_model}", None
    else:
        run, epoch = restored_run(cfg, model_dir)
        data = run.data
        confusion = checkpoint_confusion(run, split_name)
        source = f"checkpoint epoch {epoch}"
    h = data.hierarchy
    result = metrics.acr(confusion, h.parent_array(), h.coarse_names, normalization)
    print(format_acr(result, h, split_name, int(confusion.sum()), source))
    path = os.path.join(model_dir, f"acr_{split_name}.json")
    payload = {"split": split_name, "source": source, "epoch": epoch,
               "examples": int(confusion.sum()), **result.to_dict(),
               "inter": analysis._finite(result.inter), "confusion": confusion.tolist(),
               "fine_names": list(h.fine_names), "coarse_names": list(h.coarse_names),
               "parent": list(h.parent)}
    from lg_tf.callbacks import write_json_atomic
    write_json_atomic(path, payload)
    print(f"written: {path}")
    return payload


def format_acr(result, h, split: str, examples: int, source: str) -> str:
    value = f"{result.value:.6g}" if result.value is not None else "undefined"
    lines = [f"ACR ({split} split, {examples} images, {result.normalization}-normalised, "
             f"{source}): {value}"]
    if result.value is None:
        lines.append(f"  why undefined: {result.reason}")
    lines.append(f"  inter (mean over fine pairs with different coarse parents) {_num(result.inter)}")
    lines.append(f"  intra (mean over fine pairs with the same coarse parent)   {_num(result.intra)}")
    width = max(12, *(len(n) for n in h.coarse_names)) + 2
    lines.append(f"  {'coarse class':<{width}}{'fine':>5}{'intra':>12}{'inter':>12}{'inter/intra':>13}")
    parent = h.parent_array()
    for c, name in enumerate(h.coarse_names):
        part = result.per_coarse[name]
        ratio = (part["inter"] / part["intra"] if part["intra"] and part["inter"] is not None
                 else None)
        lines.append(f"  {name:<{width}}{int((parent == c).sum()):>5}{_num(part['intra']):>12}"
                     f"{_num(part['inter']):>12}{_num(ratio):>13}")
    return "\n".join(lines)


def _num(x) -> str:
    import math
    return "-" if x is None or not math.isfinite(x) else f"{x:.4g}"


# --------------------------------------------------------------------------- tsne

def tsne_command(cfg, model_dir: str, split_name: str, max_samples: int, out: str = "") -> str:
    from lg_tf import analysis
    if max_samples < 10:
        cli.fail(f"--max_samples={max_samples} is too few for t-SNE; use at least 10")
    run, epoch = restored_run(cfg, model_dir)
    h = run.data.hierarchy
    split = getattr(run.data, split_name)
    index = analysis.sample_indices(len(split), max_samples)
    capped = (f"{len(index)} of {len(split)} {split_name} images"
              + (f", capped at --max_samples={max_samples}" if len(index) < len(split) else ""))
    log.info("t-SNE of the penultimate features of %s (checkpoint epoch %d)", capped, epoch)
    feats = analysis.penultimate_features(run.model, split.take(index), run.data.spec,
                                          cfg.eval_batch_size)
    points = analysis.tsne_points(feats)
    coarse = h.parent_array()[split.labels[index]]
    title = (f"t-SNE of penultimate features, {cfg.granularity}-trained {cfg.model} "
             f"(epoch {epoch})\n{capped}; colour = coarse class, X = class mean")
    out = out or os.path.join(model_dir, f"tsne_{split_name}.png")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        analysis.plot_tsne(points, coarse, h, out, title)
    except OSError as e:
        cli.fail(f"cannot write --out={out} ({e.strerror})")
    print(f"t-SNE plot of {capped} written to {out}")
    return out


def run():
    define_flags()
    app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
    run()
