"""Scores an lg_tf.discover output folder (patches features) against the '<fine>__' file-name
prefixes (lab only): the CLI's own k=auto result, and the true k re-clustered by
lg_tf.clustering.discover from the run's cached features (no recomputation).
usage: score_lgtf.py SETUP MODEL_DIR CPU_S_OF_THE_RUN  -> rows in results/lgtf.jsonl"""
import sys, csv, json, os, time, numpy as np
from sklearn.metrics import adjusted_rand_score as A
from lg_tf import clustering
import lab
setup, out, run_cpu = sys.argv[1], sys.argv[2], float(sys.argv[3])
path = sys.argv[4] if len(sys.argv) > 4 else os.path.join(lab.HERE, "results", "lgtf.jsonl")
rows = list(csv.DictReader(open(os.path.join(out, "labels.csv"))))
clusters = json.load(open(os.path.join(out, "clusters.json")))
f = np.load(os.path.join(out, "seeds", "seed_0", "features_patches.npz"))
n = len(f["train"]); train = rows[:n]
truth = np.array([os.path.basename(r["path"]).split("__")[0] for r in train])
names = [c["coarse"] for c in clusters["per_coarse"]]
coarse = np.array([names.index(r["coarse"]) for r in train])
fine_pred = np.array([r["fine"] for r in train])
check = f["check_train"] if "check_train" in f.files else None
for ci, c in enumerate(clusters["per_coarse"]):
    sel = coarse == ci
    kt = len(set(truth[sel]))
    base = {"kind": "lgtf", "setup": setup, "coarse": c["coarse"], "k_true": kt, "n_train": int(sel.sum()),
            "signal": "views" if check is not None else "heads"}
    lab.log_result({**base, "mode": "auto", "k": c["k"], "ari": round(A(truth[sel], fine_pred[sel]), 3),
                    "sizes": c["sizes"], "agreement": c["agreement"].get(str(c["k"])), "verdict": c["verdict"],
                    "agreement_by_k": c["agreement"], "cpu_s_whole_run": run_cpu}, path)
    t = time.process_time()
    x = f["train"][sel]; m = f["train_mirror"][sel]
    r = clustering.discover(x, np.zeros(len(x), int), x[:1], np.zeros(1, int), [c["coarse"]], kt, 0,
                            method="heads", train_mirror=m, check=None if check is None else check[sel])
    pc = r.per_coarse[0]
    row = {**base, "mode": "true", "k": kt, "ari": round(A(truth[sel], r.train), 3), "sizes": pc.sizes,
           "agreement": pc.agreement[kt], "verdict": pc.verdict, "cpu_s_recluster": round(time.process_time() - t, 1)}
    if check is not None:   # the SimCLR view alone (lg_tf's k-means recipe), at the true k
        _, pts = clustering.embed(check[sel], 0)
        row["ari_simclr_view_kmeans"] = round(A(truth[sel], clustering.kmeans(pts, kt, 0).labels_), 3)
    lab.log_result(row, path)
