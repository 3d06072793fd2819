"""TensorBoard HParams: one writer for single runs and for pipelines' grids.

The hyperparameters are the Config fields that define what is trained
(`config.trained_fields()`), so the HParams table has one column per thing that sets runs
apart, never paths or switches such as --overwrite.
"""

from __future__ import annotations

from typing import Iterable

from lg_tf import config as config_lib

METRICS = ("test/coarse_accuracy", "test/fine_accuracy", "test/acr",
           "train_eval/coarse_accuracy", "test/coarse_ece", "test/coarse_nll",
           "test/sibling_mistakes")


def _value(v):
    return v if isinstance(v, (bool, int, float, str)) else ",".join(map(str, v))


def values(config: dict | config_lib.Config, extra: dict | None = None) -> dict:
    """{hparam: value} of one run: its training-defining fields (plus `extra`)."""
    d = config.to_json() if isinstance(config, config_lib.Config) else config
    out = {k: _value(d[k]) for k in config_lib.trained_fields() if k in d}
    out.update(extra or {})
    return out


def write_config(writer, extra_names: Iterable[str] = ()) -> None:
    """The experiment's columns (hparams_config): every training-defining field + metrics."""
    from tensorboard.plugins.hparams import api as hp
    names = list(extra_names) + list(config_lib.trained_fields())
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(n) for n in names],
                          metrics=[hp.Metric(m) for m in METRICS])


def write_run(writer, config, extra: dict | None = None, trial_id: str | None = None) -> None:
    """One run's HParams session (its metrics are the run's own test/* scalars)."""
    from tensorboard.plugins.hparams import api as hp
    with writer.as_default():
        hp.hparams(values(config, extra), trial_id=trial_id)
