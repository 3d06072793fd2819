"""Round 3: SCAN with the network fine-tuned (scan_ft.jsonl) against k-means on the same trunk's
features (ssl_cond_<setup>.jsonl rows of the same run), at the true k and at the k round 2's
rule picks (auto: the highest views agreement of the k-means clusters, heads_views_*.jsonl).
usage: python summarise_scan.py"""
import json, os
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
scan = [json.loads(l) for l in open(os.path.join(HERE, "scan_ft.jsonl"))]
RUNS = {"dev": ("s4000m_seed2", "devm_seed2"), "h1": ("s4000m", "h1m"), "h2": ("s4000m", "h2m"),
        "h3": ("s4000m", "h3m")}
print("| setup | coarse | k true | k-means, true k | SCAN fine-tuned, true k | k auto | k-means, auto | SCAN fine-tuned, auto | SCAN seconds |")
print("|---|---|---|---|---|---|---|---|---|")
means = {}
for setup, (tag, run) in RUNS.items():
    km_rows = [json.loads(l) for l in open(os.path.join(HERE, f"ssl_cond_{setup}.jsonl"))
               if json.loads(l)["setup"] == run] if os.path.exists(os.path.join(HERE, f"ssl_cond_{setup}.jsonl")) else []
    hv_path = os.path.join(HERE, f"heads_views_{setup}_{tag}.jsonl")
    if not os.path.exists(hv_path):  # h1-h3: the s4000m networks are round 2's, bitwise
        hv_path = os.path.join(HERE, f"heads_views_{setup}_s4000.jsonl")
    hv = [json.loads(l) for l in open(hv_path)] if os.path.exists(hv_path) else []
    for r in km_rows:
        c = r["coarse"]
        s_true = next((x for x in scan if x["setup"] == setup and x["tag"] == tag and x["coarse"] == c
                       and x.get("mode", "true") == "true"), None)
        if s_true is None:
            continue
        rs = [x for x in hv if x["coarse"] == c]
        if rs:
            a = max(rs, key=lambda x: (x["views_km"], -x["k"]))
            k_auto, km_auto = a["k"], a["ari_km"]
            s_auto = s_true if k_auto == r["k"] else next(
                (x for x in scan if x["setup"] == setup and x["tag"] == tag and x["coarse"] == c
                 and x.get("mode") == "auto"), None)
        else:
            k_auto = km_auto = s_auto = None
        sa = s_auto["ari_best"] if s_auto else None
        means.setdefault(setup, []).append((r["ari_kmeans"], s_true["ari_best"], km_auto, sa))
        fmt = lambda v: "-" if v is None else f"{v:.3f}"
        print(f"| {setup} | {c} | {r['k']} | {r['ari_kmeans']:.3f} | {s_true['ari_best']:.3f} | "
              f"{k_auto or '-'} | {fmt(km_auto)} | {fmt(sa)} | {s_true['seconds']:.0f} |")
print()
for setup, m in means.items():
    m = np.array(m, dtype=float)
    print(f"{setup}: true k: k-means {np.nanmean(m[:, 0]):.3f}, SCAN {np.nanmean(m[:, 1]):.3f}; "
          f"auto: k-means {np.nanmean(m[:, 2]):.3f}, SCAN {np.nanmean(m[:, 3]):.3f}")
held = np.array([x for s in ("h1", "h2", "h3") for x in means.get(s, [])], dtype=float)
if len(held):
    print(f"held-out ({len(held)} coarse classes): true k: k-means {np.nanmean(held[:, 0]):.3f}, "
          f"SCAN {np.nanmean(held[:, 1]):.3f}; auto: k-means {np.nanmean(held[:, 2]):.3f}, "
          f"SCAN {np.nanmean(held[:, 3]):.3f}")
