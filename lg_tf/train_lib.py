"""train_and_evaluate(config, model_dir): the one function the CLI, the tests and pipelines call."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from lg_tf import (analysis, compat, files, hparams, interrupt, losses, metrics, models, optim,
                   run_dir)
from lg_tf import callbacks as cb
from lg_tf import checkpoints
from lg_tf import config as config_lib
from lg_tf import export as export_lib
from lg_tf import logs as log_lib
from lg_tf.data import datasets, pipeline
from lg_tf.errors import EXIT_PREEMPTED, RunError, TrainingDiverged  # noqa: F401 - re-exported
from lg_tf.results import Results

log = logging.getLogger("lg_tf")


# --------------------------------------------------------------------------- devices

def configure_devices(cfg: config_lib.Config) -> None:
    """Logical CPU devices and determinism, idempotently (train_and_evaluate calls it).

    Logical devices can only be set before TensorFlow first touches a device; a later call
    asking for another split keeps what is there and says so.
    """
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    if cfg.cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        wanted = [tf.config.LogicalDeviceConfiguration()] * cfg.cpu_devices
        if len(tf.config.get_logical_device_configuration(cpus[0]) or ()) == cfg.cpu_devices:
            return
        try:
            tf.config.set_logical_device_configuration(cpus[0], wanted)
        except RuntimeError:
            log.warning("--cpu_devices=%d ignored: TensorFlow's devices were already set up "
                        "in this process (%d CPU device(s)); set it before anything else runs",
                        cfg.cpu_devices, len(tf.config.list_logical_devices("CPU")))


_STRATEGIES: dict = {}


def make_strategy(cfg: config_lib.Config) -> tf.distribute.Strategy:
    """MultiWorkerMirrored when TF_CONFIG names several workers, else Mirrored over local GPUs/CPUs.

    One strategy per kind per process: a second MirroredStrategy over the same devices
    restarts the collective-op instance keys, and TensorFlow then matches the new run's
    all-reduces against the old run's cached shapes (runs in one process, e.g. pipelines).
    """
    kind = cfg.strategy
    if kind not in _STRATEGIES:
        _STRATEGIES[kind] = _new_strategy(kind)
    return _STRATEGIES[kind]


def tf_config() -> dict:
    """TF_CONFIG as a dict ({} when unset); one sentence when it is malformed."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise RunError(f"the TF_CONFIG environment variable is not valid JSON ({e}); fix it "
                       "(see BUILD.md, multi-worker training) or unset it") from None
    cluster = value.get("cluster", {}) if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not all(
            isinstance(v, list) for v in cluster.values()):
        raise RunError("TF_CONFIG must be a JSON object like {\"cluster\": {\"worker\": "
                       "[\"host:port\", ...]}, \"task\": {\"type\": \"worker\", \"index\": 0}}; "
                       "fix it or unset it")
    return value


def _new_strategy(kind: str) -> tf.distribute.Strategy:
    if kind == "auto":
        cluster = tf_config().get("cluster", {})
        kind = "multi_worker" if len(cluster.get("worker", [])) > 1 else "mirrored"
    if kind == "multi_worker":
        return _multi_worker_strategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)


CLUSTER_TIMEOUT_ENV = "LG_TF_CLUSTER_TIMEOUT"
# Long enough for a scheduler to start every worker's container; the env var changes it.
CLUSTER_TIMEOUT_S = 600.0


class ClusterTimeout(RunError):
    """Not every worker of TF_CONFIG joined in time; retry once they run (exit 75)."""

    exit_code = EXIT_PREEMPTED


def cluster_timeout() -> float:
    """Seconds a worker waits for the others: $LG_TF_CLUSTER_TIMEOUT, else 600."""
    raw = os.environ.get(CLUSTER_TIMEOUT_ENV, "").strip()
    if not raw:
        return CLUSTER_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < 1e7):
        raise RunError(f"{CLUSTER_TIMEOUT_ENV}={raw} must be a number of seconds above 0, "
                       "e.g. 600; fix it or unset it")
    return value


def _multi_worker_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy, saying whom it waits for and giving up after
    `cluster_timeout()` seconds (otherwise a worker that never starts is waited for
    silently and forever)."""
    config = tf_config()
    cluster, task = config.get("cluster", {}), config.get("task", {})
    me = (task.get("type", "worker"), task.get("index", 0))
    others = [f"{job} {i} ({address})" for job in ("chief", "worker")
              for i, address in enumerate(cluster.get(job, [])) if (job, i) != me]
    seconds = cluster_timeout()
    limited = compat.limit_cluster_wait(cluster, me[0], seconds)
    log.info("multi-worker training as %s %s: waiting for %s to join%s", *me,
             ", ".join(others) or "the cluster",
             f" (up to {seconds:g} s; {CLUSTER_TIMEOUT_ENV} sets the limit)" if limited else "")
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.DeadlineExceededError:
        raise ClusterTimeout(
            f"not every worker of TF_CONFIG joined within {seconds:g} s (this is {me[0]} "
            f"{me[1]}; the others: {', '.join(others)}); start each with the same TF_CONFIG "
            f"and its own task index (or raise {CLUSTER_TIMEOUT_ENV}), then re-run") from None
    log.info("all %d workers joined", len(others) + 1)
    return strategy


@contextlib.contextmanager
def dtype_policy(name: str):
    previous = keras.config.dtype_policy()
    if name != "none":
        keras.config.set_dtype_policy(f"mixed_{name}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# --------------------------------------------------------------------------- model

def num_outputs(cfg: config_lib.Config, h) -> int:
    """What build_model's `num_outputs` is for the target: the coarse classes of a coarse
    run and of a joint run's coarse head, else the fine classes."""
    return h.num_coarse if cfg.granularity in ("coarse", "joint") else h.num_fine


def build_model(cfg: config_lib.Config, num_outputs: int, num_fine: int, spec):
    """The target's model: `num_outputs` logits; joint: `num_fine` fine logits and then
    `num_outputs` coarse logits in one output (models.heads.joint_head)."""
    joint = cfg.granularity == "joint"
    kwargs = dict(input_shape=(spec.size, spec.size, 3), dropout=cfg.dropout,
                  normalization=(spec.mean, spec.std),
                  extra_layer_units=num_fine if cfg.extra_layer else None,
                  coarse_head_classes=num_outputs if joint else None)
    if cfg.model == "wide_resnet":
        kwargs.update(depth=cfg.wrn_depth, widen_factor=cfg.wrn_widen,
                      block_dropout=cfg.block_dropout)
    else:
        kwargs.update(width=cfg.width)
    return models.build_model(cfg.model, num_fine if joint else num_outputs, **kwargs)


def compile_model(model, cfg: config_lib.Config, h, steps_per_epoch: int,
                  partial: bool = False) -> None:
    """Optimizer, loss and metrics; `partial`: some training images have only a coarse
    label (partial fine labels), which the fine target learns from through its summed
    softmax."""
    if cfg.lr_schedule == "step":
        lr = optim.step_schedule(cfg.learning_rate, cfg.scaled_milestones, cfg.lr_decay,
                                 steps_per_epoch)
    else:
        lr = cfg.learning_rate
    model.compile(
        optimizer=optim.CoupledSGD(lr, momentum=cfg.momentum,
                                   coupled_weight_decay=cfg.weight_decay,
                                   skip_nonfinite=cfg.on_nan == "skip_batch"),
        loss=target_loss(cfg, h, partial), metrics=run_metrics(cfg, h),
        jit_compile=cfg.jit_compile)


def target_loss(cfg: config_lib.Config, h, partial: bool = False) -> keras.losses.Loss:
    """The training loss of `--granularity` (coarse and fine: plain cross-entropy; fine on
    partly fine-labelled data: the fine or the summed-coarse cross-entropy per image)."""
    if partial and cfg.granularity == "fine":
        return losses.PartialFineCrossEntropy(h.parent)
    if cfg.granularity == "joint":
        return losses.JointCrossEntropy(h.parent, cfg.coarse_loss_weight)
    if cfg.granularity == "soft_labels":
        return losses.SoftLabelCrossEntropy(h.parent, cfg.soft_beta)
    if cfg.granularity == "hxe":
        return losses.HierarchicalCrossEntropy(h.parent, cfg.hxe_alpha)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run_metrics(cfg: config_lib.Config, h) -> list:
    """Every run's metrics: the same coarse ones (accuracy, confusion, ECE, NLL), plus fine
    accuracy, the fine confusion matrix and sibling mistakes where fine outputs exist, plus
    a joint run's other two coarse accuracies (its `coarse_accuracy` is the coarse head's)."""
    fine = config_lib.fine_outputs(cfg.granularity)
    parent = h.parent if fine else None
    joint = h.num_fine if cfg.granularity == "joint" else 0  # where its coarse head starts
    out = [metrics.CoarseAccuracy(parent, cfg.coarse_metric, num_fine=joint),
           # Per coarse class recall of every run (evaluate() turns it into scalars).
           metrics.CoarseConfusion(h.num_coarse, parent, cfg.coarse_metric,
                                   name=metrics.COARSE_CONFUSION, num_fine=joint),
           metrics.CoarseECE(parent, num_fine=joint), metrics.CoarseNLL(parent, num_fine=joint)]
    if not fine:
        return out
    out.append(metrics.FineAccuracy(joint) if joint
               else keras.metrics.SparseCategoricalAccuracy(name="fine_accuracy"))
    # Counted during every evaluation, so ACR needs no pass of its own over the test split.
    out.append(metrics.ConfusionMatrix(h.num_fine, name="confusion"))
    out.append(metrics.SiblingMistakes(h.parent, num_fine=joint))
    if joint:
        out += [metrics.CoarseAccuracy(parent, cfg.coarse_metric, num_fine=joint, source=s,
                                       name=f"coarse_accuracy_{name}")
                for s, name in (("fine_head", "from_fine"), ("combined", "combined"))]
    return out


# --------------------------------------------------------------------------- input

def input_data(strategy, split, spec, *, training: bool, batch_size: int, seed: int,
               parent: np.ndarray | None = None):
    """What `fit`/`evaluate` read: `pipeline.make_dataset` (repeated when training), fed so
    that each worker reads only its own share of `split`.

    Under MultiWorkerMirroredStrategy every worker builds the pipeline from the strategy's
    input context (`distribute_datasets_from_function`): the examples whose index is its
    worker index modulo the number of workers, shuffled, gathered and augmented on that
    worker only, in per-replica batches (`batch_size` / replicas: a step still consumes
    `batch_size` images, so steps per epoch are unchanged), with a seed of its own. An
    evaluation pipeline yields the same number of batches on every worker, none empty
    (`pipeline.eval_batch_sizes`), so every test image is counted once whatever the split's
    size. (Handed a plain dataset, tf.distribute shards it with AutoShardPolicy.DATA: each
    worker gathers and augments everything, then keeps 1/W.)

    With one worker (MirroredStrategy over local GPUs/CPUs, OneDevice) there is one input
    pipeline either way; we keep the plain dataset, whose global batches Keras splits over
    the local replicas: that pipeline is faster than one cutting per-replica batches (half
    as many batches to gather and augment; measured in BUILD.md, "Design history"), and
    single-host runs keep their augmentation draws.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        ds = pipeline.make_dataset(split, spec, training=training, batch_size=batch_size,
                                   seed=seed, parent=parent)
        return ds.repeat() if training else ds

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        ds = pipeline.make_dataset(split, spec, training=training, batch_size=batch_size,
                                   seed=seed, parent=parent, input_context=context)
        return ds.repeat() if training else ds

    return strategy.distribute_datasets_from_function(dataset_fn)


# --------------------------------------------------------------------------- workers

def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def _worker_dir(model_dir: str, strategy) -> str:
    """Non-chief workers write their (identical) checkpoints and logs to a side folder."""
    if _is_chief(strategy):
        return model_dir
    return os.path.join(model_dir, f"worker_{strategy.cluster_resolver.task_id}")


# --------------------------------------------------------------------------- the run

@dataclasses.dataclass
class Run:
    """Everything built for one run; tests, `analyze` and pipelines reuse it."""
    cfg: config_lib.Config
    strategy: tf.distribute.Strategy
    data: datasets.Data
    model: keras.Model
    # tf.data datasets, or per-worker distributed ones under multi-worker (input_data)
    train_ds: tf.data.Dataset | tf.distribute.DistributedDataset | None
    test_ds: tf.data.Dataset | tf.distribute.DistributedDataset | None
    steps_per_epoch: int
    checkpointer: checkpoints.Checkpointer
    out_dir: str
    epoch: int = 0                           # the checkpoint epoch restored (restore_run)
    test_confusion: np.ndarray | None = None  # fine confusion counts of the last evaluate()
    test_coarse_confusion: np.ndarray | None = None  # coarse counts of the last evaluate()

    @property
    def fine(self) -> bool:
        """Fine labels in, fine outputs out (every target but coarse): ACR applies."""
        return config_lib.fine_outputs(self.cfg.granularity)


class RunResults(dict):
    """results.json's content as a dict, plus the trained Keras model as `.model`."""

    model: keras.Model | None = None


def build_run(cfg: config_lib.Config, model_dir: str, strategy=None, fresh: bool = False,
              data: datasets.Data | None = None) -> Run:
    """Data, model, datasets and checkpointer of a run; writes nothing.

    The checkpoint that a resume will restore is verified against the model here (shapes,
    readable files), unless `fresh` (the old run is about to be discarded).
    """
    keras.utils.set_random_seed(cfg.seed)
    strategy = strategy or make_strategy(cfg)
    replicas = strategy.num_replicas_in_sync
    for name in ("batch_size", "eval_batch_size"):
        if getattr(cfg, name) % replicas:
            raise RunError(f"--{name}={getattr(cfg, name)} is not divisible by the {replicas} "
                           f"replicas; use a multiple of {replicas}")
    data = data or datasets.prepare(cfg)
    h = data.hierarchy
    fine = config_lib.fine_outputs(cfg.granularity)
    parent = None if fine else h.extended_parent()
    if data.train is not None and len(data.train) < cfg.batch_size:
        raise RunError(f"only {len(data.train)} training images for --batch_size="
                       f"{cfg.batch_size}; lower the batch size or raise --train_fraction")
    steps = cfg.steps_per_epoch or (len(data.train) // cfg.batch_size if data.train else 0)
    out_dir = _worker_dir(model_dir, strategy)
    with dtype_policy(cfg.mixed_precision), strategy.scope():
        model = build_model(cfg, num_outputs(cfg, h), h.num_fine, data.spec)
        compile_model(model, cfg, h, max(steps, 1),
                      partial=bool(data.stats.get("train_coarse_only")))
        model.optimizer.build(model.trainable_variables)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        compat.patch_multi_worker_reduce()
        compat.build_before_fit(model, strategy, (data.spec.size, data.spec.size, 3),
                                cfg.batch_size)
    checkpointer = checkpoints.Checkpointer(os.path.join(out_dir, "checkpoints"), model)
    resume = 0 if fresh else checkpointer.verify()
    train_ds = test_ds = None
    if data.train is not None:
        train_ds = input_data(strategy, data.train, data.spec, training=True,
                              batch_size=cfg.batch_size, seed=cfg.seed + 1000 * resume,
                              parent=parent)
        test_ds = input_data(strategy, data.test, data.spec, training=False,
                             batch_size=cfg.eval_batch_size, seed=cfg.seed, parent=parent)
    return Run(cfg, strategy, data, model, train_ds, test_ds, steps, checkpointer, out_dir)


def restore_run(model_dir: str, strategy=None, load_data: bool = True) -> Run:
    """The run in model_dir rebuilt from its config.json, its newest good checkpoint restored.

    The one way back to a trained run (`--export_only`, `lg_tf.analyze`, pipelines,
    notebooks). With `load_data=False` only the hierarchy and the image spec are resolved
    (no images are read): enough to export or to serve.
    """
    log_lib.ensure_handler()
    saved = config_lib.read_saved(model_dir) if files.isdir(model_dir) else None
    if saved is None:
        raise RunError(f"no lg_tf run in --model_dir={model_dir} (no config.json); point it "
                       "at a folder written by lg_tf.train")
    cfg = config_lib.from_json(saved)
    configure_devices(cfg)
    strategy = strategy or make_strategy(cfg)
    data = None if load_data else _light_data(cfg, model_dir)
    run = build_run(cfg, model_dir, strategy, data=data)
    run.epoch = run.checkpointer.restore()
    if not run.epoch:
        raise RunError(f"no checkpoint in {os.path.join(model_dir, 'checkpoints')}; train "
                       f"first (python -m lg_tf.train ... --model_dir={model_dir})")
    return run


def _light_data(cfg: config_lib.Config, model_dir: str) -> datasets.Data:
    """Hierarchy (from results.json when there, else resolved) and spec; no images."""
    from lg_tf import hierarchy as hier_lib
    results = run_dir.saved_results(model_dir)
    if results.get("hierarchy"):
        h = hier_lib.Hierarchy.from_dict(results["hierarchy"])
    else:
        h = datasets.resolve_hierarchy(cfg)
    return datasets.Data(h, datasets.image_spec(cfg), None, None, {})


def _claim(run: Run, prior: run_dir.Prior, cfg, model_dir: str, export_dir: str) -> list:
    """After every check: discard (--overwrite), write the marker and config.json.

    Returns the history of resumes (recorded in results.json too).
    """
    chief = _is_chief(run.strategy)
    if chief:
        export_lib.check_export_dir(export_dir, model_dir)
    run_dir.check_free_space(run.out_dir, run.model)
    if prior.discard and prior.kind == "run":
        run_dir.discard_run(model_dir)
        run.checkpointer = checkpoints.Checkpointer(os.path.join(run.out_dir, "checkpoints"),
                                                    run.model)
    resumes = [] if prior.discard else list(prior.marker.get("resumes", []))
    epoch = run.checkpointer.latest_epoch
    if chief:
        if prior.saved and not prior.discard and epoch:
            changed = config_lib.differences(prior.saved, cfg)
            changed.pop("overwrite", None)
            resumes.append({"time": run_dir.now(), "from_epoch": epoch,
                            "changed": {k: list(v) for k, v in changed.items()}})
            if changed:
                log.info("resuming with changed settings that do not alter training: %s",
                         config_lib.describe_changes(changed))
        created = prior.marker.get("created") if not prior.discard else None
        run_dir.write_marker(model_dir, {
            "created": created or run_dir.now(),
            "data_fingerprint": run.data.stats.get("fingerprint"), "resumes": resumes})
        files.write_json_atomic(os.path.join(model_dir, "config.json"), cfg.to_json())
    return resumes


def train_and_evaluate(cfg: config_lib.Config, model_dir: str, strategy=None) -> RunResults:
    """Trains (resuming from model_dir's newest good checkpoint), evaluates and exports.

    Sets up devices itself, logs progress (a stdout handler unless logging is configured),
    stops cleanly on SIGTERM/SIGINT (`results["stopped"]`), and returns results.json's
    content as a dict whose `.model` is the trained Keras model. Nothing in model_dir is
    written before every check (flags, folder, data, checkpoint, disk space) has passed.
    """
    log_lib.ensure_handler()
    cfg = config_lib.validate(cfg)
    config_lib.check_outside_data(cfg, model_dir, "--model_dir")
    config_lib.check_outside_data(cfg, cfg.export_dir, "--export_dir")
    with interrupt.stop_on_signals():
        configure_devices(cfg)
        # Multi-worker collectives must be set up before TensorFlow runs any op.
        strategy = strategy or make_strategy(cfg)
        prior = run_dir.inspect_model_dir(cfg, model_dir)
        run = build_run(cfg, model_dir, strategy, fresh=prior.discard)
        run_dir.check_same_data(prior, run.data, cfg, model_dir)
        export_dir = cfg.export_dir or os.path.join(model_dir, "export")
        with run_dir.Lock(run.out_dir) if _is_chief(strategy) else _side_folder(run.out_dir):
            resumes = _claim(run, prior, cfg, model_dir, export_dir)
            results = _train(run, model_dir, export_dir, resumes)
    results.model = run.model
    return results


@contextlib.contextmanager
def _side_folder(path: str):
    files.makedirs(path)  # a non-chief worker's side folder is new
    with run_dir.Lock(path):
        yield


def _train(run: Run, model_dir: str, export_dir: str, resumes: list) -> RunResults:
    cfg = run.cfg
    initial_epoch = run.checkpointer.restore()
    run.checkpointer.repair_index()
    epochs = cfg.scaled_epochs
    h, model = run.data.hierarchy, run.model
    params = models.count_trainable_params(model)
    results = Results(os.path.join(run.out_dir, "results.json"), {
        "config": cfg.to_json(), "hierarchy": h.to_dict(), "data": run.data.stats,
        "parameters": params, "replicas": run.strategy.num_replicas_in_sync,
        "epochs_scaled": epochs, "lr_milestones_scaled": list(cfg.scaled_milestones),
        "resumes": resumes,
    }, resume_epoch=initial_epoch)
    writer = tf.summary.create_file_writer(os.path.join(run.out_dir, "tensorboard"))
    if initial_epoch:
        log.info("resuming %s from epoch %d of %d", model_dir, initial_epoch, epochs)
    else:
        hparams.write_config(writer)
        hparams.write_run(writer, cfg)
    log.info("%s\n%s: %s, %d parameters, %d replica(s), %d epochs x %d steps, batch %d",
             h.describe(), cfg.granularity, cfg.model, params,
             run.strategy.num_replicas_in_sync, epochs, run.steps_per_epoch, cfg.batch_size)
    guard = cb.Guard(run.steps_per_epoch, cfg.on_nan)
    start = time.perf_counter()
    if initial_epoch < epochs and not interrupt.requested():
        model.fit(run.train_ds, epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=run.steps_per_epoch, validation_data=run.test_ds,
                  validation_freq=cfg.eval_every, validation_steps=cfg.eval_steps or None,
                  callbacks=_callbacks(run, results, writer, guard), shuffle=False, verbose=0)
    guard.finish(run.checkpointer.latest_epoch)
    if guard.stop_reason:
        return _stopped_early(run, results, guard, model_dir)
    log.info("training done; evaluating the test split (%d images)", len(run.data.test))
    final = evaluate(run)
    if _is_chief(run.strategy) and not interrupt.requested():
        extra = analysis.final_analysis(run, model_dir, writer)
        if "acr_breakdown" in extra:
            results.set("acr_breakdown", extra.pop("acr_breakdown"))
        final.update({k: v for k, v in extra.items() if v is not None})
    if interrupt.requested():
        return _stopped_after_training(run, results, "the final evaluation", model_dir)
    # Per-class recalls are logged by final_analysis on a line of their own.
    log.info("final: %s", "  ".join(f"{k} {v:.4f}" for k, v in final.items()
                                    if isinstance(v, float) and "/recall/" not in k))
    if _is_chief(run.strategy):
        export_lib.export_saved_model(model, h, run.data.spec, cfg.granularity,
                                      cfg.coarse_metric, export_dir, model_dir=model_dir)
        log.info("SavedModel written to %s", export_dir)
    results.set("images_per_second", _mean_rate(results.data["epochs"]))
    results.set("export_dir", export_dir)
    results.set("session_seconds", time.perf_counter() - start)
    return RunResults(results.finish(final))


def _stopped_early(run: Run, results: Results, guard, model_dir: str) -> RunResults:
    """A stop signal: report and return (the CLI exits 75, a scheduler retries); NaN: fail,
    keeping the last good checkpoint."""
    kept = run.checkpointer.latest_epoch
    where = f"checkpoint of epoch {kept} kept" if kept else "no epoch finished yet"
    results.set("stopped", guard.stop_reason)
    results.write()
    if guard.sigterm:
        log.warning("%s: stopped; %s in %s; re-run the same command to resume",
                    guard.stop_reason, where, model_dir)
        return RunResults(results.data)
    raise TrainingDiverged(f"{guard.stop_reason}; {where} in {model_dir}; lower "
                           "--learning_rate, or pass --on_nan=skip_batch to skip such batches")


def _stopped_after_training(run: Run, results: Results, phase: str,
                            model_dir: str) -> RunResults:
    reason = (f"{interrupt.requested()} received during {phase}; training is complete "
              f"(checkpoint of epoch {run.checkpointer.latest_epoch})")
    results.set("stopped", reason)
    results.write()
    log.warning("%s; re-run the same command to evaluate and export: %s", reason, model_dir)
    return RunResults(results.data)


def _callbacks(run: Run, results: Results, writer, guard) -> list:
    out = [guard]
    if run.cfg.train_eval:
        eval_train = input_data(
            run.strategy, run.data.train, run.data.spec, training=False,
            batch_size=run.cfg.eval_batch_size, seed=run.cfg.seed,
            parent=None if run.fine else run.data.hierarchy.extended_parent())
        out.append(cb.TrainSplitEval(eval_train, run.cfg.eval_steps or None))
    if run.cfg.lr_schedule == "plateau":
        out.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if run.cfg.eval_every == 1 else "loss", factor=run.cfg.lr_decay,
            patience=run.cfg.plateau_patience, verbose=0))
    out.append(cb.StepProgress())
    # ACR every --acr_every epochs; before EpochEnd, which logs it.
    if run.cfg.acr_every > 0 and run.fine:
        out.append(analysis.ACRCallback(run.test_ds, run.data.hierarchy, writer,
                                        run.cfg.acr_every, steps=run.cfg.eval_steps or None))
    elif run.cfg.acr_every > 0:
        log.info("--acr_every=%d ignored: %s", run.cfg.acr_every, analysis.ACR_NEEDS_FINE)
    out.append(cb.EpochEnd(run.checkpointer, results, writer,
                           run.steps_per_epoch * run.cfg.batch_size, guard))
    return out


def evaluate(run: Run) -> dict:
    """Scalar test metrics, with `test/recall/<coarse name>` per coarse class that has test
    images; the counts are kept in `run.test_confusion` (fine runs: fine [true, predicted])
    and `run.test_coarse_confusion` (every run: coarse [true, predicted])."""
    result = run.model.evaluate(run.test_ds, steps=run.cfg.eval_steps or None, verbose=0,
                                return_dict=True)
    if "confusion" in result:
        run.test_confusion = np.asarray(result.pop("confusion"))
    recall = {}
    if metrics.COARSE_CONFUSION in result:
        run.test_coarse_confusion = np.asarray(result.pop(metrics.COARSE_CONFUSION))
        recall = metrics.per_class_recall(run.test_coarse_confusion,
                                          run.data.hierarchy.coarse_names)
    return {**{f"test/{k}": float(v) for k, v in result.items()},
            **{f"test/recall/{name}": value for name, value in recall.items()}}


def _mean_rate(epochs: list) -> float | None:
    rates = [e["train/images_per_second"] for e in epochs if "train/images_per_second" in e]
    return float(np.mean(rates)) if rates else None


def export_run(model_dir: str, export_dir: str = "") -> str:
    """`--export_only`: the SavedModel of model_dir's run, built from its config.json.

    Reads no images. `export_dir` defaults to the run's own (--export_dir at training time,
    else <model_dir>/export). A signal stops it at once (exit 75): the lock is released and
    a half-written `<export_dir>.tmp` removed (`export.finish_or_remove_tmp`).
    """
    with interrupt.abort_on_signals("the export"):
        run = restore_run(model_dir, load_data=False)
        export_dir = export_dir or run.cfg.export_dir or os.path.join(model_dir, "export")
        with run_dir.Lock(model_dir):
            try:
                return export_lib.export_saved_model(
                    run.model, run.data.hierarchy, run.data.spec, run.cfg.granularity,
                    run.cfg.coarse_metric, export_dir, model_dir=model_dir)
            except interrupt.Interrupted:
                export_lib.finish_or_remove_tmp(export_dir)
                raise
