"""Train a classifier on fine or coarse labels and report coarse accuracy.

usage: python -m lg_tf.train --flagfile=flags/quickstart.cfg [--flag=value ...]
"""
# Thin entry point: parses flags into a Config and calls train_lib, where the work lives.

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter out of the log

from absl import app, flags  # noqa: E402

from lg_tf import cli, config as config_lib  # noqa: E402

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected argument(s) {' '.join(argv[1:])}; flags look like --name=value")
    cli.setup_logging()
    with cli.clean_errors():
        cfg = config_lib.from_flags(FLAGS)
        if not FLAGS.model_dir:
            cli.fail("--model_dir is required: the folder for checkpoints, logs and results")
        from lg_tf import train_lib
        train_lib.configure_devices(cfg)
        # Multi-worker collectives must be set up before TensorFlow runs any op.
        strategy = train_lib.make_strategy(cfg)
        if FLAGS.export_only:
            path = train_lib.export_only(cfg, FLAGS.model_dir, strategy)
            print(f"SavedModel written to {path}")
            return
        results = train_lib.train_and_evaluate(cfg, FLAGS.model_dir, strategy)
        cli.print_summary(results, FLAGS.model_dir)


def run():
    config_lib.define_flags()
    app.run(main, flags_parser=lambda argv: cli.parse_flags(argv, config_lib.HELP, __doc__))


if __name__ == "__main__":
    run()
