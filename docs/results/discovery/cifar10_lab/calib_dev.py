"""Dev-only calibration points for the head-agreement signal: SCAN head (as kmf_scan) on
other dev feature sets, k=2..6. Rows -> results/cand_dev.jsonl (method <source>_scan)."""
import numpy as np
from sklearn.metrics import adjusted_rand_score as A
import lab
from eval_cand import emb, scan
k4 = np.load("cache/kmfeat_dev_k400.npz"); coarse, fine = k4["coarse"], k4["fine"]
ce = np.load("cache/feats_dev_ce_crop_e15_s0.npz"); assert (ce["fine"] == fine).all()
x, c2, f2, _, _ = lab.load_setup("dev"); assert (f2 == fine).all()
pix = x.reshape(len(x), -1).astype(np.float32) / 255.0
pixf = x[:, :, ::-1].reshape(len(x), -1).astype(np.float32) / 255.0
srcs = {"kmf400": (np.sqrt(k4["F"]), np.sqrt(k4["Ff"])), "cepen": (ce["features"], ce["features_flip"]),
        "cestage3": (ce["stage3"], ce["stage3_flip"]), "pixels": (pix, pixf)}
for c in np.unique(coarse):
    r = coarse == c; kt = len(np.unique(fine[r]))
    for name, (F, Ff) in srcs.items():
        _, z0, za = emb(F[r], Ff[r])
        for k in range(2, 7):
            lbl, heads, cpu = scan(z0, za, k)
            lab.log_result({"kind": "calib", "setup": "dev", "method": f"{name}_scan", "coarse": int(c), "k_true": kt, "k": k,
                            "ari": round(A(fine[r], lbl), 3), "sizes": sorted(np.bincount(lbl, minlength=k).tolist(), reverse=True),
                            "signal_heads": round(heads, 3), "cpu_s": round(cpu, 1)}, path="results/cand_dev.jsonl")
