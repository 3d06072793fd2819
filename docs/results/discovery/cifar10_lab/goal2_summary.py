"""Goal 2 of issue 22: CC, FC and pseudo-fine (discovered labels) at 20% of CIFAR-10, grouping 0134.
usage: python goal2_summary.py G  (the folder of discover/, cc_<s>/, fc_<s>/, pf_<s>/)"""
import json, sys
from lg_tf import run_dir, stats
G = sys.argv[1]
acc = {k: {} for k in ("cc", "fc", "pf")}
acr = {k: {} for k in ("fc", "pf")}
for k in acc:
    for s in range(3):
        r = run_dir.finished_results(f"{G}/{k}_{s}")
        if r:
            acc[k][s] = 100 * r["final"]["test/coarse_accuracy"]
            if k in acr:
                acr[k][s] = stats.run_acr(r["final"])
print({k: {s: round(v, 2) for s, v in d.items()} for k, d in acc.items()})
for a, b in (("fc", "cc"), ("pf", "cc"), ("pf", "fc")):
    iv = stats.paired_by_seed(acc[a], acc[b])
    print(f"{a} - {b}: {stats.interval_text(iv, 2, signed=True) if iv else '-'}")
fc_gain = stats.paired_by_seed(acc["fc"], acc["cc"])
pf_gain = stats.paired_by_seed(acc["pf"], acc["cc"])
if fc_gain and pf_gain:
    print(f"share of FC's gain: {pf_gain.mean / fc_gain.mean:.0%}")
print("ACR", {k: {s: round(v, 3) if v else v for s, v in d.items()} for k, d in acr.items()})
c = json.load(open(f"{G}/discover/clusters.json"))
print("discovery:", c["agreement"], [(p["coarse"], p["k"], p["sizes"], p["verdict"][:40]) for p in c["per_coarse"]])
