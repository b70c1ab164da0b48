"""What the digit study adds to one run of `jaxmix.apps.digit_runs`.

The `--long` regime, a run's logged wall time, and whether its 'digits'
evaluation is of its newest checkpoint (so a resumed study never evaluates
a run twice).
"""

import json

import ml_collections

from jaxmix.io import paths


def long_schedule(config: ml_collections.ConfigDict, *, smoke: bool) -> None:
  """The overfitting regime of `--long`, in place, on a loaded recipe.

  The first 3,000 training scenes (of the 5,000 of the 'medium' and
  'imagenet' configs, the 10,000 of 'default'), the CNN twice as wide (4x
  the parameters: 298k) and 60 epochs: the baseline fits its training
  labels (98 % train top-1) instead of underfitting them as in 6 epochs.
  A smoke recipe (`digit_runs.load_recipe(..., smoke=True)`) keeps its tiny
  model and two epochs and trains on 30 % of 'small''s 256 scenes.
  """
  if smoke:
    config.data.train_split = 'train[:30%]'
    return
  config.data.train_split = 'train[:3000]'
  config.model.kwargs.width = 32
  config.num_epochs = 60
  config.eval_every_epochs = 20


def logged_seconds(run_dir: str) -> float:
  """Wall time between the first and last rows of `RUN/metrics.jsonl`.

  The run's own training and evaluation time, also when it was resumed or
  trained by an earlier call (without start-up and the first compilation).
  """
  text = paths.read_text(paths.resolve(run_dir) / 'metrics.jsonl')
  times = [
    json.loads(line)['time'] for line in text.splitlines() if line.strip()
  ]
  return max(times) - min(times) if times else 0.0


def evaluated(run_dir: str) -> bool:
  """Whether `RUN/eval/digits.json` is of the run's latest checkpoint.

  Results of an older evaluation (CAM threshold not yet chosen on the
  validation split: no 'top1_loc_threshold') count as not evaluated.
  """
  run = paths.resolve(run_dir)
  path = run / 'eval' / 'digits.json'
  if not path.exists():
    return False
  found = json.loads(paths.read_text(path))
  step = found.get('step')
  if 'top1_loc_threshold' not in found.get('metrics', {}):
    return False
  names = [p.name for p in (run / 'checkpoints').iterdir()]
  return step == max((int(n) for n in names if n.isdigit()), default=None)
