"""Re-clusters a finished lg_tf.discover folder's cached features at a fixed k (lg_tf's own
cluster_data and write_result) into a new folder: labels.csv, hierarchy.json, clusters.json.
usage: python recluster.py DISCOVER_DIR OUT_DIR K -- <the lg_tf flags of the discovery>"""
import io, os, sys
import numpy as np
from absl import flags
from lg_tf import config as config_lib, discovery, files
from lg_tf.data import datasets


def main(src, out, k, argv):
    config_lib.define_flags()
    flags.FLAGS(["recluster"] + argv)
    cfg = config_lib.from_flags(flags.FLAGS)
    data = discovery.load_images(cfg, 0)
    with np.load(os.path.join(src, "seeds", "seed_0", "features_simclr.npz")) as f:
        feats = {n: f[n] for n in f.files}
    root = datasets.DATASETS[cfg.dataset].root(cfg)
    from lg_tf import clustering
    result = discovery.cluster_data(data, feats, "simclr", clustering.parse_k(k), 0, 6, root)
    files.makedirs(out)
    discovery.write_result(result, out, data)
    print(result.summary())


if __name__ == "__main__":
    i = sys.argv.index("--")
    main(*sys.argv[1:4], sys.argv[i + 1:])
