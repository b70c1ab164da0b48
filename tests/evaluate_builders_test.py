"""The ImageNet-family and WSOL suites on datasets built by the real builders.

Every dataset is prepared offline by its real TFDS builder from tiny files in
the official layouts (`eval_builder_fixtures`); the suites then run on a
`PlantedRun` whose predictions are known, so every number is checked against
a value worked out by hand. 'wsol' runs a trained smoke run on a fake
CUB-200-2011 and is checked against boxes moved into the eval crop by hand.
"""

import json
import os

import eval_builder_fixtures as fx
import numpy as np
import pytest

from jaxmix.data import tfds_source
from jaxmix.evaluate import imagenet_c
from jaxmix.evaluate.suites import imagenet as suites_imagenet
from jaxmix.evaluate.suites import registry as suite_registry

K = fx.NUM_CLASSES
NUM_VAL = 21  # ILSVRC2012_val_00000007 and _00000021 share a class
# Per validation image: (prediction, ReaL set, Shankar et al. annotation,
# problematic) as functions of its label o, with x = o + 500, z = o + 1.
CASES = {
  0: ('o', ['o'], {'correct': ['o']}, False),
  1: ('o', [], None, False),
  2: ('x', ['o', 'x'], {'correct': ['o'], 'unclear': ['x']}, False),
  3: ('x', ['o'], {'correct': ['o'], 'wrong': ['x']}, False),
  4: ('o', ['z'], {'correct': ['o']}, True),
  5: ('x', [], {'correct': ['o', 'x']}, False),
  6: ('o', ['o', 'z'], {'correct': ['z'], 'wrong': ['o']}, False),
}


def _val_rows():
  labels = fx.validation_labels(NUM_VAL)
  cases = [i % 7 for i in range(NUM_VAL)]
  cases[20] = 0
  rows = []
  for o, case in zip(labels, cases):
    named = {'o': o, 'x': (o + 500) % K, 'z': (o + 1) % K}
    pred, real, annotation, problematic = CASES[case]
    if annotation is not None:
      annotation = {k: [named[c] for c in v] for k, v in annotation.items()}
    real = [named[c] for c in real]
    rows.append((o, named[pred], real, annotation, problematic))
  return rows


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfds'))


@pytest.fixture(scope='module')
def val(tmp_path_factory):
  """The manual dir with ILSVRC2012_img_val.tar, and the planted rows."""
  rows = _val_rows()
  assert rows[6][0] == rows[20][0]  # two images of one class
  manual = str(tmp_path_factory.mktemp('manual'))
  fx.write_val_tar(manual, [r[1] for r in rows])
  return manual, rows


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
  return fx.planted_run(str(tmp_path_factory.mktemp('planted')))


def _args(data_dir, batch_size=8, **kwargs):
  return suite_registry.SuiteArgs(
    data_dir=data_dir, batch_size=batch_size, **kwargs
  )


def test_imagenet_suite_on_the_real_builder(val, data_dir, planted):
  manual, _ = val
  fx.prepare('imagenet2012', data_dir, manual_dir=manual)
  result = suite_registry.evaluate_run(planted, 'imagenet', _args(data_dir))
  # Cases 0, 1, 4, 6 predict the label; x = o + 500 is not in the top 5.
  assert result['metrics'] == {'top1': 12 / 21, 'top5': 12 / 21, 'count': 21}


def test_real_suite_on_the_real_builder(val, data_dir, planted, tmp_path):
  from tensorflow_datasets.datasets.imagenet2012_real import (
    imagenet2012_real_dataset_builder as real_builder,
  )

  manual, rows = val
  path = str(tmp_path / 'real.json')
  with open(path, 'w') as f:
    json.dump([r[2] for r in rows], f)
  fx.prepare(
    'imagenet2012_real',
    data_dir,
    manual_dir=manual,
    downloads={real_builder._REAL_LABELS_URL: path},
  )
  result = suite_registry.evaluate_run(planted, 'real', _args(data_dir))
  # Cases 0, 2, 6 are ReaL hits, 3, 4 misses, 1, 5 (empty sets) excluded;
  # cases 0, 1, 4, 6 predict the original label.
  assert result['metrics'] == {
    'real_top1': 9 / 15,
    'real_count': 15,
    'original_top1': 12 / 21,
  }
  hits = [p in r for _, p, r, _, _ in rows if r]
  assert np.mean(hits) == 9 / 15
  with open(os.path.join(planted.workdir, 'eval', 'real.json')) as f:
    assert json.load(f)['metrics']['real_count'] == 15


def test_multilabel_suite_on_the_real_builder(val, data_dir, planted, tmp_path):
  from tensorflow_datasets.datasets.imagenet2012_multilabel import (
    imagenet2012_multilabel_dataset_builder as ml_builder,
  )

  manual, rows = val
  names = fx.imagenet_names()
  annots, problematic = {}, {}
  for i, (_, _, _, annotation, bad) in enumerate(rows):
    fname = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
    if annotation is not None:
      annots[fname] = {k: [names[c] for c in v] for k, v in annotation.items()}
    if bad:
      problematic[fname] = {}
  path = str(tmp_path / 'human_accuracy.json')
  with open(path, 'w') as f:
    json.dump(
      {
        'initial_annots': annots,
        'problematic_images': problematic,
        'imagenet_m': sorted(annots)[:2],
      },
      f,
    )
  fx.prepare(
    'imagenet2012_multilabel',
    data_dir,
    manual_dir=manual,
    downloads={ml_builder._MULTI_LABELS_URL: path},
  )
  result = suite_registry.evaluate_run(planted, 'multilabel', _args(data_dir))
  # Counted: cases 0, 2, 3, 5, 6 (1 unannotated, 4 problematic); hits: 0,
  # 2 (an unclear label), 5. Per class: 13 classes of one image (9 hits)
  # and the shared class of images 7 (miss) and 21 (hit).
  metrics = result['metrics']
  assert metrics['count'] == 15
  assert metrics['multilabel_top1'] == 10 / 15
  assert metrics['multilabel_class_balanced'] == pytest.approx(9.5 / 14)


def _v2_archive(root, variant, cases):
  from tensorflow_datasets.datasets.imagenet_v2 import (
    imagenet_v2_dataset_builder as v2_builder,
  )

  top = v2_builder._TAR_TOPDIR[variant]
  files = {
    f'{top}/{label}/{i:02d}.jpeg': fx.solid_jpeg(pred)
    for i, (label, pred) in enumerate(cases)
  }
  path = fx.write_tar(os.path.join(root, f'{variant}.tar.gz'), files)
  return {v2_builder._IMAGENET_V2_URLS[variant]: path}


def test_v2_suite_names_all_three_variants(data_dir, planted, tmp_path):
  # (label, prediction): hit, top-5 only (label = pred + 3), miss.
  hit, top5, miss = (5, 5), (10, 7), (300, 100)
  cases = {
    'matched-frequency': [hit, top5, miss, (999, 999)],
    'threshold-0.7': [top5, miss, (0, 999)],
    'topimages': [hit, (998, 994)],
  }
  for variant, rows in cases.items():
    downloads = _v2_archive(str(tmp_path), variant, rows)
    fx.prepare(f'imagenet_v2/{variant}', data_dir, downloads=downloads)
  found = suite_registry.evaluate_run(planted, 'v2', _args(data_dir))['metrics']
  assert found == {
    'matched-frequency_top1': 2 / 4,
    'matched-frequency_top5': 3 / 4,
    'matched-frequency_count': 4,
    'threshold-0.7_top1': 0.0,
    'threshold-0.7_top5': 2 / 3,  # label 0 is pred 999 + 1 (mod 1000)
    'threshold-0.7_count': 3,
    'topimages_top1': 1 / 2,
    'topimages_top5': 2 / 2,
    'topimages_count': 2,
  }
  # A run of another label space is an error, not a silent 0.
  small = fx.planted_run(str(tmp_path / 'small'))
  small.config.data.num_classes = 10
  with pytest.raises(ValueError, match=r"predicts 10 classes.*'label': 1000"):
    suite_registry.evaluate_run(small, 'v2', _args(data_dir))


@pytest.mark.parametrize('name, offset', [('imagenet_a', 0), ('imagenet_r', 3)])
def test_200_class_suites_ignore_the_other_classes(
  name, offset, data_dir, planted, tmp_path
):
  module = __import__(
    f'tensorflow_datasets.datasets.{name}.{name}_dataset_builder',
    fromlist=['_'],
  )
  url = getattr(module, f'_{name.upper()}_URL')
  top = name.replace('_', '-')
  names = fx.imagenet_names()
  subset = np.arange(offset, K, 5)  # 200 classes, 4 others between two
  files = {f'{top}/README.txt': b'the 200 classes'}
  preds = []
  for j, label in enumerate(subset):
    # 0: right; 1: a non-subset class first, the label second (right once
    # restricted); 2: label + 1 first, the next subset class third (wrong);
    # 3: the label fourth behind three non-subset classes (right).
    pred = int(label + (0, -1, 1, -3)[j % 4]) % K
    preds.append(pred)
    files[f'{top}/{names[label]}/{j:03d}.jpg'] = fx.solid_jpeg(pred, 20, 28)
  archive = fx.write_tar(str(tmp_path / f'{top}.tar'), files)
  fx.prepare(name, data_dir, downloads={url: archive})
  result = suite_registry.evaluate_run(
    planted, name, _args(data_dir, batch_size=64)
  )
  assert result['metrics'] == {'top1': 150 / 200, 'count': 200}
  # The unrestricted top-1 would be 50 / 200.
  assert np.mean(np.asarray(preds) == subset) == 50 / 200
  # A slice or --limit still restricts to the 200 classes of the split.
  for args in (
    _args(data_dir, batch_size=64, limit=8),
    _args(data_dir, batch_size=64, split='test[:8]'),
  ):
    assert suite_registry.SUITES[name](planted, args)['metrics']['count'] == 8


def test_sketch_suite_on_the_real_builder(data_dir, planted, tmp_path):
  from tensorflow_datasets.datasets.imagenet_sketch import (
    imagenet_sketch_dataset_builder as sketch_builder,
  )

  names = fx.imagenet_names()
  # (label, prediction, encoder): a PNG file named .JPEG is decoded too.
  rows = [
    (1, 1, fx.solid_jpeg),
    (2, 900, fx.solid_jpeg),
    (40, 38, fx.solid_png),
    (41, 41, fx.solid_png),
  ]
  files = {
    f'sketch/{names[label]}/sketch_{i}.JPEG': encode(pred)
    for i, (label, pred, encode) in enumerate(rows)
  }
  archive = fx.write_zip(str(tmp_path / 'ImageNet-Sketch.zip'), files)
  fx.prepare(
    'imagenet_sketch',
    data_dir,
    downloads={sketch_builder._IMAGENET_SKETCH_URL: archive},
  )
  result = suite_registry.evaluate_run(planted, 'sketch', _args(data_dir))
  assert result['metrics'] == {'top1': 2 / 4, 'top5': 3 / 4, 'count': 4}


@pytest.fixture(scope='module')
def corrupted(val, data_dir, tmp_path_factory):
  """Two real imagenet2012_corrupted configs built from the val tar."""
  from tensorflow_datasets.datasets.imagenet2012_corrupted import (
    imagenet2012_corrupted_dataset_builder as c_builder,
  )

  manual, rows = val
  frost = str(tmp_path_factory.mktemp('frost') / 'frost.png')
  with open(frost, 'wb') as f:
    f.write(fx.solid_png(0))
  downloads = dict.fromkeys(c_builder._FROST_FILENAMES, frost)
  # Both keep a solid colour's mean, hence the planted predictions.
  names = ('contrast_1', 'gaussian_noise_1')
  for config in names:
    fx.prepare(
      f'imagenet2012_corrupted/{config}',
      data_dir,
      manual_dir=manual,
      downloads=downloads,
    )
  return names, rows


def test_imagenet_c_builder_feeds_the_suite(corrupted, data_dir, planted):
  names, rows = corrupted
  for config in names:
    found = suites_imagenet._read(
      planted,
      _args(data_dir),
      f'imagenet2012_corrupted/{config}',
      'validation',
      {'label': lambda ex: ex['label']},
      crop_pct=1.0,
    )
    assert sorted(found['label']) == sorted(r[0] for r in rows)
    info = tfds_source.open_builder(
      f'imagenet2012_corrupted/{config}', data_dir
    ).info
    assert info.features['image'].shape == (224, 224, 3)  # cropped by TFDS
    top1 = np.mean(found['logits'].argmax(-1) == found['label'])
    assert top1 == 12 / 21


def test_imagenet_c_suite_aggregates_exactly(
  corrupted, data_dir, planted, monkeypatch
):
  """mean accuracy and mCE over 15 x 5 configs, 2 real and 73 planted."""
  names, _ = corrupted
  real_read = suites_imagenet._read
  accuracy = {}
  for c, corruption in enumerate(imagenet_c.IMAGENET_C_CORRUPTIONS):
    for s in range(1, 6):
      accuracy[f'{corruption}_{s}'] = (c + 2 * s) % 9 / 8

  def read(run, args, name, split, extras, *, crop_pct=None):
    config = name.split('/')[1]
    if config in names:
      accuracy[config] = 12 / 21
      return real_read(run, args, name, split, extras, crop_pct=crop_pct)
    assert crop_pct == 1.0 and split == 'validation'
    hits = round(accuracy[config] * 8)
    labels = np.arange(8)
    preds = np.where(labels < hits, labels, labels + 1)
    return {'logits': fx.planted_logits(preds, K), 'label': labels}

  monkeypatch.setattr(suites_imagenet, '_read', read)
  result = suite_registry.evaluate_run(planted, 'imagenet_c', _args(data_dir))
  alexnet = imagenet_c.ALEXNET_MEAN_ERRORS
  table = {
    c: [accuracy[f'{c}_{s}'] for s in range(1, 6)]
    for c in imagenet_c.IMAGENET_C_CORRUPTIONS
  }
  mce = np.mean(
    [sum(1 - a for a in v) / (5 * alexnet[c]) for c, v in table.items()]
  )
  metrics = result['metrics']
  assert metrics['mean_accuracy'] == pytest.approx(
    np.mean(list(table.values()))
  )
  assert metrics['mce'] == pytest.approx(mce)
  assert metrics['contrast_accuracy'] == pytest.approx(
    np.mean(table['contrast'])
  )
  assert result['curves']['contrast']['top1'][0] == 12 / 21
  assert result['curves']['fog']['top1'] == table['fog']


CUB_IMAGES = [
  # A wide image whose box is exactly the eval crop: side round(48 *
  # 0.875) = 42 at (y, x) = ((48 - 42 + 1) // 2, (64 - 42 + 1) // 2).
  {
    'path': '001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg',
    'size': (48, 64),
    'box': (11, 3, 42, 42),
    'train': False,
  },
  # A tall image, box on the left edge, mostly outside the crop.
  {
    'path': '002.Laysan_Albatross/Laysan_Albatross_0002_2.jpg',
    'size': (64, 48),
    'box': (0, 0, 8, 64),
    'train': False,
  },
  {
    'path': '003.Sooty_Albatross/Sooty_Albatross_0003_3.jpg',
    'size': (48, 64),
    'box': (5, 10, 30, 20),
    'train': False,
  },
  {
    'path': '001.Black_footed_Albatross/Black_Footed_Albatross_0004_4.jpg',
    'size': (40, 40),
    'box': (0, 0, 40, 40),
    'train': True,
  },
]
# The boxes in the 32 x 32 eval crop, (top, left, bottom, right), by label:
# (y - off_y) / 42 * 32 etc., clipped to the crop and rounded.
CUB_CROP_BOXES = {
  0: [0, 0, 32, 32],
  1: [0, 0, 32, 4],  # x: (8 - 3) / 42 * 32 = 3.8; y: clipped
  # y: (10 - 3) / 42 * 32 = 5.3, (30 - 3) / 42 * 32 = 20.6; x: (5 - 11) / 42
  # clipped, (35 - 11) / 42 * 32 = 18.3.
  2: [5, 0, 21, 18],
}


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory):
  from jaxmix.configs import default
  from jaxmix.train import loop

  workdir = str(tmp_path_factory.mktemp('runs') / 'smoke')
  config = default.get_config('smoke')
  config.data.num_classes = 200  # CUB's classes: wsol checks them
  loop.train_and_evaluate(config, workdir)
  return workdir


@pytest.mark.slow
def test_wsol_suite_on_the_real_cub_builder(smoke_run, data_dir, tmp_path):
  from jaxmix.evaluate import localization, runs

  downloads = fx.write_cub(str(tmp_path), CUB_IMAGES)
  found = fx.prepare('caltech_birds2011', data_dir, downloads=downloads)
  assert found.info.splits['test'].num_examples == 3
  assert found.info.splits['train'].num_examples == 1
  run = runs.load_run(smoke_run)
  result = suite_registry.evaluate_run(run, 'wsol', _args(data_dir))
  cams = result['_cams']
  labels = np.array([int(t.split()[0][2:]) for t in cams['titles']])
  assert sorted(labels) == [0, 1, 2]
  # The true boxes reach the suite moved into the eval crop.
  for label, boxes in zip(labels, cams['true_boxes']):
    np.testing.assert_array_equal(boxes, [CUB_CROP_BOXES[label]])
  # The metrics, recomputed from the model and the boxes worked out above.
  images = np.asarray(cams['images'])
  pred = np.asarray(run.logits_fn(images)).argmax(-1)
  true = [np.array([CUB_CROP_BOXES[y]]) for y in labels]
  thresholds = localization.CAM_THRESHOLDS
  true_cams = localization.class_activation_map(
    run.model, run.normalize(images), labels
  )
  box_acc = np.mean(
    localization.best_ious(true_cams, true, thresholds) >= 0.5, axis=0
  )
  pred_cams = localization.class_activation_map(
    run.model, run.normalize(images), pred
  )
  threshold = result['metrics']['top1_loc_threshold']
  pred_boxes = localization.boxes_from_cams(pred_cams, threshold)
  loc = [
    p == y and localization.iou(b[None], t).max() >= 0.5
    for p, y, b, t in zip(pred, labels, pred_boxes, true)
  ]
  metrics = result['metrics']
  assert metrics['count'] == 3
  assert metrics['top1'] == np.mean(pred == labels)
  assert metrics['top1_loc'] == np.mean(loc)
  assert metrics['max_box_acc'] == box_acc.max()
  assert metrics['max_box_acc_threshold'] == thresholds[np.argmax(box_acc)]
  # At threshold 0 the CAM box is the whole crop: label 0's box.
  assert box_acc[0] >= 1 / 3
