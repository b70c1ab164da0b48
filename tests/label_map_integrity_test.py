"""A damaged label-map store is named, never trained on.

Each case damages a real store on disk the way a disk, a copy or a person
does, and checks the one error it gets: a `LabelMapStoreError` naming the
store, the file and, for a value, the row and the image.

| damage | before | after |
|---|---|---|
| rows.npy overwritten with -1 | trains on all-zero maps, 0 missing | open |
| rows.npy pointing past the arrays | IndexError | open |
| scores.npy truncated | 'mmap length is greater than file size' | open |
| garbage metadata.json | bare JSONDecodeError | open, one line |
| the same under the trainer | JSONDecodeError, once masked | one error |
| NaN score in one map | 'non-finite training loss' | the batch |
| class id >= K in one map | silent | the batch |
| a flipped byte | silent | verify (digest) |
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxmix.apps import verify_label_maps
from jaxmix.data.label_maps import join
from jaxmix.data.label_maps import store as store_lib
from jaxmix.data.label_maps.store import LabelMapStore, LabelMapStoreError
from jaxmix.data.label_maps.writer import LabelMapWriter

S, K, CLASSES, N = 3, 2, 20, 6
NAMES = [f'img_{i}.JPEG' for i in range(N)]


@pytest.fixture
def store_dir(tmp_path):
  rng = np.random.RandomState(0)
  writer = LabelMapWriter(str(tmp_path / 'maps'), size=S, k=K, num_classes=20)
  writer.add(
    NAMES[::-1],  # rows in another order than the sorted names
    rng.uniform(-5, 5, (N, S, S, K)),
    rng.randint(0, CLASSES, (N, S, S, K)),
  )
  writer.finalize()
  return tmp_path / 'maps'


def rows_of(store_dir):
  return np.load(store_dir / 'rows.npy')


def overwrite(path, array):
  """Rewrites the data of a .npy file in place (header and size kept)."""
  data = np.load(path, mmap_mode='r+')
  data[...] = array
  data.flush()


def row_of(store_dir, name):
  names = np.load(store_dir / 'names.npy')
  return int(rows_of(store_dir)[list(names).index(name.encode())])


def test_a_whole_store_verifies(store_dir):
  assert store_lib.verify(str(store_dir)) == {
    'num_rows': N,
    'digests_checked': True,
  }
  store = LabelMapStore.open(str(store_dir), verify=True)
  assert store.lookup(NAMES)[2].all()


def test_rows_overwritten_with_minus_one_are_refused_at_open(store_dir):
  overwrite(store_dir / 'rows.npy', -1)
  with pytest.raises(LabelMapStoreError) as error:
    LabelMapStore.open(str(store_dir), missing='one_hot')
  message = str(error.value)
  assert str(store_dir) in message and 'rows.npy' in message
  assert 'row -1' in message and 'img_0.JPEG' in message


def test_rows_past_the_arrays_and_repeated_rows_are_refused(store_dir):
  rows = rows_of(store_dir)
  overwrite(store_dir / 'rows.npy', np.where(rows == 2, N + 5, rows))
  with pytest.raises(LabelMapStoreError, match=rf'rows.npy.*row {N + 5}'):
    LabelMapStore.open(str(store_dir))
  overwrite(store_dir / 'rows.npy', np.zeros(N))
  with pytest.raises(LabelMapStoreError, match=r'rows\.npy.*listed twice'):
    LabelMapStore.open(str(store_dir))


@pytest.mark.parametrize('name', ['scores.npy', 'indices.npy', 'names.npy'])
def test_truncated_or_grown_files_are_refused_naming_them(store_dir, name):
  path = store_dir / name
  data = path.read_bytes()
  for damaged in (data[:-7], data + b'\0\0'):
    path.write_bytes(damaged)
    with pytest.raises(LabelMapStoreError) as error:
      LabelMapStore.open(str(store_dir))
    assert f'{store_dir}, file {name}' in str(error.value)
    assert 'bytes' in str(error.value)


def test_a_format_1_store_checks_sizes_from_the_header(store_dir):
  """Stores written before the file records still get the cheap checks."""
  meta = json.loads((store_dir / 'metadata.json').read_text())
  del meta['files']
  meta['format'] = 1
  (store_dir / 'metadata.json').write_text(json.dumps(meta))
  assert store_lib.verify(str(store_dir))['digests_checked'] is False
  path = store_dir / 'scores.npy'
  path.write_bytes(path.read_bytes()[:-7])
  with pytest.raises(LabelMapStoreError, match=r'scores\.npy.*truncated'):
    LabelMapStore.open(str(store_dir))


def test_a_missing_array_file_is_named(store_dir):
  os.remove(store_dir / 'indices.npy')
  with pytest.raises(LabelMapStoreError, match=r'indices\.npy: the file is'):
    LabelMapStore.open(str(store_dir))


@pytest.mark.parametrize(
  'text', ['{"num_rows": 6, "size"', '\x00\xff garbage', '[1, 2]', '{}']
)
def test_garbage_metadata_is_one_clear_error(store_dir, text):
  (store_dir / 'metadata.json').write_bytes(text.encode('latin1'))
  with pytest.raises(LabelMapStoreError) as error:
    LabelMapStore.open(str(store_dir))
  assert f'label-map store {store_dir}: metadata.json' in str(error.value)
  chained = error.value.__context__  # printed as a second traceback
  assert chained is None or error.value.__suppress_context__


def test_metadata_that_disagrees_with_the_arrays_is_named(store_dir):
  meta = json.loads((store_dir / 'metadata.json').read_text())
  meta['k'] = K + 1
  (store_dir / 'metadata.json').write_text(json.dumps(meta))
  with pytest.raises(LabelMapStoreError, match=r'scores.npy: holds <f2\['):
    LabelMapStore.open(str(store_dir))


def test_a_nan_score_stops_the_batch_naming_store_file_row_image(store_dir):
  row = row_of(store_dir, 'img_4.JPEG')
  scores = np.load(store_dir / 'scores.npy')
  scores[row, 1, 2, 0] = np.nan
  overwrite(store_dir / 'scores.npy', scores)
  store = LabelMapStore.open(str(store_dir))  # sizes are right
  store.lookup(NAMES[:3])  # other rows are fine
  with pytest.raises(LabelMapStoreError) as error:
    store.lookup(['img_1.JPEG', 'img_4.JPEG'])
  message = str(error.value)
  assert f'label-map store {store_dir}, file scores.npy' in message
  assert f'row {row} (image ' in message and 'img_4.JPEG' in message
  with pytest.raises(LabelMapStoreError, match='SHA-256'):
    LabelMapStore.open(str(store_dir), verify=True)


def test_a_class_id_out_of_range_stops_the_join(store_dir):
  """Through the trainer's join, with the store's own policy."""
  row = row_of(store_dir, 'img_2.JPEG')
  indices = np.load(store_dir / 'indices.npy')
  indices[row, 0, 0, 1] = CLASSES
  overwrite(store_dir / 'indices.npy', indices)
  store = LabelMapStore.open(str(store_dir))
  batches = [
    {
      'file_name': np.array(names, object),
      'crop_box': np.tile([0.0, 0.0, 1.0, 1.0], (len(names), 1)),
    }
    for names in (NAMES[:2], NAMES[2:4])
  ]
  joined = join.join_label_maps(
    iter(batches), join.store_maps_fn(store), num_classes=CLASSES
  )
  assert next(joined)['label_map_found'].all()
  with pytest.raises(LabelMapStoreError) as error:
    next(joined)
  message = str(error.value)
  assert f'{store_dir}, file indices.npy' in message and 'img_2.JPEG' in message
  assert f'[0, {CLASSES})' in message


def test_a_flipped_byte_is_found_by_verify(store_dir, capsys):
  path = store_dir / 'indices.npy'
  data = bytearray(path.read_bytes())
  data[-2] ^= 1  # the low byte of the last id: still a class id < 20
  path.write_bytes(bytes(data))
  LabelMapStore.open(str(store_dir))  # the cheap checks cannot see it
  with pytest.raises(SystemExit) as exit_:
    verify_label_maps.main(['--store', str(store_dir)])
  assert 'file indices.npy: SHA-256' in str(exit_.value.code)


def test_the_command_prints_one_line_and_no_traceback(store_dir):
  command = [
    sys.executable,
    '-m',
    'jaxmix.apps.verify_label_maps',
    '--store',
    str(store_dir),
  ]
  whole = subprocess.run(command, capture_output=True, text=True)
  assert whole.returncode == 0 and f'{N} maps whole' in whole.stdout
  (store_dir / 'metadata.json').write_text('{"num_rows": 6,')
  damaged = subprocess.run(command, capture_output=True, text=True)
  assert damaged.returncode == 1
  assert 'Traceback' not in damaged.stderr
  assert damaged.stderr.strip().count('\n') == 0
  assert 'metadata.json' in damaged.stderr


def test_the_trainer_on_a_damaged_store_stops_with_one_error(
  store_dir, tmp_path
):
  """The issue's run: garbage metadata.json under the trainer's command.

  Before, a bare JSONDecodeError, once masked by "cannot schedule new
  futures after interpreter shutdown"; now one error naming the store and
  the file, and the run directory left unlocked.
  """
  (store_dir / 'metadata.json').write_text('{"num_rows": 6, "size"')
  workdir = tmp_path / 'run'
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  failed = subprocess.run(
    [
      sys.executable,
      '-m',
      'jaxmix.apps.train',
      '--config=configs/default.py:smoke',
      f'--workdir={workdir}',
      '--config.relabel.enabled=True',
      f'--config.relabel.store_dir={store_dir}',
    ],
    cwd=root,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert failed.returncode == 1, failed.stderr[-3000:]
  assert failed.stderr.count('Traceback') == 1, failed.stderr[-3000:]
  assert 'cannot schedule new futures' not in failed.stderr
  last = failed.stderr.strip().splitlines()[-1]
  assert (
    f'LabelMapStoreError: label-map store {store_dir}: metadata.json' in last
  )
  assert not (workdir / 'owner.json').exists()
