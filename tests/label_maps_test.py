"""Tests for the label-map store: writer, reader, lookups and tf.data join."""

import hashlib
import json
import os

import numpy as np
import pytest

from jaxmix.data.label_maps.store import LabelMapStore, MissingLabelMapError
from jaxmix.data.label_maps.writer import LabelMapWriter

S, K, CLASSES = 3, 2, 20


def _maps(n, seed=0):
  rng = np.random.RandomState(seed)
  scores = rng.uniform(-5, 5, (n, S, S, K)).astype(np.float16)
  indices = rng.randint(0, CLASSES, (n, S, S, K)).astype(np.uint16)
  return scores, indices


def _names(n):
  return [f'n{i % 3:08d}_{i}.JPEG' for i in range(n)]


def _store(path, n=7, **kwargs):
  writer = LabelMapWriter(
    str(path), size=S, k=K, num_classes=CLASSES, source='test', chunk=3
  )
  scores, indices = _maps(n)
  writer.add(_names(n)[:4], scores[:4], indices[:4])
  writer.add(_names(n)[4:], scores[4:], indices[4:])
  return writer.finalize(), scores, indices


def test_lookup_returns_each_names_map(tmp_path):
  store, scores, indices = _store(tmp_path)
  order = [5, 0, 6, 2, 2]
  query = np.array([_names(7)[i].encode() for i in order], dtype=object)
  got_scores, got_indices, found = store.lookup(query)
  assert got_scores.dtype == np.float16 and got_indices.dtype == np.uint16
  np.testing.assert_array_equal(got_scores, scores[order])
  np.testing.assert_array_equal(got_indices, indices[order])
  assert found.tolist() == [True] * 5
  # str names work as well as bytes.
  np.testing.assert_array_equal(store.lookup([_names(7)[3]])[0], scores[[3]])
  assert (len(store), store.num_classes, store.num_looked_up) == (7, 20, 6)


def test_files_are_plain_npy_of_4_bytes_per_cell(tmp_path):
  store, scores, indices = _store(tmp_path)
  np.testing.assert_array_equal(np.load(tmp_path / 'scores.npy'), scores)
  np.testing.assert_array_equal(np.load(tmp_path / 'indices.npy'), indices)
  for name in ('scores.npy', 'indices.npy'):
    assert os.path.getsize(tmp_path / name) == 128 + 7 * S * S * K * 2
  meta = json.loads((tmp_path / 'metadata.json').read_text())
  files = meta.pop('files')
  for name in ('scores.npy', 'indices.npy', 'names.npy', 'rows.npy'):
    data = (tmp_path / name).read_bytes()
    assert files[name]['bytes'] == len(data)
    assert files[name]['sha256'] == hashlib.sha256(data).hexdigest()
    array = np.load(tmp_path / name)
    assert files[name]['shape'] == list(array.shape)
    assert files[name]['dtype'] == array.dtype.str
  assert files['scores.npy']['shape'] == [7, S, S, K]
  assert meta == {
    'format': 2,
    'num_rows': 7,
    'size': S,
    'k': K,
    'num_classes': CLASSES,
    'source': 'test',
    'annotator': '',
  }
  assert sorted(os.listdir(tmp_path)) == [
    'indices.npy',
    'metadata.json',
    'names.npy',
    'rows.npy',
    'scores.npy',
  ]
  assert isinstance(store.scores, np.memmap)


def test_missing_map_is_an_error_naming_the_file(tmp_path):
  store, _, _ = _store(tmp_path)
  with pytest.raises(MissingLabelMapError, match=r"'n9_1\.JPEG'.*one_hot"):
    store.lookup([_names(7)[0], 'n9_1.JPEG'])
  assert isinstance(MissingLabelMapError('x'), ValueError)


def test_one_hot_fallback_zeros_and_counts(tmp_path, caplog):
  _store(tmp_path)
  store = LabelMapStore.open(str(tmp_path), missing='one_hot')
  scores, indices, found = store.lookup(['nope.JPEG', _names(7)[1], 'x'])
  assert found.tolist() == [False, True, False]
  assert not scores[0].any() and not indices[2].any()
  np.testing.assert_array_equal(scores[1], _maps(7)[0][1])
  assert (store.num_missing, store.num_looked_up) == (2, 3)


def test_names_longer_than_any_stored_do_not_match_a_prefix(tmp_path):
  store, _, _ = _store(tmp_path)
  store.missing = 'one_hot'
  name = _names(7)[2]
  _, _, found = store.lookup([name + 'X', name[:-1], name])
  assert found.tolist() == [False, False, True]


def test_resume_after_a_crash_keeps_committed_rows(tmp_path):
  scores, indices = _maps(5)
  names = _names(5)
  writer = LabelMapWriter(str(tmp_path), size=S, k=K, num_classes=CLASSES)
  writer.chunk = 2
  for i in range(5):
    writer.add(names[i : i + 1], scores[i : i + 1], indices[i : i + 1])
  del writer  # Rows 0-3 are committed, row 4 was only buffered.
  with open(tmp_path / 'scores.npy', 'ab') as f:
    f.write(b'half-written junk')
  with pytest.raises(ValueError, match=r'unfinished.*4 rows'):
    LabelMapWriter(str(tmp_path), size=S, k=K, num_classes=CLASSES)
  with pytest.raises(ValueError, match='unfinished'):
    LabelMapStore.open(str(tmp_path))
  with pytest.raises(ValueError, match='cannot resume'):
    LabelMapWriter(
      str(tmp_path), size=S, k=K + 1, num_classes=CLASSES, resume=True
    )
  writer = LabelMapWriter(
    str(tmp_path), size=S, k=K, num_classes=CLASSES, resume=True
  )
  assert writer.num_rows == 4
  assert names[3] in writer and names[4] not in writer
  writer.add(names[4:], scores[4:], indices[4:])
  store = writer.finalize()
  got = store.lookup(names)
  np.testing.assert_array_equal(got[0], scores)
  np.testing.assert_array_equal(got[1], indices)
  with pytest.raises(ValueError, match='already complete'):
    LabelMapWriter(str(tmp_path), size=S, k=K, num_classes=CLASSES)


@pytest.mark.parametrize(
  'change, match',
  [
    (lambda s, i: i.__setitem__((1, 0, 0, 0), CLASSES), r'n00000001_1'),
    (lambda s, i: i.__setitem__((0, 2, 1, 1), 2.5), r'n00000000_0'),
    (lambda s, i: s.__setitem__((1, 0, 0, 0), 1e6), r'n00000001_1'),
    (lambda s, i: s.__setitem__((0, 0, 0, 0), np.nan), r'n00000000_0'),
  ],
)
def test_bad_maps_are_refused_naming_the_file(tmp_path, change, match):
  scores, indices = _maps(2)
  scores, indices = scores.astype(np.float32), indices.astype(np.float32)
  change(scores, indices)
  writer = LabelMapWriter(str(tmp_path), size=S, k=K, num_classes=CLASSES)
  with pytest.raises(ValueError, match=match):
    writer.add(_names(2), scores, indices)


def test_bad_shapes_duplicates_and_names_are_refused(tmp_path):
  writer = LabelMapWriter(str(tmp_path), size=S, k=K, num_classes=CLASSES)
  scores, indices = _maps(2)
  with pytest.raises(ValueError, match=r'\[n, S, S, k\]'):
    writer.add(_names(2), scores[:, :2], indices[:, :2])
  writer.add(_names(1), scores[:1], indices[:1])
  with pytest.raises(ValueError, match='already added'):
    writer.add(_names(1), scores[:1], indices[:1])
  with pytest.raises(ValueError, match='one line'):
    writer.add(['a\nb'], scores[:1], indices[:1])
  with pytest.raises(ValueError, match='65536'):
    LabelMapWriter(str(tmp_path / 'x'), size=S, k=K, num_classes=70000)


def test_empty_store_finds_nothing(tmp_path):
  writer = LabelMapWriter(str(tmp_path), size=S, k=K, num_classes=CLASSES)
  store = writer.finalize()
  store.missing = 'one_hot'
  scores, _, found = store.lookup(['a.JPEG'])
  assert len(store) == 0 and found.tolist() == [False]
  assert scores.shape == (1, S, S, K)


def test_padding_names_are_missing_not_malformed(tmp_path):
  store, _, _ = _store(tmp_path)
  with pytest.raises(MissingLabelMapError, match="file_name ''"):
    store.lookup([b''])
  store.missing = 'one_hot'
  assert store.lookup([b'', 'a\nb'])[2].tolist() == [False, False]


def test_npy_headers_are_numpys_and_keep_their_length():
  """The writer's in-place headers: NumPy's own, the same 128 bytes as the
  rows grow (golden: the bytes the hand-packed header had)."""
  import io

  from jaxmix.data.label_maps import writer

  header = writer._npy_header(np.dtype(np.float16), (1281167, 15, 15, 5))
  body = (
    b"{'descr': '<f2', 'fortran_order': False, 'shape': (1281167, 15, 15, 5), }"
  )
  assert header == b'\x93NUMPY\x01\x00v\x00' + body.ljust(117) + b'\n'

  for rows in (0, 10**15):
    found = writer._npy_header(np.dtype(np.uint16), (rows, 7, 7, 2))
    assert len(found) == 128
    fp = io.BytesIO(found)
    np.lib.format.read_magic(fp)
    assert np.lib.format.read_array_header_1_0(fp) == (
      (rows, 7, 7, 2),
      False,
      np.dtype(np.uint16),
    )
