"""Reads `torch.save` files without PyTorch, and without running their code.

A `.pt` file is either a zip (PyTorch >= 1.6: `<name>/data.pkl`, a
protocol-2 pickle, plus each storage's raw bytes in `<name>/data/<key>`, in
the byte order named by `<name>/byteorder`, little-endian when absent) or the
older single stream (pickles of a magic number, protocol version and system
info, the object pickle, the sorted storage keys, then each storage as an
int64 element count and its raw bytes). In both, a tensor is pickled as
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` whose
storage is a persistent id `('storage', torch.FloatStorage, key, device,
numel, ...)`.

The unpickler here resolves only those names (and OrderedDict, the empty
backward-hook dict and a state dict's type) and refuses every other global,
so loading a file cannot run code. Tensors come back as numpy arrays, views
applied, inside the plain containers that held them: a label map (one
tensor), a model's state dict (an ordered dict of tensors) or a training
checkpoint (a dict holding one, beside numbers and strings).

A hostile file cannot make the reader exhaust memory either: a view may not
cover more elements than its storage holds, an object referenced twice is
read once (as torch shares it), containers nest at most `MAX_DEPTH` deep and
never hold themselves, and the bytes inflated from the zip and materialised
as arrays are capped (`max_bytes`, by default `budget(len(data))`).
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

_STORAGE_DTYPES = {
  'FloatStorage': '<f4',
  'DoubleStorage': '<f8',
  'HalfStorage': '<f2',
  'LongStorage': '<i8',
  'IntStorage': '<i4',
  'ShortStorage': '<i2',
  'CharStorage': 'i1',
  'ByteStorage': 'u1',
  'BoolStorage': '?',
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_DEPTH = 64  # a checkpoint nests a state dict 2-3 deep
_FAILURES = (
  pickle.UnpicklingError,
  EOFError,
  zipfile.BadZipFile,
  KeyError,
  IndexError,
  TypeError,
  ValueError,
  AttributeError,
  RecursionError,
  MemoryError,
  OverflowError,
  NotImplementedError,  # zip compression methods zipfile lacks
  RuntimeError,  # encrypted zip members
)


def budget(file_bytes: int) -> int:
  """The default `max_bytes` of a file of `file_bytes` bytes.

  torch stores tensors uncompressed and a state dict's views rarely
  overlap, so what is read is about the file's size; four times it, and
  at least 64 MiB, leaves room for overlapping views of a shared storage.
  """
  return max(4 * file_bytes, 64 << 20)


class _Budget:
  """Counts the bytes a read materialises; refuses past `limit`."""

  def __init__(self, limit: int, where: str):
    self.limit, self.used, self.where = limit, 0, where

  def take(self, nbytes: int, what: str) -> None:
    self.used += nbytes
    if self.used > self.limit:
      raise ValueError(
        f'{self.where}: {what} would make the file read {self.used} bytes, '
        f'past its budget of {self.limit} (max_bytes); a hostile or '
        'damaged file.'
      )


class _Tensor(collections.namedtuple('_Tensor', 'storage offset size stride')):
  """A tensor as pickled: a view into a storage, read after unpickling."""


def _rebuild_tensor(storage, offset, size, stride, *unused):
  del unused  # requires_grad, backward hooks, metadata.
  return _Tensor(storage, offset, tuple(size), tuple(stride))


_GLOBALS = {
  ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
  ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
  ('torch._utils', '_rebuild_parameter'): lambda data, *_: data,
  ('collections', 'OrderedDict'): collections.OrderedDict,
}


class _Unpickler(pickle.Unpickler):
  """Knows tensors and storages; refuses every other global."""

  def __init__(self, file, where: str):
    super().__init__(file)
    self.where, self.storages = where, {}

  def find_class(self, module, name):
    if module == 'torch' and name in _STORAGE_DTYPES:
      return np.dtype(_STORAGE_DTYPES[name])
    if (module, name) in _GLOBALS:
      return _GLOBALS[(module, name)]
    raise pickle.UnpicklingError(
      f'{self.where}: refusing to unpickle {module}.{name}; only tensors '
      'and plain containers of them (lists, dicts, state dicts) are read.'
    )

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and pid[0] in ('storage', b'storage')):
      raise pickle.UnpicklingError(f'{self.where}: unknown record {pid!r}.')
    dtype, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(dtype, np.dtype):
      raise pickle.UnpicklingError(f'{self.where}: bad storage type {dtype}.')
    self.storages.setdefault(key, (dtype, numel))
    return key


def _view(
  tensor: _Tensor, storages: dict, where: str, spent: _Budget
) -> np.ndarray:
  data = storages[tensor.storage]
  size, stride = tensor.size, tensor.stride
  if any(not isinstance(n, int) or n < 0 for n in (*size, *stride)):
    raise ValueError(f'{where}: tensor view {size} {stride} is not a view.')
  numel = int(np.prod(size, dtype=object))
  if not isinstance(tensor.offset, int) or tensor.offset < 0:
    raise ValueError(f'{where}: tensor view runs past its storage.')
  if numel > data.size:
    raise ValueError(
      f'{where}: tensor view of {numel} elements over a storage of '
      f'{data.size} (a view past its storage, or repeating it).'
    )
  last = tensor.offset + sum((n - 1) * s for n, s in zip(size, stride))
  if numel and last >= data.size:
    raise ValueError(f'{where}: tensor view runs past its storage.')
  spent.take(numel * data.itemsize, f'a tensor of shape {list(size)}')
  strides = [s * data.itemsize for s in stride]
  view = np.lib.stride_tricks.as_strided(
    data[tensor.offset :], size, strides, writeable=False
  )
  return np.array(view)


def _materialise(obj, storages: dict, where: str, spent: _Budget):
  """`obj` with tensors read; a shared object is read once, as in torch."""
  done: dict[int, object] = {}
  open_: set[int] = set()

  def walk(obj, depth):
    if not isinstance(obj, (_Tensor, list, tuple, dict)):
      return obj
    if id(obj) in done:
      return done[id(obj)]
    if id(obj) in open_:
      raise ValueError(f'{where}: a container holds itself.')
    if depth > MAX_DEPTH:
      raise ValueError(f'{where}: containers nest deeper than {MAX_DEPTH}.')
    open_.add(id(obj))
    if isinstance(obj, _Tensor):
      out = _view(obj, storages, where, spent)
    elif isinstance(obj, (list, tuple)):
      out = [walk(o, depth + 1) for o in obj]
    else:
      # A state dict's `_metadata` attribute (module versions) is dropped.
      out = {k: walk(v, depth + 1) for k, v in obj.items()}
    open_.discard(id(obj))
    done[id(obj)] = out
    return out

  return walk(obj, 0)


def read_torch_file(
  data: bytes, where: str = '<bytes>', *, max_bytes: int | None = None
):
  """Reads a `torch.save`d tensor, or container of tensors, as numpy.

  Args:
    data: the file's bytes, zip or legacy format.
    where: the file's name, for error messages.
    max_bytes: the most bytes the read may inflate from the zip and
      materialise as arrays; `budget(len(data))` by default.

  Returns:
    np.ndarray with the saved dtype, shape and values; lists and tuples of
    tensors come back as lists, dicts (a state dict) as dicts in the saved
    order, other values (numbers, strings) as they are. An object the file
    references twice comes back as one object.

  Raises:
    ValueError: naming `where`, for anything but a readable torch file of
      tensors within the budget (other objects are refused, never
      constructed).
  """
  limit = budget(len(data)) if max_bytes is None else max_bytes
  try:
    return _read(data, where, _Budget(limit, where))
  except _FAILURES as e:
    message = str(e) if str(e).startswith(where) else f'{where}: {e!r}'
    raise ValueError(f'cannot read torch file {message}') from None


def _read_member(archive, name: str, spent: _Budget) -> bytes:
  """A zip member, inflated no further than the budget allows."""
  info = archive.getinfo(name)
  spent.take(info.file_size, f'the zip member {name}')
  with archive.open(info) as member:
    raw = member.read(info.file_size + 1)
  if len(raw) != info.file_size:
    raise ValueError(f'{name}: its size differs from the zip directory.')
  return raw


def _read(data: bytes, where: str, spent: _Budget):
  if data[:4] == b'PK\x03\x04':
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
      names = archive.namelist()
      pkl = [n for n in names if n.endswith('data.pkl')]
      if len(pkl) != 1:
        raise ValueError(f'{where}: a zip but not a torch.save file {names}.')
      prefix = pkl[0][: -len('data.pkl')]
      order = 'little'
      if prefix + 'byteorder' in names:
        order = archive.read(prefix + 'byteorder').decode().strip()
      unpickler = _Unpickler(
        io.BytesIO(_read_member(archive, pkl[0], spent)), where
      )
      obj = unpickler.load()
      storages = {}
      for key, (dtype, numel) in unpickler.storages.items():
        raw = _read_member(archive, f'{prefix}data/{key}', spent)
        dtype = dtype.newbyteorder('<' if order == 'little' else '>')
        storages[key] = np.frombuffer(raw, dtype, count=numel)
    return _materialise(obj, storages, where, spent)
  if data[:2] != b'\x80\x02':
    raise ValueError(f'{where}: neither a zip nor a legacy torch.save file.')
  stream = io.BytesIO(data)
  header = [_Unpickler(stream, where).load() for _ in range(3)]
  if header[0] != _LEGACY_MAGIC or not isinstance(header[2], dict):
    raise ValueError(f'{where}: not a torch.save file (bad magic number).')
  little = header[2].get('little_endian', True)
  unpickler = _Unpickler(stream, where)
  obj = unpickler.load()
  storages = {}
  for key in _Unpickler(stream, where).load():
    dtype, numel = unpickler.storages[str(key)]
    count = int(np.frombuffer(stream.read(8), '<i8' if little else '>i8')[0])
    dtype = dtype.newbyteorder('<' if little else '>')
    raw = stream.read(count * dtype.itemsize)
    if count < numel or len(raw) != count * dtype.itemsize:
      raise ValueError(f'{where}: truncated storage {key}.')
    storages[str(key)] = np.frombuffer(raw, dtype)
  return _materialise(obj, storages, where, spent)
