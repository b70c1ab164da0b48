"""The one path layer of the trainer and the evaluation: `etils.epath`.

Every file a run directory holds (config, history, lock, logs, TensorBoard
events, checkpoints, evaluation results and pictures) is read and written
through
`epath.Path`, the layer orbax itself uses, so a URL workdir (`gs://bucket/
run`, or any scheme epath serves) works like a local folder. Local paths are
made absolute; URLs are kept as they are (`os.path.abspath('gs://b/r')` would
turn them into a local folder `./gs:/b/r`).

  run = paths.resolve('gs://bucket/run')  # epath.Path, untouched
  paths.write_text(run / 'config.json', text)  # atomic where renames are
  paths.write_figure(figure, run / 'eval' / 'cams.png')  # matplotlib
"""

from __future__ import annotations

import errno
import io
import os
import uuid

from etils import epath

PathLike = str | os.PathLike


def is_url(path: PathLike) -> bool:
  """Whether `path` names a file system by a scheme (`gs://...`)."""
  return '://' in os.fspath(path)


def resolve(path: PathLike) -> epath.Path:
  """`path` as an `epath.Path`: URLs as given, local paths absolute."""
  text = os.fspath(path)
  if not text:
    raise ValueError('A path must not be empty.')
  if is_url(text):
    return epath.Path(text)
  return epath.Path(os.path.abspath(os.path.expanduser(text)))


def read_text(path: PathLike) -> str:
  return resolve(path).read_text()


def read_bytes(path: PathLike) -> bytes:
  return resolve(path).read_bytes()


def write_text(path: PathLike, text: str) -> epath.Path:
  """Writes `text` to `path` whole or not at all (`write_bytes`, UTF-8)."""
  return write_bytes(path, text.encode('utf-8'))


def write_bytes(path: PathLike, data: bytes) -> epath.Path:
  """Writes `data` to `path` whole or not at all (temporary file + rename).

  A reader never sees half a file, and a failed write leaves the old file
  (if any) in place. On object stores a rename is a copy and a delete, which
  is still all-or-nothing for the reader of the final name.

  Returns:
    The resolved path.
  """
  path = resolve(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  temporary = path.parent / f'.{path.name}.tmp-{uuid.uuid4().hex[:12]}'
  try:
    temporary.write_bytes(data)
    temporary.replace(path)
  finally:
    if temporary.exists():
      temporary.unlink()
  return path


def write_figure(figure, path: PathLike, **savefig_kwargs) -> str:
  """Saves a matplotlib figure to `path` (a PNG, say) through the layer.

  matplotlib and PIL write to local files only, so the picture is drawn
  into memory and its bytes written with `write_bytes`.

  Args:
    figure: anything with matplotlib's `savefig(file, **kwargs)`.
    path: the file to write; its format follows the suffix unless
      `savefig_kwargs` has `format`.
    **savefig_kwargs: passed to `savefig` (`dpi`, `bbox_inches`, ...).

  Returns:
    `path` as given (a URL stays a URL), as a string.
  """
  suffix = os.path.splitext(os.fspath(path))[1].lstrip('.')
  savefig_kwargs.setdefault('format', suffix or 'png')
  buffer = io.BytesIO()
  figure.savefig(buffer, **savefig_kwargs)
  write_bytes(path, buffer.getvalue())
  return os.fspath(path)


def append_text(path: PathLike, text: str) -> None:
  """Appends `text` to `path` (created if missing)."""
  path = resolve(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open('a') as f:
    f.write(text)


def check_writable(directory: PathLike) -> epath.Path:
  """Creates `directory` and proves it writable, before any work is done.

  Raises:
    PermissionError: naming the directory and the reason.
  """
  directory = resolve(directory)
  probe = directory / f'.write-check-{uuid.uuid4().hex[:12]}'
  try:
    directory.mkdir(parents=True, exist_ok=True)
    probe.write_text('')
    probe.unlink()
  except OSError as error:
    raise PermissionError(
      f'Cannot write to {directory}: {error}. Choose a writable directory '
      '(e.g. with --out).'
    ) from None
  return directory


def disk_full(error: BaseException | None) -> bool:
  """Whether `error`, or an error it was raised from, is a full disk.

  An `OSError` with `errno.ENOSPC`, or TensorStore's (orbax's writer)
  `RESOURCE_EXHAUSTED` error, which carries the code in its text only.
  """
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if f"os_error_code='{errno.ENOSPC}'" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False
