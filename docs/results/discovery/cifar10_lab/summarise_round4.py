"""Round 4 (round4_plan.md): SCAN with the network fine-tuned minus k-means on the same SimCLR
network, at the true k, over the held-out setups x SimCLR seeds 0 and 1; the plan's rule.
usage: python summarise_round4.py"""
import json, os
import numpy as np
from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = {0: ("m", "s4000m"), 1: ("m_seed1", "s4000m_seed1")}  # ssl_cond tag, scan_ft tag


def rows(name):
    path = os.path.join(HERE, name)
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []


scan = [r for r in rows("scan_ft.jsonl") if r.get("mode", "true") == "true"]
print("| setup | SimCLR seed | coarse | k | k-means | SCAN fine-tuned | SCAN - k-means |")
print("|---|---|---|---|---|---|---|")
pairs = []
for setup in ("h1", "h2", "h3"):
    kmeans = rows(f"ssl_cond_{setup}.jsonl")
    for seed, (cond_tag, scan_tag) in SEEDS.items():
        per_class = []
        for r in (r for r in kmeans if r["setup"] == setup + cond_tag):
            s = next((x for x in scan if x["setup"] == setup and x["tag"] == scan_tag
                      and x["coarse"] == r["coarse"]), None)
            if s is None:
                continue
            per_class.append((r["ari_kmeans"], s["ari_best"]))
            print(f"| {setup} | {seed} | {r['coarse']} | {r['k']} | {r['ari_kmeans']:.3f} | "
                  f"{s['ari_best']:.3f} | {s['ari_best'] - r['ari_kmeans']:+.3f} |")
        if per_class:
            km, sc = np.mean(per_class, 0)
            pairs.append((setup, seed, km, sc))
print()
print("| setup | SimCLR seed | k-means (mean of coarse classes) | SCAN fine-tuned | difference |")
print("|---|---|---|---|---|")
for setup, seed, km, sc in pairs:
    print(f"| {setup} | {seed} | {km:.3f} | {sc:.3f} | {sc - km:+.3f} |")
d = np.array([sc - km for _, _, km, sc in pairs])
if len(d) >= 2:
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    lo, hi = d.mean() - half, d.mean() + half
    km_mean = np.mean([p[2] for p in pairs])
    sc_mean = np.mean([p[3] for p in pairs])
    print(f"\n{len(d)} pairs: k-means {km_mean:.3f}, SCAN fine-tuned {sc_mean:.3f}; difference "
          f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] (95% t-interval)")
    adopt = len(d) == 6 and d.mean() > 0.05 and lo > 0
    print("rule (round4_plan.md): " + ("adopt SCAN fine-tuning as the default" if adopt else
          "the default stays" + ("" if len(d) == 6 else f" (only {len(d)} of 6 pairs so far)")))

# Added after the rule was applied (descriptive, not part of it): the same networks at the k
# round 2's rule picks (highest views agreement of the k-means clusters with the patch view,
# heads_views_<setup>_<tag>.jsonl; for seed 0 round 2's own s4000 rows, the same network), with
# lg_tf's verdict for that agreement (cluster_heads.THRESHOLDS["views"]: 0.12 / 0.17).
print("\nAt round 2's auto k (added after the rule was applied; descriptive):")
print("| setup | SimCLR seed | coarse | k auto (true) | views agreement (verdict) | k-means | SCAN fine-tuned |")
print("|---|---|---|---|---|---|---|")
band = lambda v: "not to be trusted" if v < 0.12 else "weak" if v < 0.17 else "supported"
auto_pairs = []
for setup in ("h1", "h2", "h3"):
    for seed, (_, scan_tag) in SEEDS.items():
        views = rows(f"heads_views_{setup}_{scan_tag}.jsonl") or rows(
            f"heads_views_{setup}_s4000.jsonl") * (seed == 0)
        per_class = []
        for cname in dict.fromkeys(r["coarse"] for r in views):
            cands = [r for r in views if r["coarse"] == cname]
            pick = max(cands, key=lambda r: (r["views_km"], -r["k"]))
            mode = "true" if pick["k"] == pick["k_true"] else "auto"
            s = next((x for x in rows("scan_ft.jsonl") if x["setup"] == setup
                      and x["tag"] == scan_tag and x["coarse"] == cname
                      and x.get("mode", "true") == mode and x["k"] == pick["k"]), None)
            if s is None:
                continue
            per_class.append((pick["ari_km"], s["ari_best"]))
            print(f"| {setup} | {seed} | {cname} | {pick['k']} ({pick['k_true']}) | "
                  f"{pick['views_km']:.3f} ({band(pick['views_km'])}) | "
                  f"{pick['ari_km']:.3f} | {s['ari_best']:.3f} |")
        if per_class:
            auto_pairs.append(np.mean(per_class, 0))
if auto_pairs:
    km, sc = np.mean(auto_pairs, 0)
    print(f"\n{len(auto_pairs)} setup x seed runs: k-means {km:.3f}, SCAN fine-tuned {sc:.3f} "
          "(mean of the setups' means)")
