"""lg_tf: train image classifiers on fine labels, evaluate them on coarse ones.

Code map. Each command is a thin CLI module over a library module that raises, never exits
(`cli.run` maps errors to exit codes, `errors` holds them):
  train -> train_lib (build, fit, evaluate, export one run)   analyze  -> analysis (ACR, t-SNE)
  advise -> advice (should I label finer?)                     discover -> discovery (clusters)
  benchmark (speed); pipelines/ (the paper's experiments).
Runs are planned by `grid` (the multi-run engine used by advise and pipelines) and judged by
`stats` (paired seed differences, bootstrap CIs, ACR; no TensorFlow).

Data stages, in order: `config.Config` -> `hierarchy` (fine names, coarse names, parents)
-> `data.registry` (what each --dataset is) -> `data.datasets.prepare` (load through
`data.sources`, --labels_file, subset, label noise: numpy `data.split.Split`s) ->
`data.pipeline.make_dataset` (tf.data: shuffle, batch, augment, coarse lookup) -> the model
(`models`, which normalises uint8 itself) with `losses`, `metrics` and `optim`.

Where each output is written (in --model_dir unless said):
  config.json, lg_tf_run.json, .lg_tf.lock ............. train_lib._claim, run_dir
  results.json (+ .bak) ................................ results.Results, per epoch
  checkpoints/ ......................................... checkpoints.Checkpointer
  tensorboard/ (scalars, HParams, projector/) .......... callbacks.EpochEnd, hparams, analysis
  confusion.json/.png .................................. analysis.final_analysis
  export/ (SavedModel, or --export_dir) ................ export
  acr_<split>.json, tsne_<split>.png ................... analyze
  labels.csv, hierarchy.json, clusters.json, discover.* . discovery
  advice.json/.md, figures (in the report folder) ........ advice
  report.md, tables, figures per experiment ............. pipelines (report)
Every rewritten file goes through `files.write_text_atomic`/`write_json_atomic`.
"""
