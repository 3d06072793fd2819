"""Goal 2 of issue 22: CC, FC and pseudo-fine (discovered labels) at 20% of CIFAR-10, grouping 0134.
usage: python goal2_summary.py G  (the folder of discover*/, cc_<s>/, fc_<s>/ and the pseudo-fine
runs: pf_<s>/ on discover/ (round 2, k=auto), pfk6_<s>/ on discover_k6/ (k=6), pfh_<s>/ on
discover_heads/ (SCAN heads on the SimCLR features, round 3); those absent are skipped)"""
import json, os, sys
from lg_tf import run_dir, stats
G = sys.argv[1]
PSEUDO = {"pf": "discover", "pfk6": "discover_k6", "pfh": "discover_heads"}
acc = {k: {} for k in ("cc", "fc", *PSEUDO)}
acr = {k: {} for k in ("fc", *PSEUDO)}
for k in acc:
    for s in range(3):
        r = run_dir.finished_results(f"{G}/{k}_{s}")
        if r:
            acc[k][s] = 100 * r["final"]["test/coarse_accuracy"]
            if k in acr:
                acr[k][s] = stats.run_acr(r["final"])
print({k: {s: round(v, 2) for s, v in d.items()} for k, d in acc.items() if d})
fc_gain = stats.paired_by_seed(acc["fc"], acc["cc"])
print(f"fc - cc: {stats.interval_text(fc_gain, 2, signed=True) if fc_gain else '-'}")
for k, folder in PSEUDO.items():
    if not acc[k]:
        continue
    gain = stats.paired_by_seed(acc[k], acc["cc"])
    vs_fc = stats.paired_by_seed(acc[k], acc["fc"])
    share = f", {gain.mean / fc_gain.mean:.0%} of FC's gain" if gain and fc_gain else ""
    print(f"{k} - cc: {stats.interval_text(gain, 2, signed=True) if gain else '-'}{share}; "
          f"{k} - fc: {stats.interval_text(vs_fc, 2, signed=True) if vs_fc else '-'}")
    c = json.load(open(os.path.join(G, folder, "clusters.json")))
    print(f"  {folder}:", c["agreement"], [(p["coarse"], p["k"], p["sizes"], p["verdict"][:40])
                                           for p in c["per_coarse"]])
print("ACR", {k: {s: round(v, 3) if v else v for s, v in d.items()} for k, d in acr.items() if d})
