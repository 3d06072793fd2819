"""Round 3 on dev over SimCLR seeds: SCAN heads (L2, PCA 32) vs k-means (round 2) on the same
features, each judged by the patch view (heads_views_dev_<tag>.jsonl).
usage: python summarise_seeds.py TAG [TAG ...]"""
import json, sys
import numpy as np


def auto(rs, ari, views):
    return max(rs, key=lambda r: (r[views], -r["k"]))[ari]


table = {}
for tag in sys.argv[1:]:
    rows = [json.loads(l) for l in open(f"heads_views_dev_{tag}.jsonl")]
    out = []
    for c in ("vehicle", "animal"):
        rs = [r for r in rows if r["coarse"] == c]
        t = next(r for r in rs if r["k"] == r["k_true"])
        out.append((t["ari_heads"], auto(rs, "ari_heads", "views"), t["ari_km"], auto(rs, "ari_km", "views_km")))
    table[tag] = np.array(out)
    o = table[tag]
    print(f"| {tag} | {o[0,0]:.3f} / {o[1,0]:.3f} | {o[:,1].mean():.3f} | {o[0,2]:.3f} / {o[1,2]:.3f} | {o[:,3].mean():.3f} |")
m = np.mean([o.mean(0) for o in table.values()], 0)
print(f"| mean over {len(table)} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} |")
