"""Candidates on cached features of one setup (settings fixed on dev before any held-out run).
  kmf_scan : kmf1600 sqrt, flip-avg, PCA-whiten 32 (fit on image+mirror), L2; SCAN head
             (20 NN, entropy w 5, 5 heads, lowest loss). signal_heads = mean pairwise ARI of heads.
  ssl_scan : same on the SimCLR-trunk features (no sqrt).
  mv_scan  : both embeddings concatenated (each /sqrt2), SCAN head; signal_views = ARI(kmf_scan, ssl_scan).
  auto k   = argmax of the method's signal over 2..6.
usage: eval_cand.py SETUP [ssl_npz]"""
import sys, time, json, numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score as A
import clusterkit as ck, lab, scanhead
def emb(F, Ff):
    pca = PCA(32, whiten=True, random_state=0).fit(np.concatenate([F, Ff]))
    return ck.l2n(pca.transform((F + Ff) / 2)), ck.l2n(pca.transform(F)), ck.l2n(pca.transform(Ff))
def scan(z0, za, k):
    t = time.process_time()
    labels, best, _, _ = scanhead.scan_cluster(z0, k, z_aug=za)
    heads = float(np.mean([A(labels[i], labels[j]) for i in range(5) for j in range(i + 1, 5)]))
    return labels[best], heads, time.process_time() - t
def main():
    setup = sys.argv[1]
    d = np.load(f"cache/kmfeat_{setup}_k1600.npz"); coarse, fine = d["coarse"], d["fine"]
    views = {"kmf": (np.sqrt(d["F"]), np.sqrt(d["Ff"]))}
    if len(sys.argv) > 2:
        s = np.load(sys.argv[2]); assert (s["fine"] == fine).all()
        views["ssl"] = (s["features"], s["features_flip"])
    for c in np.unique(coarse):
        r = coarse == c; kt = len(np.unique(fine[r]))
        E = {v: emb(F[r], Ff[r]) for v, (F, Ff) in views.items()}
        if "ssl" in E:
            E["mv"] = tuple(np.concatenate([E["kmf"][i], E["ssl"][i]], 1) / np.sqrt(2) for i in range(3))
        res = {v: {k: scan(E[v][1], E[v][2], k) for k in range(2, 7)} for v in E}
        if "ssl" in views:   # the lg_tf k-means recipe on the SimCLR features (dev-best for them)
            from sklearn.cluster import KMeans
            from sklearn.metrics import silhouette_score
            zk = PCA(32, random_state=0).fit_transform(ck.l2n(views["ssl"][0][r].astype(np.float64)))
            kmr = {}
            for k in range(2, 7):
                t = time.process_time()
                lbl = KMeans(k, n_init=10, random_state=0).fit_predict(zk)
                sil = float(silhouette_score(zk, lbl, sample_size=min(2000, len(zk)), random_state=0))
                kmr[k] = (lbl, sil, time.process_time() - t)
            for k in range(2, 7):
                lbl, sil, cpu = kmr[k]
                lab.log_result({"kind": "cand", "setup": setup, "method": "ssl_kmeans", "coarse": int(c), "k_true": kt, "k": k,
                                "ari": round(A(fine[r], lbl), 3), "sizes": sorted(np.bincount(lbl, minlength=k).tolist(), reverse=True),
                                "silhouette": round(sil, 3), "signal_views_kmf_scan": round(A(res["kmf"][k][0], lbl), 3),
                                "cpu_s": round(cpu, 1)}, path=f"results/cand_{setup}.jsonl")
        for v in E:
            for k in range(2, 7):
                lbl, heads, cpu = res[v][k]
                row = {"kind": "cand", "setup": setup, "method": f"{v}_scan", "coarse": int(c), "k_true": kt, "k": k,
                       "ari": round(A(fine[r], lbl), 3), "sizes": sorted(np.bincount(lbl, minlength=k).tolist(), reverse=True),
                       "signal_heads": round(heads, 3), "cpu_s": round(cpu, 1)}
                if "ssl" in E:
                    row["signal_views"] = round(A(res["kmf"][k][0], res["ssl"][k][0]), 3)
                lab.log_result(row, path=f"results/cand_{setup}.jsonl")


if __name__ == "__main__":
    main()
