"""Trains a PreAct ResNet-18 (width 16) on the COARSE labels of a setup, optionally with an
extra within-coarse objective, then caches features of every training image.

  --loss ce           coarse cross-entropy only (the lg_tf baseline)
  --loss subclass     subclass distillation (Mueller, Kornblith, Hinton 2020): K sub-logits per
                      coarse class, coarse logit = logsumexp of its sub-logits, plus their
                      batch-contrastive spreading term and (two views) a consistency term
  --loss supcon_ssl   coarse CE + SimCLR NT-Xent between two augmented views (keeps
                      within-class variation, cf. Grafit/ANCOR: coarse labels + self-supervision)

Writes cache/feats_<tag>.npz: features/stage3/stage2/logits (+ *_flip for the mirrored
image) for the training images, and results/results.jsonl rows with times.
"""
import argparse, os, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--setup", default="dev")
p.add_argument("--loss", default="ce", choices=["ce", "subclass", "supcon_ssl", "ssl"])
p.add_argument("--epochs", type=int, default=15)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--width", type=int, default=16)
p.add_argument("--k_sub", type=int, default=4, help="sub-logits per coarse class (subclass)")
p.add_argument("--aux_weight", type=float, default=1.0)
p.add_argument("--temp", type=float, default=0.2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--aug", default="crop", choices=["crop", "simclr"], help="augmentation of the two views")
p.add_argument("--tag", default="")
args = p.parse_args()

import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
import keras
keras.mixed_precision.set_global_policy("mixed_bfloat16")
import lab

keras.utils.set_random_seed(args.seed)
x, coarse, fine, coarse_names, fine_names = lab.load_setup(args.setup)
C = len(coarse_names)
n_out = C * args.k_sub if args.loss == "subclass" else C
model = lab.preact_resnet18(n_out, args.width)
proj = None
if args.loss in ("supcon_ssl", "ssl"):  # SimCLR projection head on the pooled features
    proj = keras.Sequential([keras.layers.Dense(128, activation="relu"), keras.layers.Dense(64, dtype="float32")])
    proj.build((None, 8 * args.width))
steps_per_epoch = int(np.ceil(len(x) / args.batch))
total = steps_per_epoch * args.epochs
boundary = steps_per_epoch * int(round(args.epochs * 2 / 3))
sched = keras.optimizers.schedules.PiecewiseConstantDecay([boundary], [args.lr, args.lr * 0.1])
opt = keras.optimizers.SGD(sched, momentum=0.9)  # + coupled L2 (as lg_tf/PyTorch) in step()
variables = model.trainable_variables + (proj.trainable_variables if proj else [])
opt.build(variables)

def ntxent(z1, z2, t):
    z = tf.math.l2_normalize(tf.concat([z1, z2], 0), 1)
    n = tf.shape(z1)[0]
    sim = tf.matmul(z, z, transpose_b=True) / t - 1e9 * tf.eye(2 * n)
    target = tf.concat([tf.range(n, 2 * n), tf.range(n)], 0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(target, sim))

def coarse_logits_of(sub):  # [B, C*K] -> [B, C]
    return tf.reduce_logsumexp(tf.reshape(sub, [-1, C, args.k_sub]), -1)

def subclass_spread(sub, t):
    """Mueller et al.: normalise each sub-logit over the batch, then make every example's
    vector of sub-logits distinguishable from the others' (batch contrastive)."""
    z = (sub - tf.reduce_mean(sub, 0)) / (tf.math.reduce_std(sub, 0) + 1e-6)
    z = z / tf.sqrt(tf.cast(tf.shape(z)[1], tf.float32))
    sim = tf.matmul(z, z, transpose_b=True) / t
    n = tf.shape(z)[0]
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(n), sim))

@tf.function(autograph=False)
def step(images, labels, seed):
    xf = tf.cast(images, tf.float32)
    two = args.loss in ("supcon_ssl", "subclass", "ssl")
    aug = lab.simclr_augment if args.aug == "simclr" else lab.pad_crop_flip
    v1 = aug(xf, seed)
    if two:
        v2 = aug(xf, seed + 7)
        batch = tf.concat([v1, v2], 0)
    else:
        batch = v1
    with tf.GradientTape() as tape:
        out = model(batch, training=True)
        logits = out["logits"]
        aux = tf.constant(0.0)
        if args.loss == "ce":
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        elif args.loss in ("supcon_ssl", "ssl"):
            lab2 = tf.concat([labels, labels], 0)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(lab2, logits))
            if args.loss == "ssl":  # label-free trunk: the coarse head trains on stopped features
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    lab2, model.get_layer("logits")(tf.stop_gradient(out["features"]))))
            z = proj(out["features"], training=True)
            b = tf.shape(images)[0]
            aux = ntxent(z[:b], z[b:], args.temp)
            loss += args.aux_weight * aux
        else:  # subclass
            lab2 = tf.concat([labels, labels], 0)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(lab2, coarse_logits_of(logits)))
            b = tf.shape(images)[0]
            aux = subclass_spread(logits[:b], args.temp) + subclass_spread(logits[b:], args.temp)
            # consistency: view 2's sub-class distribution within the true coarse class
            # should match view 1's (symmetric cross-entropy on the within-coarse softmax)
            sub = tf.reshape(logits, [-1, C, args.k_sub])
            within = tf.gather(sub, lab2, batch_dims=1)  # [2B, K]
            p1, p2 = tf.nn.softmax(within[:b]), tf.nn.softmax(within[b:])
            cons = -0.5 * tf.reduce_mean(tf.reduce_sum(tf.stop_gradient(p2) * tf.math.log(p1 + 1e-8)
                                                       + tf.stop_gradient(p1) * tf.math.log(p2 + 1e-8), 1))
            aux = aux + cons
            loss += args.aux_weight * aux
    grads = tape.gradient(loss, variables)
    grads = [g + 5e-4 * tf.cast(v, g.dtype) for g, v in zip(grads, variables)]
    opt.apply_gradients(zip(grads, variables))
    return loss, aux

t0, c0 = time.time(), time.process_time()
rng = np.random.default_rng(args.seed)
xt, yt = tf.constant(x), tf.constant(coarse, tf.int32)
it = 0
for ep in range(args.epochs):
    order = rng.permutation(len(x))
    ls, auxs = [], []
    for s in range(steps_per_epoch):
        idx = order[s * args.batch:(s + 1) * args.batch]
        if len(idx) < args.batch // 2:
            continue
        l, a = step(tf.gather(xt, idx), tf.gather(yt, idx), tf.constant([args.seed, it], tf.int32))
        ls.append(float(l)); auxs.append(float(a)); it += 1
    print(f"epoch {ep+1} loss {np.mean(ls):.4f} aux {np.mean(auxs):.4f} wall {time.time()-t0:.0f}s cpu {time.process_time()-c0:.0f}s", flush=True)
train_wall, train_cpu = time.time() - t0, time.process_time() - c0

# features of the training images (and their mirror images) + coarse test accuracy
t1, c1 = time.time(), time.process_time()
@tf.function(autograph=False)
def fwd(images):
    return model(tf.cast(images, tf.float32), training=False)
def extract(arr):
    outs = {}
    for i in range(0, len(arr), 500):
        o = fwd(tf.constant(arr[i:i + 500]))
        for k, v in o.items():
            outs.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in outs.items()}
tr = extract(x)
trf = extract(x[:, :, ::-1])
xte, cte, fte, _, _ = lab.load_setup(args.setup, "test")
te = extract(xte)
def coarse_pred(lg):
    return (coarse_logits_of(tf.constant(lg)).numpy() if args.loss == "subclass" else lg).argmax(1)
acc = float((coarse_pred(te["logits"]) == cte).mean())
tag = args.tag or f"{args.setup}_{args.loss}_{args.aug}_e{args.epochs}_s{args.seed}"
np.savez(os.path.join(lab.HERE, "cache", f"feats_{tag}.npz"), coarse=coarse, fine=fine,
         **tr, **{k + "_flip": v for k, v in trf.items()}, **{"test_" + k: v for k, v in te.items()},
         test_coarse=cte, test_fine=fte)
model.save_weights(os.path.join(lab.HERE, "cache", f"net_{tag}.weights.h5"))
lab.log_result({"kind": "train", "tag": tag, "setup": args.setup, "loss": args.loss, "epochs": args.epochs,
                "k_sub": args.k_sub, "aug": args.aug, "aux_weight": args.aux_weight, "temp": args.temp,
                "coarse_test_acc": acc, "train_wall_s": round(train_wall), "train_cpu_s": round(train_cpu),
                "extract_wall_s": round(time.time() - t1), "extract_cpu_s": round(time.process_time() - c1)})
