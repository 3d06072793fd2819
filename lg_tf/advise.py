"""Should I label my data finer? Paired fine/coarse trainings on your data, with statistics.

usage: python -m lg_tf.advise --dataset=folder --data_dir=DIR --out_dir=OUT
           [--seeds=3] [--fractions=0.25,1.0] [--dry_run] [lg_tf.train flags, e.g.
           --flagfile=quickstart --width=16 --epochs=10]

For each fraction r of the training data and each seed, trains one model on the fine
labels (FC) and one on the coarse labels (CC) with the same budget, data subset and seed,
resumably, into OUT/runs/. Then writes OUT/advice.md, OUT/advice.json and figures, and
prints the verdict: ΔA = FC − CC per fraction (paired mean, 95% CI), ACR with a bootstrap
CI, which coarse classes gain, and how much data fine labels save.

Exit codes as lg_tf.train: 0 done, 2 bad input, 75 stopped by a signal (re-run resumes).
"""

import os


EXTRA_FLAGS = {"fractions": ("list", ["0.25", "1.0"],
                             "Training fractions to compare at, e.g. 0.25,1.0 (each in "
                             "(0, 1]); CC and FC are paired at each."),
               "fine_fractions": ("list", [],
                                  "Shares q of the images that keep a fine label, e.g. "
                                  "0,0.05,0.1,0.25,0.5,1: fine training at each q (the rest "
                                  "keep only their coarse label), ΔA(q) vs CC, and the q that "
                                  "reaches half and 90% of the full gain.")}


def run(argv=None) -> None:
    from lg_tf import grid

    def body(values, base, ctx):
        from lg_tf import advice
        fractions = grid.float_list(values.fractions, "fractions", "0.25,1.0")
        out = advice.run(base, ctx, fractions, list(values.fine_fractions))
        if out["report"]:
            from lg_tf import files
            print(advice.headline(files.read_json(os.path.join(ctx.report_dir,
                                                               "advice.json"))))
            print(f"advice: {out['report']}")

    # Three seeds by default: a verdict needs a confidence interval.
    grid.entry_point(__doc__, body, EXTRA_FLAGS, argv=argv, defaults={"seeds": 3})


if __name__ == "__main__":
    run()
