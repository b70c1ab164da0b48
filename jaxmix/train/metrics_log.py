"""Training logs: console lines, TensorBoard event files and metrics.jsonl.

TensorBoard event files are written with tensorboardX, so that logging
needs neither TensorFlow nor tensorboard's internal modules.
Only the primary process (index 0) writes; the others get a no-op logger.
Files go through `jaxmix.io.paths`, so the run directory may be a URL.
"""

import contextlib
import json
import logging as logging_lib
import math
import os
import sys
import time
from collections.abc import Mapping

import tensorboardX
from absl import logging
from tensorboardX import record_writer

from jaxmix.io import paths


class _PathFiles:
  """tensorboardX's writer factory for a URL scheme: files via `paths`.

  So a `gs://` run directory gets its event files through the same path
  layer as every other file of the run (tensorboardX's own `gs` writer
  would need the google-cloud-storage client).
  """

  def open(self, path: str):
    return paths.resolve(path).open('wb')

  def directory_check(self, path: str) -> None:
    paths.resolve(path).mkdir(parents=True, exist_ok=True)


class EventFileWriter:
  """Appends scalar summaries to a TensorBoard event file in `logdir`.

  Written with tensorboardX (event files without TensorFlow or
  tensorboard's internal modules); `tensorboard --logdir RUN` reads them.
  The file is created at the first summary, so a start that logs nothing
  (a resume with nothing to do) leaves the run directory as it was.
  """

  def __init__(self, logdir: paths.PathLike):
    self.logdir = os.fspath(paths.resolve(logdir))
    self._writer = None

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    if self._writer is None:
      if paths.is_url(self.logdir):
        scheme = self.logdir.split(':', 1)[0]
        record_writer.register_writer_factory(scheme, _PathFiles())
      self._writer = tensorboardX.SummaryWriter(self.logdir, flush_secs=10)
    for tag, value in values.items():
      self._writer.add_scalar(tag, value, global_step=step)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()


def log_to_console() -> None:
  """Shows jaxmix's INFO lines (progress, eval) on stderr, once.

  Outside `absl.app.run` absl installs no handler, so Python's default
  (warnings and up) drops every progress line: a command started any other
  way (the demo, a notebook) calls this. Other libraries' INFO chatter
  (orbax, one line per save) stays hidden; their warnings still show.
  Under `app.run` absl prints the lines already and this does nothing.
  """
  if logging.get_absl_handler() in logging_lib.getLogger().handlers:
    return
  logger = logging.get_absl_logger()
  if any(getattr(h, 'jaxmix_console', False) for h in logger.handlers):
    return
  handler = logging_lib.StreamHandler(sys.stderr)
  handler.setFormatter(
    logging_lib.Formatter('%(asctime)s %(message)s', '%H:%M:%S')
  )
  handler.addFilter(
    lambda record: (
      record.levelno > logging_lib.INFO
      or f'{os.sep}jaxmix{os.sep}' in record.pathname
    )
  )
  handler.jaxmix_console = True
  logger.addHandler(handler)
  # absl's first record made Python's default root handler, which would
  # print every absl INFO record a second time.
  logger.propagate = False
  logging.set_verbosity(logging.INFO)


def format_duration(seconds: float) -> str:
  """`3725.0 -> '1:02:05'`."""
  if not math.isfinite(seconds):
    return '?'
  seconds = round(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class MetricLogger:
  """Writes metrics to the console, TensorBoard and `metrics.jsonl`.

  Args:
    workdir: the run directory; event files go to `workdir/tensorboard`.
    enabled: False on non-primary processes (nothing is written).
  """

  def __init__(self, workdir: paths.PathLike, *, enabled: bool = True):
    self.enabled = enabled
    self._closed = False
    if not enabled:
      return
    workdir = paths.resolve(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    self._events = EventFileWriter(workdir / 'tensorboard')
    self._jsonl_path = workdir / 'metrics.jsonl'
    self._jsonl = self._jsonl_path.open('a')  # closed in close()

  def supersede_after(self, step: int) -> int:
    """Drops the rows of `metrics.jsonl` past `step`; how many were dropped.

    A run resumed from the checkpoint at `step` does the later steps again,
    with other values where the data or timing differ: their rows from the
    interrupted attempt (and a line a kill cut short) are dropped, so that
    every step appears once, with the values of the run that continued.
    """
    if not self.enabled:
      return 0
    self._jsonl.close()
    kept, dropped = [], 0
    for line in self._jsonl_path.read_text().splitlines():
      try:
        row = json.loads(line)
        keep = isinstance(row, dict) and int(row['step']) <= step
      except (ValueError, KeyError, TypeError):
        keep = False
      if keep:
        kept.append(line + '\n')
      else:
        dropped += 1
    if dropped:
      paths.write_text(self._jsonl_path, ''.join(kept))
      logging.info(
        'metrics.jsonl: dropped %d rows past step %d (this run does those '
        'steps again)',
        dropped,
        step,
      )
    self._jsonl = self._jsonl_path.open('a')
    return dropped

  def write(
    self, step: int, metrics: Mapping[str, float], *, prefix: str
  ) -> None:
    """Records `metrics` at `step` as `'{prefix}/{name}'` scalars."""
    if not self.enabled:
      return
    values = {f'{prefix}/{k}': float(v) for k, v in metrics.items()}
    self._events.scalars(step, values)
    self._events.flush()
    record = {'step': int(step), 'time': time.time(), **values}
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()

  def progress(
    self,
    *,
    step: int,
    total_steps: int,
    epoch: float,
    metrics: Mapping[str, float],
    images_per_second: float,
    eta_seconds: float,
  ) -> None:
    """One console line: step, epoch, loss, accuracy, img/s, ETA."""
    if not self.enabled:
      return
    logging.info(
      'step %d/%d  epoch %.2f  loss %.4f  top1 %.4f  lr %.4g  %.1f img/s  '
      'ETA %s',
      step,
      total_steps,
      epoch,
      metrics['loss'],
      metrics['top1'],
      metrics['learning_rate'],
      images_per_second,
      format_duration(eta_seconds),
    )

  def info(self, message: str, *args: object) -> None:
    if self.enabled:
      logging.info(message, *args)

  def warning(self, message: str, *args: object) -> None:
    if self.enabled:
      logging.warning(message, *args)

  def close(self) -> None:
    """Closes the files (twice is fine: errors and normal ends both call)."""
    if self.enabled and not self._closed:
      self._closed = True
      self._events.close()
      self._jsonl.close()


class Progress:
  """Times training (evaluation excluded) and writes the train logs."""

  def __init__(
    self,
    logger: MetricLogger,
    *,
    total_steps: int,
    steps_per_epoch: int,
    batch_size: int,
    start_step: int,
  ):
    self._logger = logger
    self._total, self._per_epoch = total_steps, steps_per_epoch
    self._batch = batch_size
    self._start = time.perf_counter()
    self._last_time, self._last_step, self._paused = None, start_step, 0.0

  @property
  def first(self) -> bool:
    """No report yet: the next one measures compilation."""
    return self._last_time is None

  @contextlib.contextmanager
  def paused(self):
    """Time spent inside does not count towards images/s."""
    start = time.perf_counter()
    yield
    self._paused += time.perf_counter() - start

  def report(self, step: int, means: dict[str, float]) -> None:
    now = time.perf_counter()
    if self._last_time is None:
      self._logger.info(
        'first step took %.1f s (compilation)', now - self._start
      )
    else:
      elapsed = max(now - self._last_time - self._paused, 1e-9)
      rate = (step - self._last_step) * self._batch / elapsed
      self._logger.progress(
        step=step,
        total_steps=self._total,
        epoch=step / self._per_epoch,
        metrics=means,
        images_per_second=rate,
        eta_seconds=(self._total - step) * self._batch / rate,
      )
      self._logger.write(
        step, {**means, 'images_per_second': rate}, prefix='train'
      )
    self._last_time, self._last_step, self._paused = now, step, 0.0
