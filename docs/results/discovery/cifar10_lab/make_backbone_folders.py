"""Round 5 (round5_plan.md): for each setup, a folder tree of the CIFAR-10 classes NOT in it
(all 5,000 training and 1,000 test JPEGs of each, as symlinks), ~/data/backbones/<setup>/
{train,test}/<class>/, for lg_tf.train to train the backbone on."""
import os
SRC = os.path.expanduser("~/data/cifar10-jpg")
C = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SETUPS = {"dev": ["airplane", "automobile", "frog", "horse"], "h1": ["ship", "truck", "cat", "deer"],
          "h2": ["airplane", "automobile", "ship", "bird", "dog", "horse"]}
for s, used in SETUPS.items():
    for split in ("train", "test"):
        for c in C:
            if c in used: continue
            out = os.path.expanduser(f"~/data/backbones/{s}/{split}/{c}"); os.makedirs(out, exist_ok=True)
            for f in os.listdir(os.path.join(SRC, split, c)):
                d = os.path.join(out, f)
                if not os.path.exists(d): os.symlink(os.path.join(SRC, split, c, f), d)
    print(s, {c: len(os.listdir(os.path.expanduser(f"~/data/backbones/{s}/train/{c}"))) for c in C if c not in used})
