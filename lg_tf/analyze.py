"""Analysis of a finished run: `python -m lg_tf.analyze acr|tsne --model_dir=DIR [...]`.

  acr   ACR of the fine confusion matrix (paper eq. 1) from model_dir's newest checkpoint,
        or from a SavedModel export (--saved_model), on --split=test|train with
        --normalization=column (published) or row; prints ACR, inter, intra and the
        per-coarse breakdown, and writes <model_dir>/acr_<split>.json.
  tsne  t-SNE of the penultimate-layer features of up to --max_samples images, coloured by
        coarse class with each coarse class's mean marked (paper Fig. 4); writes
        --out or <model_dir>/tsne_<split>.png.

The run is rebuilt from model_dir/config.json (train_lib.restore_run), so the data must
be where it was trained. Exit codes as for lg_tf.train: 0 done, 2 bad usage or input, 75
stopped by SIGTERM or Ctrl-C (re-run it). A read-only model_dir still gets the printed ACR.
"""
# Thin entry point: flags -> acr_command / tsne_command, which raise (never exit).

from __future__ import annotations

import os
import re

from lg_tf import cli, files
from lg_tf.errors import RunError

# {group: flags}; a subcommand's group holds the flags that apply to it only.
FLAG_GROUPS = {"analyze": ("model_dir", "split"), "acr": ("normalization", "saved_model"),
               "tsne": ("max_samples", "out")}
COMMANDS = ("acr", "tsne")


def define_flags() -> None:
    from absl import flags
    flags.DEFINE_string("model_dir", "", "Folder of a run written by lg_tf.train.")
    flags.DEFINE_enum("split", "test", ["test", "train"],
                      "Split to analyse (train: the images and labels the run trained on, "
                      "after --train_fraction and --label_noise, without augmentation).")
    flags.DEFINE_enum("normalization", "column", ["column", "row"],
                      "[acr] Confusion normalisation: column (published) or row.")
    flags.DEFINE_string("saved_model", "", "[acr] Use this SavedModel export instead of "
                        "model_dir's newest checkpoint.")
    flags.DEFINE_integer("max_samples", 2000, "[tsne] At most this many images (fixed-seed "
                         "sample).")
    flags.DEFINE_string("out", "", "[tsne] PNG path (default: <model_dir>/tsne_<split>.png).")


def help_groups() -> dict[str, dict[str, str]]:
    from absl import flags
    return {group: {name: flags.FLAGS[name].help.removeprefix(f"[{group}] ")
                    for name in names} for group, names in FLAG_GROUPS.items()}


def run(argv=None) -> None:
    from absl import flags
    define_flags()
    values = flags.FLAGS

    def body(rest):
        command = check_command(rest[1:], values)
        # before TensorFlow loads: a typo costs no time
        check_model_dir(values.model_dir, checkpoint=not values.saved_model)
        cli.setup_logging("lg_tf.analyze")
        if command == "acr":
            acr_command(values.model_dir, values.split, values.normalization,
                        values.saved_model)
        else:
            tsne_command(values.model_dir, values.split, values.max_samples, values.out)
        return 0

    cli.run(body, lambda a: cli.parse_flags(a, help_groups(), __doc__), argv)


def check_command(args: list[str], values) -> str:
    """The subcommand; a flag that belongs to the other subcommand is refused."""
    if not args:
        cli.fail("give a subcommand: acr or tsne, e.g. python -m lg_tf.analyze acr "
                 "--model_dir=DIR")
    if args[0] not in COMMANDS:
        cli.fail(f"unknown subcommand '{args[0]}'; use one of: {', '.join(COMMANDS)}")
    if len(args) > 1:
        cli.fail(f"unexpected argument(s) {' '.join(args[1:])}; flags look like --name=value")
    command = args[0]
    for other in COMMANDS:
        for name in FLAG_GROUPS[other]:
            if other != command and values[name].present:
                cli.fail(f"--{name} applies to '{other}' only, not '{command}'")
    return command


def check_model_dir(model_dir: str, checkpoint: bool = True) -> None:
    """The cheap checks, without TensorFlow (`checkpoint`: a ckpt-N.index file is there);
    restore_run gives the others."""
    if not model_dir:
        cli.fail("--model_dir is required: the folder of a run written by lg_tf.train")
    if not files.isdir(model_dir):   # files: a gs:// run is analysed like a local one
        cli.fail(f"--model_dir={model_dir} does not exist")
    if not files.exists(os.path.join(model_dir, "config.json")):
        cli.fail(f"no config.json in {model_dir}; point --model_dir at a folder written by "
                 "lg_tf.train")
    checkpoints = os.path.join(model_dir, "checkpoints")
    names = os.listdir(checkpoints) if checkpoint and os.path.isdir(checkpoints) else []
    if checkpoint and not any(re.fullmatch(r"ckpt-\d+\.index", n) for n in names):
        # restore_run says the same, but only after loading the data and building the model
        cli.fail(f"no checkpoint in {checkpoints}; train first (python -m lg_tf.train ... "
                 f"--model_dir={model_dir})")


# --------------------------------------------------------------------------- acr

def checkpoint_confusion(run, split_name: str):
    """Counts of the restored run's model over the split (un-augmented), via evaluate."""
    from lg_tf import analysis
    from lg_tf.data import pipeline
    split = getattr(run.data, split_name)
    ds = pipeline.make_dataset(split, run.data.spec, training=False,
                               batch_size=run.cfg.eval_batch_size, seed=run.cfg.seed)
    return analysis.confusion_matrix(run.model, ds)


def saved_model_confusion(path: str, split, num_fine: int, batch_size: int):
    """Confusion counts of a SavedModel's `fine_probs` fed the split's raw uint8 images,
    counted by the same `metrics.ConfusionMatrix` the training compiles."""
    import tensorflow as tf

    from lg_tf import analysis, metrics
    from lg_tf.data import pipeline
    try:
        serve = tf.saved_model.load(path).signatures["serving_default"]
    except Exception as e:  # noqa: BLE001 - any load failure is one sentence for the user
        raise RunError(f"cannot load a SavedModel with a serving_default signature from "
                       f"--saved_model={path} "
                       f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if "fine_probs" not in serve.structured_outputs:
        raise RunError(f"the SavedModel at {path} has no fine_probs output (it was exported "
                       "from a coarse-trained run); ACR needs a fine-trained model")
    metric = metrics.ConfusionMatrix(num_fine)
    for start in range(0, len(split), batch_size):
        labels = split.labels[start:start + batch_size]
        if split.is_files:  # images of different sizes: one at a time
            probs = tf.concat([serve(images=pipeline.decode(tf.constant(p))[None])["fine_probs"]
                               for p in split.images[start:start + batch_size]], axis=0)
        else:
            probs = serve(images=tf.constant(split.images[start:start + batch_size]))[
                "fine_probs"]
        metric.update_state(labels, probs)
    return analysis.as_counts(metric.result())


def saved_config(model_dir: str):
    """model_dir's Config (config.json), without building anything."""
    from lg_tf import config as config_lib
    cfg = config_lib.load_saved(model_dir)
    if cfg is None:
        raise RunError(f"no lg_tf run in --model_dir={model_dir} (no config.json); point it "
                       "at a folder written by lg_tf.train")
    return cfg


def acr_command(model_dir: str, split_name: str = "test", normalization: str = "column",
                saved_model: str = "") -> dict:
    """ACR of model_dir's run (its newest checkpoint, or the SavedModel `saved_model`) on a
    split; prints it, writes <model_dir>/acr_<split>.json and returns that payload.

    A model_dir that cannot be written (an archived run on a read-only mount) still gets
    the printed result, with a line saying the file was not written. A signal stops it at
    once (exit 75)."""
    from lg_tf import interrupt
    with interrupt.abort_on_signals("lg_tf.analyze acr"):
        return _acr(model_dir, split_name, normalization, saved_model)


def _acr(model_dir: str, split_name: str, normalization: str, saved_model: str) -> dict:
    from lg_tf import analysis, stats
    from lg_tf import config as config_lib
    cfg = saved_config(model_dir)
    if not config_lib.fine_outputs(cfg.granularity):
        raise RunError(f"ACR needs a fine-trained model; {model_dir} was trained with "
                       f"--granularity={cfg.granularity}")
    if saved_model:
        from lg_tf.data import datasets
        data = datasets.prepare(cfg)
        confusion = saved_model_confusion(saved_model, getattr(data, split_name),
                                          data.hierarchy.num_fine, cfg.eval_batch_size)
        source, epoch = f"SavedModel {saved_model}", None
    else:
        from lg_tf import train_lib
        run = train_lib.restore_run(model_dir)
        data, epoch = run.data, run.epoch
        confusion = checkpoint_confusion(run, split_name)
        source = f"checkpoint epoch {epoch}"
    h = data.hierarchy
    result = stats.acr(confusion, h.parent_array(), h.coarse_names, normalization)
    print(format_acr(result, h, split_name, int(confusion.sum()), source))
    path = os.path.join(model_dir, f"acr_{split_name}.json")
    payload = {"split": split_name, "source": source, "epoch": epoch,
               "examples": int(confusion.sum()), **result.to_dict(),
               "inter": analysis.finite(result.inter), "confusion": confusion.tolist(),
               "fine_names": list(h.fine_names), "coarse_names": list(h.coarse_names),
               "parent": list(h.parent)}
    write_payload(path, payload)
    return payload


def write_payload(path: str, payload: dict) -> None:
    """Writes the result file, or says why it could not (the result is printed already)."""
    import tensorflow as tf

    from lg_tf import files
    try:
        files.write_json_atomic(path, payload)
    except (OSError, tf.errors.OpError) as e:
        reason = getattr(e, "strerror", None) or getattr(e, "message", None) or str(e)
        print(f"not written: {path} ({reason.splitlines()[0]}); the result above is complete")
        return
    print(f"written: {path}")


def format_acr(result, h, split: str, examples: int, source: str) -> str:
    value = f"{result.value:.6g}" if result.value is not None else "undefined"
    lines = [(f"ACR ({split} split, {examples} images, {result.normalization}-normalised, "
              f"{source}): {value}")]
    if result.value is None:
        lines.append(f"  why undefined: {result.reason}")
    if getattr(result, "note", None):
        lines.append(f"  note: {result.note}")
    lines.append("  inter (mean over fine pairs with different coarse parents) "
                 f"{_num(result.inter)}")
    lines.append("  intra (mean over fine pairs with the same coarse parent)   "
                 f"{_num(result.intra)}")
    width = max(12, *(len(n) for n in h.coarse_names)) + 2
    lines.append(f"  {'coarse class':<{width}}{'fine':>5}{'intra':>12}{'inter':>12}"
                 f"{'inter/intra':>13}")
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

def tsne_command(model_dir: str, split_name: str = "test", max_samples: int = 2000,
                 out: str = "") -> str:
    """t-SNE figure of model_dir's newest checkpoint's features; returns the PNG's path.
    A signal stops it at once (exit 75)."""
    from lg_tf import interrupt
    with interrupt.abort_on_signals("lg_tf.analyze tsne"):
        return _tsne(model_dir, split_name, max_samples, out)


def _tsne(model_dir: str, split_name: str, max_samples: int, out: str) -> str:
    from lg_tf import analysis, features, plots, train_lib
    features.check_tsne_samples(max_samples)  # before the run is restored
    m = analysis.tsne_map(train_lib.restore_run(model_dir), split_name, max_samples)
    title = (f"t-SNE of penultimate features, {m.cfg.granularity}-trained {m.cfg.model} "
             f"(epoch {m.epoch})\n{m.text}; colour = coarse class, X = class mean")
    out = out or os.path.join(model_dir, f"tsne_{split_name}.png")
    try:
        plots.plot_tsne(m.points, m.coarse, m.hierarchy, out, title)
    except OSError as e:
        raise RunError(f"cannot write --out={out} ({e.strerror or e})") from None
    print(f"t-SNE plot of {m.text} written to {out}")
    return out


if __name__ == "__main__":
    run()
