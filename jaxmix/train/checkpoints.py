"""Checkpoints: orbax `CheckpointManager`, async, keep the last N.

A checkpoint holds two items: 'state' (the `TrainState` pytree, saved and
restored as global arrays with their shardings) and 'data_iter' (the
training iterator's `get_state()` position, a small JSON item), so a resumed
run continues with exactly the batch it would have seen next.

The manager's policy is "every `every_steps` steps or at a preemption sync
point" (`save()` without `force`, `should_save()`). The training loop makes
the decision itself, because it first checks that the steps being saved
were finite, then calls `save(..., force=True)`: every `every_steps` steps,
at the end, and on preemption. Under `jax.distributed`, JAX's preemption
service makes all hosts agree on a step after a SIGTERM on any of them
(`reached_preemption`); in a single process `PreemptionGuard` turns SIGTERM
into a flag the loop checks at the next step boundary.
"""

import signal
import types
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

_policies = ocp.checkpoint_managers


class Checkpointer:
  """Saves and restores `(TrainState, iterator position)` pairs.

  Args:
    directory: where the step directories go (created if missing).
    every_steps: save every this many steps.
    keep: number of most recent checkpoints to keep.
    async_save: write in a background thread (the default); the loop waits
      only before the next save, at exit and on errors.
  """

  def __init__(
    self,
    directory: str,
    *,
    every_steps: int,
    keep: int,
    async_save: bool = True,
  ):
    if every_steps < 1:
      raise ValueError(
        f'checkpoint.every_steps must be >= 1, got {every_steps}.'
      )
    if keep < 1:
      raise ValueError(f'checkpoint.keep must be >= 1, got {keep}.')
    options = ocp.CheckpointManagerOptions(
      save_decision_policy=_policies.AnySavePolicy(
        [
          _policies.FixedIntervalPolicy(every_steps),
          _policies.PreemptionCheckpointingPolicy(),
        ]
      ),
      preservation_policy=_policies.LatestN(keep),
      enable_async_checkpointing=async_save,
      cleanup_tmp_directories=True,
    )
    self._manager = ocp.CheckpointManager(
      epath.Path(directory).absolute(),
      options=options,
      item_names=('state', 'data_iter'),
    )

  @property
  def directory(self) -> epath.Path:
    return self._manager.directory

  def latest_step(self) -> int | None:
    """The newest complete checkpoint's step, or None."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def should_save(self, step: int) -> bool:
    """Whether `save(step, ...)` will write (interval or preemption)."""
    return self._manager.should_save(step)

  def reached_preemption(self, step: int) -> bool:
    """True when all hosts agreed to stop at `step` (jax.distributed)."""
    return self._manager.reached_preemption(step)

  def save(
    self,
    step: int,
    state: Any,
    data_state: dict[str, Any],
    *,
    force: bool = False,
  ) -> bool:
    """Saves when the policy (or `force`) says so; call on every process.

    Returns:
      Whether a save was started.
    """
    return self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data_iter=ocp.args.JsonSave(dict(data_state)),
      ),
      force=force,
    )

  def restore(
    self, target: Any, step: int | None = None
  ) -> tuple[Any, dict[str, Any]]:
    """Restores onto the shapes, dtypes and shardings of `target`.

    Args:
      target: a `TrainState` of `jax.Array`s (e.g. the freshly initialised
        one) or of `jax.ShapeDtypeStruct`s with shardings.
      step: the step to restore; the latest by default.

    Returns:
      `(state, data_state)`.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract),
        data_iter=ocp.args.JsonRestore(),
      ),
    )
    return restored.state, dict(restored.data_iter)

  def wait(self) -> None:
    """Blocks until the pending async save has been committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


class PreemptionGuard:
  """Turns SIGTERM into a flag the loop checks at step boundaries.

  Use as a context manager; the previous handler is restored on exit. Only
  installed in the main thread (signal handlers cannot be set elsewhere).
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del signum, frame
    self.requested = True

  def __enter__(self) -> 'PreemptionGuard':
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread
      self._previous = None
    return self

  def __exit__(self, *exc: object) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
