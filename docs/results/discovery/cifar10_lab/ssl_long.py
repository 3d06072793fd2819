"""Round 4 addendum, a diagnostic (chooses nothing): does a 3x longer SimCLR (12,000 weight
updates instead of 4,000; everything else as ssl_cond.py's `mixed`, seed 0) raise the held-out
k-means ARI at the true k? One run on h1, set against its two 4,000-step runs (0.328, 0.322).
Outside the issue's CPU budget on purpose: it asks whether more self-supervised training is
the way to goal 1, not whether it fits.
usage: python ssl_long.py SETUP STEPS"""
import os, sys, time
import lab, ssl_cond, ssl_exp


def main(setup, steps):
    x, coarse, fine, names, _ = lab.load_setup(setup)
    t = time.time()
    trunk = ssl_cond.train(x, None, 0, total_steps=int(steps))
    ssl_exp.evaluate(trunk, x, coarse, fine, names, f"{setup}m_s{steps}", 0, 16, time.time() - t,
                     os.path.join(lab.HERE, f"ssl_cond_{setup}.jsonl"))


if __name__ == "__main__":
    main(*sys.argv[1:])
