"""`train_and_evaluate`: the config-driven, data-parallel, resumable loop.

One process per host, every process runs the same loop. The batch is split
over all devices of a one-axis 'data' mesh; each process reads its own slice
of every global batch. A run directory holds `config.json`, the
checkpoints, `metrics.jsonl` and TensorBoard event files; starting again in
an existing directory resumes from its latest checkpoint, data position
included, and reproduces the uninterrupted run exactly.

Faults: the first non-finite loss (or parameter) stops training with a
`FloatingPointError` naming the step; every checkpoint is written only
after its steps were checked, and carries a digest that restore verifies,
so the last one kept is good. SIGTERM (and JAX's multi-host preemption
notice) saves at the next step boundary and returns with status
'preempted'; `train` says how a run ended (`Outcome`), the command line
turns that into its exit code. A full disk (a checkpoint save, the logs,
the start) stops the run with one `run_dir.DiskFullError` naming the run
directory, the checkpoint step and the last good one, raised once the run
is closed and unlocked, so the same command resumes when space is freed.
"""

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.io import paths
from jaxmix.train import (
  augment_schedule,
  checkpoints,
  metrics_log,
  run_dir,
  setup,
)
from jaxmix.train import state as state_lib


def evaluate(
  eval_step: Callable[..., dict[str, jax.Array]],
  params: Any,
  batch_stats: Any,
  *,
  data: Any,
  config: ml_collections.ConfigDict,
  mesh: jax.sharding.Mesh,
) -> dict[str, float]:
  """Top-1/top-5 and loss over the whole eval split.

  Padded examples are masked out; the counts are summed on the device
  (exact integers) and fetched once at the end.
  """
  iterator = data.create_eval_iterator(
    config.data,
    global_batch_size=config.global_batch_size,
    image_size=config.image_size,
  )
  sums = None
  for batch in prefetch_to_mesh(iterator, mesh):
    counts = eval_step(params, batch_stats, batch)
    sums = counts if sums is None else jax.tree.map(jnp.add, sums, counts)
  if sums is None:
    raise ValueError(f'The eval split {config.data.eval_split!r} is empty.')
  totals = {k: v.item() for k, v in jax.device_get(sums).items()}
  count = max(totals['count'], 1)
  return {
    'top1': totals['top1_correct'] / count,
    'top5': totals['top5_correct'] / count,
    'loss': totals['loss_sum'] / count,
    'count': totals['count'],
  }


class _Pending:
  """Train metrics still on the device, checked and averaged at flushes."""

  def __init__(self):
    self.items = []

  def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
    self.items.append((step, metrics))

  def flush(self) -> dict[str, float] | None:
    """Fetches, checks finiteness, returns means (None if empty)."""
    if not self.items:
      return None
    fetched = jax.device_get([m for _, m in self.items])
    for (step, _), metrics in zip(self.items, fetched):
      if not metrics['finite']:
        self.items = []
        raise FloatingPointError(
          f'Non-finite training loss or parameters at step {step} (loss '
          f'{float(metrics["loss"])}); training stopped.'
        )
    self.items = []
    names = [k for k in fetched[0] if k != 'finite']
    return {k: float(np.mean([m[k] for m in fetched])) for k in names}


Status = Literal['finished', 'preempted', 'nothing_to_do']


@dataclasses.dataclass
class Outcome:
  """How a call of `train` ended.

  Attributes:
    state: the final `TrainState` (global arrays on the mesh).
    status: 'finished' (the last step was reached and saved), 'preempted'
      (saved at `step` on SIGTERM; start again to resume) or
      'nothing_to_do' (the run had already reached its last step).
    step: the step the state is at.
    total_steps: the run's last step.
  """

  state: state_lib.TrainState
  status: Status
  step: int
  total_steps: int


def train(config: ml_collections.ConfigDict, workdir: str) -> Outcome:
  """Trains and evaluates as `config` says, in (or resuming from) `workdir`.

  Args:
    config: a recipe (see `jaxmix/configs/default.py` for the fields).
    workdir: the run directory: a local path or a URL such as
      `gs://bucket/run` (see `jaxmix.io.paths`).

  Returns:
    The `Outcome`.
  """
  try:
    run = setup.build_run(config, workdir)
  except OSError as error:
    if not paths.disk_full(error):
      raise
    # Everything the start made is closed and unlocked again.
    raise run_dir.DiskFullError(
      workdir,
      'while starting the run',
      'Nothing was trained.',
      checkpoints.one_line(error),
    ) from None
  return run_training(run)


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str
) -> state_lib.TrainState:
  """`train(config, workdir).state`: the final `TrainState`."""
  return train(config, workdir).state


def _run_eval(run: setup.TrainingRun, state: state_lib.TrainState) -> dict:
  """Eval metrics of the parameters (and of their EMA, prefixed 'ema_')."""
  results = evaluate(
    run.eval_step,
    state.params,
    state.batch_stats,
    data=run.data,
    config=run.config,
    mesh=run.mesh,
  )
  if state.ema_params is not None:
    ema = evaluate(
      run.eval_step,
      state.ema_params,
      state.batch_stats,
      data=run.data,
      config=run.config,
      mesh=run.mesh,
    )
    results.update({f'ema_{k}': v for k, v in ema.items()})
  if run.label_maps is not None:
    # Counted on the host, a few prefetched batches ahead.
    results['relabel_missing'] = run.label_maps.num_missing
    results['relabel_looked_up'] = run.label_maps.num_looked_up
  return results


def _close(
  run: setup.TrainingRun, failure: BaseException | None, *, step: int
) -> BaseException | None:
  """Closes `run` (reader, pending save, logs, lock); returns what to raise.

  That is `failure` (None when the loop ended well), or the save in flight
  failing, explained: a non-finite loss names the last good checkpoint, and
  a full disk (anywhere: a save, the logs) becomes one `DiskFullError`
  naming the run directory, the checkpoint step and the one kept.
  """
  ckpt = run.checkpointer
  if hasattr(run.device_batches, 'close'):
    run.device_batches.close()  # stops its reader thread
  try:
    ckpt.wait()  # the last save may still be in flight
  except checkpoints.CheckpointSaveError as error:
    if failure is None or paths.disk_full(failure):
      failure = error  # the cause, naming the step being saved
  last = ckpt.latest_step()
  kept = (
    'No checkpoint was written.'
    if last is None
    else f'Last good checkpoint: step {last} in {ckpt.directory}.'
  )
  try:
    run.close()  # unlocks even if closing the logs fails
  except Exception as error:
    failure = failure or error
  if isinstance(failure, FloatingPointError):
    return FloatingPointError(f'{failure} {kept}')
  if paths.disk_full(failure):
    doing = (
      f'while saving checkpoint step {failure.step}'
      if isinstance(failure, checkpoints.CheckpointSaveError)
      else f'after step {step}'
    )
    detail = getattr(failure, 'reason', None) or checkpoints.one_line(failure)
    return run_dir.DiskFullError(run.workdir, doing, kept, detail)
  return failure


def run_training(run: setup.TrainingRun) -> Outcome:
  """Runs a built run from its start step to the end (or a preemption)."""
  config, logger, ckpt = run.config, run.logger, run.checkpointer
  state, device_batches = run.state, run.device_batches
  steps_per_epoch, total_steps = run.steps_per_epoch, run.total_steps
  if run.start_step >= total_steps:
    logger.info(
      'Nothing to do: %s is at step %d and config.num_epochs=%s ends at step '
      '%d. Nothing was trained or recorded; pass a larger '
      '--config.num_epochs to extend the run.',
      run.workdir,
      run.start_step,
      config.num_epochs,
      total_steps,
    )
    run.close()
    return Outcome(state, 'nothing_to_do', run.start_step, total_steps)
  status, step_reached = 'finished', total_steps
  pending = _Pending()
  progress = metrics_log.Progress(
    logger,
    total_steps=total_steps,
    steps_per_epoch=steps_per_epoch,
    batch_size=config.global_batch_size,
    start_step=run.start_step,
  )
  guard = (
    checkpoints.PreemptionGuard()
    if jax.process_count() == 1
    else contextlib.nullcontext()
  )
  failure, done = None, run.start_step
  try:
    with guard:
      for step in range(run.start_step, total_steps):
        epoch = step // steps_per_epoch
        schedule = augment_schedule.schedule_at(config, epoch)
        state, metrics = run.train_step(state, next(device_batches), schedule)
        done = step + 1
        pending.add(done, metrics)
        # Every process asks every step (JAX's preemption sync point).
        preempted = ckpt.reached_preemption(done) or getattr(
          guard, 'requested', False
        )
        save = (
          preempted
          or done == total_steps
          or done % config.checkpoint.every_steps == 0
        )
        if save or done % config.log_every_steps == 0 or progress.first:
          progress.report(done, pending.flush())  # raises if non-finite
        if save:
          ckpt.save(done, state, device_batches.get_state(), force=True)
        epochs_done, epoch_end = divmod(done, steps_per_epoch)
        if done == total_steps or (
          epoch_end == 0 and epochs_done % config.eval_every_epochs == 0
        ):
          with progress.paused():
            results = _run_eval(run, state)
          logger.info('eval at step %d: %s', done, results)
          logger.write(done, results, prefix='eval')
        if preempted:
          logger.info('Preempted: saved step %d, stopping.', done)
          if done < total_steps:
            status, step_reached = 'preempted', done
          break
  except BaseException as error:  # raised below, once the run is closed
    failure = error
  failure = _close(run, failure, step=done)
  if failure is not None:
    raise failure
  return Outcome(state, status, step_reached, total_steps)
