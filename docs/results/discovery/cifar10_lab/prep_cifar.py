"""Caches a fixed subset of the real CIFAR-10 JPEGs as uint8 arrays (lab use only).

For every class: a seed-0 permutation of its files, the first N_TRAIN kept. Fixed before
any result was seen. Output: cache/cifar_train{N}.npz with x [10*N,32,32,3] uint8, y [10*N]
(fine class index, CLASSES order) and the file paths.
"""
import os, sys, time
import numpy as np
from PIL import Image

ROOT = os.path.expanduser("~/data/cifar10-jpg")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

def main(split="train", n=1000):
    t = time.time()
    xs, ys, paths = [], [], []
    for ci, c in enumerate(CLASSES):
        files = sorted(os.listdir(os.path.join(ROOT, split, c)))
        pick = np.random.default_rng(0).permutation(len(files))[:n]
        for i in sorted(pick):
            p = os.path.join(ROOT, split, c, files[i])
            xs.append(np.asarray(Image.open(p).convert("RGB")))
            ys.append(ci)
            paths.append(p)
    out = f"cache/cifar_{split}{n}.npz"
    np.savez(out, x=np.stack(xs), y=np.array(ys), paths=np.array(paths))
    print(out, len(xs), f"{time.time()-t:.1f}s")

if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
