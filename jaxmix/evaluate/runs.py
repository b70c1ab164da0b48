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
from flax import nnx

from jaxmix.io import paths
from jaxmix.train import state as state_lib
from jaxmix.train import steps, trained

Variables = tuple[nnx.State, nnx.State]


def method_of(config: Mapping[str, Any]) -> str:
  """The training recipe of a config in a few words, e.g. 'cutmix+relabel'.

  `config`: a full config (a recorded one through `load_config`).
  """
  parts = []
  if config['mix']['method'] != 'none':
    parts.append(config['mix']['method'])
  if config['cutout']['size']:
    parts.append('cutout')
  if config['random_erasing']['prob']:
    parts.append('random_erasing')
  if config['relabel']['enabled']:
    parts.append('relabel')
  if config['distill']['enabled']:
    parts.append('kd')
  if config['data']['keep_list']:
    parts.append('cleaned')
  return '+'.join(parts) or 'baseline'


def results_dir(
  workdir: str | os.PathLike, out: str | os.PathLike | None = None
) -> paths.epath.Path:
  """Where a run's evaluation results go: `out` if given, else `RUN/eval`.

  The one place that names the folder: the suites write their JSON and
  pictures there, and the report and the command line read them back.
  """
  return paths.resolve(out or paths.resolve(workdir) / 'eval')


# One restore path, the trainer's (`jaxmix.train.trained`).
load_config = trained.load_config
_abstract_state = trained.abstract_state
_restore = trained.restore_state


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
  mesh = steps.create_mesh() if mesh is None else mesh
  config, model_def, variables, step, ema = trained.restore_variables(
    path, mesh=mesh, step=step, use_ema=use_ema
  )
  return Run(
    workdir=os.fspath(path),
    name=path.name,
    config=config,
    step=int(step),
    use_ema=ema,
    model_def=model_def,
    variables=variables,
    mesh=mesh,
  )
