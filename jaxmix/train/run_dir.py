"""The run directory as a record: a fixed identity and one writer.

A run directory holds `config.json`, written once at the run's first start
and never rewritten. Starting again in the same directory resumes the run,
so the requested config is compared with the recorded one field by field:

- `IDENTITY` fields change the trained function or the data order (model,
  sizes, dataset, seed, batch, augmentation, optimiser, schedule, ReLabel).
  A resume that changes one is refused (`RunIdentityError`), listing the
  fields, because the checkpoints belong to the recorded config.
- `MAY_CHANGE` fields only say how long to train, how often to log, save or
  evaluate, and where the data or the other hosts are. A change is allowed
  and appended, dated, to `config_history.jsonl`. Extending `num_epochs`
  also stretches a schedule measured in the run's length (cosine), which
  the history shows.

A field belongs to the most specific prefix of either list; fields of
neither (none today, `tests/run_record_test.py` checks the schema) count as
identity.

One trainer writes a run directory at a time: `RunLock` holds an
operating-system lock on the file `lock` while the run trains, with the
owner record `owner.json` (host, pid, time) beside it; multi-host runs take
it on process 0.
"""

from __future__ import annotations

import datetime
import errno
import functools
import json
import os
import socket
from collections.abc import Mapping
from typing import Any

import filelock
import ml_collections
from etils import epath

from jaxmix.io import paths

CONFIG = 'config.json'
HISTORY = 'config_history.jsonl'
LOCK = 'lock'
OWNER = 'owner.json'

IDENTITY = (
  'seed',
  'model',
  'image_size',
  'data',
  'optimizer',
  'schedule',
  'global_batch_size',
  'label_smoothing',
  'mix',
  'cutout',
  'random_erasing',
  'relabel',
  'cmo',
  'distill',
)
MAY_CHANGE = (
  'num_epochs',
  'log_every_steps',
  'eval_every_epochs',
  'checkpoint',
  'distributed',
  'data.data_dir',
  'data.manual_dir',
  'model.init_required',  # only asks a fresh run for init_from
)


class RunIdentityError(ValueError):
  """The requested config changes the identity of an existing run."""


class RunLockedError(RuntimeError):
  """Another trainer holds the run directory."""


class DiskFullError(OSError):
  """The run directory's disk filled up (`errno.ENOSPC`); the run stopped.

  Raised once the run is closed: the checkpoints saved before are intact
  and the lock is released, so the same command resumes once space is
  freed. The message names the run directory, what was being written (the
  checkpoint step) and the last intact checkpoint.
  """

  def __init__(self, workdir: Any, doing: str, kept: str, detail: str):
    super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC))
    self.message = (
      f'run directory {workdir}: the disk is full (ENOSPC) {doing}. {kept} '
      'The run directory is unlocked: free some space, then start the same '
      f'command again to resume. ({detail})'
    )

  def __str__(self) -> str:
    return self.message


def may_change(field: str) -> bool:
  """Whether a resume may change the dotted config `field`."""
  best, allowed = '', False
  for prefixes, verdict in ((IDENTITY, False), (MAY_CHANGE, True)):
    for prefix in prefixes:
      matches = field == prefix or field.startswith(prefix + '.')
      if matches and len(prefix) > len(best):
        best, allowed = prefix, verdict
  return allowed


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """`{'a': {'b': 1}} -> {'a.b': 1}`; empty dicts stay as leaves."""
  flat = {}
  for key, value in tree.items():
    field = f'{prefix}{key}'
    if isinstance(value, Mapping) and value:
      flat.update(flatten(value, f'{field}.'))
    else:
      flat[field] = value
  return flat


def as_json(config: ml_collections.ConfigDict | Mapping) -> dict[str, Any]:
  """The JSON form of a config (tuples become lists), as config.json has."""
  if isinstance(config, ml_collections.ConfigDict):
    return json.loads(config.to_json_best_effort(sort_keys=True))
  return json.loads(json.dumps(config, sort_keys=True))


_ABSENT = '<absent>'

# Fields added to the config after runs were recorded without them, whose
# value for such a run differs from today's default: the value it used.
# `upgrade` fills them into a recorded config, so the code reads every field
# directly (`jaxmix.evaluate.runs.load_config`).
ADDED_LATER = {
  'data.crop_sampler': 'tensorflow',
  'data.color_jitter_clip': True,
  'data.train_resize': 'antialias',
  'mix.targets': 'dense',
  # Colour jitter and lighting ran in the host pipeline before they moved
  # to the device.
  'data.photometric': 'host',
  # flax's running-variance rule (the PyTorch recipes now take torch's).
  'model.kwargs.unbiased_running_var': False,
}


def value_before_field(field: str) -> Any:
  """The value a run recorded before `field` existed used for it.

  A field whose default changed since it was added says so in
  `ADDED_LATER`; any other field was added at its default (off) value, so
  an old run used the current default. `_ABSENT` for a field the schema
  does not know.
  """
  if field in ADDED_LATER:
    return ADDED_LATER[field]
  return _schema_defaults().get(field, _ABSENT)


@functools.cache
def _schema_defaults() -> dict[str, Any]:
  from jaxmix.configs import default  # the schema, shipped with jaxmix

  return flatten(as_json(default.get_config()))


def _recorded_around(flat: Mapping[str, Any], field: str) -> bool:
  """Whether `flat` holds `field`, a field inside it or one around it."""
  if field in flat or any(f.startswith(field + '.') for f in flat):
    return True
  parts = field.split('.')
  return any('.'.join(parts[:i]) in flat for i in range(1, len(parts)))


def upgrade(recorded: Mapping[str, Any]) -> dict[str, Any]:
  """A recorded config (`config.json`) with the fields added since filled.

  Every schema field the record lacks gets `value_before_field(field)`,
  the value the run used (`ADDED_LATER` where the default changed since),
  so code reading a recorded config reads every field directly, without a
  fallback of its own. Recorded values, and fields the schema does not
  know, stay as recorded.
  """
  flat = flatten(as_json(recorded))
  added = {
    field: value_before_field(field)
    for field in _schema_defaults()
    if not _recorded_around(flat, field)
  }
  return _unflatten({**flat, **added})


def differences(
  recorded: Mapping[str, Any], requested: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
  """`{field: (recorded, requested)}` of the leaves that differ.

  A field `recorded` lacks compares as `value_before_field(field)`: a run
  recorded before the field existed is compared as if it had it.
  """
  old, new = flatten(as_json(recorded)), flatten(as_json(requested))
  for a, b in ((old, new), (new, old)):
    # An empty dict on one side, filled on the other: compare its leaves.
    for field in [f for f, v in a.items() if v == {}]:
      if any(g.startswith(field + '.') for g in b):
        del a[field]
  old |= {f: value_before_field(f) for f in new.keys() - old.keys()}
  return {
    field: (old.get(field, _ABSENT), new.get(field, _ABSENT))
    for field in sorted(old.keys() | new.keys())
    if old.get(field, _ABSENT) != new.get(field, _ABSENT)
  }


def _effective(workdir: epath.Path) -> dict[str, Any] | None:
  """config.json with the allowed changes of the history applied."""
  path = workdir / CONFIG
  if not path.exists():
    return None
  try:
    config = flatten(json.loads(path.read_text()))
  except json.JSONDecodeError as error:
    raise ValueError(
      f'{path} is not valid JSON ({error}); the run record is damaged.'
    ) from None
  history = workdir / HISTORY
  if history.exists():
    for line in history.read_text().splitlines():
      if line.strip():
        for field, (_, new) in json.loads(line)['changes'].items():
          config[field] = new
  return config


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  tree: dict[str, Any] = {}
  for field, value in flat.items():
    node = tree
    *parents, name = field.split('.')
    for part in parents:
      node = node.setdefault(part, {})
    node[name] = value
  return tree


def check_resume(
  config: ml_collections.ConfigDict, workdir: paths.PathLike
) -> dict[str, tuple[Any, Any]] | None:
  """Compares `config` with the run recorded in `workdir`.

  Returns:
    None for a new run (no `config.json`), else the allowed changes since
    the last start, `{field: (before, now)}` (empty when there are none).

  Raises:
    RunIdentityError: listing every identity field that differs.
  """
  workdir = paths.resolve(workdir)
  effective = _effective(workdir)
  if effective is None:
    return None
  changed = differences(_unflatten(effective), config)
  refused = {f: v for f, v in changed.items() if not may_change(f)}
  if refused:
    lines = '\n'.join(
      f'  {field}: {old!r} (run) -> {new!r} (requested)'
      for field, (old, new) in refused.items()
    )
    raise RunIdentityError(
      f'{workdir} holds a run of another config; these fields fix a run '
      f'and cannot change when it resumes:\n{lines}\nTo train this config, '
      'start a new run with another --workdir; to resume this run, drop '
      'these overrides.'
    )
  return changed


def record(
  config: ml_collections.ConfigDict,
  workdir: paths.PathLike,
  changes: Mapping[str, tuple[Any, Any]] | None,
  *,
  step: int,
) -> None:
  """Writes config.json (new run) or appends the changes to the history.

  Args:
    config: the requested config.
    workdir: the run directory.
    changes: `check_resume`'s answer: None for a new run.
    step: the step the run starts from.
  """
  workdir = paths.resolve(workdir)
  if changes is None:
    text = config.to_json_best_effort(indent=2, sort_keys=True)
    paths.write_text(workdir / CONFIG, text + '\n')
    return
  if not changes:
    return
  entry = {
    'time': datetime.datetime.now(datetime.UTC).isoformat(),
    'step': int(step),
    'changes': {f: [old, new] for f, (old, new) in changes.items()},
  }
  paths.append_text(workdir / HISTORY, json.dumps(entry) + '\n')


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # someone else's live process
  return True


def _describe(holder: Mapping[str, Any]) -> str:
  return (
    f'process {holder.get("pid")} on host {holder.get("host")} (since '
    f'{holder.get("time")})'
  )


class RunLock:
  """The one-writer lock of a run directory.

  On a local (or network-mounted) directory the lock is an operating-system
  lock on the file `lock` (`filelock`): the kernel releases it when the
  process dies, however it dies, so no crash can leave the directory locked.
  The owner record `owner.json` (`{'host', 'pid', 'time'}`) is written beside
  it, whole or not at all, only to name the holder to a refused trainer.

  Object stores have no such lock: there the owner record is the lock. It
  is created if absent and read back, which catches all but a near-
  simultaneous start. A record of a live process, or of any process of
  another host (its liveness cannot be told from here), is refused naming
  the holder; one of a dead process of this host (a `kill -9`) is taken
  over, saying so. An empty or unreadable record is what a crash between
  creating and writing it leaves: it is taken over too, saying so.

  Args:
    workdir: the run directory.
    log: called with one message when a stale lock is taken over.
  """

  def __init__(self, workdir: paths.PathLike, log=None):
    self.directory = paths.resolve(workdir)
    self.path = self.directory / LOCK
    self.owner_path = self.directory / OWNER
    self._log = log or (lambda message: None)
    self._mine = {
      'host': socket.gethostname(),
      'pid': os.getpid(),
      'time': datetime.datetime.now(datetime.UTC).isoformat(),
    }
    self._os_lock: filelock.BaseFileLock | None = None
    self.held = False

  def _holder(self) -> dict[str, Any] | None:
    """The owner record; None if absent, {} if empty or unreadable."""
    try:
      holder = json.loads(self.owner_path.read_text())
    except FileNotFoundError:
      return None
    except (ValueError, OSError):
      return {}  # half-written or unreadable: a crash artefact
    return holder if isinstance(holder, dict) else {}

  def _refuse(self, holder: Mapping[str, Any] | None) -> RunLockedError:
    who = (
      _describe(holder)
      if holder
      else 'a process that has not written its owner record yet'
    )
    return RunLockedError(
      f'{self.directory} is in use by {who}: one trainer per run directory.'
    )

  def _take_over(self, holder: Mapping[str, Any] | None) -> None:
    """Says what a stale record was; the caller replaces it."""
    if holder is None:
      return
    if holder:
      self._log(
        f'Taking over the stale lock {self.owner_path} of '
        f'{_describe(holder)}: no longer running.'
      )
    else:
      self._log(
        f'Taking over the stale lock {self.owner_path}: the record is empty '
        'or unreadable, left by a trainer that crashed while writing it.'
      )

  def _write_record(self) -> None:
    try:
      paths.write_text(self.owner_path, json.dumps(self._mine))
    except OSError as error:
      raise OSError(
        error.errno,
        f'Cannot write the owner record {self.owner_path} of the run '
        f'directory ({error.strerror or error}); nothing was started',
      ) from None

  def _acquire_local(self) -> None:
    lock = filelock.FileLock(os.fspath(self.path), blocking=False)
    try:
      lock.acquire()
    except filelock.Timeout:
      raise self._refuse(self._holder()) from None
    except OSError as error:
      raise OSError(
        error.errno, f'Cannot take the lock {self.path}: {error.strerror}'
      ) from None
    try:
      self._take_over(self._holder())
      self._write_record()
    except BaseException:
      lock.release()
      raise
    self._os_lock = lock

  def _acquire_url(self) -> None:
    for _ in range(2):  # a second try after removing a stale record
      holder = self._holder()
      if holder is None:
        self._write_record()
        if self._holder() == self._mine:
          return
        holder = self._holder()  # another trainer wrote at the same time
        raise self._refuse(holder)
      same_host = holder.get('host') == self._mine['host']
      pid = holder.get('pid')
      stale = not holder or (
        same_host and isinstance(pid, int) and not _alive(pid)
      )
      if not stale:
        raise self._refuse(holder)
      self._take_over(holder)
      self.owner_path.unlink(missing_ok=True)
    raise self._refuse(self._holder())

  def acquire(self) -> None:
    """Takes the lock or raises `RunLockedError` naming its holder.

    Raises:
      RunLockedError: another trainer holds the directory.
      OSError: the owner record cannot be written (a full disk); nothing
        is left locked.
    """
    self.directory.mkdir(parents=True, exist_ok=True)
    if paths.is_url(self.directory):
      self._acquire_url()
    else:
      self._acquire_local()
    self.held = True

  def release(self) -> None:
    if not self.held:
      return
    try:
      if self._holder() == self._mine:
        self.owner_path.unlink(missing_ok=True)
    finally:
      if self._os_lock is not None:
        self._os_lock.release()
        self._os_lock = None
      self.held = False

  def __enter__(self) -> RunLock:
    self.acquire()
    return self

  def __exit__(self, *exc: object) -> None:
    self.release()
