"""What every lg_tf command shares: flagfiles, flag parsing, --help, logging and exit codes.

The library raises `lg_tf.errors.LgTfError`; `run` is the one place where an error
becomes one line on stderr and its exit code (table in lg_tf/errors.py and BUILD.md).
Nothing here imports TensorFlow: `--help` and a bad flag answer at once.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from lg_tf import errors
from lg_tf.errors import LgTfError

FLAGFILE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flagfiles")
_BOM = "\ufeff"


class UsageError(LgTfError):
    """A command line that cannot be understood (exit 2)."""


def fail(message: str) -> None:
    """For entry points only: a usage error as an exception (run() prints it, exit 2)."""
    raise UsageError(message)


# --------------------------------------------------------------------------- flagfiles

def packaged_flagfiles() -> list[str]:
    return sorted(n[:-4] for n in os.listdir(FLAGFILE_DIR) if n.endswith(".cfg"))


def resolve_flagfile(name: str, including: str | None = None) -> str:
    """A flagfile's path: as given (relative to the including flagfile's folder, then to
    the working directory), else a flagfile shipped with lg_tf (`cifar100`, `cifar100.cfg`
    or `flags/cifar100.cfg`)."""
    candidates = []
    if including and not os.path.isabs(name):
        candidates.append(os.path.join(os.path.dirname(including), name))
    candidates.append(name)
    base = os.path.basename(name)
    candidates.append(os.path.join(FLAGFILE_DIR, base if base.endswith(".cfg") else base + ".cfg"))
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    where = f" (included from {including})" if including else ""
    raise UsageError(f"cannot find the flagfile '{name}'{where}; give a path, or one of the "
                     f"flagfiles shipped with lg_tf: {', '.join(packaged_flagfiles())}")


def expand_flagfiles(argv: list[str], including: str | None = None,
                     seen: tuple = ()) -> list[str]:
    """argv with every --flagfile replaced, in place, by the flags it holds (recursively).

    Later flags override earlier ones, as with absl. Lines are flags; blank lines and lines
    starting with # or // are skipped; a UTF-8 byte-order mark is ignored.
    """
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name = None
        for prefix in ("--flagfile=", "-flagfile="):
            if arg.startswith(prefix):
                name = arg[len(prefix):]
        if arg in ("--flagfile", "-flagfile") and i + 1 < len(args):
            name, i = args[i + 1], i + 1
        i += 1
        if name is None:
            out.append(arg)
            continue
        path = resolve_flagfile(name, including)
        if path in seen:
            raise UsageError(f"the flagfile {path} includes itself")
        out.extend(expand_flagfiles(_flagfile_lines(path), path, seen + (path,)))
    return out


def _flagfile_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        raise UsageError(f"cannot read the flagfile {path} ({reason})") from None
    lines = []
    for line in text.lstrip(_BOM).splitlines():
        line = line.strip().lstrip(_BOM)
        if line and not line.startswith(("#", "//")):
            lines.append(line)
    return lines


# --------------------------------------------------------------------------- parsing

def parse_flags(argv, groups: dict | None = None, usage: str = ""):
    """absl's parser, after flagfile expansion; errors as one sentence, no TensorFlow.

    `--help` prints the flags grouped by purpose (`groups`: {group: {flag: help}});
    `--helpfull` keeps absl's complete listing.
    """
    from absl import flags
    from absl import app as _absl_app  # noqa: F401 - defines --only_check_args
    from absl import logging as _absl_logging  # noqa: F401 - defines -v and --log_dir
    if any(a in ("--help", "-h", "--helpshort", "-?") for a in argv[1:]):
        print(grouped_help(groups or {}, usage))
        raise SystemExit(0)
    if any(a in ("--helpfull", "-helpfull") for a in argv[1:]):
        print(flags.FLAGS.get_help())   # absl's complete listing, lg_tf's groups included
        raise SystemExit(0)

    try:
        argv = [argv[0]] + expand_flagfiles(argv[1:])
        return flags.FLAGS(argv)
    except flags.Error as e:
        raise UsageError(f"{e}; see --help for the flags") from None


def grouped_help(groups: dict, usage: str) -> str:
    from absl import flags
    lines = [usage.strip(), ""] if usage else []
    for group, helps in groups.items():
        if not helps:
            continue
        lines.append(f"{group}:")
        for name, text in helps.items():
            default = flags.FLAGS[name].default
            if isinstance(default, list):
                default = ",".join(map(str, default))
            lines.append(f"  --{name:<18} {text} (default: {default!r})")
        lines.append("")
    lines.append("Flagfiles: --flagfile=PATH or a shipped one by name (--flagfile=cifar100: "
                 f"{', '.join(packaged_flagfiles())}); later flags override earlier ones. "
                 "--helpfull lists every flag, absl's included (-v 1 for more detail, "
                 "--log_dir for a log file).")
    return "\n".join(lines)


def setup_logging(command: str = "lg_tf") -> None:
    """lg_tf's lines on stdout, honouring absl's -v and --log_dir (after flags are parsed)."""
    from absl import flags

    from lg_tf import logs
    verbosity = flags.FLAGS["verbosity"].value if "verbosity" in flags.FLAGS else 0
    log_dir = flags.FLAGS["log_dir"].value if "log_dir" in flags.FLAGS else ""
    logs.setup_cli(verbosity or 0, log_dir or "", command)
    if (verbosity or 0) < 1:   # absl's default verbosity is -1
        logs.import_tensorflow_quietly()


def run(main: Callable, parser: Callable, argv: list[str] | None = None) -> None:
    """The entry point of every command: parse, call main, map errors to exit codes.

    `main(argv)` returns an exit code (or None for 0). An `LgTfError` prints one line
    (`lg_tf: error: ...`) and exits with its code; a second Ctrl-C exits 130 quietly.
    """
    from lg_tf import logs
    logs.quiet_tensorflow()
    argv = list(sys.argv if argv is None else argv)
    try:
        parsed = parser(argv)
        code = main(parsed)
    except LgTfError as e:
        print(f"lg_tf: error: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        print("lg_tf: aborted (Ctrl-C twice); re-run the same command to resume from the "
              "last checkpoint", file=sys.stderr)
        code = 130
    sys.exit(code or errors.EXIT_OK)


def check_no_arguments(argv) -> None:
    if len(argv) > 1:
        fail(f"unexpected argument(s) {' '.join(argv[1:])}; flags look like --name=value")


def exit_code(results: dict) -> int:
    """0 for a finished run, EXIT_PREEMPTED for one stopped by a signal (resumable)."""
    return errors.EXIT_PREEMPTED if results.get("stopped") else errors.EXIT_OK


# What the end-of-run summary shows, where the run has it (joint runs: both other readings).
SUMMARY_METRICS = ("test/coarse_accuracy", "test/coarse_accuracy_from_fine",
                   "test/coarse_accuracy_combined", "test/fine_accuracy", "test/acr",
                   "test/coarse_ece", "test/coarse_nll", "test/sibling_mistakes")


def print_summary(results: dict, model_dir: str) -> None:
    if results.get("stopped"):
        print(f"run stopped ({results['stopped']}); re-run the same command to resume: "
              f"{model_dir}")
        return
    final = results.get("final", {})
    lines = [f"run finished: {model_dir}"]
    for key in SUMMARY_METRICS:
        if final.get(key) is not None:
            lines.append(f"  {key:<32} {final[key]:.4f}")
    lines.append(f"  {'parameters':<32} {results.get('parameters')}")
    if results.get("images_per_second"):
        lines.append(f"  {'train images/s':<32} {results['images_per_second']:.1f}")
    lines.append(f"  {'wall time (s)':<32} {results.get('wall_time_s', 0):.1f}")
    lines.append("  results.json, tensorboard/, checkpoints/ and the SavedModel are in "
                 + model_dir)
    print("\n".join(lines))

