"""Coarse-only image folders for the lab setups (symlinks to the cached-subset JPEGs):
data/<setup>/<coarse>/<fine>__<file>.jpg. The fine name in the file name is used ONLY to
score (discover_mv.py --score_prefix); discovery never reads it."""
import os, numpy as np
import lab
d = np.load(os.path.join(lab.HERE, "cache", "cifar_train1000.npz"))
for setup, groups in lab.SETUPS.items():
    for coarse, fines in groups.items():
        out = os.path.join(lab.HERE, "data", setup, coarse); os.makedirs(out, exist_ok=True)
        for f in fines:
            for p in d["paths"][d["y"] == lab.CLASSES.index(f)]:
                dst = os.path.join(out, f"{f}__{os.path.basename(str(p))}")
                if not os.path.exists(dst):
                    os.symlink(str(p), dst)
    print(setup, {c: len(os.listdir(os.path.join(lab.HERE, "data", setup, c))) for c in groups})
