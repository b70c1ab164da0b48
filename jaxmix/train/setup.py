"""Building a training run from its config: everything before the first step.

`build_run(config, workdir)` checks the config, starts multi-host JAX when
asked, takes the run directory's lock, checks the config against the run's
recorded identity (`jaxmix.train.run_dir`), opens the data source, builds
the optimiser, the train state (restored from the newest intact checkpoint
when there is one, data position included; a new run may start from a
torch state dict, `config.model.init_from`), the jitted train and eval
steps, the ReLabel label maps and the prefetcher, records the config
(`config.json` for a new run, `config_history.jsonl` for allowed changes)
and returns them as a `TrainingRun`. `jaxmix.train.loop` runs it.

The workdir may be a URL (`gs://bucket/run`): every file goes through
`jaxmix.io.paths`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxmix.data import minority
from jaxmix.data import source as source_lib
from jaxmix.data.label_maps import join as label_map_join
from jaxmix.data.label_maps.store import LabelMapStore
from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.io import paths
from jaxmix.train import (
  augment,
  build,
  checkpoints,
  distill,
  label_check,
  manifold_mixup,
  metrics_log,
  run_dir,
  steps,
  token_labeling,
  validation,
)
from jaxmix.train import state as state_lib


@dataclasses.dataclass
class TrainingRun:
  """A built run, ready for its first (or next) step.

  Attributes:
    config: the resolved config.
    mesh: the one-axis 'data' mesh.
    data: the data source (`jaxmix.data.source.DataSource`).
    state: the train state, restored when the run resumes.
    start_step: the first step to run (0 for a new run).
    total_steps: the step count of the whole run.
    steps_per_epoch: train steps per epoch.
    train_step: jitted `(state, batch, schedule) -> (state, metrics)`,
      `schedule` from `jaxmix.train.augment_schedule.schedule_at`.
    eval_step: jitted `(params, batch_stats, batch) -> counts`.
    device_batches: the prefetcher of global train batches (savable).
    checkpointer: the run's checkpoint manager.
    logger: console, metrics.jsonl and TensorBoard logs.
    label_maps: the ReLabel store when targets come from one, else None.
    workdir: the run directory.
    lock: the run directory's lock, held by process 0 (None elsewhere).
  """

  config: ml_collections.ConfigDict
  mesh: jax.sharding.Mesh
  data: source_lib.DataSource
  state: state_lib.TrainState
  start_step: int
  total_steps: int
  steps_per_epoch: int
  train_step: Callable[..., Any]
  eval_step: Callable[..., Any]
  device_batches: Any
  checkpointer: checkpoints.Checkpointer
  logger: metrics_log.MetricLogger
  label_maps: LabelMapStore | None
  workdir: Any = None
  lock: run_dir.RunLock | None = None

  def close(self) -> None:
    """Waits for the pending save, closes the logs, releases the lock."""
    try:
      self.checkpointer.close()
      self.logger.close()
    finally:
      if self.lock is not None:
        self.lock.release()


def _initialize_distributed(distributed: ml_collections.ConfigDict) -> None:
  """`jax.distributed.initialize`, with the config's explicit arguments."""
  kwargs = {
    name: distributed[name]
    for name in ('coordinator_address', 'num_processes', 'process_id')
    if distributed[name] is not None
  }
  jax.distributed.initialize(**kwargs)


def _take_lock(workdir, primary: bool) -> run_dir.RunLock | None:
  """Process 0 takes the lock; every process fails if it could not."""
  lock = run_dir.RunLock(workdir, log=logging.warning) if primary else None
  error = None
  if lock is not None:
    try:
      lock.acquire()
    except run_dir.RunLockedError as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    ok = multihost_utils.broadcast_one_to_all(np.int32(error is None))
    if not ok and error is None:
      raise run_dir.RunLockedError(
        f'Process 0 could not take the lock of {workdir}; see its log.'
      )
  if error is not None:
    raise error
  return lock


def step_config(config: ml_collections.ConfigDict) -> steps.StepConfig:
  """The train and eval steps' static settings of `config`."""
  return steps.StepConfig(
    num_classes=config.data.num_classes,
    label_smoothing=config.label_smoothing,
    mean=tuple(config.data.mean),
    std=tuple(config.data.std),
    seed=config.seed,
    ema_decay=config.optimizer.ema_decay,
    compute_dtype=build.DTYPES[config.model.dtype],
    targets=config.mix.targets,
    **_device_photometric(config.data),
  )


def _device_photometric(data: ml_collections.ConfigDict) -> dict:
  """The StepConfig fields of `data.photometric='device'` (else none)."""
  if data.photometric != 'device':
    return {}
  return dict(
    color_jitter=float(data.color_jitter),
    pca_lighting=float(data.pca_lighting),
    jitter_clip=bool(data.color_jitter_clip),
  )


def _minority_iterator(data, config: ml_collections.ConfigDict):
  """CMO's second stream from the data source."""
  create = getattr(data, 'create_minority_iterator', None)
  if create is None:
    raise ValueError(
      f'config.cmo.enabled: the data source of {config.data.dataset!r} has no '
      'minority stream.'
    )
  return create(
    config.data,
    global_batch_size=config.global_batch_size,
    image_size=config.image_size,
    seed=config.seed,
    alpha=config.cmo.alpha,
  )


def build_run(config: ml_collections.ConfigDict, workdir: str) -> TrainingRun:
  """Builds (or reopens, to resume) the run of `config` in `workdir`.

  Raises:
    ValueError: a bad config field (named).
    jaxmix.train.run_dir.RunIdentityError: a resume that changes the run.
    jaxmix.train.run_dir.RunLockedError: another trainer holds `workdir`.
    jaxmix.train.checkpoints.CheckpointError: checkpoints exist but none
      is intact.
  """
  validation.check_config(config)
  if config.distributed.initialize:
    _initialize_distributed(config.distributed)
  validation.check_devices(
    config,
    device_count=jax.device_count(),
    process_count=jax.process_count(),
  )
  workdir = paths.resolve(workdir)
  primary = jax.process_index() == 0
  lock = _take_lock(workdir, primary)
  with contextlib.ExitStack() as on_error:
    if lock is not None:
      on_error.callback(lock.release)
    run = _build(config, workdir, primary, on_error)
    run.lock = lock
    on_error.pop_all()  # the run owns them now; `run.close()` frees them
  return run


def _build(config, workdir, primary, on_error) -> TrainingRun:
  changes = run_dir.check_resume(config, workdir)  # before anything is built
  mesh = steps.create_mesh()
  logger = metrics_log.MetricLogger(workdir, enabled=primary)
  on_error.callback(logger.close)
  logger.info(
    'process %d/%d, %d local / %d global devices',
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )

  data = source_lib.for_dataset(config.data.dataset)
  steps_per_epoch = data.steps_per_epoch(config.data, config.global_batch_size)
  tx, learning_rate_fn = build.optimizer(
    config, steps_per_epoch=steps_per_epoch
  )
  model_def, state = state_lib.create_train_state(
    build.model_fn(config), tx, mesh=mesh, ema=config.optimizer.ema_decay > 0
  )
  logger.info(
    '%s: %d parameters', config.model.name, state_lib.count_params(state)
  )
  teacher = None
  if config.distill.enabled:  # a bad teacher fails before anything is recorded
    teacher = distill.load_teacher(config, mesh)
    logger.info(
      'Distillation from %s (T=%s, alpha=%s)',
      teacher.source,
      config.distill.temperature,
      config.distill.alpha,
    )
  checkpointer = checkpoints.Checkpointer(
    workdir / 'checkpoints',
    every_steps=config.checkpoint.every_steps,
    keep=config.checkpoint.keep,
  )
  # Closed on any error below: an open manager's threads would bury the
  # error under pages of "Event loop is closed" tracebacks at exit.
  on_error.callback(checkpointer.close)
  train_iter = data.create_train_iterator(
    config.data,
    global_batch_size=config.global_batch_size,
    image_size=config.image_size,
    seed=config.seed,
  )
  if config.cmo.enabled:
    train_iter = minority.PairedBatches(
      train_iter, _minority_iterator(data, config)
    )
    logger.info(
      'CMO: a second stream with class weights 1 / n_c ** %s',
      config.cmo.alpha,
    )
  # Class ids checked on the host, naming the example: out of range they
  # would pass the device step silently.
  train_iter = label_check.CheckedLabels(train_iter, config.data.num_classes)
  label_maps = None
  if config.relabel.enabled:
    maps_fn, label_maps = label_map_join.open_label_maps(
      config.relabel.store_dir,
      missing=config.relabel.missing,
      num_classes=config.data.num_classes,
      synthetic=config.data.dataset == 'synthetic',
    )
    train_iter = label_map_join.join_label_maps(
      train_iter, maps_fn, num_classes=config.data.num_classes
    )
    logger.info(
      'ReLabel targets from %s',
      label_maps.path if label_maps else 'synthetic label maps',
    )
  start_step = 0
  restored = checkpointer.restore_latest(state, log=logger.warning)
  if restored is not None:
    start_step, state = restored.step, restored.state
    train_iter.set_state(restored.data_state)
    logger.info(
      'Resumed from step %d (data position %s)',
      start_step,
      json.dumps(restored.data_state),
    )
  elif config.model.init_from:
    state = build.import_torch_weights(
      config, state, tx, mesh=mesh, log=logger.info
    )
  elif config.model.init_required:
    raise ValueError(
      'config.model.init_from is not set, and this recipe fine-tunes '
      'pretrained weights (config.model.init_required=True): pass '
      '--config.model.init_from=FILE (a torchvision-layout state dict, e.g. '
      'written by python -m jaxmix.apps.export), or '
      f'--config.model.init_required=False to train {config.model.name} '
      'from random initialisation on purpose.'
    )
  total_steps = round(config.num_epochs * steps_per_epoch)
  logger.supersede_after(start_step)  # the steps redone are logged anew
  if primary and start_step < total_steps:
    # Only a run that will train is recorded; "nothing to do" changes nothing.
    run_dir.record(config, workdir, changes, step=start_step)
    for field, (old, new) in (changes or {}).items():
      logger.info('config.%s: %r -> %r (recorded)', field, old, new)

  settings = step_config(config)
  loss_fn = None
  if config.relabel.token_labels:
    loss_fn = token_labeling.create_loss_fn(
      token_labeling.TokenSettings.from_config(config), mesh
    )
  elif config.mix.method == 'manifold_mixup':
    loss_fn = manifold_mixup.create_loss_fn(config, mesh, step_config=settings)
  frozen = None
  if teacher is not None:
    frozen = distill.frozen_inputs(
      config, mesh, step_config=settings, teacher=teacher
    )
  train_step = steps.jit_train_step(
    mesh,
    frozen=frozen,
    model_def=model_def,
    tx=tx,
    learning_rate_fn=learning_rate_fn,
    augment_fn=augment.create_augment_fn(
      config,
      mesh,
      prepare_images=functools.partial(steps.prepare_images, config=settings),
    ),
    config=settings,
    loss_fn=loss_fn,
  )
  eval_step = steps.jit_eval_step(mesh, model_def=model_def, config=settings)
  return TrainingRun(
    config=config,
    mesh=mesh,
    data=data,
    state=state,
    start_step=start_step,
    total_steps=total_steps,
    steps_per_epoch=steps_per_epoch,
    train_step=train_step,
    eval_step=eval_step,
    # The prefetcher runs ahead of the step; its get_state() is the
    # position after the last batch it returned, which is what a
    # checkpoint must hold.
    device_batches=prefetch_to_mesh(train_iter, mesh),
    checkpointer=checkpointer,
    logger=logger,
    label_maps=label_maps,
    workdir=workdir,
  )
