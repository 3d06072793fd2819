"""train_and_evaluate(config, model_dir): the one function the CLI, the tests and pipelines call."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from lg_tf import analysis
from lg_tf import callbacks as cb
from lg_tf import config as config_lib
from lg_tf import export as export_lib
from lg_tf import compat, metrics, models, optim
from lg_tf.data import datasets, pipeline
from lg_tf.results import Results

log = logging.getLogger("lg_tf")


from lg_tf.errors import RunError, TrainingDiverged  # noqa: F401 - re-exported


# --------------------------------------------------------------------------- devices

def configure_devices(cfg: config_lib.Config) -> None:
    """Logical CPU devices and determinism: must run before TensorFlow touches a device."""
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    if cfg.cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * cfg.cpu_devices)


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


def _new_strategy(kind: str) -> tf.distribute.Strategy:
    if kind == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        kind = "multi_worker" if len(cluster.get("worker", [])) > 1 else "mirrored"
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)


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

def build_model(cfg: config_lib.Config, num_outputs: int, num_fine: int, spec):
    kwargs = dict(input_shape=(spec.size, spec.size, 3), dropout=cfg.dropout,
                  normalization=(spec.mean, spec.std),
                  extra_layer_units=num_fine if cfg.extra_layer else None)
    if cfg.model == "wide_resnet":
        kwargs.update(depth=cfg.wrn_depth, widen_factor=cfg.wrn_widen,
                      block_dropout=cfg.block_dropout)
    else:
        kwargs.update(width=cfg.width)
    return models.build_model(cfg.model, num_outputs, **kwargs)


def compile_model(model, cfg: config_lib.Config, h, steps_per_epoch: int) -> None:
    if cfg.lr_schedule == "step":
        lr = optim.step_schedule(cfg.learning_rate, cfg.scaled_milestones, cfg.lr_decay,
                                 steps_per_epoch)
    else:
        lr = cfg.learning_rate
    fine = cfg.granularity == "fine"
    run_metrics = [metrics.CoarseAccuracy(h.parent if fine else None, cfg.coarse_metric)]
    if fine:
        run_metrics.append(keras.metrics.SparseCategoricalAccuracy(name="fine_accuracy"))
        # Counted during every evaluation, so ACR needs no pass of its own over the test split.
        run_metrics.append(metrics.ConfusionMatrix(h.num_fine, name="confusion"))
    model.compile(
        optimizer=optim.CoupledSGD(lr, momentum=cfg.momentum,
                                   coupled_weight_decay=cfg.weight_decay,
                                   skip_nonfinite=cfg.on_nan == "skip_batch"),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=run_metrics, jit_compile=cfg.jit_compile)


# --------------------------------------------------------------------------- model_dir

def check_model_dir(cfg: config_lib.Config, model_dir: str) -> bool:
    """Refuses to mix runs: a model_dir holding a run with other flags needs --overwrite.

    Returns whether the previous run must be discarded; `discard_run` does that only once
    the new run's data has loaded, so a bad input never costs the old run.
    """
    try:
        os.makedirs(model_dir, exist_ok=True)
        # A probe of its own per process: workers of one multi-worker run share model_dir.
        fd, probe = tempfile.mkstemp(dir=model_dir, prefix=".write_test_")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise RunError(f"cannot write to --model_dir={model_dir} ({e.strerror}); choose a "
                       "writable folder") from None
    saved = config_lib.load_saved(model_dir)
    if saved is None:
        return False
    diff = [k for k in config_lib.Config.IDENTITY if getattr(saved, k) != getattr(cfg, k)]
    if diff and not cfg.overwrite:
        changes = ", ".join(f"--{k}={getattr(saved, k)} -> {getattr(cfg, k)}" for k in diff)
        raise RunError(f"--model_dir={model_dir} holds a run with other flags ({changes}); "
                       "use a new --model_dir, or pass --overwrite to start it afresh")
    return bool(diff)


def discard_run(model_dir: str) -> None:
    log.warning("--overwrite: discarding the previous run in %s", model_dir)
    for sub in ("checkpoints", "tensorboard", "export"):
        path = os.path.join(model_dir, sub)
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
    for name in ("results.json", "config.json", "confusion.json", "confusion.png"):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            os.remove(path)


def check_free_space(model_dir: str, model) -> None:
    """Refuses to start when model_dir's disk cannot hold the run's checkpoints and export.

    Needed: 3 kept checkpoints + 1 being written (weights and optimizer slots) and the
    SavedModel, with 50% headroom. A disk that fills later fails inside TensorFlow's
    writer; the previous checkpoint stays valid because the index is updated last.
    """
    import shutil
    bytes_per_copy = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                         for v in model.weights)
    needed = int(bytes_per_copy * (2 * 4 + 1) * 1.5)  # weights+momentum x4, export, headroom
    free = shutil.disk_usage(model_dir).free
    if free < needed:
        raise RunError(f"only {free / 2**20:.0f} MiB free under --model_dir={model_dir}, and "
                       f"this run's checkpoints and export need about {needed / 2**20:.0f} MiB; "
                       "free some space or choose another --model_dir")


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
    """Everything built for one run; tests and `analyze` reuse it."""
    cfg: config_lib.Config
    strategy: tf.distribute.Strategy
    data: datasets.Data
    model: keras.Model
    train_ds: tf.data.Dataset
    test_ds: tf.data.Dataset
    steps_per_epoch: int
    checkpointer: cb.Checkpointer
    out_dir: str
    test_confusion: np.ndarray | None = None  # fine confusion counts of the last evaluate()

    @property
    def fine(self) -> bool:
        return self.cfg.granularity == "fine"


def build_run(cfg: config_lib.Config, model_dir: str, strategy=None, reset: bool = False) -> Run:
    keras.utils.set_random_seed(cfg.seed)
    strategy = strategy or make_strategy(cfg)
    replicas = strategy.num_replicas_in_sync
    for name in ("batch_size", "eval_batch_size"):
        if getattr(cfg, name) % replicas:
            raise RunError(f"--{name}={getattr(cfg, name)} is not divisible by the {replicas} "
                           f"replicas; use a multiple of {replicas}")
    data = datasets.prepare(cfg)
    if reset:
        discard_run(model_dir)
    h = data.hierarchy
    fine = cfg.granularity == "fine"
    parent = None if fine else h.parent_array()
    if len(data.train) < cfg.batch_size:
        raise RunError(f"only {len(data.train)} training images for --batch_size="
                       f"{cfg.batch_size}; lower the batch size or raise --train_fraction")
    steps = cfg.steps_per_epoch or len(data.train) // cfg.batch_size
    out_dir = _worker_dir(model_dir, strategy)
    with dtype_policy(cfg.mixed_precision), strategy.scope():
        model = build_model(cfg, h.num_fine if fine else h.num_coarse, h.num_fine, data.spec)
        compile_model(model, cfg, h, steps)
        model.optimizer.build(model.trainable_variables)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        compat.patch_multi_worker_reduce()
        compat.build_before_fit(model, strategy, (data.spec.size, data.spec.size, 3),
                                cfg.batch_size)
    os.makedirs(out_dir, exist_ok=True)  # a non-chief worker's side folder is new
    check_free_space(out_dir, model)
    checkpointer = cb.Checkpointer(os.path.join(out_dir, "checkpoints"), model)
    resume = checkpointer.latest_epoch
    train_ds = pipeline.make_dataset(data.train, data.spec, training=True,
                                     batch_size=cfg.batch_size, seed=cfg.seed + 1000 * resume,
                                     parent=parent).repeat()
    test_ds = pipeline.make_dataset(data.test, data.spec, training=False,
                                    batch_size=cfg.eval_batch_size, seed=cfg.seed, parent=parent)
    return Run(cfg, strategy, data, model, train_ds, test_ds, steps, checkpointer, out_dir)


def train_and_evaluate(cfg: config_lib.Config, model_dir: str, strategy=None) -> dict:
    """Trains (resuming from model_dir's last checkpoint), evaluates, exports; returns results."""
    reset = check_model_dir(cfg, model_dir)
    run = build_run(cfg, model_dir, strategy, reset)
    if _is_chief(run.strategy):
        cb.write_json_atomic(os.path.join(model_dir, "config.json"), cfg.to_json())
    initial_epoch = run.checkpointer.restore()
    epochs = cfg.scaled_epochs
    h, model = run.data.hierarchy, run.model
    params = models.count_trainable_params(model)
    results = Results(os.path.join(run.out_dir, "results.json"), {
        "config": cfg.to_json(), "hierarchy": h.to_dict(), "data": run.data.stats,
        "parameters": params, "replicas": run.strategy.num_replicas_in_sync,
        "epochs_scaled": epochs, "lr_milestones_scaled": list(cfg.scaled_milestones),
    }, resume_epoch=initial_epoch)
    writer = tf.summary.create_file_writer(os.path.join(run.out_dir, "tensorboard"))
    if initial_epoch:
        log.info("resuming %s from epoch %d of %d", model_dir, initial_epoch, epochs)
    else:
        cb.hparams_summary(writer, cfg.to_json())
    log.info("%s\n%s: %s, %d parameters, %d replica(s), %d epochs x %d steps, batch %d",
             h.describe(), cfg.granularity, cfg.model, params,
             run.strategy.num_replicas_in_sync, epochs, run.steps_per_epoch, cfg.batch_size)
    guard = cb.Guard(run.steps_per_epoch, cfg.on_nan)
    callbacks = _callbacks(run, results, writer, guard)
    start = time.perf_counter()
    if initial_epoch < epochs:
        guard.install_sigterm_handler()
        try:
            model.fit(run.train_ds, epochs=epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=run.steps_per_epoch, validation_data=run.test_ds,
                      validation_freq=cfg.eval_every, validation_steps=cfg.eval_steps or None,
                      callbacks=callbacks, shuffle=False, verbose=0)
        finally:
            guard.restore_sigterm_handler()
    guard.finish(run.checkpointer.latest_epoch)
    if guard.stop_reason:
        return _stopped_early(run, results, guard, model_dir)
    log.info("training done; evaluating the test split (%d images)", len(run.data.test))
    final = evaluate(run)
    trained = time.perf_counter() - start
    # --- analysis (issue 4): confusion matrix, ACR + breakdown, projector (lg_tf/analysis.py)
    if _is_chief(run.strategy):
        extra = analysis.final_analysis(run, model_dir, writer)
        if "acr_breakdown" in extra:
            results.set("acr_breakdown", extra.pop("acr_breakdown"))
        final.update({k: v for k, v in extra.items() if v is not None})
    # --- end analysis
    log.info("final: %s", "  ".join(f"{k} {v:.4f}" for k, v in final.items()
                                    if isinstance(v, float)))
    export_dir = cfg.export_dir or os.path.join(model_dir, "export")
    if _is_chief(run.strategy):
        export_lib.export_saved_model(model, h, run.data.spec, cfg.granularity,
                                      cfg.coarse_metric, export_dir)
        log.info("SavedModel written to %s", export_dir)
    results.set("images_per_second", _mean_rate(results.data["epochs"]))
    results.set("export_dir", export_dir)
    results.set("session_seconds", trained)
    return results.finish(final)


def _stopped_early(run: Run, results: Results, guard, model_dir: str) -> dict:
    """SIGTERM: report and return (exit 0, a scheduler requeues); NaN: fail, keeping the
    last good checkpoint."""
    kept = run.checkpointer.latest_epoch
    where = f"checkpoint of epoch {kept} kept" if kept else "no epoch finished yet"
    results.set("stopped", guard.stop_reason)
    results.write()
    if guard.sigterm:
        log.warning("%s: stopped; %s in %s; re-run the same command to resume",
                    guard.stop_reason, where, model_dir)
        return results.data
    raise TrainingDiverged(f"{guard.stop_reason}; {where} in {model_dir}; lower "
                           "--learning_rate, or pass --on_nan=skip_batch to skip such batches")


def _callbacks(run: Run, results: Results, writer, guard) -> list:
    out = [guard]
    if run.cfg.train_eval:
        eval_train = pipeline.make_dataset(
            run.data.train, run.data.spec, training=False, batch_size=run.cfg.eval_batch_size,
            seed=run.cfg.seed, parent=None if run.fine else run.data.hierarchy.parent_array())
        out.append(cb.TrainSplitEval(eval_train, run.cfg.eval_steps or None))
    if run.cfg.lr_schedule == "plateau":
        out.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if run.cfg.eval_every == 1 else "loss", factor=run.cfg.lr_decay,
            patience=run.cfg.plateau_patience, verbose=0))
    out.append(cb.StepProgress())
    # --- analysis (issue 4): ACR every --acr_every epochs; before EpochEnd, which logs it
    if run.cfg.acr_every > 0 and run.fine:
        out.append(analysis.ACRCallback(run.test_ds, run.data.hierarchy, run.strategy, writer,
                                        run.cfg.acr_every, steps=run.cfg.eval_steps or None))
    elif run.cfg.acr_every > 0:
        log.info("--acr_every=%d ignored: %s", run.cfg.acr_every, analysis.ACR_NEEDS_FINE)
    # --- end analysis
    out.append(cb.EpochEnd(run.checkpointer, results, writer,
                           run.steps_per_epoch * run.cfg.batch_size, guard))
    return out


def evaluate(run: Run) -> dict:
    """Scalar test metrics; a fine run's confusion matrix is kept in `run.test_confusion`."""
    result = run.model.evaluate(run.test_ds, steps=run.cfg.eval_steps or None, verbose=0,
                                return_dict=True)
    if "confusion" in result:
        run.test_confusion = np.asarray(result.pop("confusion"))
    return {f"test/{k}": float(v) for k, v in result.items()}


def _mean_rate(epochs: list) -> float | None:
    rates = [e["train/images_per_second"] for e in epochs if "train/images_per_second" in e]
    return float(np.mean(rates)) if rates else None


def export_only(cfg: config_lib.Config, model_dir: str, strategy=None) -> str:
    """Rebuilds the model, restores model_dir's last checkpoint and writes the SavedModel."""
    run = build_run(cfg, model_dir, strategy)
    if not run.checkpointer.restore():
        raise RunError(f"no checkpoint in {os.path.join(model_dir, 'checkpoints')}; train "
                       "first (same flags, without --export_only)")
    export_dir = cfg.export_dir or os.path.join(model_dir, "export")
    return export_lib.export_saved_model(run.model, run.data.hierarchy, run.data.spec,
                                         cfg.granularity, cfg.coarse_metric, export_dir)
