"""Writes `torch.save` files without PyTorch, for the reader's tests.

The bytes follow what `torch.save` writes (checked against PyTorch 2.14):
a zip, entries stored uncompressed under `<archive>/`, holding `data.pkl`
(a protocol-2 pickle calling `torch._utils._rebuild_tensor_v2` on a storage
given by persistent id `('storage', torch.FloatStorage, '0', 'cpu',
numel)`), `.format_version`, `.storage_alignment`, `byteorder`, `data/0`
(the raw storage), `version` and `.data/serialization_id`; or, with
`legacy=True`, the pre-1.6 stream (magic number, protocol version, system
info, the tensor pickle, the storage keys, then each storage as an int64
element count and its bytes).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile

import numpy as np

_TYPES = {'<f4': b'FloatStorage', '<f2': b'HalfStorage', '<i8': b'LongStorage'}


def _int(n: int) -> bytes:
  return b'K' + bytes([n]) if 0 <= n < 256 else b'J' + struct.pack('<i', n)


def _text(s: str) -> bytes:
  raw = s.encode()
  return b'X' + struct.pack('<I', len(raw)) + raw


def _tuple(items) -> bytes:
  return b'(' + b''.join(items) + b't'


def _tensor_ops(dtype, key, numel, size, stride, offset=0, legacy=False):
  """Pickle opcodes that push one tensor over storage `key`."""
  pid = [_text('storage'), b'ctorch\n' + _TYPES[dtype] + b'\n', _text(key)]
  pid += [_text('cpu'), _int(numel)] + ([b'N'] if legacy else [])
  return (
    b'ctorch._utils\n_rebuild_tensor_v2\n('
    + _tuple(pid)
    + b'Q'
    + _int(offset)
    + _tuple(_int(n) for n in size)
    + _tuple(_int(n) for n in stride)
    + b'\x89ccollections\nOrderedDict\n)Rt'
    + b'R'
  )


def tensor_pickle(dtype, key, numel, size, stride, offset=0, legacy=False):
  """The pickle torch writes for one tensor over storage `key`."""
  ops = _tensor_ops(dtype, key, numel, size, stride, offset, legacy)
  return b'\x80\x02' + ops + b'.'


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
  steps = np.cumprod((1, *shape[:0:-1]))[::-1]
  return tuple(int(s) for s in steps) if shape else ()


def _zip(archive: str, pkl: bytes, storages: list[bytes]) -> bytes:
  out = io.BytesIO()
  with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
    z.writestr(f'{archive}/data.pkl', pkl)
    z.writestr(f'{archive}/.format_version', b'1')
    z.writestr(f'{archive}/.storage_alignment', b'64')
    z.writestr(f'{archive}/byteorder', b'little')
    for key, raw in enumerate(storages):
      z.writestr(f'{archive}/data/{key}', raw)
    z.writestr(f'{archive}/version', b'3\n')
    z.writestr(f'{archive}/.data/serialization_id', b'0' * 40)
  return out.getvalue()


def state_dict_bytes(
  tensors: dict[str, np.ndarray],
  *,
  archive: str = 'archive',
  wrap: str | None = None,
) -> bytes:
  """Bytes of `torch.save(state_dict)` (zip format), one storage a tensor.

  The state dict is an `OrderedDict` of contiguous tensors (float32,
  float16 or int64, scalars included), as `model.state_dict()` gives. With
  `wrap='state_dict'` it is saved inside a training checkpoint, `{'epoch':
  3, 'state_dict': ...}`, as the official CutMix script saves it.
  """
  items, storages = [], []
  for key, (name, array) in enumerate(tensors.items()):
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder('<').str
    flat = np.ascontiguousarray(array).reshape(-1)
    storages.append(flat.astype(dtype).tobytes())
    ops = _tensor_ops(
      dtype, str(key), flat.size, array.shape, _contiguous_stride(array.shape)
    )
    items.append(_text(name) + ops)
  body = b'ccollections\nOrderedDict\n)R(' + b''.join(items) + b'u'
  if wrap is not None:
    body = b'}(' + _text('epoch') + _int(3) + _text(wrap) + body + b'u'
  return _zip(archive, b'\x80\x02' + body + b'.', storages)


def torch_save_bytes(
  array: np.ndarray,
  *,
  archive: str = 'archive',
  legacy: bool = False,
  storage: np.ndarray | None = None,
  offset: int = 0,
  stride: tuple[int, ...] | None = None,
  byteorder: str = 'little',
) -> bytes:
  """Bytes of `torch.save(tensor)` for a tensor with `array`'s values.

  By default the tensor is contiguous over its own storage. Give `storage`
  (1-D), `offset` and `stride` (in elements) to save a view instead;
  `array` then only gives the shape and dtype.
  """
  dtype = array.dtype.newbyteorder('<').str
  if storage is None:
    storage = np.ascontiguousarray(array).reshape(-1)
    stride = _contiguous_stride(array.shape)
  raw_order = '<' if byteorder == 'little' else '>'
  raw = storage.astype(np.dtype(dtype).newbyteorder(raw_order)).tobytes()
  key = '94840624516656' if legacy else '0'
  pkl = tensor_pickle(
    dtype, key, storage.size, array.shape, stride, offset, legacy
  )
  if legacy:
    info = {
      'protocol_version': 1001,
      'little_endian': True,
      'type_sizes': {'short': 2, 'int': 4, 'long': 4},
    }
    head = b''.join(
      pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, info)
    )
    keys = pickle.dumps([key], protocol=2)
    return head + pkl + keys + struct.pack('<q', storage.size) + raw
  out = io.BytesIO()
  with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
    z.writestr(f'{archive}/data.pkl', pkl)
    z.writestr(f'{archive}/.format_version', b'1')
    z.writestr(f'{archive}/.storage_alignment', b'64')
    z.writestr(f'{archive}/byteorder', byteorder.encode())
    z.writestr(f'{archive}/data/0', raw)
    z.writestr(f'{archive}/version', b'3\n')
    z.writestr(f'{archive}/.data/serialization_id', b'0' * 40)
  return out.getvalue()


def write_release(root: str, maps: dict[str, np.ndarray], **kwargs) -> None:
  """Writes maps {'<wnid>/<stem>': [2, k, S, S] array} as `<path>.pt`."""
  for member, array in maps.items():
    path = os.path.join(root, member + '.pt')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    stem = os.path.basename(member)
    with open(path, 'wb') as f:
      f.write(torch_save_bytes(array, archive=stem, **kwargs))
