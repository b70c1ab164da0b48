"""Hostile torch files: refused with a `ValueError` naming the file, nothing
run, no memory exhausted.

Each of the 24 pickles below would run a command (or import one) if it were
unpickled by `pickle.load` or `torch.load(weights_only=False)`; each goes to
the four readers that take `.pt`/`.pth` files: `read_torch_file` on the zip
and the legacy format, `jaxmix.models.read_state_dict` (weights) and
`jaxmix.data.label_maps.convert.convert_map` (official label maps). The budget
cases are the issue's measurements: 637 bytes asking for 512 MB, shared
references nested 11 deep, a zip member inflating 2000x, self-reference,
100,000-deep nesting and damaged `.safetensors` files.
"""

import copyreg
import io
import pickle
import struct
import zipfile

import numpy as np
import pytest
from torch_file_util import _zip, tensor_pickle, torch_save_bytes

from jaxmix import models
from jaxmix.data.label_maps import convert
from jaxmix.io import torch_files


def text(s: str) -> bytes:
  raw = s.encode()
  return b'X' + struct.pack('<I', len(raw)) + raw


def short(s: str) -> bytes:  # protocol 4's SHORT_BINUNICODE
  return b'\x8c' + bytes([len(s)]) + s.encode()


def glob(module: str, name: str) -> bytes:
  return f'c{module}\n{name}\n'.encode()


def call(module: str, name: str, *args: bytes) -> bytes:
  return glob(module, name) + b'(' + b''.join(args) + b'tR'


def payloads(marker: str) -> dict[str, bytes]:
  """Pickle bodies (no PROTO, no STOP) that would create `marker`."""
  shell = text(f'touch {marker}')
  python = text(f'open({marker!r}, "w").close()')
  inner = b'\x80\x02' + call('os', 'system', shell) + b'.'
  return {
    'os.system': call('os', 'system', shell),
    'posix.system': call('posix', 'system', shell),
    'builtins.eval': call('builtins', 'eval', python),
    'builtins.exec': call('builtins', 'exec', python),
    '__builtin__.eval': call('__builtin__', 'eval', python),
    'subprocess.call': call('subprocess', 'call', shell),
    'subprocess.Popen': call('subprocess', 'Popen', b'(' + shell + b'l'),
    'os.popen': call('os', 'popen', shell),
    'builtins.__import__': call('builtins', '__import__', text('os')),
    'builtins.getattr': call(
      'builtins', 'getattr', glob('collections', 'OrderedDict'), text('x')
    ),
    'nested pickle.loads': call(
      'pickle', 'loads', b'C' + bytes([len(inner)]) + inner
    ),
    'nested _pickle.loads': call(
      '_pickle', 'loads', b'C' + bytes([len(inner)]) + inner
    ),
    'torch.load': call('torch', 'load', text(marker)),
    'STACK_GLOBAL': short('os') + short('system') + b'\x93(' + shell + b'tR',
    'INST': b'(' + shell + b'ios\nsystem\n',
    'OBJ': b'(' + glob('os', 'system') + shell + b'o',
    'BUILD/__setstate__': glob('copyreg', '_reconstructor')
    + b'('
    + glob('builtins', 'object')
    + glob('builtins', 'object')
    + b'NtR}'
    + text('__setstate__')
    + glob('os', 'system')
    + b'sb',
    'EXT1': b'\x82\xf0(' + shell + b'tR',  # code 240 -> os.system
    'persistent id': text('module') + b'Q',
    'storage type': b'('
    + text('storage')
    + glob('os', 'system')
    + text('0')
    + text('cpu')
    + b'K\x01tQ',
    'functools.partial': call(
      'functools', 'partial', glob('os', 'system'), shell
    ),
    'runpy._run_code': call('runpy', '_run_code', python, b'}'),
    'numpy _reconstruct': call(
      'numpy.core.multiarray', '_reconstruct', glob('os', 'system')
    ),
    'torch global off the list': call(
      'torch.serialization', '_load', text(marker)
    ),
  }


def legacy(pickled: bytes) -> bytes:
  """The pre-1.6 stream with `pickled` as its object pickle."""
  info = {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {}}
  head = b''.join(
    pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, info)
  )
  return head + pickled + pickle.dumps([], protocol=2)


def proto(body: bytes) -> bytes:
  version = 4 if b'\x93' in body[:40] else 2
  return b'\x80' + bytes([version]) + body + b'.'


READERS = {
  'zip': lambda data, path: torch_files.read_torch_file(
    _zip('archive', data, []), str(path)
  ),
  'legacy': lambda data, path: torch_files.read_torch_file(
    legacy(data), str(path)
  ),
  'read_state_dict': lambda data, path: (
    path.write_bytes(_zip('archive', data, [])),
    models.read_state_dict(path),
  ),
  'convert_map': lambda data, path: convert.convert_map(
    _zip('archive', data, []), str(path), 1000
  ),
}


@pytest.fixture(autouse=True)
def extension_240():
  """EXT1 240 names os.system, as a poisoned copyreg registry would."""
  copyreg.add_extension('os', 'system', 240)
  yield
  copyreg.remove_extension('os', 'system', 240)


def test_there_are_24_payloads():
  assert len(payloads('m')) == 24


@pytest.mark.parametrize('reader', sorted(READERS))
@pytest.mark.parametrize('name', sorted(payloads('m')))
def test_hostile_pickles_are_refused_and_never_run(tmp_path, reader, name):
  marker = tmp_path / 'ran'
  data = proto(payloads(str(marker))[name])
  path = tmp_path / 'evil.pth'
  with pytest.raises(ValueError) as error:
    READERS[reader](data, path)
  assert 'evil.pth' in str(error.value)
  assert 'refusing to unpickle' in str(error.value) or (
    name == 'persistent id' and 'unknown record' in str(error.value)
  )
  assert not marker.exists()


def test_the_legacy_header_cannot_carry_a_payload(tmp_path):
  marker = tmp_path / 'ran'
  evil = proto(payloads(str(marker))['os.system'])
  data = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + evil
  with pytest.raises(ValueError, match=r'h\.pt.*refusing.*os\.system'):
    torch_files.read_torch_file(data, 'h.pt')
  assert not marker.exists()


# --- the budget --------------------------------------------------------------


def test_a_stride_0_view_of_one_element_is_refused():
  """637 bytes that asked for 512 MB ([8192, 16384] float32)."""
  data = torch_save_bytes(
    np.zeros((8192, 16384), np.float32),
    storage=np.zeros(1, np.float32),
    offset=0,
    stride=(0, 0),
  )
  assert len(data) < 1100  # 7 zip members; the pickle is 139 bytes
  with pytest.raises(ValueError, match=r'big\.pt.*134217728 elements over a'):
    torch_files.read_torch_file(data, 'big.pt')
  huge = torch_save_bytes(
    np.zeros((2, 2), np.float32),
    storage=np.zeros(1, np.float32),
    stride=(0, 0),
  ).replace(b'K\x02K\x02t', b'J\xff\xff\xff\x7fJ\xff\xff\xff\x7ft')
  with pytest.raises(ValueError, match=r'huge\.pt'):
    torch_files.read_torch_file(huge, 'huge.pt')


def test_shared_references_are_read_once():
  """[t, t] nested 11 deep: 2**11 references to 256 KiB (512 MiB if each
  were read), read once within a budget of the storage read plus one copy.
  """
  one = tensor_pickle('<f4', '0', 65536, (65536,), (1,))[2:-1]
  body = one
  for _ in range(11):
    body = body + b'q\x00h\x00\x86'  # memoise, fetch: (x, x)
  data = _zip(
    'archive', b'\x80\x02' + body + b'.', [np.ones(65536, '<f4').tobytes()]
  )
  got = torch_files.read_torch_file(data, 'shared.pt', max_bytes=600_000)
  leaf = got
  for _ in range(11):
    assert leaf[0] is leaf[1]
    leaf = leaf[0]
  assert leaf.shape == (65536,) and leaf.sum() == 65536


def test_views_past_the_budget_are_refused():
  """The budget counts the storage read (4000 B) and the array (4000 B)."""
  storage = np.zeros(1000, np.float32)
  data = torch_save_bytes(storage, storage=storage, stride=(1,))
  torch_files.read_torch_file(data, 'ok.pt', max_bytes=10_000)
  with pytest.raises(
    ValueError, match=r'b\.pt: a tensor of shape \[1000\].*budget of 6000'
  ):
    torch_files.read_torch_file(data, 'b.pt', max_bytes=6000)


def test_a_deflate_bomb_is_refused_before_inflating():
  out = io.BytesIO()
  with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('archive/data.pkl', tensor_pickle('<f4', '0', 1, (1,), (1,)))
    z.writestr('archive/data/0', b'\0' * (64 << 20))
  data = out.getvalue()
  assert len(data) < 100_000
  with pytest.raises(ValueError, match=r'bomb\.pt.*archive/data/0.*budget'):
    torch_files.read_torch_file(data, 'bomb.pt')


def test_self_reference_and_deep_nesting_are_value_errors():
  itself = b'\x80\x02]q\x00h\x00a.'  # x = []; x.append(x)
  with pytest.raises(ValueError, match=r'loop\.pt.*holds itself'):
    torch_files.read_torch_file(_zip('archive', itself, []), 'loop.pt')
  deep = b'\x80\x02' + b'(' * 100_000 + b'N' + b't' * 100_000 + b'.'
  with pytest.raises(ValueError, match=r'deep\.pt.*deeper than 64'):
    torch_files.read_torch_file(_zip('archive', deep, []), 'deep.pt')


@pytest.mark.parametrize(
  'data',
  [
    b'',
    b'\x08' + b'\0' * 7 + b'{"a":1}',
    b'\xff' * 16,
    b'6\0\0\0\0\0\0\0{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
  ],
)
def test_damaged_safetensors_are_value_errors_naming_the_file(tmp_path, data):
  path = tmp_path / 'w.safetensors'
  path.write_bytes(data)
  with pytest.raises(ValueError, match=r'w\.safetensors') as error:
    models.read_state_dict(path)
  assert error.value.__suppress_context__
