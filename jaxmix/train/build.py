"""The model and optimiser a config describes, built one way everywhere.

The trainer, the evaluation loader and the annotator all rebuild a run from
its config; building through these functions keeps the restored structure
identical to the trained one.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmix import models
from jaxmix.models import torch_names
from jaxmix.train import optimizers, schedules
from jaxmix.train import state as state_lib

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def model_fn(config: ml_collections.ConfigDict) -> Callable[[], nnx.Module]:
  """A constructor of the config's model (`config.model`, `config.data`)."""
  kwargs = config.model.kwargs
  if isinstance(kwargs, ml_collections.ConfigDict):
    kwargs = kwargs.to_dict()

  def create() -> nnx.Module:
    return models.create_model(
      config.model.name,
      num_classes=config.data.num_classes,
      rngs=nnx.Rngs(config.seed),
      dtype=DTYPES[config.model.dtype],
      **kwargs,
    )

  return create


def optimizer(
  config: ml_collections.ConfigDict, *, steps_per_epoch: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """The config's optimiser and its learning-rate schedule (per step).

  The optimiser state's structure does not depend on `steps_per_epoch`, so
  loaders that only restore a checkpoint may pass 1.
  """
  learning_rate_fn = schedules.create_learning_rate_schedule(
    config.schedule,
    base_learning_rate=config.optimizer.learning_rate,
    steps_per_epoch=steps_per_epoch,
    num_epochs=config.num_epochs,
  )
  return optimizers.create_optimizer(
    config.optimizer, learning_rate_fn
  ), learning_rate_fn


def _head_fits(model: nnx.Module, state_dict: models.torch_interop.StateDict):
  """Whether the file's classifier has the model's torch shapes."""
  flat = dict(nnx.to_flat_state(nnx.state(model)))
  return all(
    e.key in state_dict
    and tuple(state_dict[e.key].shape)
    == torch_names.torch_shape(e.kind, flat[e.path].shape)
    for e in torch_names.head_entries(model)
  )


def _host_model(
  config: ml_collections.ConfigDict, state: state_lib.TrainState
) -> nnx.Module:
  """The config's model holding host copies of `state`'s weights.

  Rebuilt from the model's abstract shape: creating it anew would run its
  initialisers op by op (one XLA compilation per parameter shape) only to
  reproduce values `state` already holds.
  """
  graphdef, _, _, rest = nnx.split(
    nnx.eval_shape(model_fn(config)), nnx.Param, nnx.BatchStat, ...
  )

  def host(leaf: jax.Array) -> np.ndarray:
    # Replicated: every process's first shard is the whole array. A
    # writable copy: the import assigns into it.
    return np.array(leaf.addressable_data(0))

  params, batch_stats = jax.tree.map(host, (state.params, state.batch_stats))
  return nnx.merge(graphdef, params, batch_stats, rest)


def import_torch_weights(
  config: ml_collections.ConfigDict,
  state: state_lib.TrainState,
  tx: optax.GradientTransformation,
  *,
  mesh: Mesh,
  log: Callable[..., None] = print,
  state_dict: models.torch_interop.StateDict | None = None,
) -> state_lib.TrainState:
  """A fresh train state starting from `config.model.init_from`'s weights.

  The file is a torchvision / timm state dict (`.safetensors` or `.pth`,
  see `jaxmix.models.load_torch_weights`) for `config.model.name`. When
  its classifier does not fit `config.data.num_classes` (fine-tuning on
  another label set) the model keeps its freshly initialised head, and a
  log line says so. The optimiser state is re-initialised on the imported
  parameters and the EMA, when kept, starts from them.

  Args:
    config: the run's config.
    state: the freshly initialised state (`create_train_state`), step 0.
    tx: the run's optimiser.
    mesh: the mesh the state is replicated over.
    log: `log(format, *args)`, e.g. the run logger's `info`.
    state_dict: the weights, instead of reading `config.model.init_from`.

  Returns:
    The state with the imported parameters and BatchNorm statistics.
  """
  path = config.model.init_from
  if state_dict is None:
    state_dict = models.read_state_dict(path)
  model = _host_model(config, state)
  head = _head_fits(model, state_dict)
  models.assign_torch_weights(model, state_dict, head=head, where=str(path))
  if not head:
    log(
      'init_from %s: its classifier does not fit %d classes; keeping the '
      'freshly initialised head',
      path,
      config.data.num_classes,
    )
  _, params, batch_stats, _ = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
  replicated = NamedSharding(mesh, PartitionSpec())
  params, batch_stats = jax.device_put((params, batch_stats), replicated)
  log(
    'init_from %s: %d arrays imported into %s',
    path,
    len(jax.tree.leaves((params, batch_stats))),
    config.model.name,
  )
  return state.replace(
    params=params,
    batch_stats=batch_stats,
    opt_state=jax.jit(tx.init, out_shardings=replicated)(params),
    ema_params=None if state.ema_params is None else params,
  )
