"""Building a training run from its config: everything before the first step.

`build_run(config, workdir)` checks the config, starts multi-host JAX when
asked, writes the run's `config.json`, opens the data source, builds the
optimiser, the train state (restored from the latest checkpoint when there
is one, data position included; a new run may start from a torch state
dict, `config.model.init_from`), the jitted train and eval steps, the
ReLabel label maps and the prefetcher, and returns them as a `TrainingRun`.
`jaxmix.train.loop` runs it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from jaxmix.data import source as source_lib
from jaxmix.data.mesh_prefetch import prefetch_to_mesh
from jaxmix.relabel import join as label_map_join
from jaxmix.relabel import train_targets
from jaxmix.relabel.store import LabelMapStore
from jaxmix.train import (
  augment,
  build,
  checkpoints,
  metrics_log,
  steps,
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
    train_step: jitted `(state, batch, mix_prob) -> (state, metrics)`.
    eval_step: jitted `(params, batch_stats, batch) -> counts`.
    device_batches: the prefetcher of global train batches (savable).
    checkpointer: the run's checkpoint manager.
    logger: console, metrics.jsonl and TensorBoard logs.
    label_maps: the ReLabel store when targets come from one, else None.
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


def _initialize_distributed(distributed: ml_collections.ConfigDict) -> None:
  """`jax.distributed.initialize`, with the config's explicit arguments."""
  kwargs = {
    name: distributed[name]
    for name in ('coordinator_address', 'num_processes', 'process_id')
    if distributed[name] is not None
  }
  jax.distributed.initialize(**kwargs)


def _write_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True) + '\n')


def step_config(config: ml_collections.ConfigDict) -> steps.StepConfig:
  """The train and eval steps' static settings of `config`."""
  return steps.StepConfig(
    num_classes=config.data.num_classes,
    label_smoothing=config.label_smoothing,
    mean=tuple(config.data.mean),
    std=tuple(config.data.std),
    seed=config.seed,
    ema_decay=config.optimizer.ema_decay,
  )


def build_run(config: ml_collections.ConfigDict, workdir: str) -> TrainingRun:
  """Builds (or reopens, to resume) the run of `config` in `workdir`."""
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
  checkpointer = checkpoints.Checkpointer(
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
  start_step = checkpointer.latest_step() or 0
  if config.model.get('init_from') and not start_step:
    state = build.import_torch_weights(
      config, state, tx, mesh=mesh, log=logger.info
    )
  if start_step:
    state, data_state = checkpointer.restore(state)
    train_iter.set_state(data_state)
    logger.info(
      'Resumed from step %d (data position %s)',
      start_step,
      json.dumps(data_state),
    )

  settings = step_config(config)
  targets_fn = None
  if config.relabel.enabled:
    targets_fn = train_targets.create_targets_fn(
      train_targets.RelabelSettings.from_config(config), mesh
    )
  train_step = steps.jit_train_step(
    mesh,
    model_def=model_def,
    tx=tx,
    learning_rate_fn=learning_rate_fn,
    augment_fn=augment.create_augment_fn(config, mesh),
    config=settings,
    targets_fn=targets_fn,
  )
  eval_step = steps.jit_eval_step(mesh, model_def=model_def, config=settings)
  return TrainingRun(
    config=config,
    mesh=mesh,
    data=data,
    state=state,
    start_step=start_step,
    total_steps=round(config.num_epochs * steps_per_epoch),
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
  )
