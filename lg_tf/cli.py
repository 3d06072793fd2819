"""What every lg_tf command shares: logging, flag parsing and one-sentence errors (exit 2)."""

from __future__ import annotations

import contextlib
import logging
import sys

from absl import flags

EXIT_USAGE = 2


def fail(message: str) -> None:
    print(f"lg_tf: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def parse_flags(argv, groups: dict | None = None, usage: str = ""):
    """absl's parser, but a bad flag or flagfile ends in one sentence instead of usage + FATAL.

    `--help` prints the flags grouped by purpose (`groups`: {group: {flag: help}});
    `--helpfull` keeps absl's complete listing.
    """
    if groups and any(a in ("--help", "-h", "--helpshort", "-?") for a in argv[1:]):
        print(grouped_help(groups, usage))
        sys.exit(0)
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"{e}; see --helpfull for the flags")
    except OSError as e:  # a --flagfile that cannot be read
        fail(f"cannot read flagfile {getattr(e, 'filename', '')!r} ({e.strerror})")


def grouped_help(groups: dict, usage: str) -> str:
    lines = [usage.strip(), ""] if usage else []
    for group, helps in groups.items():
        lines.append(f"{group}:")
        for name, text in helps.items():
            default = flags.FLAGS[name].default
            if isinstance(default, list):
                default = ",".join(map(str, default))
            lines.append(f"  --{name:<18} {text} (default: {default!r})")
        lines.append("")
    lines.append("Flagfiles: --flagfile=flags/<dataset>.cfg, later flags override earlier ones. "
                 "--helpfull lists every flag, absl's included.")
    return "\n".join(lines)


def setup_logging() -> None:
    """lg_tf's own lines on stdout; TensorFlow/TFDS chatter only when it is a warning."""
    from absl import logging as absl_logging
    import tensorflow as tf
    absl_logging.set_verbosity(absl_logging.WARNING)
    tf.get_logger().setLevel(logging.ERROR)
    logger = logging.getLogger("lg_tf")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for name in ("lg_tf.data.datasets", "lg_tf.data.sources"):
        logging.getLogger(name).parent = logger


@contextlib.contextmanager
def clean_errors():
    """Known user errors become one line on stderr and exit code 2, never a traceback."""
    from lg_tf.config import ConfigError
    from lg_tf.hierarchy import HierarchyError
    from lg_tf.data.sources import DataError
    from lg_tf.train_lib import RunError
    try:
        yield
    except (ConfigError, HierarchyError, DataError, RunError) as e:
        print(f"lg_tf: error: {e}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", EXIT_USAGE))


def print_summary(results: dict, model_dir: str) -> None:
    if results.get("stopped"):
        print(f"run stopped ({results['stopped']}); re-run the same command to resume: "
              f"{model_dir}")
        return
    final = results.get("final", {})
    lines = [f"run finished: {model_dir}"]
    for key in ("test/coarse_accuracy", "test/fine_accuracy", "test/acr"):
        if key in final:
            lines.append(f"  {key:<22} {final[key]:.4f}")
    lines.append(f"  {'parameters':<22} {results.get('parameters')}")
    if results.get("images_per_second"):
        lines.append(f"  {'train images/s':<22} {results['images_per_second']:.1f}")
    lines.append(f"  {'wall time (s)':<22} {results.get('wall_time_s', 0):.1f}")
    lines.append(f"  results.json, tensorboard/, checkpoints/ and the SavedModel are in {model_dir}")
    print("\n".join(lines))
