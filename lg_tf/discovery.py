"""What fine classes hide in my coarse ones? Features, clustering, label files, previews.

The library behind `python -m lg_tf.discover` and `pipelines.discovery`. For one seed:

1. features (`features.SOURCES`): self-supervised SimCLR features (`lg_tf.simclr`, the
   default) or label-free patch features (`lg_tf.patch_features`), both with the
   features of the mirror images, or a user's network (`lg_tf.backbone`); or, from a
   coarse-trained lg_tf run (only the coarse labels are used), its penultimate `features`
   layer or the pooled output of the last residual block one resolution earlier; or the raw
   pixels at 32x32;
2. `lg_tf.clustering.discover` splits every coarse class into k pseudo-fine classes
   (k-means for SimCLR and model features, SCAN heads for patch features) and measures the
   agreement of independent clusterings (for simclr, patches and backbone: the clusters of
   a second view), a label-free signal with a verdict in words;
3. the result is written as files lg_tf reads: `hierarchy.json` ({pseudo-fine: coarse}),
   `labels.csv` (`path,coarse,fine`, one row per image of both splits; train on it with
   `lg_tf.train --labels_file=labels.csv`), `clusters.json` (k, sizes, silhouettes, and
   NMI/ARI against the true fine labels when the data has them) and one preview PNG per
   coarse class.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os

import numpy as np

from lg_tf import clustering, files, run_dir, simclr, stats
from lg_tf import config as config_lib
from lg_tf import features as features_lib
from lg_tf.errors import RunError

log = logging.getLogger("lg_tf")

PREVIEW_COLUMNS = 12


def coarse_config(cfg: config_lib.Config) -> config_lib.Config:
    """The coarse-trained run discovery starts from (coarse labels only)."""
    return config_lib.validate(dataclasses.replace(
        cfg, granularity="coarse", labels_file="", overwrite=False, export_dir=""))


def pseudo_fine_config(cfg: config_lib.Config, labels_path: str) -> config_lib.Config:
    """A run on the discovered labels: the same settings, fine targets from the file."""
    return config_lib.validate(dataclasses.replace(
        cfg, granularity="fine", labels_file=labels_path, overwrite=False, export_dir=""))


# --------------------------------------------------------------------------- one seed

@dataclasses.dataclass
class Result:
    clustering: clustering.Clustering
    coarse_names: list
    train_keys: list
    test_keys: list
    agreement: dict          # {"train": {nmi, ari}, "test": {...}} or {} without fine labels
    source: str
    k: object
    seed: int

    def summary(self) -> dict:
        return {"source": self.source, "k": self.k, "seed": self.seed,
                "pseudo_fine_classes": len(self.clustering.names),
                "per_coarse": [dataclasses.asdict(c) for c in self.clustering.per_coarse],
                "agreement": self.agreement}


def method_for(source: str) -> str:
    """The clustering recipe that goes with a feature source."""
    return "heads" if source == "patches" else "kmeans"


def cluster_data(data, feats: dict, source: str, k, seed: int, k_max: int,
                 root: str | None = None) -> Result:
    """Clusters `data` (a datasets.Data loaded with the images' own hierarchy) on
    `feats` ({"train": [N, D], "test": [M, D]}); `root` is --data_dir for image
    folders (labels.csv names images relative to it)."""
    from lg_tf.data import labels_file
    h = data.hierarchy
    parent = h.parent_array()
    train_coarse, test_coarse = parent[data.train.labels], parent[data.test.labels]
    result = clustering.discover(feats["train"], train_coarse, feats["test"],
                                 test_coarse, list(h.coarse_names), k, seed, k_max,
                                 method=method_for(source),
                                 train_mirror=feats.get("train_mirror"),
                                 check=_check_view(feats), log=log,
                                 views="backbone_views" if source == "backbone" else "views")
    agreement = {}
    if h.num_fine > h.num_coarse:  # the data has fine labels: how close did we get?
        agreement = {"train": clustering.agreement(result.train, data.train.labels),
                     "test": clustering.agreement(result.test, data.test.labels)}
    return Result(result, list(h.coarse_names),
                  labels_file.example_keys(data.train, "train", root),
                  labels_file.example_keys(data.test, "test", root), agreement, source, k,
                  seed)


def _check_view(feats: dict) -> dict | None:
    """The second view's training features (and mirror), if the source computed one."""
    if "check_train" not in feats:
        return None
    return {"features": feats["check_train"], "mirror": feats.get("check_train_mirror")}


def labels_csv(result: Result) -> str:
    c = result.clustering
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "coarse", "fine"])
    for keys, ids in ((result.train_keys, c.train), (result.test_keys, c.test)):
        for key, i in zip(keys, ids):
            writer.writerow([key, result.coarse_names[c.parent[i]], c.names[i]])
    return buf.getvalue()


def write_result(result: Result, out_dir: str, data=None, stem: str = "labels") -> str:
    """Writes `<stem>.csv`, hierarchy.json and clusters.json (and previews when `data` is
    given) into out_dir; returns the CSV's path. Files are replaced atomically."""
    files.makedirs(out_dir)
    path = os.path.join(out_dir, f"{stem}.csv")
    prefix = "" if stem == "labels" else f"{stem}."
    files.write_json_atomic(os.path.join(out_dir, f"{prefix}hierarchy.json"),
                            result.clustering.hierarchy_dict(result.coarse_names))
    files.write_json_atomic(os.path.join(out_dir, f"{prefix}clusters.json"), result.summary())
    if data is not None:
        write_previews(result, data, os.path.join(out_dir, "previews"))
    # Last: its presence means the step is done.
    files.write_text_atomic(path, labels_csv(result))
    return path


# --------------------------------------------------------------------------- previews

def write_previews(result: Result, data, folder: str) -> list[str]:
    """One PNG per coarse class: a row per pseudo-fine class showing 12 of its training
    images (a fixed-seed random sample), with its name and size, for a person to name it."""
    from lg_tf import plots
    rng = np.random.default_rng(result.seed)
    c = result.clustering
    written = []
    for per in c.per_coarse:
        fig = plots.canvas((PREVIEW_COLUMNS * 0.8 + 1.6, 0.85 * per.k + 0.6))
        for row, name in enumerate(per.names):
            members = np.flatnonzero(c.train == c.names.index(name))
            picked = rng.permutation(members)[:PREVIEW_COLUMNS]
            strip = _thumbnails(data.train, picked)
            ax = fig.add_subplot(per.k, 1, row + 1)
            ax.imshow(strip, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(f"{name}\n({per.sizes[row]})", rotation=0, ha="right",
                          va="center", fontsize=8)
        fig.suptitle(f"coarse class '{per.coarse}': {per.k} pseudo-fine classes, "
                     f"{PREVIEW_COLUMNS} random training images each", fontsize=9)
        path = os.path.join(folder, f"{_safe(per.coarse)}.png")
        plots.save(fig, path)
        written.append(path)
    return written


def _thumbnails(split, index: np.ndarray, size: int = 48) -> np.ndarray:
    """The images at `index` side by side, each size x size (uint8 [size, n*size, 3])."""
    import tensorflow as tf
    tiles = []
    for i in index:
        image = split.images[i]
        if split.is_files:
            image = tf.io.decode_image(tf.io.read_file(image), channels=3,
                                       expand_animations=False)
        tile = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
        tiles.append(np.clip(tile.numpy(), 0, 255).astype(np.uint8))
    tiles += [np.full((size, size, 3), 255, np.uint8)] * (PREVIEW_COLUMNS - len(tiles))
    return np.concatenate(tiles, axis=1)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "class"


# --------------------------------------------------------------------------- the command

MARKER = "lg_tf_discover.json"
# What discovery writes into its model_dir; --overwrite removes exactly these.
CONTENTS = (MARKER, "runs", "seeds", "labels.csv", "hierarchy.json", "clusters.json",
            "previews", "discover.json", "discover.md")


AGREEMENTS = ("views", "heads")


@dataclasses.dataclass(frozen=True)
class Options:
    source: str = "penultimate"
    k: object = clustering.AUTO
    k_max: int = 6
    train: bool = False
    seeds: int = 3            # used with train: a difference needs a confidence interval
    patch_centroids: int = 1600
    ssl_steps: int = simclr.STEPS
    agreement: str = "views"  # STANDALONE sources: "views" (vs the other source's clusters)
                              # or "heads" (patches: the heads; others: k-means seeds)
    backbone: str = ""        # --features=backbone: the .keras file

    def check(self) -> "Options":
        features_lib.check_source(self.source)
        if self.source == "backbone":
            from lg_tf import backbone
            backbone.load(backbone.check_path(self.backbone))  # refused before any state
        elif self.backbone:
            raise RunError(f"--backbone={self.backbone} applies to --features=backbone only; "
                           "drop it or add --features=backbone")
        if self.patch_centroids < 2:
            raise RunError(f"--patch_centroids={self.patch_centroids} must be at least 2")
        if self.ssl_steps < 1:
            raise RunError(f"--ssl_steps={self.ssl_steps} must be at least 1")
        if self.agreement not in AGREEMENTS:
            raise RunError(f"--agreement={self.agreement} is unknown; choose one of: "
                           f"{', '.join(AGREEMENTS)}")
        clustering.parse_k(self.k)
        if self.k_max < 2:
            raise RunError(f"--k_max={self.k_max} must be at least 2")
        if self.seeds < 1:
            raise RunError(f"--seeds={self.seeds} must be at least 1")
        return self

    def seed_list(self, cfg) -> list[int]:
        return list(range(cfg.seed, cfg.seed + (self.seeds if self.train else 1)))


def settings(cfg: config_lib.Config, options: Options) -> dict:
    """What the discovered labels depend on: a model_dir keeps one such setting."""
    trained = {k: v for k, v in cfg.to_json().items()
               if k in config_lib.trained_fields() and k not in ("granularity", "labels_file")}
    out = {"source": options.source, "k": str(options.k), "k_max": options.k_max,
           "config": trained}
    if options.source in features_lib.STANDALONE:
        out["agreement"] = options.agreement
        if options.source == "patches" or options.agreement == "views":
            out["patch_centroids"] = options.patch_centroids
        if options.source == "simclr" or (options.source == "patches"
                                          and options.agreement == "views"):
            out["ssl_steps"] = options.ssl_steps
    if options.source == "backbone":   # the labels depend on the file's contents
        from lg_tf import backbone
        out["backbone_sha256"] = backbone.fingerprint(backbone.check_path(options.backbone))
    return out


def claim(model_dir: str, wanted: dict, overwrite: bool) -> None:
    """Refuses a folder lg_tf did not write or one holding another discovery (unless
    --overwrite, which removes only discovery's own files); then writes the marker."""
    if files.exists(model_dir) and not files.isdir(model_dir):
        raise RunError(f"--model_dir={model_dir} is a file; choose a folder")
    names = files.listdir(model_dir) if files.exists(model_dir) else []
    if names and MARKER not in names:
        shown = ", ".join(sorted(names)[:3])
        raise RunError(f"--model_dir={model_dir} already holds files that lg_tf.discover did "
                       f"not write ({shown}); choose a new or empty folder")
    if MARKER in names:
        saved = files.read_json(os.path.join(model_dir, MARKER)) or {}
        changed = config_lib.describe_changes(_changes(saved.get("settings", {}), wanted))
        if changed and not overwrite:
            raise RunError(f"--model_dir={model_dir} holds a discovery with other settings "
                           f"({changed}); use another --model_dir, or --overwrite to replace "
                           "it")
        if changed:
            discard(model_dir)
            log.info("--overwrite: removed the earlier discovery in %s", model_dir)
        elif saved.get("settings"):
            return
    files.makedirs(model_dir)
    files.write_json_atomic(os.path.join(model_dir, MARKER),
                            {"created": run_dir.now(), "settings": wanted})


def discard(model_dir: str) -> None:
    """Removes what discovery wrote in model_dir; its training runs go through
    run_dir.discard_run, so a file a user put into a run folder stays."""
    for name in CONTENTS:
        path = os.path.join(model_dir, name)
        if not files.exists(path):
            continue
        if name == "runs":
            _discard_runs(path)
        elif files.isdir(path):
            files.rmtree(path)
        else:
            files.remove(path)


def _discard_runs(root: str) -> None:
    """root/<kind>/seed_<k>: each lg_tf run discarded; folders left empty removed."""
    for kind in files.listdir(root):
        kind_dir = os.path.join(root, kind)
        for seed in files.listdir(kind_dir) if files.isdir(kind_dir) else []:
            path = os.path.join(kind_dir, seed)
            if run_dir.kind(path) == "run":
                run_dir.discard_run(path)
            _remove_if_empty(path)
        _remove_if_empty(kind_dir)
    _remove_if_empty(root)


def _remove_if_empty(path: str) -> None:
    if files.isdir(path) and not files.listdir(path):
        files.rmdir(path)


def _changes(saved: dict, wanted: dict) -> dict[str, tuple]:
    """{flag: (old, new)} for what differs; settings a newer lg_tf added are not changes.
    Not config.differences: these settings are discovery's, not a Config's."""
    def flat(d):  # "source" is kept under that name in markers; its flag is --features
        out = {**{k: v for k, v in d.items() if k != "config"}, **d.get("config", {})}
        return {("features" if k == "source" else k): v for k, v in out.items()}
    old, new = flat(saved), flat(wanted)
    return {k: (old[k], new.get(k)) for k in sorted(old)
            if json.dumps(old[k]) != json.dumps(new.get(k))}


def run(cfg: config_lib.Config, model_dir: str, options: Options) -> dict:
    """`lg_tf.discover`: the whole discovery (resumable); returns discover.json's content."""
    from lg_tf import interrupt
    options.check()
    config_lib.check_outside_data(cfg, model_dir, "--model_dir")  # its previews are images
    k = clustering.parse_k(options.k)
    seeds = options.seed_list(cfg)
    data = {s: load_images(cfg, s) for s in seeds[:1]}  # every check before anything is written
    _check_data(data[seeds[0]], k)
    claim(model_dir, settings(cfg, options), cfg.overwrite)
    per_seed = []
    for i, seed in enumerate(seeds):
        if interrupt.requested():
            break
        log.info("discovery seed %d (%d of %d)", seed, i + 1, len(seeds))
        seed_data = data.get(seed) or load_images(cfg, seed)
        per_seed.append(_one_seed(cfg, model_dir, options, k, seed, seed_data,
                                  deliverable=(i == 0)))
        if per_seed[-1].get("stopped"):
            break
    summary = summarise(cfg, options, per_seed)
    write_report(model_dir, summary)
    return summary


def load_images(cfg, seed: int):
    """The images with their own labels (every training image: all need a row)."""
    from lg_tf.data import datasets
    return datasets.prepare(dataclasses.replace(cfg, seed=seed, train_fraction=1.0,
                                                label_noise=0.0, labels_file=""))


def _check_data(data, k) -> None:
    h = data.hierarchy
    counts = np.bincount(h.parent_array()[data.train.labels], minlength=h.num_coarse)
    clustering.check_sizes(list(h.coarse_names), counts, k)


def _one_seed(cfg, model_dir: str, options: Options, k, seed: int, data,
              deliverable: bool) -> dict:
    from lg_tf import train_lib
    seed_cfg = dataclasses.replace(cfg, seed=seed)
    coarse_dir = os.path.join(model_dir, "runs", "coarse", f"seed_{seed}")
    out = {"seed": seed}
    if features_lib.needs_model(options.source) or options.train:
        coarse = run_dir.finished_results(coarse_dir) or train_lib.train_and_evaluate(
            coarse_config(seed_cfg), coarse_dir)
        if coarse.get("stopped"):
            return {**out, "stopped": coarse["stopped"]}
        out["coarse"] = _final(coarse)
    seed_dir = os.path.join(model_dir, "seeds", f"seed_{seed}")
    feats = seed_features(data, options.source, coarse_dir, seed_dir, options, seed)
    if feats is None:
        from lg_tf import interrupt
        return {**out, "stopped": interrupt.requested() or "stopped"}
    from lg_tf.data import datasets
    root = datasets.DATASETS[cfg.dataset].root(cfg)
    result = cluster_data(data, feats, options.source, k, seed, options.k_max, root)
    labels = write_result(result, seed_dir)
    if deliverable:
        write_result(result, model_dir, data)
    out["clusters"] = result.summary()
    if options.train:
        fine_dir = os.path.join(model_dir, "runs", "pseudo_fine", f"seed_{seed}")
        fine = run_dir.finished_results(fine_dir) or train_lib.train_and_evaluate(
            pseudo_fine_config(seed_cfg, os.path.abspath(labels)), fine_dir)
        if fine.get("stopped"):
            return {**out, "stopped": fine["stopped"]}
        out["pseudo_fine"] = _final(fine)
    return out


def _final(results: dict) -> dict:
    final = results["final"]
    keep = ("test/coarse_accuracy", "test/fine_accuracy", "test/acr", "test/acr_inter",
            "test/acr_intra")
    return {k: final[k] for k in keep if final.get(k) is not None}


def seed_features(data, source: str, coarse_dir: str, seed_dir: str, options=None,
                  seed: int = 0) -> dict:
    """{"train": ..., "test": ...} features of `source` (with "train_mirror" for the
    label-free sources), cached in seed_dir."""
    path = os.path.join(seed_dir, f"features_{source}.npz")
    if files.exists(path):
        with np.load(io.BytesIO(files.read_bytes(path))) as cached:
            if len(cached["train"]) == len(data.train) and len(cached["test"]) == len(data.test):
                return {name: cached[name] for name in cached.files}
    if source in features_lib.STANDALONE:
        feats = standalone_features(data, source, options or Options(source), seed)
        if feats is None:
            return None
    else:
        model, spec = None, data.spec
        if features_lib.needs_model(source):
            from lg_tf import train_lib
            model = train_lib.restore_run(coarse_dir, load_data=False).model
        log.info("features '%s' of %d training and %d test images", source, len(data.train),
                 len(data.test))
        feats = {name: features_lib.extract(model, split, spec, [source])[source]
                 for name, split in (("train", data.train), ("test", data.test))}
    files.makedirs(seed_dir)
    buffer = io.BytesIO()
    np.savez(buffer, **feats)
    files.write_text_atomic(path, buffer.getvalue())
    return feats


def standalone_features(data, source: str, options: Options, seed: int) -> dict:
    """features_lib.STANDALONE features of both splits (patches and simclr learnt on the
    training images only, backbone from the user's network) and, with --agreement=views,
    the second view of the training images (None when a signal stopped SimCLR)."""
    import time
    started, cpu = time.time(), time.process_time()
    views = options.agreement == "views"   # a second view: patches, or SimCLR for patches
    if source == "backbone":
        feats = _backbone(data, options)
        if views:
            feats.update(_patch_view(features_lib.images_32(data.train, data.spec), options,
                                     seed))
    else:
        train = features_lib.images_32(data.train, data.spec)
        test = features_lib.images_32(data.test, data.spec)
        if source == "patches":
            tr, te = _patches(train, test, options, seed)
        else:
            trunk = _simclr(train, options, seed, "")
            if trunk is None:  # a signal: _one_seed reports the stop (re-run starts again)
                return None
            tr, te = simclr.extract(trunk, train), simclr.extract(trunk, test)
        feats = {"train": tr["features"], "train_mirror": tr["mirror"], "test": te["features"]}
        if views and source == "patches":
            trunk = _simclr(train, options, seed, "second view for the agreement signal: ")
            if trunk is None:
                return None
            feats["check_train"] = simclr.extract(trunk, train)["features"]
        elif views:
            feats.update(_patch_view(train, options, seed))
    log.info("%s features: %d dims, %.0f s (%.0f s CPU)", source, feats["train"].shape[1],
             time.time() - started, time.process_time() - cpu)
    return feats


def _patch_view(train, options: Options, seed: int) -> dict:
    """Patch features of the training images (and mirror): the second view of k-means clusters."""
    log.info("second view for the agreement signal: patch features")
    view, _ = _patches(train, None, options, seed)
    return {"check_train": view["features"], "check_train_mirror": view["mirror"]}


def _patches(train, test, options: Options, seed: int):
    """Patch features of the training images (and mirror) and, if given, of the test ones."""
    from lg_tf import patch_features
    log.info("patch features: k-means with %d centroids on %d patches of %d training "
             "images", options.patch_centroids, patch_features.N_PATCHES, len(train))
    extractor = patch_features.PatchFeatures(options.patch_centroids, seed=seed).fit(train)
    log.info("patch features: encoding %d + %d images (and their mirror images)",
             len(train), 0 if test is None else len(test))
    tr = patch_features.image_features(extractor, train)
    te = None if test is None else patch_features.image_features(extractor, test, mirror=False)
    return tr, te


def _backbone(data, options: Options) -> dict:
    from lg_tf import backbone
    model = backbone.load(backbone.check_path(options.backbone))
    log.info("backbone features: %s on %d + %d images", options.backbone, len(data.train),
             len(data.test))
    return {"train": backbone.extract(model, data.train, data.spec),
            "test": backbone.extract(model, data.test, data.spec)}


def _simclr(train, options: Options, seed: int, why: str):
    from lg_tf import interrupt
    log.info("%sSimCLR features (%d steps = %d epochs of %d images)", why, options.ssl_steps,
             simclr.epochs_for(len(train), options.ssl_steps), len(train))
    return simclr.train(train, steps=options.ssl_steps, seed=seed, stop=interrupt.requested)


# --------------------------------------------------------------------------- report

def agreement_kind(options: Options) -> str:
    """Which label-free signal judges the clusters (a key of AGREEMENT_TEXT)."""
    if options.source == "backbone" and options.agreement == "views":
        return "backbone_views"
    if options.source == "patches" or (options.source in features_lib.STANDALONE
                                       and options.agreement == "views"):
        return options.agreement
    return "kmeans"


def summarise(cfg, options: Options, per_seed: list[dict]) -> dict:
    done = [s for s in per_seed if "clusters" in s]
    agreement = agreement_kind(options)
    out = {"settings": {"source": options.source, "k": str(options.k),
                        "k_max": options.k_max, "train": options.train,
                        "agreement": agreement,
                        "seeds": [s["seed"] for s in per_seed]},
           "per_seed": per_seed,
           "stopped": next((s["stopped"] for s in per_seed if s.get("stopped")), None)}
    agreement = [s["clusters"]["agreement"]["train"] for s in done
                 if s["clusters"]["agreement"]]
    if agreement:
        out["nmi"] = _interval([a["nmi"] for a in agreement])
        out["ari"] = _interval([a["ari"] for a in agreement])
    paired = [s for s in done if "pseudo_fine" in s and "coarse" in s]
    if paired:
        pf = [100 * s["pseudo_fine"]["test/coarse_accuracy"] for s in paired]
        cc = [100 * s["coarse"]["test/coarse_accuracy"] for s in paired]
        gain = stats.paired_difference(pf, cc)
        out["coarse_trained"] = _interval(cc)
        out["pseudo_fine_trained"] = _interval(pf)
        out["gain"] = gain.to_dict()
        out["verdict"] = stats.verdict(gain, what="discovered fine labels")
        acrs = [stats.run_acr(s["pseudo_fine"]) for s in paired]
        if any(a is not None for a in acrs):
            out["acr"] = stats.acr_seeds(acrs)
    return out


def _interval(values) -> dict:
    return stats.mean_ci(values).to_dict()


PCT = (0.0, 100.0)  # an accuracy's range: a t interval past it is shown clipped


def _ci(d: dict, digits: int = 2, bounds=None) -> str:
    return stats.interval_text(stats.Interval.from_dict(d), digits, bounds=bounds)


def report_text(summary: dict) -> str:
    s = summary["settings"]
    lines = [f"# Discovered fine labels ({s['source']} features, k={s['k']})", ""]
    first = next((p for p in summary["per_seed"] if "clusters" in p), None)
    if first:
        lines += ["| coarse class | k | pseudo-fine classes (training images) | agreement | "
                  "verdict |", "|---|---|---|---|---|"]
        for c in first["clusters"]["per_coarse"]:
            sizes = ", ".join(f"{n} ({m})" for n, m in zip(c["names"], c["sizes"]))
            agree = _by_k(c.get("agreement", {}), c["k"])
            lines.append(f"| {c['coarse']} | {c['k']} | {sizes} | "
                         f"{'–' if agree is None else f'{agree:.3f}'} | "
                         f"{c.get('verdict', '')} |")
        lines += ["", AGREEMENT_TEXT.get(s.get("agreement", ""), AGREEMENT_TEXT["heads"]), ""]
        untrusted = [c["coarse"] for c in first["clusters"]["per_coarse"]
                     if not _supported(c)]
        if untrusted:
            lines += [f"WARNING: the clusters of {', '.join(untrusted)} are NOT TO BE TRUSTED "
                      "as fine classes (see the verdicts above).", ""]
        lines += [f"Seed {first['seed']}'s clusters; labels.csv, hierarchy.json and "
                  "previews/ hold them.", ""]
    if "nmi" in summary:
        lines.append(f"Agreement with the true fine labels (training images, mean [95% CI] "
                     f"over seeds): NMI {_ci(summary['nmi'], 3)}, ARI {_ci(summary['ari'], 3)}.")
    if "gain" in summary:
        lines += ["", "Coarse test accuracy (%): coarse-trained "
                  f"{_ci(summary['coarse_trained'], bounds=PCT)}"
                  ", trained on the discovered labels "
                  f"{_ci(summary['pseudo_fine_trained'], bounds=PCT)}.",
                  f"Verdict: {summary['verdict']}."]
        if "*" in lines[-2]:
            lines.append(stats.CLIPPED_NOTE)
        if "acr" in summary:
            lines.append("ACR of the pseudo-fine model, mean (min–max) over seeds: "
                         f"{stats.acr_seeds_text(summary['acr'])}.")
    if summary.get("stopped"):
        lines.append(f"\nStopped ({summary['stopped']}): re-run the same command to resume.")
    return "\n".join(lines) + "\n"


AGREEMENT_TEXT = {
    "views": "Agreement (label-free): adjusted Rand index between these clusters and "
             "clusters of the other label-free view of the same images (SimCLR features "
             "for patch clusters, patch features for SimCLR clusters), a second view with "
             "other failure modes (1 = the same split, 0 = unrelated splits). Calibrated "
             "against the true fine classes on real CIFAR-10 "
             "(docs/results/discovery/cifar10.md): below 0.12 the clusters are not to be "
             "trusted. Look at previews/ in any case.",
    "backbone_views": "Agreement (label-free): adjusted Rand index between these clusters "
                      "and SCAN clusters of the patch features of the same images. Below "
                      "0.12 the clusters are not to be trusted; above, it is not calibrated "
                      "for backbone features (on real CIFAR-10 a backbone's clusters at ARI "
                      "0.15-0.19 reached 0.22-0.26), so it never counts as support. Look at "
                      "previews/.",
    "heads": "Agreement (label-free): mean adjusted Rand index between independently "
             "started clusterings of the same images (1 = the same split every time, 0 = "
             "unrelated splits). It checks reproducibility, not correctness: below 0.20 the "
             "clusters are not to be trusted; above, look at previews/ before using them.",
    "kmeans": "Agreement: mean adjusted Rand index between k-means runs from 5 seeds. It "
              "shows only that k-means is reproducible (on real CIFAR-10 it was 0.94-1.0 for "
              "clusters at chance), so it never counts as support. The label-free features "
              "(--features=simclr, the default, and patches) come with a calibrated signal.",
}


def _by_k(d: dict, k):
    return d.get(k, d.get(str(k)))


def _supported(c: dict) -> bool:
    """Whether a per-coarse result's verdict stops short of 'not to be trusted' (k-means
    verdicts never support: their agreement is only k-means' reproducibility)."""
    verdict = c.get("verdict", "")
    return not (verdict.startswith("NOT TO BE TRUSTED") or verdict.startswith("k-means"))


def write_report(model_dir: str, summary: dict) -> None:
    files.write_json_atomic(os.path.join(model_dir, "discover.json"), summary)
    files.write_text_atomic(os.path.join(model_dir, "discover.md"), report_text(summary))
