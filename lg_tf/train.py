"""Train a classifier on fine or coarse labels and report coarse accuracy.

usage: python -m lg_tf.train --flagfile=quickstart [--flag=value ...] --model_dir=DIR
       python -m lg_tf.train --export_only --model_dir=DIR [--export_dir=DIR]

Exit codes: 0 finished, 2 bad usage or input, 3 loss diverged, 75 stopped by SIGTERM or
Ctrl-C (re-run the same command to resume); see BUILD.md, "Exit codes".
"""
# Thin entry point: flags -> Config -> train_lib, where the work lives.

from lg_tf import cli
from lg_tf import config as config_lib


def run(argv=None) -> None:
    from absl import flags
    config_lib.define_flags()
    values = flags.FLAGS

    def body(rest):
        cli.check_no_arguments(rest)
        # Validated before TensorFlow is imported; --export_only uses the run's config.json.
        cfg = None if values.export_only else config_lib.from_flags(values)
        if values.only_check_args:
            return 0
        if not values.model_dir:
            cli.fail("--model_dir is required: the folder for checkpoints, logs and results")
        cli.setup_logging("lg_tf.train")
        from lg_tf import train_lib
        if values.export_only:
            path = train_lib.export_run(values.model_dir, values.export_dir)
            print(f"SavedModel written to {path}")
            return 0
        results = train_lib.train_and_evaluate(cfg, values.model_dir)
        cli.print_summary(results, values.model_dir)
        return cli.exit_code(results)

    cli.run(body, lambda a: cli.parse_flags(a, config_lib.help_groups(), __doc__), argv)


if __name__ == "__main__":
    run()
