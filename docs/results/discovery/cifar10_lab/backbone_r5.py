"""Round 5 (round5_plan.md): discovery on a backbone trained by lg_tf.train on the CIFAR-10
classes NOT in the setup. usage: backbone_r5.py SETUP SEED BB_RUN_DIR OUT_ROOT
1. saves the run's `features` layer as OUT_ROOT/<setup>_s<seed>.keras;
2. `python -m lg_tf.discover --features=backbone` on data/<setup> at the true k and --k=auto;
3. scores each coarse class by the '<fine>__' file-name prefix (lab only) -> round5.jsonl."""
import collections, csv, json, os, subprocess, sys, time
import numpy as np
from sklearn.metrics import adjusted_rand_score as A
import lab

setup, seed, bb_dir, root = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
os.makedirs(root, exist_ok=True)
net = os.path.join(root, f"{setup}_s{seed}.keras")
if not os.path.exists(net):
    import keras
    from lg_tf import train_lib
    run = train_lib.restore_run(bb_dir, load_data=False)
    m = run.model
    keras.Model(m.inputs, m.get_layer("features").output).save(net)
acc = json.load(open(os.path.join(bb_dir, "results.json")))["final"].get("test/fine_accuracy")
k_true = max(len(v) for v in lab.SETUPS[setup].values())
for mode in ("true", "auto"):
    out = os.path.join(root, f"{setup}_s{seed}_{mode}")
    t, c0 = time.time(), os.times()
    cmd = [sys.executable, "-m", "lg_tf.discover", "--dataset=folder",
           f"--data_dir={os.path.join(lab.HERE, 'data', setup)}", f"--model_dir={out}",
           "--image_size=32", "--features=backbone", f"--backbone={net}",
           f"--k={k_true if mode == 'true' else 'auto'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-2000:])
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    rows = list(csv.DictReader(open(os.path.join(out, "labels.csv"))))
    clusters = json.load(open(os.path.join(out, "clusters.json")))
    n_train = len(np.load(os.path.join(out, "seeds", "seed_0", "features_backbone.npz"))["train"])
    train = rows[:n_train]
    by = collections.defaultdict(list)
    for r in train:
        by[r["coarse"]].append((os.path.basename(r["path"]).split("__")[0], r["fine"]))
    for c in clusters["per_coarse"]:
        truth, pred = zip(*by[c["coarse"]])
        lab.log_result({"kind": "backbone_r5", "setup": setup, "seed": seed, "mode": mode,
                        "coarse": c["coarse"], "k_true": len(set(truth)), "k": c["k"],
                        "n_train": len(truth), "ari": round(A(truth, pred), 3),
                        "sizes": c["sizes"], "agreement": c["agreement"].get(str(c["k"])),
                        "verdict": c["verdict"], "backbone_test_acc": acc,
                        "wall_s": round(time.time() - t, 1), "cpu_s": round(cpu, 1)},
                       os.path.join(lab.HERE, "round5.jsonl"))
