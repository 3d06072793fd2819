"""What fine classes hide in my coarse ones? Cluster each coarse class into pseudo-fine
classes, write them as labels lg_tf trains on, and (with --train) measure whether they help.

usage: python -m lg_tf.discover --dataset=folder --data_dir=DIR --model_dir=OUT
           [--features=simclr|patches|backbone|penultimate|block|pixels] [--backbone=F.keras]
           [--k=auto|N] [--k_max=6]
           [--train [--seeds=3]] [lg_tf.train flags, e.g. --flagfile=quickstart --epochs=10]

Features (--features):
{features}

Every coarse class's clusters come with a label-free agreement and a verdict: with the
default --agreement=views, the ARI between the clusters and clusters of a second view
(patch features for simclr and backbone, SimCLR features for patches); below the
threshold calibrated on real CIFAR-10 the output says the clusters are NOT TO BE TRUSTED.
What discovery finds on real images, and what it does not: docs/discover.md and
docs/results/discovery/cifar10.md.

DIR may hold coarse labels only (DIR/<coarse>/*.jpg or DIR/{train,test}/<coarse>/*.jpg);
fine folders, where present, are ignored for discovery and used only to score it (NMI,
ARI). Writes OUT/labels.csv (path,coarse,fine; train on it with `lg_tf.train
--labels_file=OUT/labels.csv`), OUT/hierarchy.json, OUT/clusters.json, OUT/previews/ (a PNG
per coarse class to name the clusters) and OUT/discover.md. With --train, trains on the
coarse labels and on the discovered ones for --seeds seeds and reports the paired
difference in coarse accuracy with its 95% CI, and the pseudo-fine model's ACR.

Exit codes as lg_tf.train: 0 done, 2 bad input, 75 stopped by a signal (re-run resumes).
"""

import textwrap

from lg_tf import cli
from lg_tf import config as config_lib
from lg_tf import features as _features

__doc__ = __doc__.replace("{features}", "\n".join(
    textwrap.fill(f"{name}: {text}.", 88, initial_indent="  ", subsequent_indent="    ")
    for name, text in _features.DESCRIPTIONS.items()))

DISCOVERY_FLAGS = {
    "features": ("string", "simclr", "Feature source, one of " + ", ".join(
        _features.SOURCES) + " (each explained above; simclr is the best measured on real "
        "images)."),
    "k": ("string", "auto", "Pseudo-fine classes per coarse class: a number >= 2, or auto "
          "(per coarse class, the k in 2..k_max with the highest agreement between "
          "independent clusterings; without a second view -- penultimate, block, pixels, or "
          "simclr and backbone with --agreement=heads -- the highest silhouette)."),
    "patch_centroids": ("integer", 1600, "--features=patches, or the patch view that judges "
                        "simclr and backbone: k-means centroids of the patch dictionary (4x "
                        "as many features per image)."),
    "agreement": ("string", "views", "The label-free quality signal of --features=patches, "
                  "simclr or backbone. views = ARI between the clusters and clusters of a "
                  "second view (patches and SimCLR judge each other: both are computed, ~16 min "
                  "on 2 cores for 10,000 images; calibrated on real CIFAR-10; backbone clusters "
                  "are judged by the patch view, never as support); heads = no second view: "
                  "the agreement of independently started clusterings (patches: 5 heads; "
                  "simclr, backbone: k-means seeds), a reproducibility check only."),
    "ssl_steps": ("integer", 4000, "SimCLR weight updates of batch 128 (--features=simclr, "
                  "or the second view of --features=patches --agreement=views): as many "
                  "epochs as that makes, about 10 min on 2 CPU cores whatever the number of "
                  "images."),
    "backbone": ("string", "", "--features=backbone: a Keras model file (.keras) mapping "
                 "float RGB images in [0, 255] to a feature vector (or a map, average-pooled) "
                 "per image; preprocessing inside the model. Images are read at --image_size "
                 "(folders: 32 by default; e.g. 224 for an ImageNet model) and resized to the "
                 "model's input size if it fixes one."),
    "k_max": ("integer", 6, "Largest k that --k=auto tries."),
    "train": ("bool", False, "Also train on the discovered labels and compare with coarse "
              "training (paired over --seeds seeds)."),
    "seeds": ("integer", 3, "Seeds for --train (seed, seed+1, ...); clustering without "
              "--train uses --seed only."),
}
# Discovery sets these itself (--granularity of a flagfile is ignored: discovery trains on
# the coarse labels, then on the discovered ones).
_SET_BY_DISCOVERY = ("labels_file", "label_noise", "export_dir")


def run(argv=None) -> None:
    from absl import flags
    config_lib.define_flags()
    config_lib.define_tool_flags(DISCOVERY_FLAGS, group="discovery")
    values = flags.FLAGS

    def body(rest):
        cli.check_no_arguments(rest)
        for name in _SET_BY_DISCOVERY:
            if values[name].value != values[name].default:
                cli.fail(f"--{name} is set by lg_tf.discover itself (it writes the labels, "
                         "and each run exports into its own folder); drop it")
        if values.export_only:
            cli.fail("--export_only applies to lg_tf.train; export a discovered run with "
                     "lg_tf.train --export_only --model_dir=OUT/runs/pseudo_fine/seed_<k>")
        if not values.model_dir:
            cli.fail("--model_dir is required: the folder for the discovered labels and runs")
        cfg = config_lib.from_flags(values)
        from lg_tf import discovery
        options = discovery.Options(values.features, values.k, values.k_max, values.train,
                                    values.seeds, values.patch_centroids,
                                    values.ssl_steps, values.agreement,
                                    values.backbone).check()
        if values.only_check_args:
            return 0
        cli.setup_logging("lg_tf.discover")
        from lg_tf import interrupt
        with interrupt.stop_on_signals():
            summary = discovery.run(cfg, values.model_dir, options)
        print(discovery.report_text(summary), end="")
        print(f"written to {values.model_dir}: labels.csv, hierarchy.json, clusters.json, "
              "previews/, discover.md")
        return cli.exit_code(summary)

    groups = {"Discovery": {k: v[2] for k, v in DISCOVERY_FLAGS.items()},
              **config_lib.help_groups()}
    cli.run(body, lambda a: cli.parse_flags(a, groups, __doc__), argv)


if __name__ == "__main__":
    run()
