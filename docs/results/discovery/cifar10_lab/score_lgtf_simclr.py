"""Scores an lg_tf.discover output folder made with the default (simclr) features against the
'<fine>__' file-name prefixes (lab only): the CLI's own --k=auto result, and the true k
re-clustered by lg_tf.clustering.discover from the run's cached features and second view.
usage: score_lgtf_simclr.py SETUP MODEL_DIR [ROWS=lgtf_simclr.jsonl]  -> rows appended to ROWS
(the true-k re-clustering uses lg_tf.discovery's recipe for simclr of the lg_tf on PYTHONPATH)"""
import csv, json, os, sys
import numpy as np
from sklearn.metrics import adjusted_rand_score as A
from lg_tf import clustering, discovery
import lab
setup, out = sys.argv[1], sys.argv[2]
ROWS = sys.argv[3] if len(sys.argv) > 3 else "lgtf_simclr.jsonl"
# the heads branch exists only with lg_tf at commit 3b15116 (reverted; lgtf_heads.jsonl)
RECIPE = ({"method": "heads", "embedding": discovery.EMBEDDING["simclr"],
           "check_embedding": discovery.EMBEDDING["patches"]}
          if discovery.method_for("simclr") == "heads" else {})
rows = list(csv.DictReader(open(os.path.join(out, "labels.csv"))))
clusters = json.load(open(os.path.join(out, "clusters.json")))
f = np.load(os.path.join(out, "seeds", "seed_0", "features_simclr.npz"))
n = len(f["train"]); train = rows[:n]
truth = np.array([os.path.basename(r["path"]).split("__")[0] for r in train])
names = [c["coarse"] for c in clusters["per_coarse"]]
coarse = np.array([names.index(r["coarse"]) for r in train])
pred = np.array([r["fine"] for r in train])
for ci, c in enumerate(clusters["per_coarse"]):
    sel = coarse == ci
    kt = len(set(truth[sel]))
    x = f["train"][sel]
    check = {"features": f["check_train"][sel], "mirror": f["check_train_mirror"][sel]}
    row = {"setup": setup, "coarse": c["coarse"], "n_train": int(sel.sum()), "k_true": kt,
           "auto_k": c["k"], "auto_ari": round(A(truth[sel], pred[sel]), 3),
           "auto_agreement": c["agreement"].get(str(c["k"])), "auto_verdict": c["verdict"],
           "agreement_by_k": c["agreement"], "sizes": c["sizes"]}
    # the true-k labels of the re-clustering (training images of this coarse class)
    if RECIPE:
        RECIPE["train_mirror"] = f["train_mirror"][sel]
    res = clustering.discover(x, np.zeros(len(x), int), x[:1], np.zeros(1, int),
                              [c["coarse"]], kt, 0, check=check, **RECIPE)
    row["true_k_ari"] = round(A(truth[sel], res.train), 3)
    row["true_k_agreement"] = res.per_coarse[0].agreement[kt]
    print(json.dumps(row), flush=True)
    with open(os.path.join(lab.HERE, ROWS), "a") as fh:
        fh.write(json.dumps(row) + "\n")
