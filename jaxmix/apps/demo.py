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

What it prints: a line as each stage starts, one every 15 s while a stage
that has no progress of its own runs (data, evaluation, pictures), the
trainer's progress lines, and the results. The libraries' own chatter
(TFDS's dataset banner and progress bars, orbax's and TensorFlow's Python
log lines below ERROR, TensorFlow's C++ start-up lines) is hidden;
`--verbose` shows it, and a stage that fails shows what it hid.
"""

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from absl import flags

from jaxmix.apps import digit_runs
from jaxmix.apps.digit_runs import COLUMN_NAMES, COLUMNS
from jaxmix.io import command_line, paths

DEFAULT_RECIPE = 'cutmix'

FLAGS = flags.FlagValues()
flags.DEFINE_string('workdir', None, 'Output directory.', flag_values=FLAGS)
flags.DEFINE_bool(
  'smoke', False, 'Tiny data and model (seconds).', flag_values=FLAGS
)
flags.DEFINE_bool(
  'verbose',
  False,
  "Also show the libraries' own output (TFDS, orbax, TensorFlow).",
  flag_values=FLAGS,
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


# Libraries whose log lines a demo user does not need (their errors show).
_QUIET_LIBRARIES = ('orbax', 'tensorflow_datasets', 'tensorflow')


def _library_chatter(record: logging.LogRecord) -> bool:
  """False for the quiet libraries' records below ERROR."""
  path = record.pathname.replace(os.sep, '/')
  return record.levelno >= logging.ERROR or not any(
    f'/{name}/' in path for name in _QUIET_LIBRARIES
  )


def quiet_libraries() -> None:
  """Hides TFDS's progress bars and orbax's, TFDS's and TF's log lines."""
  from absl import logging as absl_logging

  absl_logging.get_absl_logger().addFilter(_library_chatter)
  logging.getLogger('tensorflow').setLevel(logging.ERROR)
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()


@contextlib.contextmanager
def _stderr_fd_into(into: io.BytesIO) -> Iterator[None]:
  """Sends file descriptor 2 to `into` while the block runs.

  TensorFlow's C++ start-up lines ("oneDNN custom operations are on", the
  absl::InitializeLog notice) go straight to the descriptor, past every
  Python-level setting and past `TF_CPP_MIN_LOG_LEVEL`.
  """
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as sink:
    os.dup2(sink.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      sink.seek(0)
      into.write(sink.read())


@contextlib.contextmanager
def stage(
  what: str, *, every: float = 15.0, hide_output: bool = False
) -> Iterator[None]:
  """Prints `what`, then a line every `every` seconds until it is done.

  With `hide_output`, what the stage prints is dropped, its Python output
  (TFDS prints its "Downloading and preparing dataset Unknown size" banner,
  misleading for an offline build) and what native code writes to the
  standard error (TensorFlow's C++ start-up lines), unless it fails, when
  all of it is shown.
  """
  start = time.perf_counter()
  print(f'{what} ...', flush=True)
  done = threading.Event()

  def beat() -> None:
    while not done.wait(every):
      elapsed = time.perf_counter() - start
      print(f'  ... {elapsed:.0f} s', file=sys.__stdout__)
      sys.__stdout__.flush()

  thread = threading.Thread(target=beat, daemon=True)
  thread.start()
  captured, native = io.StringIO(), io.BytesIO()
  try:
    with contextlib.ExitStack() as hidden:
      if hide_output:
        hidden.enter_context(contextlib.redirect_stdout(captured))
        hidden.enter_context(_stderr_fd_into(native))
      yield
  except BaseException:
    sys.stdout.write(captured.getvalue())
    sys.stderr.write(native.getvalue().decode(errors='replace'))
    raise
  finally:
    done.set()
    thread.join()
  print(f'  done in {time.perf_counter() - start:.0f} s', flush=True)


def default_job(
  workdir: str, *, smoke: bool = False, verbose: bool = True
) -> dict:
  """Prepare, train CutMix, evaluate, draw; returns the digits metrics.

  With `verbose=False` the data preparation's own output is hidden.
  """
  data_dir = os.path.join(workdir, 'data')
  with stage(
    f'Preparing digit_scenes in {data_dir} (offline; about a minute the '
    'first time, nothing to do after)',
    hide_output=not verbose,
  ):
    digit_runs.prepare_data(data_dir, smoke=smoke)
  config = digit_runs.load_recipe(DEFAULT_RECIPE, smoke=smoke)
  config.data.data_dir = data_dir
  run_dir = os.path.join(workdir, DEFAULT_RECIPE)
  print(
    f'Training configs/digits/{DEFAULT_RECIPE}.py in {run_dir}: a line every '
    f'{config.log_every_steps} steps, the first once the step is compiled',
    flush=True,
  )
  seconds = digit_runs.train(config, run_dir)
  with stage('Evaluating on the test split (top-1, occlusion, CAM boxes)'):
    result = digit_runs.evaluate(run_dir, data_dir, smoke=smoke)
  with stage('Drawing the pictures'):
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
  print(f'jaxmix demo: writing to {FLAGS.workdir}', flush=True)
  if not FLAGS.verbose:
    quiet_libraries()
  from jaxmix.train import metrics_log

  metrics_log.log_to_console()  # the trainer's progress lines
  workdir = os.fspath(paths.resolve(FLAGS.workdir))  # a URL stays a URL
  default_job(workdir, smoke=FLAGS.smoke, verbose=FLAGS.verbose)


if __name__ == '__main__':
  main()
