"""Pre-registered kmf-only candidates (fixed before any held-out result) on one setup.
  K1 scan:     kmf1600 sqrt, flip-avg, PCA-whiten 32, L2; SCAN head (K=20 nbrs, entropy w 5,
               5 heads, lowest-loss head). signal = mean pairwise ARI of the 5 heads;
               auto k = argmax signal over 2..6.
  K2 spectral: same embedding; spectral clustering on a 10-NN graph (true k only).
  B0 lgtf_pix: lg_tf's recipe on 32x32 pixels (L2, PCA 32, k-means, silhouette auto-k).
usage: eval_kmf.py SETUP"""
import sys, time, numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score as A, silhouette_score
import clusterkit as ck, lab, scanhead

setup = sys.argv[1]
d = np.load(f"cache/kmfeat_{setup}_k1600.npz")
coarse, fine = d["coarse"], d["fine"]
F, Ff = np.sqrt(d["F"]), np.sqrt(d["Ff"])
x, _, _, _, _ = lab.load_setup(setup)
pix = x.reshape(len(x), -1).astype(np.float32) / 255.0
def row(method, c, mode, kt, k, labels, t, extra=None):
    ari, nmi = lab.agreement(labels, fine[r])
    lab.log_result({"kind": "heldout" if setup != "dev" else "dev", "setup": setup, "method": method, "coarse": int(c),
                    "mode": mode, "k_true": kt, "k": int(k), "ari": round(ari, 3), "nmi": round(nmi, 3),
                    "sizes": sorted(np.bincount(labels).tolist(), reverse=True), "cpu_s": round(time.process_time() - t, 1),
                    **(extra or {})})
for c in np.unique(coarse):
    r = coarse == c; kt = len(np.unique(fine[r]))
    pca = PCA(32, whiten=True, random_state=0).fit(np.concatenate([F[r], Ff[r]]))
    z = ck.l2n(pca.transform((F[r] + Ff[r]) / 2)); z0 = ck.l2n(pca.transform(F[r])); za = ck.l2n(pca.transform(Ff[r]))
    # K1 SCAN head, every k in 2..6 (auto = highest head agreement)
    res = {}
    for k in range(2, 7):
        t = time.process_time()
        labels, best, loss, _ = scanhead.scan_cluster(z0, k, z_aug=za)
        agree = float(np.mean([A(labels[i], labels[j]) for i in range(5) for j in range(i + 1, 5)]))
        res[k] = (labels[best], agree, time.process_time() - t)
    sig = {k: round(v[1], 3) for k, v in res.items()}
    t = time.process_time()
    row("K1_scan_kmf", c, "true", kt, kt, res[kt][0], t - res[kt][2], {"signal": sig[kt], "signals": sig})
    ka = max(res, key=lambda k: (res[k][1], -k))
    row("K1_scan_kmf", c, "auto", kt, ka, res[ka][0], t - sum(v[2] for v in res.values()), {"signal": sig[ka], "signals": sig})
    t = time.process_time()
    row("K2_spectral_kmf", c, "true", kt, kt, ck.cluster(z, kt, "spectral"), t)
    # B0: lg_tf's recipe on pixels and on kmf
    for name, X in (("B0_lgtf_pixels", pix[r]), ("B1_lgtf_kmf", (F[r] + Ff[r]) / 2)):
        t = time.process_time()
        zz = ck.embed(X, "lgtf")
        row(name, c, "true", kt, kt, ck.cluster(zz, kt, "kmeans"), t)
        t = time.process_time()
        fits = {k: ck.cluster(zz, k, "kmeans") for k in range(2, 7)}
        sil = {k: silhouette_score(zz, l, sample_size=min(2000, len(zz)), random_state=0) for k, l in fits.items()}
        kb = max(sil, key=lambda k: (sil[k], -k))
        row(name, c, "auto", kt, kb, fits[kb], t, {"signal": round(float(sil[kb]), 3)})
