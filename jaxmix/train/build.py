"""The model and optimiser a config describes, built one way everywhere.

The trainer, the evaluation loader and the annotator all rebuild a run from
its config; building through these functions keeps the restored structure
identical to the trained one.
"""

from collections.abc import Callable

import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from jaxmix import models
from jaxmix.train import optimizers, schedules

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def model_fn(config: ml_collections.ConfigDict) -> Callable[[], nnx.Module]:
  """A constructor of the config's model (`config.model`, `config.data`)."""
  kwargs = config.model.get('kwargs') or {}
  if isinstance(kwargs, ml_collections.ConfigDict):
    kwargs = kwargs.to_dict()

  def create() -> nnx.Module:
    return models.create_model(
      config.model.name,
      num_classes=config.data.num_classes,
      rngs=nnx.Rngs(config.seed),
      dtype=DTYPES[config.model.get('dtype', 'float32')],
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
