"""Checkpoints: orbax `CheckpointManager`, async, keep the last N, verified.

A checkpoint holds three items: 'state' (the `TrainState` pytree, saved and
restored as global arrays with their shardings), 'data_iter' (the training
iterator's `get_state()` position, a small JSON item), so a resumed run
continues with exactly the batch it would have seen next, and 'digest' (a
SHA-256 of every state leaf's bytes, computed on the host from the arrays
being saved). The three commit together (orbax writes a step to a temporary
directory and renames it when complete), so a step that exists is complete,
and `restore` recomputes the digest of what it read: a truncated, emptied,
missing or altered file fails naming the step, the path and the reason.
`restore_latest` tries the newest step first and falls back to the newest
intact one; the failed steps are moved to `<directory>_rejected/` (kept for
inspection, out of the way of the steps the resumed run will save again).

The manager's policy is "every `every_steps` steps or at a preemption sync
point" (`save()` without `force`, `should_save()`). The training loop makes
the decision itself, because it first checks that the steps being saved
were finite, then calls `save(..., force=True)`: every `every_steps` steps,
at the end, and on preemption. Under `jax.distributed`, JAX's preemption
service makes all hosts agree on a step after a SIGTERM on any of them
(`reached_preemption`); in a single process `PreemptionGuard` turns SIGTERM
into a flag the loop checks at the next step boundary.
"""

import dataclasses
import errno
import hashlib
import logging
import signal
import sys
import types
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxmix.io import paths

_policies = ocp.checkpoint_managers
ITEMS = ('state', 'data_iter', 'digest')


class CheckpointError(ValueError):
  """A checkpoint step that cannot be restored: incomplete, corrupt, other.

  Attributes:
    step: the step.
    path: its directory.
    reason: what failed, in one line.
  """

  def __init__(self, step: int, path: Any, reason: str):
    self.step, self.path, self.reason = step, path, reason
    super().__init__(f'checkpoint step {step} ({path}): {reason}')


class CheckpointSaveError(OSError):
  """A checkpoint step that could not be written (a full disk, other I/O).

  The steps saved before it are untouched: orbax writes a step to a
  temporary directory and only renames a complete one.

  Attributes:
    step: the step being saved.
    path: its directory.
    reason: what failed, in one line.
    errno: `errno.ENOSPC` when the disk is full, else None.
  """

  def __init__(self, step: int | None, path: Any, reason: str, *, full: bool):
    super().__init__(errno.ENOSPC if full else None, reason)
    self.step, self.path, self.reason = step, path, reason
    self.message = f'checkpoint step {step} ({path}) was not saved: {reason}'

  def __str__(self) -> str:
    return self.message


def one_line(error: BaseException, limit: int = 300) -> str:
  """An exception as one short line (orbax's tree dumps run for pages)."""
  lines = [x for x in str(error).strip().splitlines() if x.strip()]
  text = f'{type(error).__name__}: {lines[0] if lines else ""}'.strip()
  return text if len(text) <= limit else text[: limit - 3] + '...'


def drop_closed_loop_errors() -> None:
  """Silences the 'Event loop is closed' echoes of a failed save or restore.

  When one read or write of a step fails (a corrupt file, a full disk),
  orbax closes its event loop while TensorStore still completes the step's
  other operations; each completion then raises
  `RuntimeError('Event loop is closed')` in a callback, or, once the
  interpreter shuts down, `ImportError('sys.meta_path is None, ...')`, which
  Python prints as unraisable exceptions: dozens of tracebacks that bury the
  one real error. Only those exact errors are dropped; every other
  unraisable exception reaches the previous hook. Installed once per
  process (by every `Checkpointer`).
  """
  previous = sys.unraisablehook
  if getattr(previous, 'drops_closed_loop_errors', False):
    return

  def hook(unraisable) -> None:
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == 'Event loop is closed':
      return
    if isinstance(error, ImportError) and 'sys.meta_path is None' in str(error):
      return
    previous(unraisable)

  hook.drops_closed_loop_errors = True
  sys.unraisablehook = hook


def drop_disk_full_logs() -> None:
  """Drops the echoes orbax and asyncio log of a save on a full disk.

  A save that fails with ENOSPC is logged with a full traceback by each of
  orbax's threads it reaches (array writer, sharding writer, commit,
  finalize), and asyncio logs each of the step's other writes that failed
  too ("Future exception was never retrieved"): from five to dozens of
  tracebacks of one error. The `Checkpointer` raises it once, as a
  `CheckpointSaveError` naming the step, so only those records of a full
  disk are dropped; any other error is still logged. Installed once per
  process (by every `Checkpointer`).
  """
  # orbax logs through absl's logger, asyncio through its own.
  loggers = [logging.getLogger('absl'), logging.getLogger('asyncio')]
  if any(getattr(f, 'drops_disk_full_logs', False) for f in loggers[0].filters):
    return

  def keep(record: logging.LogRecord) -> bool:
    if record.levelno < logging.ERROR:
      return True
    if record.name != 'asyncio' and 'orbax' not in record.pathname:
      return True
    error = record.exc_info[1] if record.exc_info else None
    return not (
      paths.disk_full(error) or paths.disk_full(OSError(record.getMessage()))
    )

  keep.drops_disk_full_logs = True
  for logger in loggers:
    logger.addFilter(keep)


def _host_copy(leaf: Any) -> np.ndarray | None:
  """The bytes behind a leaf; None for a sharded array (not one copy here)."""
  if isinstance(leaf, jax.Array):
    if leaf.is_fully_replicated:
      return np.asarray(leaf.addressable_data(0))
    if leaf.is_fully_addressable:
      return np.asarray(leaf)
    return None
  return np.asarray(leaf)


def state_digest(state: Any) -> dict[str, str]:
  """`{leaf path: sha256 hex}` of a pytree's arrays (shape and dtype too).

  The trainer's state is replicated, so every process hashes its own full
  copy and all get the same digest. Leaves sharded over processes are
  recorded by shape and dtype only.
  """
  digest = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    host = _host_copy(leaf)
    shape, dtype = np.shape(leaf), np.dtype(leaf.dtype)
    hasher = hashlib.sha256(f'{dtype.str}{shape}'.encode())
    if host is not None:
      hasher.update(np.ascontiguousarray(host).tobytes())
    digest[jax.tree_util.keystr(path)] = hasher.hexdigest()
  return digest


def digest_mismatch(saved: dict[str, str], state: Any) -> str | None:
  """Why `state` does not match the `saved` digest (None if it does)."""
  got = state_digest(state)
  if set(saved) != set(got):
    missing = sorted(set(saved) ^ set(got))[:3]
    return f'the state has other leaves than the saved digest ({missing})'
  bad = [k for k in saved if saved[k] != got[k]]
  if bad:
    return (
      f'{len(bad)} of {len(saved)} arrays differ from the digest saved with '
      f'them (first: {bad[0]}): the files were altered after the save'
    )
  return None


@dataclasses.dataclass
class Restored:
  """What `Checkpointer.restore_latest` found.

  Attributes:
    step: the restored (verified) step.
    state: the train state.
    data_state: the input pipeline's position.
    skipped: the newer steps that failed, as `CheckpointError`s.
  """

  step: int
  state: Any
  data_state: dict[str, Any]
  skipped: list[CheckpointError]


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
    drop_closed_loop_errors()  # a failed save echoes like a failed restore
    drop_disk_full_logs()
    self._in_flight = None  # the step of the async save not yet committed
    self._manager = ocp.CheckpointManager(
      paths.resolve(directory), options=options, item_names=ITEMS
    )
    self._read_only = False

  @classmethod
  def open_read_only(cls, directory: str) -> 'Checkpointer':
    """An existing directory opened to restore from only (evaluation).

    Nothing is saved, cleaned up or set aside: a trainer may still be
    writing to the directory (a writable manager would delete its
    in-flight temporary checkpoint).
    """
    path = paths.resolve(directory)
    if not path.is_dir():
      raise FileNotFoundError(f'No checkpoint directory {path}.')
    self = cls.__new__(cls)
    self._manager = ocp.CheckpointManager(
      path,
      options=ocp.CheckpointManagerOptions(
        read_only=True, save_interval_steps=0, create=False
      ),
      item_names=ITEMS,
    )
    self._read_only = True
    self._in_flight = None
    return self

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

    The digest is computed here, from the arrays being saved, and is
    committed in the same step directory as the state.

    Returns:
      Whether a save was started.

    Raises:
      CheckpointSaveError: this step, or the one still in flight, could not
        be written (`errno` is ENOSPC on a full disk).
    """
    if not (force or self._manager.should_save(step)):
      return False
    self.wait()  # orbax would wait too; a failure names the step in flight
    self._in_flight = step
    try:
      return self._manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          data_iter=ocp.args.JsonSave(dict(data_state)),
          digest=ocp.args.JsonSave(state_digest(state)),
        ),
        force=force,
      )
    except Exception as error:
      raise self._save_error(error) from error

  def restore(
    self, target: Any, step: int | None = None
  ) -> tuple[Any, dict[str, Any]]:
    """Restores onto the shapes, dtypes and shardings of `target`, verified.

    Args:
      target: a `TrainState` of `jax.Array`s (e.g. the freshly initialised
        one) or of `jax.ShapeDtypeStruct`s with shardings.
      step: the step to restore; the latest by default.

    Returns:
      `(state, data_state)`.

    Raises:
      FileNotFoundError: there is no checkpoint.
      CheckpointError: the step is incomplete, corrupt, fails its digest
        or does not fit `target`.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    path = self.directory / str(step)
    drop_closed_loop_errors()  # before: the echoes follow a failure at once
    try:
      restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract),
          data_iter=ocp.args.JsonRestore(),
          digest=ocp.args.JsonRestore(),
        ),
      )
    except Exception as error:
      raise CheckpointError(step, path, one_line(error)) from error
    if not isinstance(restored.digest, dict):
      raise CheckpointError(step, path, 'its digest item is missing')
    mismatch = digest_mismatch(restored.digest, restored.state)
    if mismatch:
      raise CheckpointError(step, path, mismatch)
    return restored.state, dict(restored.data_iter)

  def restore_latest(
    self, target: Any, *, log: Callable[[str], None] = print
  ) -> Restored | None:
    """The newest intact checkpoint, falling back over failed ones.

    Every failed step is logged (step, path, reason) and moved aside to
    `<directory>_rejected/<step>`, so that neither this run nor a later
    one takes it for good (read-only: only logged). Call on every process.

    Returns:
      A `Restored`, or None when there is no checkpoint at all.

    Raises:
      CheckpointError: checkpoints exist but none is intact (every
        failure is listed); nothing is moved then.
    """
    failed = []
    for step in sorted(self.all_steps(), reverse=True):
      try:
        state, data_state = self.restore(target, step)
      except CheckpointError as error:
        log(f'Skipping {error}; trying the previous one.')
        failed.append(error)
        continue
      self._set_aside(failed, log)
      return Restored(step, state, data_state, failed)
    if failed:
      raise CheckpointError(
        failed[0].step,
        self.directory,
        'no intact checkpoint: '
        + '; '.join(f'step {e.step}: {e.reason}' for e in failed),
      )
    return None

  def _set_aside(
    self, failed: list[CheckpointError], log: Callable[[str], None]
  ) -> None:
    if not failed or self._read_only:
      return
    if jax.process_count() > 1:
      # Every process has read (and rejected) the steps before they move.
      from jax.experimental import multihost_utils

      multihost_utils.sync_global_devices('jaxmix_checkpoint_set_aside')
    if jax.process_index() == 0:
      rejected = epath.Path(f'{self.directory}_rejected')
      rejected.mkdir(parents=True, exist_ok=True)
      for error in failed:
        destination = rejected / str(error.step)
        suffix = 0
        while destination.exists():
          suffix += 1
          destination = rejected / f'{error.step}.{suffix}'
        (self.directory / str(error.step)).rename(destination)
        log(f'Moved the failed checkpoint step {error.step} to {destination}.')
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('jaxmix_checkpoint_set_aside_done')
    self._manager.reload()

  def _save_error(self, error: Exception) -> CheckpointSaveError:
    step, self._in_flight = self._in_flight, None
    return CheckpointSaveError(
      step,
      self.directory / str(step),
      one_line(error),
      full=paths.disk_full(error),
    )

  def wait(self) -> None:
    """Blocks until the pending async save has been committed.

    Raises:
      CheckpointSaveError: that save failed (see `save`).
    """
    try:
      self._manager.wait_until_finished()
    except Exception as error:
      raise self._save_error(error) from error
    self._in_flight = None

  def close(self) -> None:
    """Waits for the pending save (see `wait`), then closes the manager."""
    try:
      self.wait()
    finally:
      # The manager cleans up old temporary steps in a thread started at
      # construction, which its `close` does not wait for: a start that
      # fails at once (a damaged store) would exit while that thread still
      # needs asyncio's executor, and a second traceback would follow the
      # error. No public API waits for it in orbax 0.12.
      await_cleanup = getattr(
        self._manager, '_maybe_await_cleanup_tmp_directory', None
      )
      try:
        if await_cleanup is not None:
          await_cleanup()
      finally:
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
