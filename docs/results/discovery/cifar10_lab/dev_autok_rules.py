"""Dev only: on the lg_tf run's cached features, which k does each auto-k rule pick?
heads = argmax agreement of the 5 heads; views = argmax cross-view agreement."""
import sys, csv, json, os, numpy as np
from sklearn.metrics import adjusted_rand_score as A
from lg_tf import clustering
setup = sys.argv[1]; out = f"lgtf/{setup}_default"
rows = list(csv.DictReader(open(os.path.join(out, "labels.csv"))))
cl = json.load(open(os.path.join(out, "clusters.json")))
f = np.load(os.path.join(out, "seeds", "seed_0", "features_patches.npz"))
n = len(f["train"]); train = rows[:n]
truth = np.array([os.path.basename(r["path"]).split("__")[0] for r in train])
names = [c["coarse"] for c in cl["per_coarse"]]
coarse = np.array([names.index(r["coarse"]) for r in train])
for ci, name in enumerate(names):
    s = coarse == ci; x = f["train"][s]; m = f["train_mirror"][s]
    r = clustering.discover(x, np.zeros(len(x), int), x[:1], np.zeros(1, int), [name], "auto", 0,
                            method="heads", train_mirror=m)
    pc = r.per_coarse[0]
    print(json.dumps({"setup": setup, "coarse": name, "rule": "heads", "k": pc.k, "ari": round(A(truth[s], r.train), 3),
                      "agreement_by_k": pc.agreement}), flush=True)
