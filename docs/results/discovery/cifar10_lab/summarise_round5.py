"""Round 5 table (round5_plan.md) from round5.jsonl: per setup x backbone seed, ARI of each
coarse class and their mean at the true k and at --k=auto; mean over seeds with a 95%
t-interval."""
import collections, json, os
import numpy as np
from scipy import stats
import lab

rows = [json.loads(l) for l in open(os.path.join(lab.HERE, "round5.jsonl"))]
last = {}
for r in rows:      # a re-run replaces its row
    last[(r["setup"], r["seed"], r["mode"], r["coarse"])] = r


def ci(v):
    v = np.asarray(v, float)
    if len(v) < 2:
        return f"{v.mean():.3f}"
    h = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.3f} [{v.mean() - h:+.3f}, {v.mean() + h:+.3f}]"


print("| setup | backbone seed | backbone test acc. | true k: ARI per coarse class (mean) | "
      "auto: k, ARI per coarse class (mean) | verdicts at auto | s per run |")
print("|---|---|---|---|---|---|---|")
means = collections.defaultdict(lambda: collections.defaultdict(list))
for setup in ("dev", "h1", "h2"):
    for seed in (0, 1, 2):
        got = {m: [r for k, r in last.items() if k[:3] == (setup, seed, m)]
               for m in ("true", "auto")}
        if not got["true"] or not got["auto"]:
            continue
        t = " / ".join(f"{r['coarse']} {r['ari']:.3f}" for r in got["true"])
        a = " / ".join(f"{r['coarse']} k={r['k']} {r['ari']:.3f}" for r in got["auto"])
        mt = np.mean([r["ari"] for r in got["true"]]); ma = np.mean([r["ari"] for r in got["auto"]])
        means[setup]["true"].append(mt); means[setup]["auto"].append(ma)
        v = ", ".join(f"{r['agreement']:.3f} {r['verdict'].split(':')[0].split(' (')[0]}" for r in got["auto"])
        print(f"| {setup} | {seed} | {100 * got['true'][0]['backbone_test_acc']:.1f}% | {t} ({mt:.3f}) "
              f"| {a} ({ma:.3f}) | {v} | {got['true'][0]['wall_s']:.0f} |")
print()
for setup, m in means.items():
    print(f"{setup}: true k {ci(m['true'])}, auto {ci(m['auto'])} over {len(m['true'])} seeds")
held = [np.mean([means[s]["true"][i] for s in ("h1", "h2")]) for i in range(min(len(means["h1"]["true"]), len(means["h2"]["true"])))]
if held:
    print(f"held-out (h1, h2) mean per seed at true k: {ci(held)}")
