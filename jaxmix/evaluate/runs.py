"""Loading a trained run (config + checkpoint) for evaluation.

A run directory written by `jaxmix.train.loop.train_and_evaluate` holds
`config.json`, `metrics.jsonl` and orbax checkpoints under `checkpoints/`.
`load_run` rebuilds the model the config names, restores the parameters
(or their EMA) and the BatchNorm statistics of the latest (or a given)
checkpoint, and returns a `Run`:

  run = load_run('/path/to/run')
  logits = run.logits_fn(batch['image'])  # uint8 [B, H, W, 3] -> [B, K]
  cams = class_activation_map(run.model, run.normalize(pixels), classes)

The restore target is built the way the trainer builds its state
(`create_train_state` under `jax.eval_shape`, nothing is initialised), so a
checkpoint restores exactly onto the structure it was saved from (the
layout of `jaxmix.train.checkpoints.Checkpointer`: items 'state',
'data_iter' and 'digest'). The restored state is checked against its
digest; without `step`, a corrupt newest checkpoint is skipped (with a
warning naming it) for the newest intact one. Arrays are replicated over
the devices of a 'data' mesh. The workdir may be a URL (`gs://...`).
"""

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec

from jaxmix.io import paths
from jaxmix.train import build, checkpoints, steps
from jaxmix.train import state as state_lib

Variables = tuple[nnx.State, nnx.State]


def method_of(config: Mapping[str, Any]) -> str:
  """The training recipe of a config in a few words, e.g. 'cutmix+relabel'."""
  parts = []
  mix = config.get('mix', {})
  if mix and mix.get('method', 'none') != 'none':
    parts.append(mix['method'])
  if config.get('cutout', {}).get('size', 0):
    parts.append('cutout')
  if config.get('random_erasing', {}).get('prob', 0.0):
    parts.append('random_erasing')
  if config.get('relabel', {}).get('enabled', False):
    parts.append('relabel')
  return '+'.join(parts) or 'baseline'


def load_config(workdir: str | os.PathLike) -> ml_collections.ConfigDict:
  """The resolved config a run wrote to `workdir/config.json`."""
  path = paths.resolve(workdir) / 'config.json'
  if not path.exists():
    raise FileNotFoundError(
      f'{path} does not exist: `workdir` must be a run directory written by '
      '`python -m jaxmix.apps.train` (it holds config.json and checkpoints/).'
    )
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def _abstract_state(config, mesh):
  """(ModelDef, abstract TrainState) shaped as the trainer's state."""
  # Only the optimiser state's structure matters, not the schedule.
  tx, _ = build.optimizer(config, steps_per_epoch=1)
  ema = config.optimizer.get('ema_decay', 0.0) > 0
  holder = {}

  def abstract_state():
    holder['model_def'], state = state_lib.create_train_state(
      build.model_fn(config), tx, mesh=mesh, ema=ema
    )
    return state

  abstract = jax.eval_shape(abstract_state)
  replicated = NamedSharding(mesh, PartitionSpec())
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
    abstract,
  )
  return holder['model_def'], abstract


def _restore_step(manager, directory, abstract: Any, step: int) -> Any:
  """One step's verified 'state'; `CheckpointError` if it fails."""
  path = directory / str(step)
  checkpoints.drop_closed_loop_errors()
  try:
    restored = manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract),
        digest=ocp.args.JsonRestore(),
      ),
    )
  except Exception as error:
    reason = str(error).strip().splitlines()[0][:300] if str(error) else ''
    raise checkpoints.CheckpointError(
      step, path, f'{type(error).__name__}: {reason}'
    ) from error
  if not isinstance(restored.digest, dict):
    raise checkpoints.CheckpointError(step, path, 'its digest is missing')
  mismatch = checkpoints.digest_mismatch(restored.digest, restored.state)
  if mismatch:
    raise checkpoints.CheckpointError(step, path, mismatch)
  return restored.state


def _restore(
  directory: paths.PathLike, abstract: Any, step: int | None
) -> tuple[int, Any]:
  """The verified 'state' of a `jaxmix.train.checkpoints.Checkpointer` step.

  Opened read-only: a trainer may still be writing to the directory, and a
  writable manager would clean up its in-flight temporary checkpoint.
  Without `step`, the newest intact step (failures are logged).
  """
  directory = paths.resolve(directory)
  if not directory.is_dir():
    raise FileNotFoundError(f'No checkpoint directory {directory}.')
  manager = ocp.CheckpointManager(
    directory,
    options=ocp.CheckpointManagerOptions(
      read_only=True, save_interval_steps=0, create=False
    ),
    item_names=checkpoints.ITEMS,
  )
  try:
    available = sorted(manager.all_steps())
    if not available:
      raise FileNotFoundError(f'No checkpoint in {directory}.')
    if step is not None:
      if step not in available:
        raise ValueError(
          f'step={step} has no checkpoint in {directory}; steps: {available}.'
        )
      return step, _restore_step(manager, directory, abstract, step)
    failed = []
    for candidate in reversed(available):
      try:
        return candidate, _restore_step(manager, directory, abstract, candidate)
      except checkpoints.CheckpointError as error:
        logging.warning('Skipping %s; trying the previous one.', error)
        failed.append(error)
    raise checkpoints.CheckpointError(
      failed[0].step,
      directory,
      'no intact checkpoint: '
      + '; '.join(f'step {e.step}: {e.reason}' for e in failed),
    )
  finally:
    manager.close()


@dataclasses.dataclass
class Run:
  """A trained model restored from a run directory.

  Attributes:
    workdir: the run directory.
    name: a short name (the directory's base name).
    config: the run's resolved `ml_collections.ConfigDict`.
    step: the restored checkpoint's step.
    use_ema: whether `params` are the EMA parameters.
    model_def: graph definitions (`jaxmix.train.state.ModelDef`).
    variables: `(params, batch_stats)` replicated on `mesh`.
    mesh: the one-axis 'data' mesh of all devices.
  """

  workdir: str
  name: str
  config: ml_collections.ConfigDict
  step: int
  use_ema: bool
  model_def: state_lib.ModelDef
  variables: Variables
  mesh: jax.sharding.Mesh

  @property
  def num_classes(self) -> int:
    return int(self.config.data.num_classes)

  @property
  def image_size(self) -> int:
    return int(self.config.image_size)

  @property
  def method(self) -> str:
    """The training recipe in a few words, e.g. 'cutmix' or 'baseline'."""
    return method_of(self.config)

  def normalize(self, images: jax.Array) -> jax.Array:
    """Pixels (uint8 or float on 0..255) `[B, H, W, 3]` -> model input."""
    data = self.config.data
    return steps.normalize(images, tuple(data.mean), tuple(data.std))

  def apply(self, variables: Variables, images: jax.Array) -> jax.Array:
    """Pure forward pass in eval mode (call inside `jax.jit`).

    Args:
      variables: `(params, batch_stats)`, e.g. `run.variables`.
      images: float `[B, H, W, 3]`, already normalised.

    Returns:
      float32 logits `[B, K]`.
    """
    params, batch_stats = variables
    model = self.model_def.merge(params, batch_stats, train=False)
    return model(images).astype(jnp.float32)

  @functools.cached_property
  def _jitted(self) -> Callable[..., jax.Array]:
    def forward(variables, images):
      if images.dtype == jnp.uint8:
        images = self.normalize(images)
      return self.apply(variables, images)

    return jax.jit(forward)

  def logits_fn(self, images: Any) -> jax.Array:
    """Jitted logits `[B, K]` of uint8 pixels or normalised float images.

    Args:
      images: `[B, H, W, 3]`: uint8 pixels (normalised here with the run's
        `config.data.mean/std`) or float images already normalised.
    """
    images = jnp.asarray(images)
    if images.ndim != 4:
      raise ValueError(f'`images` must be [B, H, W, 3], got {images.shape}.')
    return self._jitted(self.variables, images)

  @functools.cached_property
  def model(self) -> nnx.Module:
    """The NNX model in eval mode with the restored variables merged."""
    params, batch_stats = self.variables
    return self.model_def.merge(params, batch_stats, train=False)

  def metrics_history(self) -> list[dict]:
    """The rows of the run's `metrics.jsonl` ([] if it has none)."""
    path = paths.resolve(self.workdir) / 'metrics.jsonl'
    if not path.exists():
      return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def load_run(
  workdir: str | os.PathLike,
  *,
  step: int | None = None,
  use_ema: bool = True,
  mesh: jax.sharding.Mesh | None = None,
) -> Run:
  """Restores a trained run for evaluation.

  Args:
    workdir: a run directory (`config.json` and `checkpoints/`).
    step: the checkpoint step; the latest by default.
    use_ema: use the EMA parameters when the run kept them (ignored
      otherwise; `Run.use_ema` says what was used).
    mesh: the device mesh; all devices on a 'data' axis by default.

  Returns:
    A `Run`.
  """
  path = paths.resolve(workdir)
  config = load_config(path)
  mesh = steps.create_mesh() if mesh is None else mesh
  model_def, abstract = _abstract_state(config, mesh)
  step, state = _restore(path / 'checkpoints', abstract, step)
  ema = use_ema and state.ema_params is not None
  params = state.ema_params if ema else state.params
  return Run(
    workdir=os.fspath(path),
    name=path.name,
    config=config,
    step=int(step),
    use_ema=ema,
    model_def=model_def,
    variables=(params, state.batch_stats),
    mesh=mesh,
  )
