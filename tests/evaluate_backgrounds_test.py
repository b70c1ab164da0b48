"""The Backgrounds Challenge builder and suites on a tiny fake release.

The fake release of `backgrounds_fixtures` is built by jaxmix's TFDS builder
(TFDS extracting the archive); the suites run on its `SwitchRun`, whose
predictions are planted, and every number is checked against a value worked
out by hand. Two processes evaluate like one (`backgrounds_multihost_worker`).
"""

import json
import os
import socket
import subprocess
import sys

import backgrounds_fixtures as bf
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmix.datasets import backgrounds_challenge as bgc
from jaxmix.evaluate.suites import backgrounds as suites_backgrounds
from jaxmix.evaluate.suites import registry as suite_registry


@pytest.fixture(scope='module')
def release(tmp_path_factory):
  """(manual_dir with the fake archive, prepared data_dir)."""
  manual = str(tmp_path_factory.mktemp('manual'))
  bf.write_release(manual)
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  bf.prepare_all(manual, data_dir)
  return manual, data_dir


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  return bf.switch_run(str(tmp_path_factory.mktemp('run')))


def _args(data_dir, **kwargs):
  return suite_registry.SuiteArgs(data_dir=data_dir, batch_size=4, **kwargs)


def test_the_mapping_is_the_official_one():
  table = bgc.IMAGENET_TO_IN9
  assert table.shape == (1000,) and table.dtype == np.int32
  counts = [int((table == c).sum()) for c in range(-1, 9)]
  assert counts == [630, 116, 52, 42, 36, 35, 27, 26, 20, 16]
  # Spot checks of in_to_in9.json: tench (0) is a fish, 151 the first dog,
  # 172 (whippet's neighbour, not mapped), 407 an ambulance (vehicle).
  assert [table[i] for i in (0, 151, 172, 407, 300, 999)] == [
    8,
    0,
    -1,
    2,
    5,
    -1,
  ]


def test_predictions_map_the_top1_and_unmapped_is_wrong():
  logits = np.zeros((4, 1000), np.float32)
  logits[[0, 1, 2, 3], [151, 7, 500, 398]] = 1.0
  pred = suites_backgrounds.in9_predictions(logits)
  assert pred.tolist() == [0, 1, -1, -1]
  assert suites_backgrounds.accuracy(pred, [0, 1, 0, 8]) == 0.5
  nine = np.eye(9, dtype=np.float32)[[3, 8]]
  assert suites_backgrounds.in9_predictions(nine).tolist() == [3, 8]
  with pytest.raises(ValueError, match='10 classes'):
    suites_backgrounds.in9_predictions(np.zeros((1, 10)))


def test_metrics_on_given_predictions():
  top1 = {'mixed_same': 0.75, 'mixed_rand': 0.5}
  assert suites_backgrounds.bg_gap(top1) == 0.25
  assert suites_backgrounds.fooled([2, 2, 2], 2) is False
  assert suites_backgrounds.fooled([2, -1, 2], 2) is True
  flags = np.array([True, False, False, False])
  assert suites_backgrounds.challenge_accuracy(flags) == 0.75
  image = np.full((2, 2, 3), 9, np.uint8)
  mask = np.array([[1, 0], [0, 0]], bool)[..., None]
  backgrounds = np.zeros((3, 2, 2, 3), np.uint8)
  pasted = suites_backgrounds.composite(image, mask, backgrounds)
  assert pasted.shape == (3, 2, 2, 3)
  assert (pasted[:, 0, 0] == 9).all() and pasted.sum() == 3 * 3 * 9


def test_builder_reads_the_official_layout(release):
  _, data_dir = release
  builder = tfds.builder(f'{bgc.NAME}/original', data_dir=data_dir)
  assert builder.info.features['label'].names == list(bgc.CLASS_FOLDERS)
  ds = tfds.as_numpy(builder.as_dataset(split=bgc.SPLIT))
  rows = [(int(ex['label']), ex['file_name'].decode()) for ex in ds]
  # Sorted folders, then sorted files: the official loaders' order.
  assert rows == [(c, bf.file_name(c, k)) for c in range(9) for k in range(2)]
  masks = tfds.builder(f'{bgc.NAME}/{bgc.MASKS}', data_dir=data_dir)
  examples = list(tfds.as_numpy(masks.as_dataset(split=bgc.SPLIT)))
  assert [ex['file_name'].decode() for ex in examples] == [
    bf.file_name(c, 0) for c in range(9)
  ]
  first = examples[0]
  assert first['mask'].shape == (bf.SIDE, bf.SIDE, 1)
  np.testing.assert_array_equal(first['mask'][..., 0], bf.fg_mask())
  assert first['image'].shape == (bf.SIDE, bf.SIDE, 3)


def test_builder_takes_the_extracted_folder_and_checks_folders(tmp_path):
  files = {k: v for k, v in bf.release_files().items() if '/only_fg/' in k}
  manual = tmp_path / 'manual'
  for name, data in files.items():
    (manual / name).parent.mkdir(parents=True, exist_ok=True)
    (manual / name).write_bytes(data)
  tfds_dir = str(tmp_path / 'tfds')
  built = bf.fx.prepare(f'{bgc.NAME}/only_fg', tfds_dir, manual_dir=str(manual))
  assert built.info.splits[bgc.SPLIT].num_examples == 9
  os.rename(
    manual / 'bg_challenge/only_fg/val/08_fish',
    manual / 'bg_challenge/only_fg/val/fish',
  )
  with pytest.raises(ValueError, match='08_fish'):
    bf.fx.prepare(
      f'{bgc.NAME}/only_fg', str(tmp_path / 'tfds2'), manual_dir=str(manual)
    )


def test_backgrounds_suite(release, run):
  _, data_dir = release
  result = suite_registry.evaluate_run(run, 'backgrounds', _args(data_dir))
  metrics = result['metrics']
  assert next(iter(metrics)) == 'bg_gap'
  assert metrics['bg_gap'] == pytest.approx(3 / 9)
  for variant, top1 in bf.TOP1.items():
    assert metrics[f'{variant}_top1'] == pytest.approx(top1), variant
  assert metrics['original_count'] == 18 and metrics['mixed_rand_count'] == 9
  assert os.path.exists(os.path.join(run.workdir, 'eval', 'backgrounds.json'))
  some = _args(data_dir, dataset='original,only_fg', limit=9)
  metrics = suite_registry.evaluate_run(run, 'backgrounds', some)['metrics']
  # The first 9 originals in the official order, (c, 0), (c, 1) for c < 4
  # and (4, 0), are all planted right.
  assert metrics == {
    'original_top1': 1.0,
    'only_fg_top1': 8 / 9,
    'original_count': 9,
    'only_fg_count': 9,
  }


def test_challenge_suite(release, run):
  _, data_dir = release
  result = suite_registry.evaluate_run(
    run, 'backgrounds_challenge', _args(data_dir)
  )
  metrics = result['metrics']
  assert next(iter(metrics)) == 'challenge_accuracy'
  assert metrics['challenge_accuracy'] == pytest.approx(1 - len(bf.FOOLED) / 9)
  assert metrics['fooled'] == len(bf.FOOLED)
  assert metrics['clean_top1'] == 1.0
  assert (metrics['foregrounds'], metrics['backgrounds']) == (9, 9)
  # `size` backgrounds a step (4 rounded up to the devices): foreground 0
  # stops at background 3, foreground 7 at background 8, the others see
  # all 9.
  size = suite_registry.batch_size_for(run, _args(data_dir))
  steps = 3 // size + 1 + 8 // size + 1 + 7 * -(-9 // size)
  assert metrics['steps'] == steps
  quick = _args(data_dir, limit=4)  # foregrounds 0-3, backgrounds 0-3
  metrics = suite_registry.evaluate_run(run, 'backgrounds_challenge', quick)[
    'metrics'
  ]
  assert metrics['challenge_accuracy'] == 0.75
  assert (metrics['foregrounds'], metrics['backgrounds']) == (4, 4)


def test_errors_say_what_to_do(tmp_path, run):
  args = _args(str(tmp_path / 'empty'), manual_dir=str(tmp_path / 'm'))
  with pytest.raises(ValueError, match=bgc.ARCHIVE) as error:
    suite_registry.evaluate_run(run, 'backgrounds', args)
  assert str(tmp_path / 'm') in str(error.value)
  assert 'never downloads' in str(error.value)
  ten = bf.fx.planted_run(str(tmp_path / 'ten'))
  ten.config.data.num_classes = 10
  with pytest.raises(ValueError, match='10 classes'):
    suite_registry.evaluate_run(ten, 'backgrounds', args)
  with pytest.raises(ValueError, match='variants'):
    suite_registry.evaluate_run(
      run, 'backgrounds', _args(str(tmp_path), dataset='no_bg')
    )


@pytest.mark.slow
def test_two_processes_evaluate_like_one(release, run, tmp_path):
  """2 processes x 2 devices: 9 foregrounds split 5 / 4, so process 1 runs
  out first and pads while process 0 still pastes; same numbers, one file."""
  _, data_dir = release
  worker = os.path.join(
    os.path.dirname(__file__), 'backgrounds_multihost_worker.py'
  )
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  workdir = tmp_path / 'multi'
  processes = []
  for i in range(2):
    # A file, not a pipe: a full pipe would stall a worker mid-collective.
    log = tmp_path / f'worker{i}.log'
    with open(log, 'w') as out:
      command = [sys.executable, worker, data_dir, str(workdir)]
      command += [f'--process_id={i}', f'--port={port}']
      process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    processes.append((process, log))
  outputs = []
  try:
    for process, log in processes:
      process.wait(timeout=300)
      output = log.read_text()
      assert process.returncode == 0, output
      outputs.append(json.loads(output.split('metrics: ')[-1]))
  finally:
    for process, _ in processes:
      if process.poll() is None:
        process.kill()
  assert outputs[0] == outputs[1]
  want = {}
  for suite in ('backgrounds', 'backgrounds_challenge'):
    want[suite] = suite_registry.evaluate_run(run, suite, _args(data_dir))[
      'metrics'
    ]
  # The step count is the global loop's, whatever the batch size.
  for found in (outputs[0], want):
    found['backgrounds_challenge'].pop('steps')
  assert outputs[0] == json.loads(json.dumps(want))
  assert sorted(os.listdir(workdir / 'eval')) == [
    'backgrounds.json',
    'backgrounds_challenge.json',
  ]
