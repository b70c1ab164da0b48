"""jaxmix's default job, offline: train with CutMix, evaluate, draw.

  python -m jaxmix.apps.demo --workdir workdir/demo

Runs from any directory (the recipes ship with jaxmix). Nothing is
downloaded: the data is `digit_scenes` (`jaxmix.datasets.digit_scenes`), scenes
of 1-3 handwritten digits from scikit-learn on cluttered backgrounds, whose
one label is the largest digit.

The default job prepares the data in `WORKDIR/data` (once, ~30 s), trains
`configs/digits/cutmix.py` in `WORKDIR/cutmix` (checkpoints, metrics.jsonl,
TensorBoard events; a second call resumes or, when done, only evaluates),
runs the 'digits' evaluation suite on the test split (top-1, multi-label
top-1, top-1 under occlusion, CAM localisation against the true boxes) and
writes pictures: the augmentation preview, the training curves, CAMs with
predicted and true boxes, and the occlusion curve.

The study behind the README's tables (every recipe at three object sizes,
over seeds) is `projects/digit_study/` (not part of the installed package).

`--smoke` shrinks everything to seconds (digit_scenes 'small', a tiny CNN,
two short epochs) for tests.
"""

import os

from absl import flags

from jaxmix.apps import command_line, digit_runs
from jaxmix.apps.digit_runs import COLUMN_NAMES, COLUMNS
from jaxmix.io import paths

DEFAULT_RECIPE = 'cutmix'

FLAGS = flags.FlagValues()
flags.DEFINE_string('workdir', None, 'Output directory.', flag_values=FLAGS)
flags.DEFINE_bool(
  'smoke', False, 'Tiny data and model (seconds).', flag_values=FLAGS
)
flags.mark_flag_as_required('workdir', flag_values=FLAGS)


def draw(run_dir: str) -> list[str]:
  """The augmentation previews (images, VideoMix) and training curves."""
  from jaxmix.apps import preview
  from jaxmix.evaluate import plots

  # Written through jaxmix.io.paths (folders made there): URLs work too.
  pictures = os.path.join(run_dir, 'pictures')
  out = os.path.join(pictures, 'augment_preview.png')
  video_out = os.path.join(pictures, 'videomix_preview.png')
  preview.main(['--out', out, '--size', '128', '--video_out', video_out])
  curves = plots.plot_training_curves(
    {os.path.basename(run_dir): os.path.join(run_dir, 'metrics.jsonl')},
    os.path.join(pictures, 'training_curves.png'),
  )
  return [out, video_out, curves]


def default_job(workdir: str, *, smoke: bool = False) -> dict:
  """Prepare, train CutMix, evaluate, draw; returns the digits metrics."""
  data_dir = os.path.join(workdir, 'data')
  digit_runs.prepare_data(data_dir, smoke=smoke)
  config = digit_runs.load_recipe(DEFAULT_RECIPE, smoke=smoke)
  config.data.data_dir = data_dir
  run_dir = os.path.join(workdir, DEFAULT_RECIPE)
  seconds = digit_runs.train(config, run_dir)
  result = digit_runs.evaluate(run_dir, data_dir, smoke=smoke)
  pictures = draw(run_dir)
  eval_dir = os.path.join(run_dir, 'eval')
  pictures += sorted(os.fspath(p) for p in paths.resolve(eval_dir).iterdir())
  metrics = result['metrics']
  print(f'\nTrained {run_dir} in {seconds:.0f} s (step {result["step"]}).')
  for column, name in zip(COLUMNS, COLUMN_NAMES):
    value = metrics.get(column.split('/')[1])
    if isinstance(value, float):
      print(f'  {name:>22}: {100 * value:6.2f} %')
  print(f'Checkpoints: {os.path.join(run_dir, "checkpoints")}')
  print(f'TensorBoard: tensorboard --logdir {run_dir}')
  print('Pictures:\n  ' + '\n  '.join(p for p in pictures if p.endswith('png')))
  return metrics


def main(argv: list[str] | None = None) -> None:
  command_line.parse(FLAGS, argv, __doc__)
  from jaxmix.train import metrics_log

  metrics_log.log_to_console()  # the trainer's progress lines
  workdir = os.fspath(paths.resolve(FLAGS.workdir))  # a URL stays a URL
  default_job(workdir, smoke=FLAGS.smoke)


if __name__ == '__main__':
  main()
