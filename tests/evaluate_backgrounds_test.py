"""The Backgrounds Challenge builder and suites on a tiny fake release.

`backgrounds_challenge_data.tar.gz` is written here in the official layout
(`bg_challenge/<variant>/val/<class folder>/<file>`, masks as `.npy` in
`fg_mask`) and built by jaxmix's TFDS builder, TFDS extracting the archive.
Images are solid colours that encode a planted ImageNet prediction
(`eval_builder_fixtures.class_colour`); `SwitchRun` reads the colour at the
centre (the foreground) and in a corner (the background), so every
accuracy, the BG-Gap and the challenge accuracy are worked out by hand.
"""

import dataclasses
import io
import os

import eval_builder_fixtures as fx
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxmix.datasets import backgrounds_challenge as bgc
from jaxmix.evaluate import suite_registry, suites_backgrounds

SIDE = 40  # released images are 224; the run reads 32 (resized)
# ImageNet classes of each IN-9 class, for planted predictions.
FIRST = [int(np.flatnonzero(bgc.IMAGENET_TO_IN9 == c)[0]) for c in range(9)]
UNMAPPED = 500


def right(c):
  return FIRST[c]


def wrong(c):  # another IN-9 class
  return FIRST[(c + 1) % 9]


def unmapped(c):  # no IN-9 class: always wrong
  return UNMAPPED + c


# Per variant, the planted prediction of each class's image(s), and the
# expected top-1.
PLANTED = {
  'original': (
    [right] * 9,
    [right] * 5 + [wrong] * 2 + [unmapped] * 2,
  ),
  'only_bg_b': ([right] + [wrong] * 8,),
  'only_bg_t': ([right, wrong, right, wrong, wrong, wrong] + [unmapped] * 3,),
  'no_fg': ([right] * 3 + [unmapped] * 6,),
  'only_fg': ([right] * 8 + [wrong],),
  'mixed_same': ([right] * 7 + [wrong] * 2,),
  'mixed_rand': ([right] * 4 + [unmapped] * 5,),
  'mixed_next': ([wrong] * 9,),
}
TOP1 = {
  'original': 14 / 18,
  'only_bg_b': 1 / 9,
  'only_bg_t': 2 / 9,
  'no_fg': 3 / 9,
  'only_fg': 8 / 9,
  'mixed_same': 7 / 9,
  'mixed_rand': 4 / 9,
  'mixed_next': 0.0,
}
# SwitchRun: a foreground of IN-9 class c on a background of ImageNet
# colour q is predicted q when q is in SWITCH[c], else its own colour.
SWITCH = {
  0: {wrong(3)},  # only_bg_t image 3 (class 4): fooled at background 3
  2: {right(2)},  # switches to a class-2 colour: still right
  5: {999},  # no such background
  7: {unmapped(8)},  # the last background: fooled there
}
FOOLED = {0, 7}


def _file(c, k):
  return f'n{c:08d}_{k}.JPEG'


def _mask():
  mask = np.zeros((SIDE, SIDE), np.uint8)
  mask[10:30, 10:30] = 1  # the centre is foreground, the corners not
  return mask


def _release_files():
  files = {}
  for variant, images in PLANTED.items():
    for k, planted in enumerate(images):
      for c, fn in enumerate(planted):
        path = (
          f'bg_challenge/{variant}/val/{bgc.CLASS_FOLDERS[c]}/{_file(c, k)}'
        )
        files[path] = fx.solid_jpeg(fn(c), SIDE, SIDE)
  for c in range(9):  # masks of the first original image of every class
    buffer = io.BytesIO()
    np.save(buffer, _mask())
    name = _file(c, 0).replace('.JPEG', '.npy')
    files[f'bg_challenge/fg_mask/val/{bgc.CLASS_FOLDERS[c]}/{name}'] = (
      buffer.getvalue()
    )
  return files


@pytest.fixture(scope='module')
def release(tmp_path_factory):
  """(manual_dir with the fake archive, prepared data_dir)."""
  manual = str(tmp_path_factory.mktemp('manual'))
  fx.write_tar(os.path.join(manual, bgc.ARCHIVE), _release_files())
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  for config in (*bgc.VARIANTS, bgc.MASKS):
    fx.prepare(f'{bgc.NAME}/{config}', data_dir, manual_dir=manual)
  return manual, data_dir


class SwitchRun(fx.PlantedRun):
  """Predicts the centre's colour, or the corner's where SWITCH says."""

  def logits_fn(self, images) -> jax.Array:
    x = np.asarray(images)
    c = x.shape[1] // 2
    centre = fx.decode_classes(x[:, c - 2 : c + 2, c - 2 : c + 2])
    corner = fx.decode_classes(x[:, :4, :4])
    pred = centre.copy()
    for i, (f, b) in enumerate(zip(centre, corner)):
      if b in SWITCH.get(int(bgc.IMAGENET_TO_IN9[f]), ()):
        pred[i] = b
    logits = fx.planted_logits(pred, self.num_classes)
    return jax.device_put(logits, getattr(images, 'sharding', None))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  planted = fx.planted_run(str(tmp_path_factory.mktemp('run')))
  fields = dataclasses.fields(planted)
  return SwitchRun(**{f.name: getattr(planted, f.name) for f in fields})


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
  assert rows == [(c, _file(c, k)) for c in range(9) for k in range(2)]
  masks = tfds.builder(f'{bgc.NAME}/{bgc.MASKS}', data_dir=data_dir)
  examples = list(tfds.as_numpy(masks.as_dataset(split=bgc.SPLIT)))
  assert [ex['file_name'].decode() for ex in examples] == [
    _file(c, 0) for c in range(9)
  ]
  first = examples[0]
  assert first['mask'].shape == (SIDE, SIDE, 1)
  np.testing.assert_array_equal(first['mask'][..., 0], _mask())
  assert first['image'].shape == (SIDE, SIDE, 3)


def test_builder_takes_the_extracted_folder_and_checks_folders(tmp_path):
  files = {k: v for k, v in _release_files().items() if '/only_fg/' in k}
  manual = tmp_path / 'manual'
  for name, data in files.items():
    (manual / name).parent.mkdir(parents=True, exist_ok=True)
    (manual / name).write_bytes(data)
  built = fx.prepare(
    f'{bgc.NAME}/only_fg', str(tmp_path / 'tfds'), manual_dir=str(manual)
  )
  assert built.info.splits[bgc.SPLIT].num_examples == 9
  os.rename(
    manual / 'bg_challenge/only_fg/val/08_fish',
    manual / 'bg_challenge/only_fg/val/fish',
  )
  with pytest.raises(ValueError, match='08_fish'):
    fx.prepare(
      f'{bgc.NAME}/only_fg', str(tmp_path / 'tfds2'), manual_dir=str(manual)
    )


def test_backgrounds_suite(release, run):
  _, data_dir = release
  result = suite_registry.evaluate_run(run, 'backgrounds', _args(data_dir))
  metrics = result['metrics']
  assert next(iter(metrics)) == 'bg_gap'
  assert metrics['bg_gap'] == pytest.approx(3 / 9)
  for variant, top1 in TOP1.items():
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
  assert metrics['challenge_accuracy'] == pytest.approx(1 - len(FOOLED) / 9)
  assert metrics['fooled'] == len(FOOLED)
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
  ten = fx.planted_run(str(tmp_path / 'ten'))
  ten.config.data.num_classes = 10
  with pytest.raises(ValueError, match='10 classes'):
    suite_registry.evaluate_run(ten, 'backgrounds', args)
  with pytest.raises(ValueError, match='variants'):
    suite_registry.evaluate_run(
      run, 'backgrounds', _args(str(tmp_path), dataset='no_bg')
    )
