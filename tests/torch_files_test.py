"""Tests for jaxmix.io.torch_files: torch.save files read without torch."""

import pickle

import numpy as np
import pytest
from torch_file_util import tensor_pickle, torch_save_bytes

from jaxmix.io import torch_files


def _map(seed=0):
  return np.random.RandomState(seed).randn(2, 5, 15, 15).astype(np.float32)


@pytest.mark.parametrize('legacy', [False, True])
@pytest.mark.parametrize('archive', ['archive', 'n01440764_10026'])
def test_reads_exact_values(legacy, archive):
  array = _map()
  data = torch_save_bytes(array, archive=archive, legacy=legacy)
  got = torch_files.read_torch_file(data, 'x.pt')
  assert got.dtype == np.float32
  np.testing.assert_array_equal(got, array)


def test_reads_big_endian_storage():
  array = _map(1)
  got = torch_files.read_torch_file(torch_save_bytes(array, byteorder='big'))
  np.testing.assert_array_equal(got, array)


def test_reads_views_with_offset_and_strides():
  """A slice of a bigger tensor saves the whole storage plus a view."""
  storage = np.arange(3 * 2250, dtype=np.float32)
  stride = (1125, 225, 1, 15)  # Rows and columns transposed.
  shape_only = np.zeros((2, 5, 15, 15), np.float32)
  data = torch_save_bytes(
    shape_only, storage=storage, offset=2250, stride=stride
  )
  want = storage[2250:4500].reshape(2, 5, 15, 15).transpose(0, 1, 3, 2)
  np.testing.assert_array_equal(torch_files.read_torch_file(data), want)


def test_reads_float16_and_int64():
  half = _map(2).astype(np.float16)
  got = torch_files.read_torch_file(torch_save_bytes(half))
  assert got.dtype == np.float16
  np.testing.assert_array_equal(got, half)
  ids = np.arange(12, dtype=np.int64).reshape(3, 4)
  np.testing.assert_array_equal(
    torch_files.read_torch_file(torch_save_bytes(ids)), ids
  )


def test_view_past_storage_is_an_error():
  data = torch_save_bytes(
    np.zeros((2, 5, 15, 15), np.float32),
    storage=np.zeros(2000, np.float32),
    offset=0,
    stride=(1125, 225, 15, 1),
  )
  with pytest.raises(ValueError, match=r'v\.pt.*past its storage'):
    torch_files.read_torch_file(data, 'v.pt')


def test_refuses_other_globals_without_calling_them(tmp_path):
  marker = tmp_path / 'ran'
  evil = (
    b'\x80\x02cos\nsystem\nX'
    + len(f'touch {marker}').to_bytes(4, 'little')
    + f'touch {marker}'.encode()
    + b'\x85R.'
  )
  with pytest.raises(ValueError, match=r'evil\.pt.*refusing.*os\.system'):
    torch_files.read_torch_file(evil, 'evil.pt')
  assert not marker.exists()


def test_legacy_header_must_be_torch():
  data = pickle.dumps(123, protocol=2) * 3 + tensor_pickle(
    '<f4', '1', 4, (4,), (1,)
  )
  with pytest.raises(ValueError, match=r'y\.pt.*magic'):
    torch_files.read_torch_file(data, 'y.pt')


@pytest.mark.parametrize(
  'data', [b'', b'hello world', b'PK\x03\x04broken', b'\x80\x02K\x01.']
)
def test_garbage_is_a_value_error_naming_the_file(data):
  with pytest.raises(ValueError, match=r'bad\.pt'):
    torch_files.read_torch_file(data, 'bad.pt')


def test_truncated_storage_is_an_error():
  data = torch_save_bytes(_map(), legacy=True)
  with pytest.raises(ValueError, match=r't\.pt'):
    torch_files.read_torch_file(data[:-100], 't.pt')
  zipped = torch_save_bytes(_map())
  with pytest.raises(ValueError, match=r't\.pt'):
    torch_files.read_torch_file(zipped[:5000], 't.pt')
