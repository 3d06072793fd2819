"""Recommended pipeline on cached features of a setup: true k and auto k, signals. usage:
eval_mv.py SETUP kmf.npz ssl_feats.npz [method-tag]"""
import sys, time, json, numpy as np
import mvcluster as mv, lab
setup, kmf, ssl = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
coarse, fine = kmf["coarse"], kmf["fine"]; assert (ssl["fine"] == fine).all()
views_all = [np.sqrt((kmf["F"] + kmf["Ff"]) / 2), (ssl["features"] + ssl["features_flip"]) / 2]
for c in np.unique(coarse):
    r = coarse == c; kt = len(np.unique(fine[r]))
    for mode in ("true", "auto"):
        t, c0 = time.time(), time.process_time()
        labels, k, info = mv.discover([v[r] for v in views_all], kt if mode == "true" else "auto")
        ari, nmi = lab.agreement(labels, fine[r])
        # single-view results at this k, for the table
        V = mv.prepare([v[r] for v in views_all]); joint, single = mv.cluster_all(V, k)
        row = {"kind": "mv", "setup": setup, "coarse": int(c), "mode": mode, "k_true": kt, "k": k,
               "ari": round(ari, 3), "nmi": round(nmi, 3), "sizes": sorted(np.bincount(labels).tolist(), reverse=True),
               "ari_kmf_only": round(lab.agreement(single[0], fine[r])[0], 3), "ari_ssl_only": round(lab.agreement(single[1], fine[r])[0], 3),
               "signals": {kk: {a: round(b, 3) for a, b in s.items()} for kk, s in info.items()},
               "cluster_cpu_s": round(time.process_time() - c0, 1)}
        lab.log_result(row)
