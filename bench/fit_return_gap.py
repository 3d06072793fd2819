"""Time from fit's last epoch to its return: python bench/fit_return_gap.py mirrored|default SEED [noautotune]
(noautotune re-applies what make_dataset now does by default; kept to re-measure)."""
import sys, time, logging
import tensorflow as tf
from lg_tf import train_lib, config as config_lib
import keras

kind = sys.argv[1]
if "noautotune" in sys.argv[3:]:
    from lg_tf.data import pipeline
    orig_make = pipeline.make_dataset
    def make_dataset(*a, **k):
        ds = orig_make(*a, **k)
        o = tf.data.Options()
        o.autotune.enabled = False
        return ds.with_options(o)
    pipeline.make_dataset = make_dataset
    train_lib.pipeline.make_dataset = make_dataset
marks = {}
orig_fit = keras.Model.fit
def fit(self, *a, **k):
    class Mark(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            marks["last_epoch_end"] = time.perf_counter()
    k["callbacks"] = list(k.get("callbacks") or []) + [Mark()]
    out = orig_fit(self, *a, **k)
    marks["fit_returned"] = time.perf_counter()
    return out
keras.Model.fit = fit
cfg = config_lib.Config(dataset="embedded", width=8, epochs=6, batch_size=128, eval_every=6,
                        steps_per_epoch=40, eval_steps=2, lr_milestones=(5,), learning_rate=0.05,
                        seed=int(sys.argv[2]))
strategy = tf.distribute.get_strategy() if kind == "default" else None
t = time.perf_counter()
train_lib.train_and_evaluate(cfg, f"/tmp/gap_{kind}_{sys.argv[2]}", strategy=strategy)
print(f"RESULT {kind} {sys.argv[3:]}: fit gap {marks['fit_returned'] - marks['last_epoch_end']:.1f} s, total {time.perf_counter() - t:.0f} s", flush=True)
