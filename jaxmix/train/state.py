"""The train state: a plain pytree of arrays, built from an NNX model.

The jitted steps are pure functions of `TrainState`; the NNX module exists
only inside them (`nnx.merge` at the boundary), so orbax saves plain pytrees
and a step costs no Python graph traversal.

`nnx.split(model, nnx.Param, nnx.BatchStat, nnx.RngState, ...)` gives four
parts: parameters and BatchNorm statistics live in the state; the RNG
streams (dropout, drop-path) are not state: every step re-keys them from the
step key, so a resumed run draws the same masks. Any other variable type is
rejected, because it would silently not be carried from step to step.
"""

import dataclasses
from collections.abc import Callable

import flax
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and writes.

  Attributes:
    step: int32 scalar, the number of updates applied so far.
    params: `nnx.State` of the model's `nnx.Param`s.
    batch_stats: `nnx.State` of its `nnx.BatchStat`s (BatchNorm averages).
    opt_state: the optax state of `params`.
    ema_params: an exponential moving average of `params`, or None.
  """

  step: jax.Array
  params: nnx.State
  batch_stats: nnx.State
  opt_state: optax.OptState
  ema_params: nnx.State | None = None


@dataclasses.dataclass(frozen=True)
class ModelDef:
  """The static half of the model: graph definitions and RNG layout.

  Attributes:
    train_graphdef: graphdef with the model in training mode.
    eval_graphdef: graphdef with the model in inference mode.
    rng_template: abstract `nnx.State` of the model's RNG streams.
  """

  train_graphdef: nnx.GraphDef
  eval_graphdef: nnx.GraphDef
  rng_template: nnx.State

  def rng_state(self, key: jax.Array) -> nnx.State:
    """RNG streams keyed from `key`: stream i gets `fold_in(key, i)`."""
    leaves, treedef = jax.tree.flatten(self.rng_template)
    values = []
    for index, leaf in enumerate(leaves):
      if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        values.append(jax.random.fold_in(key, index))
      else:  # the per-stream call counters
        values.append(jnp.zeros(leaf.shape, leaf.dtype))
    return jax.tree.unflatten(treedef, values)

  def merge(
    self,
    params: nnx.State,
    batch_stats: nnx.State,
    *,
    train: bool,
    key: jax.Array | None = None,
  ) -> nnx.Module:
    """Rebuilds the module (call inside a jitted function).

    Args:
      params: the parameters.
      batch_stats: the BatchNorm statistics.
      train: training mode (batch statistics, dropout) or inference mode.
      key: keys the RNG streams; needed when `train` and the model has any.
    """
    if key is None:
      key = jax.random.key(0)
    graphdef = self.train_graphdef if train else self.eval_graphdef
    # copy=True: fresh Variables owned by the current trace, so BatchNorm
    # may update its statistics inside jax.grad.
    return nnx.merge(
      graphdef, params, batch_stats, self.rng_state(key), copy=True
    )


def _split(model: nnx.Module):
  graphdef, params, stats, rngs, other = nnx.split(
    model, nnx.Param, nnx.BatchStat, nnx.RngState, ...
  )
  if jax.tree.leaves(other):
    raise TypeError(
      'The model has variables that are neither nnx.Param, nnx.BatchStat '
      f'nor RNG state, which the trainer would not carry: {other}'
    )
  return graphdef, params, stats, rngs


def split_model(model: nnx.Module) -> tuple[ModelDef, nnx.State, nnx.State]:
  """`(model_def, params, batch_stats)` of a built model (e.g. imported).

  Switches the model's mode to split both graphdefs; leaves it in eval mode.
  """
  model.train()
  train_graphdef, _, _, rng_template = _split(model)
  model.eval()
  eval_graphdef, params, batch_stats, _ = _split(model)
  return (
    ModelDef(train_graphdef, eval_graphdef, rng_template),
    params,
    batch_stats,
  )


def create_train_state(
  model_fn: Callable[[], nnx.Module],
  tx: optax.GradientTransformation,
  *,
  mesh: Mesh,
  ema: bool = False,
) -> tuple[ModelDef, TrainState]:
  """Initialises the model and optimiser on the mesh, replicated.

  Initialisation runs inside `jax.jit` (the model and the optimiser state in
  two programs) with replicated output shardings, so every process gets the
  same global arrays without host transfers.

  Args:
    model_fn: builds the model (e.g. `jaxmix.models.create_model` bound to
      its arguments); called under `nnx.eval_shape` and inside `jit`.
    tx: the optimiser.
    mesh: the device mesh; the state is replicated over all its devices.
    ema: keep an exponential moving average of the parameters.

  Returns:
    `(model_def, state)`, with `state.step == 0`.
  """
  abstract = nnx.eval_shape(model_fn)
  abstract.train()
  train_graphdef, _, _, rng_template = _split(abstract)
  abstract.eval()
  eval_graphdef, _, _, _ = _split(abstract)
  model_def = ModelDef(train_graphdef, eval_graphdef, rng_template)

  # Two programs: the model's initialisation depends on the model alone, so
  # runs that differ only in optimiser or EMA share its compiled program
  # (most of the compile: the random initialisers); the optimiser's state
  # is a small second program.
  def init_model() -> tuple[nnx.State, nnx.State]:
    _, params, batch_stats, _ = _split(model_fn())
    return params, batch_stats

  def init_rest(
    params: nnx.State,
  ) -> tuple[jax.Array, optax.OptState, nnx.State | None]:
    # A copy, not the input itself: the step donates both trees.
    ema_params = jax.tree.map(jnp.copy, params) if ema else None
    return jnp.zeros((), jnp.int32), tx.init(params), ema_params

  replicated = NamedSharding(mesh, PartitionSpec())
  params, batch_stats = jax.jit(init_model, out_shardings=replicated)()
  step, opt_state, ema_params = jax.jit(init_rest, out_shardings=replicated)(
    params
  )
  return model_def, TrainState(
    step=step,
    params=params,
    batch_stats=batch_stats,
    opt_state=opt_state,
    ema_params=ema_params,
  )


def count_params(state: TrainState) -> int:
  """Number of scalar parameters in `state.params`."""
  return sum(x.size for x in jax.tree.leaves(state.params))


def batch_stats_of(model: nnx.Module) -> nnx.State:
  """The `nnx.BatchStat` state of a (merged) model."""
  return nnx.state(model, nnx.BatchStat)
