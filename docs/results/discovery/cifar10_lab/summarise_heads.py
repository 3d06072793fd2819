"""Round 3 tables (heads_views_<setup>_<tag>.jsonl): SimCLR SCAN heads (L2, PCA 32) vs round 2's
SimCLR k-means, judged by the patch view. usage: python summarise_heads.py [TAG=s4000]"""
import json, os, sys
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = sys.argv[1] if len(sys.argv) > 1 else "s4000"
DOUBT, TRUST = 0.12, 0.17


def verdict(a):
    return "NOT TO BE TRUSTED" if a < DOUBT else ("weak" if a < TRUST else "supported")


print("| setup | coarse | k true | ARI at true k: heads (k-means) | views at true k | k auto | "
      "ARI at auto: heads | views at auto (verdict) | sizes at auto |")
print("|---|---|---|---|---|---|---|---|---|")
means, pts = {}, []
for setup in ("dev", "h1", "h2", "h3"):
    path = os.path.join(HERE, f"heads_views_{setup}_{TAG}.jsonl")
    if not os.path.exists(path):
        continue
    rows = [json.loads(l) for l in open(path)]
    pts += [(r["views"], r["ari_heads"]) for r in rows]
    for coarse in dict.fromkeys(r["coarse"] for r in rows):
        rs = [r for r in rows if r["coarse"] == coarse]
        true = next(r for r in rs if r["k"] == r["k_true"])
        auto = max(rs, key=lambda r: (r["views"], -r["k"]))
        means.setdefault(setup, []).append((true["ari_heads"], auto["ari_heads"], true["ari_km"]))
        print(f"| {setup} | {coarse} | {true['k_true']} | {true['ari_heads']:.3f} ({true['ari_km']:.3f}) | "
              f"{true['views']:.3f} | {auto['k']} | {auto['ari_heads']:.3f} | "
              f"{auto['views']:.3f} ({verdict(auto['views'])}) | {'/'.join(map(str, auto['sizes']))} |")
print()
for setup, m in means.items():
    m = np.array(m)
    print(f"{setup}: mean ARI heads true k {m[:, 0].mean():.3f}, auto {m[:, 1].mean():.3f}; k-means true k {m[:, 2].mean():.3f}")
held = np.array([x for s in ("h1", "h2", "h3") for x in means.get(s, [])])
if len(held):
    print(f"held-out ({len(held)} coarse classes): heads true k {held[:, 0].mean():.3f}, auto {held[:, 1].mean():.3f}; k-means true k {held[:, 2].mean():.3f}")
if pts:
    print(f"\ncalibration over {len(pts)} (coarse, k) points:")
    for lo, hi in ((-1, DOUBT), (DOUBT, TRUST), (TRUST, 2)):
        a = [p[1] for p in pts if lo <= p[0] < hi]
        if a:
            print(f"  views in [{max(lo, -1):.2f}, {min(hi, 1):.2f}): {len(a)} points, ARI {min(a):.2f}-{max(a):.2f} (mean {np.mean(a):.2f})")
    from scipy.stats import spearmanr
    print(f"  Spearman(views, ARI): {spearmanr(*zip(*pts)).statistic:+.2f}")
