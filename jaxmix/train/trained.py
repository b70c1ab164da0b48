"""A trained run's model and variables, restored from its run directory.

The one restore path of a finished (or running) run, shared by the
evaluation (`jaxmix.evaluate.runs.load_run`) and the trainer's own readers
of other runs (a distillation teacher, `jaxmix.train.distill`):
`load_config` reads the recorded config (upgraded with fields added
later), `abstract_state` builds the restore target the way the trainer
builds its state (`create_train_state` under `jax.eval_shape`, nothing
initialised), and `restore_state` restores a verified step through the
trainer's `Checkpointer`, opened read-only.
"""

import json
import os
from typing import Any

import jax
import ml_collections
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.io import paths
from jaxmix.train import build, checkpoints, run_dir
from jaxmix.train import state as state_lib


def load_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The resolved config a run wrote to `workdir/config.json`, upgraded.

  Fields added to the schema after the run was recorded hold the value the
  run used (`jaxmix.train.run_dir.upgrade`), so every field reads directly.
  """
  path = paths.resolve(workdir) / 'config.json'
  if not path.exists():
    raise FileNotFoundError(
      f'{path} does not exist: `workdir` must be a run directory written by '
      '`python -m jaxmix.apps.train` (it holds config.json and checkpoints/).'
    )
  return ml_collections.ConfigDict(
    run_dir.upgrade(json.loads(path.read_text()))
  )


def abstract_state(config, mesh):
  """(ModelDef, abstract TrainState) shaped as the trainer's state."""
  # Only the optimiser state's structure matters, not the schedule.
  tx, _ = build.optimizer(config, steps_per_epoch=1)
  ema = config.optimizer.ema_decay > 0
  holder = {}

  def make_state():
    holder['model_def'], state = state_lib.create_train_state(
      build.model_fn(config), tx, mesh=mesh, ema=ema
    )
    return state

  abstract = jax.eval_shape(make_state)
  replicated = NamedSharding(mesh, PartitionSpec())
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
    abstract,
  )
  return holder['model_def'], abstract


def restore_state(
  directory: paths.PathLike, abstract: Any, step: int | None
) -> tuple[int, Any]:
  """The verified 'state' of a step of the trainer's checkpoints.

  Through the trainer's own `jaxmix.train.checkpoints.Checkpointer`, opened
  read-only (a trainer may still be writing to the directory). Without
  `step`, the newest intact step (the failed newer ones are logged).
  """
  checkpointer = checkpoints.Checkpointer.open_read_only(directory)
  try:
    available = checkpointer.all_steps()
    if step is not None:
      if step not in available:
        raise ValueError(
          f'step={step} has no checkpoint in {checkpointer.directory}; '
          f'steps: {sorted(available)}.'
        )
      state, _ = checkpointer.restore(abstract, step)
      return step, state
    restored = checkpointer.restore_latest(abstract, log=logging.warning)
    if restored is None:
      raise FileNotFoundError(f'No checkpoint in {checkpointer.directory}.')
    return restored.step, restored.state
  finally:
    checkpointer.close()


def restore_variables(
  workdir: str | os.PathLike,
  *,
  mesh: jax.sharding.Mesh,
  step: int | None = None,
  use_ema: bool = True,
) -> tuple[ml_collections.ConfigDict, state_lib.ModelDef, Any, int, bool]:
  """A run's model and `(params, batch_stats)`, replicated on `mesh`.

  Returns:
    `(config, model_def, (params, batch_stats), step, used_ema)`: params
    are the EMA copy when `use_ema` and the run kept one.
  """
  path = paths.resolve(workdir)
  config = load_config(path)
  model_def, abstract = abstract_state(config, mesh)
  step, state = restore_state(path / 'checkpoints', abstract, step)
  ema = use_ema and state.ema_params is not None
  params = state.ema_params if ema else state.params
  return config, model_def, (params, state.batch_stats), int(step), ema
