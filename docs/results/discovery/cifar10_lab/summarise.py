"""Markdown tables from results/*.jsonl (dev and held-out). usage: summarise.py"""
import json, glob, collections, numpy as np
def load(p):
    try: return [json.loads(l) for l in open(p)]
    except FileNotFoundError: return []
SET = ["dev", "h1", "h2", "h3"]
cand = {s: load(f"results/cand_{s}.jsonl") for s in SET}
res = load("results/results.jsonl")
lg = load("results/lgtf.jsonl")
def last(rows, **kw):
    out = {}
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            out[(r["coarse"], r["k"])] = r
    return out
print("## chosen clustering (kmf_scan), lab features: true k and auto (argmax head agreement)\n")
print("| setup | coarse | k true | ARI at true k | head agr. | auto k | ARI at auto | sizes (true k) | CPU s (clustering, all k) |")
print("|---|---|---|---|---|---|---|---|---|")
for s in SET:
    rows = last(cand[s], method="kmf_scan")
    for c in sorted({c for c, _ in rows}):
        per = {k: r for (cc, k), r in rows.items() if cc == c}
        kt = next(iter(per.values()))["k_true"]
        ka = max(per, key=lambda k: (per[k]["signal_heads"], -k))
        print(f"| {s} | {c} | {kt} | {per[kt]['ari']:.3f} | {per[kt]['signal_heads']:.3f} | {ka} | {per[ka]['ari']:.3f} | {per[kt]['sizes']} | {sum(r['cpu_s'] for r in per.values()):.0f} |")
print("\n## baselines (lab, results.jsonl)\n")
print("| setup | method | coarse | mode | k | ARI | sizes |")
print("|---|---|---|---|---|---|---|")
for r in res:
    if r.get("kind") in ("dev", "heldout") and r["method"] in ("K2_spectral_kmf", "B0_lgtf_pixels", "B1_lgtf_kmf"):
        print(f"| {r['setup']} | {r['method']} | {r['coarse']} | {r['mode']} | {r['k']} | {r['ari']:.3f} | {r['sizes']} |")
print("\n## lg_tf.discover end to end (default: patches, views agreement)\n")
print("| setup | coarse | mode | k (true) | ARI | agreement | verdict | sizes | SimCLR view alone ARI | CPU s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in lg:
    if r["setup"] == "smoke": continue
    cpu = r.get("cpu_s_whole_run", r.get("cpu_s_recluster"))
    print(f"| {r['setup']} | {r['coarse']} | {r['mode']} | {r['k']} ({r['k_true']}) | {r['ari']:.3f} | {r['agreement']:.3f} | {r['verdict'].split(':')[0].split('(')[0].strip()} | {r['sizes']} | {r.get('ari_simclr_view_kmeans','')} | {cpu} |")
