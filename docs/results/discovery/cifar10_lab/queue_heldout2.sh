#!/bin/bash
# Held-out evaluation, every setting fixed on dev (eval_cand.py, lg_tf.cluster_heads); no tuning.
# LAB: the lab folder (data/, lgtf/, logs/; not committed); REPO: this checkout.
LAB=${LAB:?set LAB to the lab folder}
REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$LAB"
set -x
# C. the port end to end: python -m lg_tf.discover with its defaults (patches + views agreement, k=auto);
#    true k re-clustered from the run's cached features by score_lgtf.py
run_lgtf () {
  out=$LAB/lgtf/$1_default; rm -rf $out
  ( cd $REPO && TIMEFORMAT='%U %S %R'; { time nice -n 5 python -m lg_tf.discover --dataset=folder --data_dir=$LAB/data/$1 --model_dir=$out --image_size=32 > $LAB/logs/lgtf_$1.log 2>&1 ; } 2> $LAB/logs/lgtf_$1.time )
  cpu=$(awk '{print $1+$2}' logs/lgtf_$1.time)
  nice -n 5 python score_lgtf.py $1 $out $cpu >> logs/lgtf_scores.log 2>&1
}
for s in dev h1 h2 h3; do run_lgtf $s; done
# A. patch features (lab, as for dev)
for s in h2 h3; do [ -f cache/kmfeat_${s}_k1600.npz ] || nice -n 5 python try_kmfeat.py $s 1600 > logs/kmf_$s.log 2>&1; done
# B. lab candidates on held-out: kmf_scan (the chosen clustering, heads signal), K2 spectral, lg_tf-old-recipe baselines
for s in h1 h2 h3; do nice -n 5 python eval_cand.py $s > logs/cand_$s.log 2>&1; nice -n 5 python eval_kmf.py $s > logs/eval_kmf_$s.log 2>&1; done
echo done
