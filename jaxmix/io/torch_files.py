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


def _view(tensor: _Tensor, storages: dict, where: str) -> np.ndarray:
  data = storages[tensor.storage]
  last = tensor.offset + sum(
    (n - 1) * s for n, s in zip(tensor.size, tensor.stride)
  )
  if tensor.offset < 0 or (
    min(tensor.size, default=1) > 0
    and (last >= data.size or min(tensor.stride, default=0) < 0)
  ):
    raise ValueError(f'{where}: tensor view runs past its storage.')
  strides = [s * data.itemsize for s in tensor.stride]
  view = np.lib.stride_tricks.as_strided(
    data[tensor.offset :], tensor.size, strides, writeable=False
  )
  return np.array(view)


def _materialise(obj, storages: dict, where: str):
  if isinstance(obj, _Tensor):
    return _view(obj, storages, where)
  if isinstance(obj, (list, tuple)):
    return [_materialise(o, storages, where) for o in obj]
  if isinstance(obj, dict):
    # A state dict's `_metadata` attribute (module versions) is dropped.
    return {k: _materialise(v, storages, where) for k, v in obj.items()}
  return obj


def read_torch_file(data: bytes, where: str = '<bytes>'):
  """Reads a `torch.save`d tensor, or container of tensors, as numpy.

  Args:
    data: the file's bytes, zip or legacy format.
    where: the file's name, for error messages.

  Returns:
    np.ndarray with the saved dtype, shape and values; lists and tuples of
    tensors come back as lists, dicts (a state dict) as dicts in the saved
    order, other values (numbers, strings) as they are.

  Raises:
    ValueError: naming `where`, for anything but a readable torch file of
      tensors (other objects are refused, never constructed).
  """
  try:
    return _read(data, where)
  except (
    pickle.UnpicklingError,
    EOFError,
    zipfile.BadZipFile,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
  ) as e:
    message = str(e) if str(e).startswith(where) else f'{where}: {e!r}'
    raise ValueError(f'cannot read torch file {message}') from e


def _read(data: bytes, where: str):
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
      unpickler = _Unpickler(io.BytesIO(archive.read(pkl[0])), where)
      obj = unpickler.load()
      storages = {}
      for key, (dtype, numel) in unpickler.storages.items():
        raw = archive.read(f'{prefix}data/{key}')
        dtype = dtype.newbyteorder('<' if order == 'little' else '>')
        storages[key] = np.frombuffer(raw, dtype, count=numel)
    return _materialise(obj, storages, where)
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
  return _materialise(obj, storages, where)
