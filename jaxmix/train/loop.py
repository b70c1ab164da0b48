"""`train_and_evaluate`: the config-driven, data-parallel, resumable loop.

One process per host, every process runs the same loop. The batch is split
over all devices of a one-axis 'data' mesh; each process reads its own slice
of every global batch. A run directory holds `config.json`, the
checkpoints, `metrics.jsonl` and TensorBoard event files; starting again in
an existing directory resumes from its latest checkpoint, data position
included, and reproduces the uninterrupted run exactly.

Faults: the first non-finite loss (or parameter) stops training with a
`FloatingPointError` naming the step; every checkpoint is written only
after its steps were checked, so the last one kept is good. SIGTERM (and
JAX's multi-host preemption notice) saves at the next step boundary and
returns.
"""

import contextlib
import functools
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxmix.data import label_map_join
from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.train import (
  augment,
  build,
  checkpoints,
  metrics_log,
  relabel_step,
  steps,
  validation,
)
from jaxmix.train import state as state_lib


def _initialize_distributed(distributed: ml_collections.ConfigDict) -> None:
  """`jax.distributed.initialize`, with the config's explicit arguments."""
  kwargs = {
    name: distributed[name]
    for name in ('coordinator_address', 'num_processes', 'process_id')
    if distributed[name] is not None
  }
  jax.distributed.initialize(**kwargs)


def _data_module(dataset: str):
  """The data module: TF-free synthetic data or the tf.data pipeline."""
  if dataset == 'synthetic':
    from jaxmix.data import synthetic

    return synthetic
  from jaxmix.data import input_pipeline  # imports TensorFlow

  return input_pipeline


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True) + '\n')


def mix_prob_at(config: ml_collections.ConfigDict, epoch: int) -> float:
  """The mixing probability in `epoch`: 0 in the last `mix.off_epoch`."""
  if epoch >= config.num_epochs - config.mix.off_epoch:
    return 0.0
  return float(config.mix.prob)


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


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str
) -> state_lib.TrainState:
  """Trains and evaluates as `config` says, in (or resuming from) `workdir`.

  Args:
    config: a config from `configs/` (see `configs/default.py`).
    workdir: the run directory (a local or mounted file system: the logs
      are written with plain file I/O).

  Returns:
    The final `TrainState` (global arrays on the mesh).
  """
  validation.check_config(config)
  if config.distributed.initialize:
    _initialize_distributed(config.distributed)
  validation.check_devices(
    config,
    device_count=jax.device_count(),
    process_count=jax.process_count(),
  )
  mesh = steps.create_mesh()
  primary = jax.process_index() == 0
  logger = metrics_log.MetricLogger(workdir, enabled=primary)
  if primary:
    _write_config(config, workdir)
  logger.info(
    'process %d/%d, %d local / %d global devices',
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )

  data = _data_module(config.data.dataset)
  steps_per_epoch = data.steps_per_epoch(config.data, config.global_batch_size)
  total_steps = round(config.num_epochs * steps_per_epoch)
  tx, learning_rate_fn = build.optimizer(
    config, steps_per_epoch=steps_per_epoch
  )

  model_def, state = state_lib.create_train_state(
    build.model_fn(config), tx, mesh=mesh, ema=config.optimizer.ema_decay > 0
  )
  logger.info(
    '%s: %d parameters', config.model.name, state_lib.count_params(state)
  )
  ckpt = checkpoints.Checkpointer(
    os.path.join(os.fspath(workdir), 'checkpoints'),
    every_steps=config.checkpoint.every_steps,
    keep=config.checkpoint.keep,
  )
  train_iter = data.create_train_iterator(
    config.data,
    global_batch_size=config.global_batch_size,
    image_size=config.image_size,
    seed=config.seed,
  )
  label_maps = None
  if config.relabel.enabled:
    maps_fn, label_maps = label_map_join.open_label_maps(config)
    train_iter = label_map_join.join_label_maps(train_iter, maps_fn)
    logger.info(
      'ReLabel targets from %s',
      label_maps.path if label_maps else 'synthetic label maps',
    )
  start_step = ckpt.latest_step() or 0
  if start_step:
    state, data_state = ckpt.restore(state)
    train_iter.set_state(data_state)
    logger.info(
      'Resumed from step %d (data position %s)',
      start_step,
      json.dumps(data_state),
    )

  step_config = steps.StepConfig(
    num_classes=config.data.num_classes,
    label_smoothing=config.label_smoothing,
    mean=tuple(config.data.mean),
    std=tuple(config.data.std),
    seed=config.seed,
    ema_decay=config.optimizer.ema_decay,
  )
  train_step = steps.jit_train_step(
    mesh,
    model_def=model_def,
    tx=tx,
    learning_rate_fn=learning_rate_fn,
    augment_fn=augment.create_augment_fn(config, mesh),
    config=step_config,
    targets_fn=relabel_step.create_targets_fn(
      relabel_step.RelabelSettings.from_config(config), mesh
    )
    if config.relabel.enabled
    else None,
  )
  eval_step = steps.jit_eval_step(mesh, model_def=model_def, config=step_config)
  run_eval = functools.partial(
    evaluate, eval_step, data=data, config=config, mesh=mesh
  )

  # The prefetcher runs ahead of the step; its get_state() is the position
  # after the last batch it returned, which is what a checkpoint must hold.
  device_batches = prefetch_to_mesh(train_iter, mesh)
  pending = _Pending()
  progress = metrics_log.Progress(
    logger,
    total_steps=total_steps,
    steps_per_epoch=steps_per_epoch,
    batch_size=config.global_batch_size,
    start_step=start_step,
  )
  guard = (
    checkpoints.PreemptionGuard()
    if jax.process_count() == 1
    else contextlib.nullcontext()
  )
  try:
    with guard:
      for step in range(start_step, total_steps):
        epoch = step // steps_per_epoch
        mix_prob = np.float32(mix_prob_at(config, epoch))
        state, metrics = train_step(state, next(device_batches), mix_prob)
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
            results = run_eval(state.params, state.batch_stats)
            if state.ema_params is not None:
              ema = run_eval(state.ema_params, state.batch_stats)
              results.update({f'ema_{k}': v for k, v in ema.items()})
          if label_maps is not None:
            # Counted on the host, a few prefetched batches ahead.
            results['relabel_missing'] = label_maps.num_missing
            results['relabel_looked_up'] = label_maps.num_looked_up
          logger.info('eval at step %d: %s', done, results)
          logger.write(done, results, prefix='eval')
        if preempted:
          logger.info('Preempted: saved step %d, stopping.', done)
          break
  except FloatingPointError as error:
    ckpt.wait()  # the last good save may still be in flight
    last = ckpt.latest_step()
    kept = (
      'No checkpoint was written.'
      if last is None
      else f'Last good checkpoint: step {last} in {ckpt.directory}.'
    )
    raise FloatingPointError(f'{error} {kept}') from None
  finally:
    ckpt.close()  # waits for the pending async save
    logger.close()
  return state
