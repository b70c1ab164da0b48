"""Devices: per-device keys, and a jaxmix op run on each device's shard.

A key replicated over devices draws the same lambda, box and partners on
every device. `device_key` folds the device's index along a mapped axis into
the key (the samplers and ops take `axis_name=` for it, for `pmap` and
`shard_map` users); `per_shard` runs an op on each device's shard of a
batch sharded over a mesh.

Under plain `jit`, pairing examples across a batch sharded over devices (a
permutation, a flip, a roll) makes XLA move images between devices. The ops
of the official CutMix and ReLabel scripts pair examples inside each GPU's
batch instead. `per_shard` does the same on a `jax.sharding.Mesh`: the op runs
under `jax.shard_map` on each device's slice of the batch, so mixing never
leaves the device and costs no communication.
"""

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from jaxmix._src import checks


def device_key(key: jax.Array, axis_name: str | None) -> jax.Array:
  """`key` folded with this device's index along the mapped `axis_name`.

  Inside `jax.pmap` or `jax.shard_map`, each device then draws its own from
  a replicated key. The samplers and ops call it for their `axis_name=`.

  Args:
    key: a PRNG key.
    axis_name: the name of a mapped axis, or None (`key` unchanged). Static.

  Returns:
    A PRNG key.

  Examples:
    >>> import jax
    >>> device_key(jax.random.key(0), None).shape
    ()
  """
  if axis_name is None:
    return key
  return jax.random.fold_in(key, jax.lax.axis_index(axis_name))


def _names(axis: str | tuple[str, ...]) -> tuple[str, ...]:
  return (axis,) if isinstance(axis, str) else tuple(axis)


def _axis_size(mesh: jax.sharding.Mesh, axis: str | tuple[str, ...]) -> int:
  names = _names(axis)
  for name in names:
    if name not in mesh.shape:
      raise ValueError(
        f'`axis` {name!r} is not an axis of the mesh {dict(mesh.shape)}.'
      )
  return math.prod(mesh.shape[name] for name in names)


def _is_explicit(mesh: jax.sharding.Mesh, axis: str | tuple[str, ...]) -> bool:
  """Whether `axis` is an Explicit-sharding axis (`jax.make_mesh`'s default)."""
  names = _names(axis)
  types = dict(
    zip(mesh.axis_names, getattr(mesh, 'axis_types', ()), strict=False)
  )
  return any(types.get(name) == AxisType.Explicit for name in names)


def per_shard(
  op: Callable[..., Any],
  mesh: jax.sharding.Mesh,
  *,
  axis: str | tuple[str, ...] = 'data',
  per_device_keys: bool = True,
) -> Callable[..., Any]:
  """Wraps `op(key, *arrays, **knobs)` to run on each device's shard.

  The returned function takes the same arguments as `op`. Every positional
  array after `key` is split along its leading (batch) axis over the mesh
  axis `axis`; the outputs are put back together along the same axis. Knobs
  given as `jax.Array` (for example a traced `prob` schedule) are passed to
  every device unchanged; other knobs are fixed when the op is traced.

  Randomness: with `per_device_keys` (the default) each device folds its index
  along `axis` into `key`, so every shard draws its own lambda, boxes and
  partners, as per-GPU scripts do. Without it all shards use the same key:
  the same lambda and box on every device (still paired within each shard).

  Args:
    op: a jaxmix op following `op(key, *arrays, **knobs)`, e.g.
      `jaxmix.cutmix`, returning arrays (or pytrees of arrays) with the batch
      axis first.
    mesh: the device mesh.
    axis: name (or tuple of names) of the mesh axis the batch is split over.
      Static.
    per_device_keys: fold the device index into the key. Static.

  Returns:
    A function `fn(key, *arrays, **knobs)` with `op`'s outputs; use it inside
    or outside `jax.jit`. Its compiled program is cached (by op, mesh, axis,
    `per_device_keys` and the static knobs), so an eager call after the
    first costs what a jitted call costs.

  Examples:
    >>> import jax, jax.numpy as jnp, jaxmix
    >>> mesh = jax.make_mesh((1,), ('data',))
    >>> mix = per_shard(jaxmix.cutmix, mesh)
    >>> x, y = jnp.ones((4, 8, 8, 3)), jnp.eye(4)
    >>> x2, y2 = mix(jax.random.key(0), x, y, alpha=1.0)
    >>> x2.shape, y2.shape
    ((4, 8, 8, 3), (4, 4))
  """
  if not callable(op):
    raise TypeError(f'`op` must be callable, got {op!r}.')
  num_shards = _axis_size(mesh, axis)
  axis = axis if isinstance(axis, str) else tuple(axis)

  def sharded(key: jax.Array, *arrays: Any, **knobs: Any) -> Any:
    checks.check_key(key)
    for position, array in enumerate(arrays, start=1):
      batch = jnp.shape(array)[0] if jnp.ndim(array) else None
      if batch is None or batch % num_shards:
        raise ValueError(
          f'Argument {position} of {getattr(op, "__name__", "op")} has shape '
          f'{jnp.shape(array)}: its leading (batch) axis must be divisible by '
          f'the {num_shards} devices of mesh axis {axis!r}.'
        )
    array_knobs = {k: v for k, v in knobs.items() if isinstance(v, jax.Array)}
    static_knobs = tuple(
      sorted((k, type(v), v) for k, v in knobs.items() if k not in array_knobs)
    )
    try:
      program = _program(op, mesh, axis, per_device_keys, static_knobs)
    except TypeError:  # an unhashable static knob: build it for this call
      program = _program.__wrapped__(
        op, mesh, axis, per_device_keys, static_knobs
      )
    return program(key, arrays, array_knobs)

  return sharded


@functools.lru_cache(maxsize=256)
def _program(
  op: Callable[..., Any],
  mesh: jax.sharding.Mesh,
  axis: str | tuple[str, ...],
  per_device_keys: bool,
  static_knobs: tuple[tuple[str, type, Any], ...],
) -> Callable[..., Any]:
  """The jitted shard_map of `op`, one per op, mesh and static settings.

  Cached, so that calls outside `jit` reuse the compiled program (jit's own
  cache then keys it by shapes and dtypes) instead of tracing and compiling
  a new closure every time; inside `jit` it is inlined as before.
  """
  batch_spec = PartitionSpec(axis)
  knobs = {name: value for name, _, value in static_knobs}
  # Explicit meshes type the sharding of every array, and shard_map checks
  # rather than converts; put the batch on the axis first (a no-op when it
  # already is, the usual case inside a data-parallel step).
  explicit = _is_explicit(mesh, axis)

  def body(key, arrays, array_knobs):
    if per_device_keys:
      key = jax.random.fold_in(key, jax.lax.axis_index(axis))
    return op(key, *arrays, **array_knobs, **knobs)

  run = jax.shard_map(
    body,
    mesh=mesh,
    in_specs=(PartitionSpec(), batch_spec, PartitionSpec()),
    out_specs=batch_spec,
  )

  def program(key, arrays, array_knobs):
    if explicit:
      arrays = tuple(
        jax.reshard(array, NamedSharding(mesh, batch_spec)) for array in arrays
      )
    return run(key, arrays, array_knobs)

  return jax.jit(program)
