"""The evaluation suites: one protocol of the papers each, over a `Run`.

- `jaxmix.evaluate.suites.registry`: `SUITES` (name -> suite) and
  `evaluate_run`, which runs one suite and writes `RUN/eval/<suite>.json`.
- `jaxmix.evaluate.suites.common`: what every suite shares (`SuiteArgs`,
  the run's eval set, predictions over padded batches, top-k metrics).
- One module per family: `imagenet`, `robustness`, `localization`,
  `backgrounds`, `transfer`, `long_tail`.

The measures they report are pure functions in `jaxmix.evaluate`
(`metrics`, `robustness`, `ood`, `localization`, `imagenet_c`); the batches
come from `jaxmix.data.eval_batches`. Importing this package imports no
suite.
"""
