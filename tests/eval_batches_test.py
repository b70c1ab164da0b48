"""Tests of jaxmix.data.eval_batches, the one evaluation reader.

The trainer's evaluation (`create_eval_iterator`) and the suites
(`batches`) read through it: one slicing rule over processes, padded and
masked batches, on a tiny real imagenet2012.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from imagenet_fixture_util import NUM_VALIDATION, data_config, prepared_imagenet

from jaxmix.data import eval_batches, input_pipeline
from jaxmix.evaluate import multihost

BAD_VAL = 'ILSVRC2012_val_00000003.JPEG'


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return prepared_imagenet(str(tmp_path_factory.mktemp('imagenet')))[0]


@pytest.fixture(scope='module')
def corrupt_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('corrupt'))
  return prepared_imagenet(root, corrupt=(BAD_VAL,))[0]


def _read(data_dir, index, count, batch_size, **kwargs):
  return list(
    eval_batches.batches(
      'imagenet2012',
      'validation',
      data_dir=data_dir,
      image_size=16,
      batch_size=batch_size,
      extras={'label': lambda ex: ex['label']},
      process_index=index,
      process_count=count,
      **kwargs,
    )
  )


@pytest.mark.parametrize('limit', [None, 5])
@pytest.mark.parametrize('count, batch_size', [(2, 4), (3, 6), (4, 4), (6, 6)])
def test_every_example_is_read_once_over_the_processes(
  data_dir, count, batch_size, limit
):
  total = NUM_VALIDATION if limit is None else limit
  (whole,) = [multihost.gather_batches(_read(data_dir, 0, 1, 6, limit=limit))]
  np.testing.assert_array_equal(whole['index'], np.arange(total))
  parts = [
    _read(data_dir, i, count, batch_size, limit=limit) for i in range(count)
  ]
  # The same number of batches on every process, of b rows each.
  assert len({len(p) for p in parts}) == 1
  b = batch_size // count
  for part in parts:
    for batch in part:
      assert batch['image'].shape == (b, 16, 16, 3)
      assert batch['mask'].dtype == bool
      # Padding is masked: index -1, zero image and label.
      assert (batch['index'] == -1).tolist() == (~batch['mask']).tolist()
      assert not batch['image'][~batch['mask']].any()
      assert not batch['label'][~batch['mask']].any()
  # Contiguous slices in process order: the split once, in order.
  rows = {
    key: np.concatenate([x[key][x['mask']] for p in parts for x in p])
    for key in ('index', 'image', 'label')
  }
  np.testing.assert_array_equal(rows['index'], np.arange(total))
  for key in ('image', 'label'):
    np.testing.assert_array_equal(rows[key], whole[key])
  # One rule: at align=1 the slices are TFDS's own process splits.
  found = tfds.builder('imagenet2012', data_dir=data_dir)
  split = eval_batches.limited_split(found, 'validation', limit)
  sizes = [s[2] for s in eval_batches.process_slices(found, split, count)]
  assert sizes == [
    found.info.splits[
      tfds.split_for_jax_process(
        split, process_index=i, process_count=count, drop_remainder=False
      )
    ].num_examples
    for i in range(count)
  ]
  masks = [sum(int(x['mask'].sum()) for x in p) for p in parts]
  assert masks == sizes


def test_the_batch_size_must_divide_over_the_processes(data_dir):
  with pytest.raises(ValueError, match='multiple of process_count=2'):
    _read(data_dir, 0, 2, 3)


def test_aligned_slices_keep_pairs_in_one_batch(data_dir):
  """align=2: slices start at even positions; pairs never straddle."""

  def indices(index, count, batch_size, limit=None):
    return [
      b['index'].tolist()
      for b in _read(data_dir, index, count, batch_size, limit=limit, align=2)
    ]

  # 5 examples: groups (0, 1), (2, 3), (4,) -> 2 + 1 groups.
  assert indices(0, 2, 4, limit=5) == [[0, 1], [2, 3]]
  assert indices(1, 2, 4, limit=5) == [[4, -1], [-1, -1]]
  # 6 examples over 4 processes: the last one reads nothing, pads alike.
  assert [indices(i, 4, 8) for i in range(4)] == [
    [[0, 1]],
    [[2, 3]],
    [[4, 5]],
    [[-1, -1]],
  ]
  assert indices(0, 1, 4) == [[0, 1, 2, 3], [4, 5, -1, -1]]
  with pytest.raises(ValueError, match='not a multiple of align=2'):
    indices(0, 2, 2)


@pytest.mark.parametrize(
  'count, global_batch, masks',
  [
    (1, 4, [[1, 1, 1, 1, 1, 1, 0, 0]]),
    (2, 4, [[1, 1, 1, 0]] * 2),  # 3 examples per process, batches of 2
    (4, 4, [[1, 1]] * 2 + [[1, 0]] * 2),  # 2, 2, 1, 1: an all-pad batch
  ],
)
def test_the_trainers_view_is_the_same_reader(
  data_dir, count, global_batch, masks
):
  config = data_config(data_dir)
  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  names = [
    ex['file_name'].numpy() for ex in builder.as_dataset(split='validation')
  ]
  seen = []
  for index in range(count):
    trainer = list(
      input_pipeline.create_eval_iterator(
        config,
        global_batch_size=global_batch,
        image_size=16,
        process_index=index,
        process_count=count,
      )
    )
    suite = _read(data_dir, index, count, global_batch)
    assert len(trainer) == len(suite) == len(masks[0]) * count // global_batch
    got = np.concatenate([b['mask'] for b in trainer])
    np.testing.assert_array_equal(got, np.array(masks[index], bool))
    for t, s in zip(trainer, suite):
      assert set(t) == {
        'image',
        'label',
        'crop_box',
        'flip',
        'file_name',
        'index',
        'mask',
      }
      for key in ('image', 'label', 'crop_box', 'index', 'mask'):
        np.testing.assert_array_equal(t[key], s[key])
      assert t['label'].dtype == np.int32 and not t['flip'].any()
      assert (t['file_name'][~t['mask']] == b'').all()
      seen += [names[i] for i in t['index'][t['mask']]]
      np.testing.assert_array_equal(
        t['file_name'][t['mask']], [names[i] for i in t['index'][t['mask']]]
      )
  assert sorted(seen) == sorted(names) and len(seen) == NUM_VALIDATION


def test_a_corrupt_image_is_named_or_skipped(corrupt_dir):
  config = data_config(corrupt_dir)
  trainer = input_pipeline.create_eval_iterator(
    config, global_batch_size=2, image_size=16
  )
  with pytest.raises(input_pipeline.CorruptImageError) as info:
    list(trainer)
  assert BAD_VAL in str(info.value) and 'imagenet2012' in str(info.value)
  assert "data.on_corrupt='skip'" in str(info.value)
  for count in (1, 2):
    parts = [
      _read(corrupt_dir, i, count, 4, on_corrupt='skip') for i in range(count)
    ]
    assert len({len(p) for p in parts}) == 1
    kept = sum(int(b['mask'].sum()) for p in parts for b in p)
    assert kept == NUM_VALIDATION - 1
  config.on_corrupt = 'skip'
  trainer = input_pipeline.create_eval_iterator(
    config, global_batch_size=4, image_size=16
  )
  names = [n for b in trainer for n in b['file_name'][b['mask']]]
  assert len(names) == NUM_VALIDATION - 1 and BAD_VAL.encode() not in names
  with pytest.raises(ValueError, match='on_corrupt'):
    _read(corrupt_dir, 0, 1, 4, on_corrupt='ignore')


def test_extras_may_not_redefine_the_readers_keys(data_dir):
  with pytest.raises(ValueError, match="'mask'"):
    next(
      eval_batches.batches(
        'imagenet2012',
        'validation',
        data_dir=data_dir,
        image_size=16,
        batch_size=2,
        extras={'mask': lambda ex: ex['label']},
      )
    )
