"""The evaluation suites: one protocol of the papers each, over a `Run`.

`SUITES` maps a suite name to `fn(run, args) -> dict`; the dict has
'metrics' (flat name -> number, the table columns), optionally 'curves'
(name -> {x name: [...], y name: [...]}), 'dataset', 'split', and private
keys starting with '_' (arrays for pictures, never written to JSON).
`evaluate_run` runs one suite, writes `<suite>.json` to `args.out` (default
`RUN/eval`) and returns the result. The directory is proved writable before
the suite starts, and the file is written whole or not at all, so a
read-only run directory fails at once instead of after the computation. Datasets are opened with `jaxmix.data.tfds_source` and read
with `jaxmix.data.eval_batches`, so a dataset that is not prepared gives an
error saying how to prepare it.

Multi-host: every process runs the same suite on its own slice of the data
and gets the same result; only process 0 writes the JSON and the pictures.
The in-between-class suite pairs examples by their position in the split,
so its numbers too are those of one process.

ImageNet-family suites: 'imagenet', 'real', 'v2', 'multilabel',
'imagenet_a', 'imagenet_r', 'sketch', 'imagenet_c' (in
`jaxmix.evaluate.suites.imagenet`); the Backgrounds Challenge:
'backgrounds', 'backgrounds_challenge' (in
`jaxmix.evaluate.suites.backgrounds`). On the run's own eval set: 'occlusion',
'in_between', 'fgsm', 'ood' (in `jaxmix.evaluate.suites.robustness`).
Localisation: 'wsol', 'digits' (in `jaxmix.evaluate.suites.localization`).
Transfer: 'transfer', a fine-tuned run on its own test split (in
`jaxmix.evaluate.suites.transfer`).
"""

import json

import numpy as np

from jaxmix.evaluate.multihost import is_primary
from jaxmix.evaluate.runs import Run, results_dir
from jaxmix.evaluate.suites import (
  backgrounds,
  imagenet,
  localization,
  long_tail,
  robustness,
  transfer,
)
from jaxmix.evaluate.suites.common import (
  SuiteArgs,
  SuiteFn,
  batch_size_for,
  data_dir_for,
  eval_set,
  predict,
  top_k_metrics,
)
from jaxmix.io import paths

__all__ = [
  'SUITES',
  'SuiteArgs',
  'SuiteFn',
  'batch_size_for',
  'data_dir_for',
  'eval_set',
  'evaluate_run',
  'predict',
  'top_k_metrics',
]


def _jsonable(value):
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items() if str(k)[:1] != '_'}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return _jsonable(value.tolist())
  if isinstance(value, (np.floating, float)):
    return None if np.isnan(value) else float(value)
  if isinstance(value, np.integer):
    return int(value)
  return value


def evaluate_run(run: Run, suite: str, args: SuiteArgs | None = None) -> dict:
  """Runs `suite` on `run` and writes `<suite>.json` to `jaxmix.evaluate.runs.results_dir`.

  Under `jax.distributed` every process must call it (the suites gather
  results from all processes); only process 0 writes.

  Returns:
    The suite's result with 'suite', 'run', 'workdir', 'step', 'method',
    'use_ema' and 'json' (the path process 0 writes) added; private '_'
    keys stay in the returned dict but not in the file.

  Raises:
    PermissionError: the results directory is not writable (checked before
      the suite runs).
  """
  if suite not in SUITES:
    raise ValueError(f'Unknown suite {suite!r}; suites: {sorted(SUITES)}.')
  args = args or SuiteArgs()
  directory = results_dir(run.workdir, args.out)
  if is_primary():
    paths.check_writable(directory)
  result = SUITES[suite](run, args)
  result.update(
    suite=suite,
    run=run.name,
    workdir=run.workdir,
    step=run.step,
    method=run.method,
    use_ema=run.use_ema,
  )
  path = directory / f'{suite}.json'
  if is_primary():
    paths.write_text(path, json.dumps(_jsonable(result), indent=2) + '\n')
  result['json'] = str(path)
  return result


SUITES: dict[str, SuiteFn] = {
  **imagenet.SUITES,
  **robustness.SUITES,
  **localization.SUITES,
  **backgrounds.SUITES,
  **transfer.SUITES,
  **long_tail.SUITES,
}
