"""Tables of the SimCLR-4000-steps rows (ssl_*.jsonl, views_*.jsonl) for cifar10.md.
usage: python summarise_ssl.py [SUFFIX]   (e.g. _s4000c: views_<setup>_s4000c.jsonl, round 3)"""
import json, os, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SUFFIX = sys.argv[1] if len(sys.argv) > 1 else ""
DOUBT, TRUST = 0.12, 0.17


def rows(name):
    path = os.path.join(HERE, name)
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


def verdict(a):
    return "NOT TO BE TRUSTED" if a < DOUBT else ("weak" if a < TRUST else "supported")


print("| setup | coarse | k true | ARI at true k: SimCLR k-means | patch-SCAN (same run) | "
      "agreement (views) at true k | k auto | ARI at auto | agreement at auto (verdict) | sizes at auto |")
print("|---|---|---|---|---|---|---|---|---|---|")
means = {}
for setup in ("dev", "h1", "h2", "h3"):
    v = rows(f"views_{setup}{SUFFIX}.jsonl")
    for coarse in dict.fromkeys(r["coarse"] for r in v):
        rs = [r for r in v if r["coarse"] == coarse]
        true = next(r for r in rs if r["k"] == r["k_true"])
        auto = max(rs, key=lambda r: (r["views"], -r["k"]))
        means.setdefault(setup, []).append((true["ari_ssl_km"], auto["ari_ssl_km"],
                                            true["ari_patch"]))
        print(f"| {setup} | {coarse} | {true['k_true']} | {true['ari_ssl_km']:.3f} | "
              f"{true['ari_patch']:.3f} | {true['views']:.3f} | {auto['k']} | "
              f"{auto['ari_ssl_km']:.3f} | {auto['views']:.3f} ({verdict(auto['views'])}) | "
              f"{'/'.join(map(str, auto['sizes']))} |")
print()
for setup, m in means.items():
    m = np.array(m)
    print(f"{setup}: mean ARI true k {m[:, 0].mean():.3f}, auto {m[:, 1].mean():.3f}, "
          f"patch-SCAN true k {m[:, 2].mean():.3f}")
held = np.array([x for s in ("h1", "h2", "h3") for x in means.get(s, [])])
if len(held):
    print(f"held-out: true k {held[:, 0].mean():.3f}, auto {held[:, 1].mean():.3f}, "
          f"patch {held[:, 2].mean():.3f}")
# calibration: every (coarse, k) point, agreement vs ARI
pts = [(r["views"], r["ari_ssl_km"], r["setup"], r["coarse"], r["k"])
       for s in ("dev", "h1", "h2", "h3") for r in rows(f"views_{s}{SUFFIX}.jsonl")]
if pts:
    print("\ncalibration over all (coarse, k) points:")
    for lo, hi in ((-1, DOUBT), (DOUBT, TRUST), (TRUST, 2)):
        sel = [p for p in pts if lo <= p[0] < hi]
        if sel:
            a = [p[1] for p in sel]
            print(f"  agreement in [{max(lo, -1):.2f}, {min(hi, 1):.2f}): {len(sel)} points, "
                  f"ARI {min(a):.2f}-{max(a):.2f} (mean {np.mean(a):.2f})")
    from scipy.stats import spearmanr
    rho = spearmanr([p[0] for p in pts], [p[1] for p in pts])
    print(f"  Spearman(agreement, ARI) over {len(pts)} points: {rho.statistic:+.2f}")
