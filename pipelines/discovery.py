"""Can fine labels be found? Discovered (clustered) fine labels against coarse and true fine
training (issue 12; the paper's closing open question).

usage: python -m pipelines.discovery --flagfile=groupings --out_dir=DIR [--seeds=3]
           [--groupings=shapes,shapes_mixed_b] [--sources=penultimate,block,pixels]
           [--ks=2,3,4,6,auto] [--dry_run] [lg_tf flags]

For every grouping (a hierarchy of the dataset; default for the embedded data: the
semantic `shapes` and the mixed `shapes_mixed_b`, whose coarse classes unite dissimilar
shapes) and seed:

1. CC (coarse-trained) and FC (true-fine-trained) runs -- the same runs as
   pipelines.groupings, shared through --out_dir;
2. features of every training and test image from each source (`lg_tf.features`: CC's
   penultimate layer, CC's earlier block, raw pixels), then each coarse class clustered
   into k pseudo-fine classes for each k (`lg_tf.clustering`; auto = best silhouette);
   NMI and ARI against the true fine labels;
3. a run trained on each discovered labelling (`--labels_file`), same budget and seed.

The report gives, per grouping, source and k: NMI, ARI, the discovered run's coarse
accuracy, its paired difference to CC (mean [95% t CI] over seeds) and the share of FC's
gain it recovers, and ACR. When k=auto picks the same labels as a fixed k (same file
content), that run is reused rather than trained twice. Whatever the runs show is the
result. Runs on CIFAR-10/100 (their default hierarchy) wherever TFDS has the data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from typing import Sequence

import numpy as np

from lg_tf import clustering, discovery, stats
from lg_tf import features as features_lib
from lg_tf import files
from lg_tf import grid as grid_lib
from lg_tf.grid import Context
from pipelines import common, report
from pipelines.report import Column, Table

log = logging.getLogger("lg_tf.grid")

NAME = "discovery"
TITLE = "Discovered fine labels: do clustered pseudo-fine classes recover the fine-label gain?"
KS = ("2", "3", "4", "6", "auto")


def check(base, sources: Sequence[str], ks: Sequence[str]) -> list:
    if base.dataset not in ("embedded", "cifar10", "cifar100"):
        raise grid_lib.PipelineError(f"pipelines.discovery runs on the embedded data and "
                                   f"CIFAR; for --dataset={base.dataset} use lg_tf.discover")
    if base.labels_file:
        raise grid_lib.PipelineError("--labels_file does not apply: the pipeline writes the "
                                   "discovered labels itself")
    for s in sources:
        features_lib.check_source(s)
        if s == "backbone":   # needs a file the pipeline has no flag for; refused up front
            raise grid_lib.PipelineError("--sources=backbone is not compared here (it needs "
                                         "--backbone=F.keras); use lg_tf.discover "
                                         "--features=backbone --backbone=F.keras")
    if not sources or not ks:
        raise grid_lib.PipelineError("--sources and --ks need at least one value each")
    return [clustering.parse_k(k) for k in ks]


def base_specs(base, groupings: Sequence[str]) -> list[grid_lib.RunSpec]:
    specs = []
    for g in groupings:
        for gran, series in (("coarse", "CC"), ("fine", "FC")):
            specs.append(grid_lib.spec(base, f"{series} {g}", {"series": series, "grouping": g},
                                     granularity=gran, **common.grouping_overrides(g)))
    return specs


def labels_dir(ctx: Context, grouping: str, seed: int) -> str:
    return os.path.join(ctx.out_dir, "discovery", f"h-{grouping}", f"seed_{seed}")


def stem(source: str, k) -> str:
    return f"{source}_k{k}"


# --------------------------------------------------------------------------- clustering

def cluster_all(base, ctx: Context, grouping: str, seed: int, cc_dir: str,
                sources: Sequence[str], ks: Sequence) -> dict:
    """{(source, k): {"labels": path, "summary": ...}} for one grouping and seed; files
    already written are reused (clustering is deterministic for a seed)."""
    cfg = dataclasses.replace(base, seed=seed, **common.grouping_overrides(grouping))
    data = discovery.load_images(cfg, seed)
    out_dir = labels_dir(ctx, grouping, seed)
    found = {}
    for source in sources:
        feats = None
        for k in ks:
            path = os.path.join(out_dir, f"{stem(source, k)}.csv")
            summary_path = os.path.join(out_dir, f"{stem(source, k)}.clusters.json")
            if not (os.path.exists(path) and os.path.exists(summary_path)):
                if feats is None:
                    feats = discovery.seed_features(data, source, cc_dir, out_dir)
                result = discovery.cluster_data(data, feats, source, k, seed, KMAX)
                discovery.write_result(result, out_dir, stem=stem(source, k))
            found[(source, k)] = {"labels": path,
                                  "summary": files.read_json(summary_path)}
            log.info("%s seed %d %s k=%s: NMI %.3f ARI %.3f", grouping, seed, source, k,
                     found[(source, k)]["summary"]["agreement"]["train"]["nmi"],
                     found[(source, k)]["summary"]["agreement"]["train"]["ari"])
    return found


KMAX = 6


def _finished(ctx: Context, spec: grid_lib.RunSpec, base) -> bool:
    cfg = grid_lib.make_config(base, spec, base.seed, ctx.epochs_scale)
    return grid_lib.run_status(grid_lib.model_dir(ctx, spec, base.seed), cfg) == "done"


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------- the grid

def discovered_spec(base, grouping: str, source: str, k, labels: str) -> grid_lib.RunSpec:
    return grid_lib.spec(base, f"D {grouping} {source} k={k}",
                       {"series": "D", "grouping": grouping, "source": source, "k": str(k)},
                       granularity="fine", labels_file=labels,
                       **common.grouping_overrides(grouping))


def run(base, ctx: Context, groupings=None, sources=features_lib.COARSE_RUN_SOURCES, ks=KS,
        train_ks=None) -> dict:
    """`train_ks` (default: all of `ks`): the k whose labels are trained on; the others are
    clustered and scored (NMI, ARI) only, and reported with their runs where those were
    finished earlier (e.g. by a run with other --sources)."""
    ks = check(base, sources, ks)
    train_ks = {str(clustering.parse_k(k)) for k in (train_ks or ks)}
    if not train_ks <= {str(k) for k in ks}:
        raise grid_lib.PipelineError(f"--train_ks={','.join(sorted(train_ks))} must be among "
                                   f"--ks={','.join(map(str, ks))}")
    _check_modes(ctx)
    groupings = common.groupings_for(base, groupings)
    specs = base_specs(base, groupings)
    runs = grid_lib.run_grid(NAME + " (CC and FC)", base, specs, ctx)
    if runs is None:   # --dry_run: the discovered runs depend on the clustering
        print(f"then per grouping and seed: {len(sources)} feature source(s) x {len(ks)} "
              f"k = up to {len(sources) * len(train_ks)} trainings on discovered labels "
              f"({len(groupings) * ctx.seeds * len(sources) * len(train_ks)} in all)")
        return {"specs": specs, "runs": None, "report": None}
    found = {"agreement": {}, "results": {}, "specs": {}}
    for g in groupings:
        cc = next(s for s in specs if s.tag == {"series": "CC", "grouping": g})
        for seed in ctx.seed_list(base):
            train_discovered(base, ctx, g, seed, grid_lib.model_dir(ctx, cc, seed), sources,
                             ks, train_ks, found)
    for spec in found["specs"].values():
        runs[spec.name] = found["results_by_name"][spec.name]
    report_path = write(base, ctx, groupings, sources, ks, specs, runs, found)
    return {"specs": specs, "runs": runs, "report": report_path}


def _check_modes(ctx: Context) -> None:
    if getattr(ctx, "sharded", False) or getattr(ctx, "print_commands", False) or getattr(
            ctx, "report_only", False):
        raise grid_lib.PipelineError(
            "pipelines.discovery clusters on its own coarse runs between trainings, so its "
            "grid is not known in advance: run it on one machine, without --shard, "
            "--print_commands or --report_only")


def train_discovered(base, ctx: Context, g: str, seed: int, cc_dir: str, sources, ks,
                     train_ks: set, found: dict) -> None:
    """Clusters one grouping and seed, trains each distinct labelling, records results in
    `found`: agreement[(g, source, k)], results[(g, source, k)] (per seed), specs."""
    labelled = cluster_all(base, ctx, g, seed, cc_dir, sources, ks)
    seed_base = dataclasses.replace(base, seed=seed)
    seed_ctx = dataclasses.replace(ctx, seeds=1, planned=[])
    candidates = []   # (item, its spec, labels digest, run finished)
    for (source, k), item in labelled.items():
        found["agreement"].setdefault((g, source, str(k)), []).append(item["summary"])
        spec = discovered_spec(seed_base, g, source, k, os.path.abspath(item["labels"]))
        finished = _finished(seed_ctx, spec, seed_base)
        if str(k) in train_ks or finished:   # else scored only
            candidates.append((item, spec, _digest(item["labels"]), finished))
    # k=auto may choose a fixed k's exact labels: one run per labelling, a finished one
    # when there is one.
    owner: dict = {}
    for _, spec, digest, _ in sorted(candidates, key=lambda c: not c[3]):
        owner.setdefault(digest, spec)
    to_train = [spec for _, spec, digest, _ in candidates if owner[digest] is spec]
    for item, _, digest, _ in candidates:
        item["spec"] = owner[digest]
    done = grid_lib.run_grid(f"{NAME} ({g}, seed {seed})", dataclasses.replace(base, seed=seed),
                           to_train, seed_ctx)
    by_name = found.setdefault("results_by_name", {})
    for spec in to_train:
        by_name.setdefault(spec.name, []).extend(done[spec.name])
        found["specs"].setdefault(spec.name, spec)
    for (source, k), item in labelled.items():
        if "spec" not in item:
            continue
        if item["spec"].tag["k"] != str(k):
            log.info("%s seed %d %s k=%s: the same labels as k=%s, that run is reused", g,
                     seed, source, k, item["spec"].tag["k"])
        found["results"].setdefault((g, source, str(k)), []).extend(done[item["spec"].name])


# --------------------------------------------------------------------------- report

PCT = (0.0, 100.0)  # an accuracy's range: intervals past it are shown clipped


def rows_for(g: str, specs, runs, found, sources, ks) -> tuple[list, list]:
    cc_spec = next(s for s in specs if s.tag == {"series": "CC", "grouping": g})
    fc_spec = next(s for s in specs if s.tag == {"series": "FC", "grouping": g})
    cc_runs, fc_runs = runs[cc_spec.name], runs[fc_spec.name]
    cc, fc = common.per_seed(cc_runs), common.per_seed(fc_runs)
    seeds = sorted(set(cc) & set(fc))
    fc_gain = common.gain(fc_runs, cc_runs)
    table = [[g, "CC (coarse labels)", "–", "–", "–",
              stats.interval_text(common.accuracy(cc_runs), bounds=PCT), "–", "–", "–"],
             [g, "FC (true fine labels)", "–", "–", "–",
              stats.interval_text(common.accuracy(fc_runs), bounds=PCT),
              stats.interval_text(fc_gain, signed=True),
              "100%" if fc_gain.low is not None and fc_gain.low > 0 else "–",
              common.acr_cell(runs[fc_spec.name])]]
    settings = []
    for source in sources:
        for k in ks:
            key = (g, source, str(k))
            summaries = found["agreement"].get(key, [])
            d_results = found["results"].get(key, [])
            d = common.per_seed(d_results)
            trained = key in found["results"]
            both = [s for s in seeds if s in d]
            gain = (stats.paired_difference([d[s] for s in both], [cc[s] for s in both])
                    if both else None)
            share = (f"{100 * gain.mean / fc_gain.mean:.0f}%"
                     if gain is not None and fc_gain.low is not None and fc_gain.low > 0
                     else "–")
            ks_chosen = [np.mean([c["k"] for c in s["per_coarse"]]) for s in summaries]
            table.append([g, f"{source}, k={k}", _k_text(k, ks_chosen),
                          stats.interval_text(stats.mean_ci([s["agreement"]["train"]["nmi"]
                                             for s in summaries]), 3) if summaries else "–",
                          stats.interval_text(stats.mean_ci([s["agreement"]["train"]["ari"]
                                             for s in summaries]), 3) if summaries else "–",
                          stats.interval_text(stats.mean_ci([d[s] for s in both]),
                                              bounds=PCT) if both else
                          ("–" if trained else "not trained"),
                          stats.interval_text(gain, signed=True), share,
                          common.acr_cell(d_results)])
            if trained:
                settings.append({"grouping": g, "source": source, "k": str(k), "gain": gain,
                                 "fc_gain": fc_gain, "share": share})
    return table, settings


def _k_text(k, chosen: list) -> str:
    if k != clustering.AUTO or not chosen:
        return str(k)
    return f"{np.mean(chosen):.2f} (mean per coarse class)"


def findings_for(found: list[dict], nmi: dict) -> list[str]:
    """Per grouping: FC's gain, how many discovered labellings beat or trail CC, and the
    plain answer -- do they recover part of FC's gain? `nmi`: {(grouping, source): [NMI]}."""
    out = []
    for g in dict.fromkeys(f["grouping"] for f in found):
        rows = [f for f in found if f["grouping"] == g and f["gain"] is not None]
        if not rows:
            continue
        fc_gain = rows[0]["fc_gain"]
        out.append(f"{g}: true fine labels vs coarse: "
                   + stats.verdict(fc_gain, what="true fine labels"))
        helped = [f for f in rows if f["gain"].low is not None and f["gain"].low > 0]
        hurt = [f for f in rows if f["gain"].high is not None and f["gain"].high < 0]
        out.append(f"{g}: discovered labels beat coarse training (95% CI above 0) in "
                   f"{len(helped)} of {len(rows)} settings{_names(helped)}; are worse than "
                   f"coarse training (CI below 0) in {len(hurt)}{_names(hurt)}.")
        out.append(f"{g}: " + _answer(rows, fc_gain, helped))
        sources = [s for (gg, s) in nmi if gg == g]
        if sources:
            out.append(f"{g}: agreement with the true fine labels, mean NMI over k and seeds: "
                       + ", ".join(f"{s} {np.mean(nmi[(g, s)]):.2f}" for s in sources) + ".")
    return out


def _answer(rows: list[dict], fc_gain, helped: list[dict]) -> str:
    best = max(rows, key=lambda f: f["gain"].mean)
    best_text = (f"the best discovered labelling, {best['source']} k={best['k']}, gives "
                 f"{stats.interval_text(best['gain'], 1, signed=True)} points")
    if fc_gain.low is None or fc_gain.low <= 0:
        return (f"true fine labels show no detectable gain here, so there is none to "
                f"recover; {best_text}.")
    if helped:
        return (f"discovered labels recover part of FC's gain: {_names(helped).strip(' ()')}"
                f" ({', '.join(f['share'] for f in helped)} of it).")
    return (f"no discovered labelling recovers a detectable part of FC's "
            f"{fc_gain.mean:+.1f}-point gain: {best_text} ({best['share']} of FC's gain), "
            "a 95% CI that includes 0 with these seeds.")


def _names(rows: list[dict]) -> str:
    return f" ({', '.join(r['source'] + ' k=' + r['k'] for r in rows)})" if rows else ""


def figure(path: str, found: list[dict], sources, ks) -> str:
    """ΔA = D − CC per k, one series per source, one panel per grouping; FC − CC as a band."""
    from lg_tf import plots as lg_plots
    groupings = list(dict.fromkeys(f["grouping"] for f in found))
    fig = lg_plots.canvas((5.2 * len(groupings), 4.2))
    for i, g in enumerate(groupings, 1):
        ax = fig.add_subplot(1, len(groupings), i)
        rows = [f for f in found if f["grouping"] == g]
        fc = rows[0]["fc_gain"]
        if fc.low is not None:
            ax.axhspan(fc.low, fc.high, color="0.6", alpha=0.25, label="FC − CC (95% CI)")
        ax.axhline(fc.mean, color="0.4", lw=1)
        ax.axhline(0, color="black", lw=0.6)
        width = 0.8 / len(sources)
        for j, source in enumerate(sources):
            xs, ys, errs = [], [], []
            for x, k in enumerate(ks):
                f = next((r for r in rows if r["source"] == source and r["k"] == str(k)), None)
                if f and f["gain"] is not None:
                    xs.append(x - 0.4 + width * (j + 0.5))
                    ys.append(f["gain"].mean)
                    errs.append(0.0 if f["gain"].low is None else f["gain"].high - f["gain"].mean)
            ax.errorbar(xs, ys, yerr=errs, fmt="o", capsize=3, label=source)
        ax.set_xticks(range(len(ks)), [f"k={k}" for k in ks])
        ax.set_ylabel("ΔA = discovered − CC (points)")
        ax.set_title(g, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Coarse accuracy gain of training on discovered labels (95% CI over seeds)",
                 fontsize=10)
    lg_plots.save(fig, path)
    return path


def _nmi_by_source(found: dict) -> dict:
    out: dict = {}
    for (g, source, _), summaries in found["agreement"].items():
        out.setdefault((g, source), []).extend(
            s["agreement"]["train"]["nmi"] for s in summaries if s["agreement"])
    return {k: v for k, v in out.items() if v}


def write(base, ctx, groupings, sources, ks, specs, runs, found) -> str:
    table_rows, settings = [], []
    for g in groupings:
        rows, f = rows_for(g, specs, runs, found, sources, ks)
        table_rows += rows
        settings += f
    table = Table([Column("grouping"), Column("labels"), Column("k"), Column("NMI"),
                   Column("ARI"), Column("coarse acc (%)"), Column("ΔA vs CC (points)"),
                   Column("share of FC's gain"), Column("ACR: mean (min–max)")],
                  table_rows, title="Coarse test accuracy by training labels (mean [95% CI] "
                  "over seeds)", csv="discovery.csv")
    fig = figure(os.path.join(ctx.report_dir, "discovery_gain.png"), settings, sources,
                 [str(k) for k in ks])
    all_specs = list(specs) + list(found["specs"].values())
    notes = [
        "NMI/ARI compare the discovered labels of the training images with the true fine "
        "labels (sklearn normalized_mutual_info_score, adjusted_rand_score); 1 = recovered.",
        "ΔA is the mean of per-seed paired differences to the coarse-trained run of the "
        "same seed (which also supplied the model features); Student-t 95% CI.",
        "Share of FC's gain = mean ΔA / mean (FC − CC), shown only where FC's gain has a "
        "CI above 0.",
        f"k=auto: per coarse class, the k in 2..{KMAX} with the highest mean silhouette.",
        "Groupings (embedded default): the semantic `shapes` and `shapes_mixed_b`, the one "
        "mixed grouping whose FC beat CC in pipelines.groupings (docs/results/groupings) -- "
        "a grouping where true fine labels help, as the question needs; both fixed before "
        "any discovery run. CC and FC are the same runs as in that report.",
        "When k=auto chose exactly a fixed k's labels (same file), that run is reported for "
        "both rows.",
        "Clustering: per coarse class, L2-normalised features, PCA to at most "
        f"{clustering.PCA_DIMS} dimensions, k-means (n_init=10), seed = the run's seed.",
    ]
    return report.write_report(
        NAME, TITLE, base, ctx, all_specs, runs, [table],
        findings_for(settings, _nmi_by_source(found)),
        [(os.path.basename(fig), "ΔA of training on discovered labels vs coarse training, "
          "per feature source and k; the grey band is FC − CC.")],
        None, "the paper's open question (Sec. VI)", notes=notes, in_paper=False,
        seeds_text="accuracies and ΔA show mean [95% Student-t CI] over seeds")


EXTRA_FLAGS = {
    "groupings": ("list", [], "Hierarchies to discover in (default: shapes,shapes_mixed_b "
                  "on the embedded data, the dataset's own hierarchy otherwise)."),
    "sources": ("list", list(features_lib.COARSE_RUN_SOURCES), "Feature sources to compare (the "
                "embedded report: penultimate, block, pixels)."),
    "ks": ("list", list(KS), "Pseudo-fine classes per coarse class (numbers and/or auto)."),
    "train_ks": ("list", [], "The --ks whose labels are trained on (default: all); the "
                 "others are clustered and scored (NMI, ARI) only (runs of them finished "
                 "earlier are still reported)."),
}


def main(values, base, ctx):
    grid_lib.print_report(run(base, ctx, list(values.groupings) or None, list(values.sources),
                            list(values.ks), list(values.train_ks) or None))


if __name__ == "__main__":
    grid_lib.entry_point(__doc__, main, EXTRA_FLAGS)
