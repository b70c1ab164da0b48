"""Tests of jaxmix.data.input_pipeline on a tiny real imagenet2012."""

import threading
import time

import jax
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from imagenet_fixture_util import (
  NUM_TRAIN,
  data_config,
  prepared_imagenet,
)

from jaxmix.data import input_pipeline, preprocess

S = 40  # output image size
BAD_TRAIN = 'n09193705_2.JPEG'
BAD_VAL = 'ILSVRC2012_val_00000003.JPEG'


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
  return prepared_imagenet(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope='module')
def corrupt(tmp_path_factory):
  root = str(tmp_path_factory.getbasetemp())
  return prepared_imagenet(root, corrupt=(BAD_TRAIN, BAD_VAL))


@pytest.fixture(scope='module')
def originals(clean):
  """file_name -> fully decoded uint8 image, read straight from TFDS."""
  builder = tfds.builder('imagenet2012', data_dir=clean[0])
  out = {}
  for split in ('train', 'validation'):
    for ex in builder.as_dataset(split=split):
      out[ex['file_name'].numpy()] = ex['image'].numpy()
  return out


@pytest.fixture(scope='module')
def encoded(clean):
  """file_name -> the stored JPEG bytes of every train image."""
  builder = tfds.builder('imagenet2012', data_dir=clean[0])
  skip = {'image': tfds.decode.SkipDecoding()}
  return {
    ex['file_name'].numpy(): ex['image']
    for ex in builder.as_dataset(split='train', decoders=skip)
  }


def _train(data_dir, batch=4, seed=0, **overrides):
  return input_pipeline.create_train_iterator(
    data_config(data_dir, **overrides),
    global_batch_size=batch,
    image_size=S,
    seed=seed,
    process_index=0,
    process_count=1,
  )


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _assert_same(batches_a, batches_b):
  assert len(batches_a) == len(batches_b)
  for a, b in zip(batches_a, batches_b):
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _box_window(box, h, w):
  y0, x0, y1, x1 = (round(float(v) * n) for v, n in zip(box, (h, w, h, w)))
  return y0, x0, y1 - y0, x1 - x0


def _resize(crop):
  crop = tf.image.resize(crop, [S, S], method='bilinear', antialias=True)
  return np.round(np.clip(crop.numpy(), 0, 255))


def _cut_and_resize(image, box):
  y, x, h, w = _box_window(box, *image.shape[:2])
  return _resize(image[y : y + h, x : x + w])


def test_batch_keys_shapes_and_dtypes(clean):
  batch = next(_train(clean[0]))
  assert batch['image'].shape == (4, S, S, 3)
  assert batch['image'].dtype == np.uint8
  assert batch['label'].dtype == np.int32
  assert batch['crop_box'].shape == (4, 4)
  assert batch['crop_box'].dtype == np.float32
  assert batch['flip'].dtype == bool
  assert set(batch) == {'image', 'label', 'crop_box', 'flip', 'file_name'}
  names = dict(clean[1]['train'])
  builder = tfds.builder('imagenet2012', data_dir=clean[0])
  str2int = builder.info.features['label'].str2int
  for name, label in zip(batch['file_name'], batch['label']):
    assert str2int(names[name.decode()]) == label


@pytest.mark.parametrize('sampler', ['torchvision', 'tensorflow'])
def test_crop_box_and_flip_are_the_crop_taken(
  clean, originals, encoded, sampler
):
  flips = []
  for batch in _take(_train(clean[0], crop_sampler=sampler), 6):
    for i, name in enumerate(batch['file_name']):
      box, flip = batch['crop_box'][i], batch['flip'][i]
      assert 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
      got = batch['image'][i].astype(np.float32)
      # Exact against a partial decode of the box's window...
      window = _box_window(box, *originals[name].shape[:2])
      exact = _resize(tf.io.decode_and_crop_jpeg(encoded[name], window))
      exact = exact[:, ::-1] if flip else exact
      assert np.abs(got - exact).max() <= 1.0
      # ...and close to the full decode: partial JPEG decodes differ from
      # full ones by up to ~20 levels at the window's edges (chroma
      # upsampling), a box off by one pixel costs more on average.
      expected = _cut_and_resize(originals[name], box)
      flipped = expected[:, ::-1]
      if flip:
        expected, flipped = flipped, expected
      assert np.abs(got - expected).mean() <= 0.5
      # The other orientation is far off: the flip bit is informative.
      assert np.abs(got - flipped).mean() > 3.0
      flips.append(bool(flip))
  assert 0 < sum(flips) < len(flips)


@pytest.mark.parametrize('sampler', ['torchvision', 'tensorflow'])
def test_fallback_emits_center_crop_box(clean, originals, sampler):
  # Square crops of >= 99 % of a non-square image never fit: all fall back,
  # TensorFlow's sampler to the centre crop_pct of the short side,
  # torchvision's to the whole image clamped to the ratio range (here the
  # centred square of the short side).
  it = _train(
    clean[0],
    crop_sampler=sampler,
    crop_scale=(0.99, 1.0),
    crop_ratio=(1.0, 1.0),
  )
  batch = next(it)
  checked = 0
  for i, name in enumerate(batch['file_name']):
    h, w = originals[name].shape[:2]
    if abs(h - w) <= 1:
      continue  # (near-square: a 99 % square may fit)
    if sampler == 'tensorflow':
      side = round(min(h, w) * 0.875)
      y, x = (h - side + 1) // 2, (w - side + 1) // 2
    else:
      side = min(h, w)
      y, x = (h - side) // 2, (w - side) // 2
    expected_box = [y / h, x / w, (y + side) / h, (x + side) / w]
    np.testing.assert_allclose(batch['crop_box'][i], expected_box, atol=1e-6)
    checked += 1
  assert checked > 0


def test_same_seed_same_batches_other_seed_differs(clean):
  first = _take(_train(clean[0], seed=3, color_jitter=0.4), 5)
  again = _take(_train(clean[0], seed=3, color_jitter=0.4), 5)
  _assert_same(first, again)
  other = _take(_train(clean[0], seed=4, color_jitter=0.4), 1)
  assert not np.array_equal(first[0]['image'], other[0]['image'])


def test_device_photometric_leaves_the_host_crop_unjittered(clean):
  # data.photometric='device': the host decodes, crops, resizes and flips
  # only; the jitter and lighting strengths go to the train step instead.
  strengths = dict(color_jitter=0.4, pca_lighting=0.1)
  device = _take(_train(clean[0], seed=3, photometric='device', **strengths), 2)
  plain = _take(_train(clean[0], seed=3), 2)
  _assert_same(device, plain)
  host = _take(_train(clean[0], seed=3, photometric='host', **strengths), 1)
  assert not np.array_equal(host[0]['image'], plain[0]['image'])
  for key in ('crop_box', 'flip', 'file_name'):
    np.testing.assert_array_equal(host[0][key], plain[0][key])


def test_epochs_cover_the_split_and_reshuffle(clean):
  it = _train(clean[0], batch=4)
  epochs = [_take(it, NUM_TRAIN // 4) for _ in range(2)]
  assert it.get_state() == {'epoch': 1, 'batch_in_epoch': 3, 'position': 12}
  orders = [np.concatenate([b['file_name'] for b in e]) for e in epochs]
  for order in orders:
    assert len(set(order)) == NUM_TRAIN
  assert list(orders[0]) != list(orders[1])


def test_restore_mid_epoch_equals_continuing(clean):
  it = _train(clean[0], seed=5, pca_lighting=0.1)
  _take(it, 2)
  state = it.get_state()
  assert state == {'epoch': 0, 'batch_in_epoch': 2, 'position': 8}
  rest = _take(it, 4)  # crosses into epoch 1
  restored = _train(clean[0], seed=5, pca_lighting=0.1)
  restored.set_state(state)
  _assert_same(rest, _take(restored, 4))


def test_restore_in_a_later_epoch_equals_continuing(clean):
  # Epoch 1's order depends on (seed, epoch) only, not on the pipeline
  # having read epoch 0 first.
  it = _train(clean[0], seed=2)
  _take(it, NUM_TRAIN // 4 + 1)
  state = it.get_state()
  assert state == {'epoch': 1, 'batch_in_epoch': 1, 'position': 4}
  rest = _take(it, NUM_TRAIN // 4 + 1)  # into epoch 2
  restored = _train(clean[0], seed=2)
  restored.set_state(state)
  _assert_same(rest, _take(restored, NUM_TRAIN // 4 + 1))


def test_restore_does_not_decode_consumed_examples(corrupt):
  # Find where the corrupt JPEG lands, then resume past it in 'error' mode:
  # if consumed examples were decoded again, this would raise.
  it = _train(corrupt[0], batch=2, on_corrupt='skip')
  state = None
  for _ in range(NUM_TRAIN // 2):
    next(it)
    if it.num_skipped:
      state = it.get_state()
      break
  assert state is not None and state['epoch'] == 0
  resumed = _train(corrupt[0], batch=2)
  resumed.set_state(state)
  batch = next(resumed)
  assert BAD_TRAIN.encode() not in batch['file_name']


def test_process_slices_are_disjoint_and_cover(clean):
  config = data_config(clean[0])
  names = []
  for index in range(2):
    it = input_pipeline.create_train_iterator(
      config,
      global_batch_size=4,
      image_size=S,
      seed=0,
      process_index=index,
      process_count=2,
    )
    batches = _take(it, NUM_TRAIN // 4)
    assert all(len(b['label']) == 2 for b in batches)
    names.append({n for b in batches for n in b['file_name']})
  assert not names[0] & names[1]
  assert len(names[0] | names[1]) == NUM_TRAIN
  steps = input_pipeline.steps_per_epoch(config, 4, process_count=2)
  assert steps == NUM_TRAIN // 4


def test_eval_center_crop_pixels(clean, originals):
  it = input_pipeline.create_eval_iterator(
    data_config(clean[0]), global_batch_size=8, image_size=S
  )
  batch = next(it)
  np.testing.assert_array_equal(batch['mask'], [True] * 6 + [False] * 2)
  for i in range(6):
    image = originals[batch['file_name'][i]]
    expected = _cut_and_resize(image, batch['crop_box'][i])
    diff = np.abs(batch['image'][i] - expected)
    assert diff.max() <= 12.0 and diff.mean() <= 0.5
    box = batch['crop_box'][i]
    h, w = image.shape[:2]
    # A centred square of 0.875 of the short side.
    assert abs((box[2] - box[0]) * h - (box[3] - box[1]) * w) < 1.0
    assert abs(min(h, w) * 0.875 - (box[2] - box[0]) * h) <= 0.5
  with pytest.raises(StopIteration):
    next(it)


def test_corrupt_jpeg_error_names_file_and_dataset(corrupt):
  it = _train(corrupt[0], batch=2)
  with pytest.raises(input_pipeline.CorruptImageError) as info:
    _take(it, NUM_TRAIN // 2)
  assert BAD_TRAIN in str(info.value)
  assert 'imagenet2012' in str(info.value)


def test_skip_mode_counts_and_drops_corrupt(corrupt):
  it = _train(corrupt[0], batch=1, on_corrupt='skip')
  names = [next(it)['file_name'][0] for _ in range(NUM_TRAIN - 1)]
  assert it.num_skipped == 1
  assert BAD_TRAIN.encode() not in names
  assert len(set(names)) == NUM_TRAIN - 1


def test_not_prepared_says_how_to_prepare(tmp_path):
  with pytest.raises(ValueError) as info:
    _train(str(tmp_path))
  message = str(info.value)
  assert 'downloads/manual' in message
  assert 'ILSVRC2012_img_train.tar' in message
  assert 'tfds build imagenet2012' in message


def test_bad_arguments(clean):
  with pytest.raises(ValueError, match='global_batch_size'):
    input_pipeline.create_train_iterator(
      data_config(clean[0]),
      global_batch_size=3,
      image_size=S,
      seed=0,
      process_index=0,
      process_count=2,
    )
  with pytest.raises(ValueError, match='num_classes'):
    _train(clean[0], num_classes=10)
  with pytest.raises(ValueError, match='augment'):
    _train(clean[0], augment='autoaugment')
  with pytest.raises(ValueError, match='crop_sampler'):
    _train(clean[0], crop_sampler='pil')
  with pytest.raises(ValueError, match=r'data\.train_resize'):
    _train(clean[0], train_resize='bicubic')
  with pytest.raises(ValueError, match='image_key'):
    _train(clean[0], image_key='picture')


def test_prefetch_to_mesh_global_arrays_and_state(clean):
  mesh = jax.make_mesh((jax.device_count(),), ('data',))
  it = _train(clean[0], batch=8)
  batches = input_pipeline.prefetch_to_mesh(it, mesh, size=2)
  first = next(batches)
  assert 'file_name' not in first
  assert first['image'].shape == (8, S, S, 3)
  assert first['image'].sharding.spec == jax.sharding.PartitionSpec('data')
  assert len(first['label'].addressable_shards) == jax.device_count()
  # The host iterator runs ahead (in the background); the prefetcher
  # reports the consumed point.
  deadline = time.monotonic() + 60
  while it.get_state()['epoch'] == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
  assert it.get_state()['epoch'] > 0
  assert batches.get_state() == {
    'epoch': 0,
    'batch_in_epoch': 1,
    'position': 8,
  }
  reference = next(_train(clean[0], batch=8))
  np.testing.assert_array_equal(np.asarray(first['image']), reference['image'])
  batches.set_state({'epoch': 0, 'batch_in_epoch': 0, 'position': 0})
  again = next(batches)
  np.testing.assert_array_equal(np.asarray(again['image']), reference['image'])


class TinyPng(tfds.core.GeneratorBasedBuilder):
  """32x32 PNG images with no file-name feature, like cifar10."""

  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(32, 32, 3)),
          'label': tfds.features.ClassLabel(num_classes=10),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    return {
      'train': self._generate_examples(8),
      'test': self._generate_examples(3),
    }

  def _generate_examples(self, n):
    rng = np.random.default_rng(n)
    for i in range(n):
      # Values >= 1, so zero padding is recognisable.
      image = rng.integers(1, 256, (32, 32, 3), dtype=np.uint8)
      yield i, {'image': image, 'label': i}


def test_cifar_augment_on_png_dataset(tmp_path):
  TinyPng(data_dir=str(tmp_path)).download_and_prepare()
  builder = tfds.builder('tiny_png', data_dir=str(tmp_path))
  read = tfds.ReadConfig(add_tfds_id=True)
  originals = {
    ex['tfds_id'].numpy(): ex['image'].numpy()
    for ex in builder.as_dataset(split='train', read_config=read)
  }
  config = data_config(
    str(tmp_path), dataset='tiny_png', num_classes=10, augment='cifar'
  )
  it = input_pipeline.create_train_iterator(
    config, global_batch_size=4, image_size=32, seed=1, process_count=1
  )
  clipped = 0
  for batch in _take(it, 4):
    for i, name in enumerate(batch['file_name']):
      image, box = batch['image'][i], batch['crop_box'][i] * 32
      if batch['flip'][i]:
        image = image[:, ::-1]
      y0, x0, y1, x1 = (round(float(v)) for v in box)
      # A window sticking out above/left shows the image at the far side.
      top = 0 if y0 > 0 else 32 - y1
      left = 0 if x0 > 0 else 32 - x1
      shown = image[top : top + y1 - y0, left : left + x1 - x0]
      np.testing.assert_array_equal(shown, originals[name][y0:y1, x0:x1])
      assert (image > 0).all(axis=-1).sum() == (y1 - y0) * (x1 - x0)
      clipped += (y1 - y0) * (x1 - x0) < 32 * 32
  assert clipped > 0


def test_prefetch_to_mesh_eval_keeps_mask_and_ends(clean):
  mesh = jax.make_mesh((jax.device_count(),), ('data',))
  it = input_pipeline.create_eval_iterator(
    data_config(clean[0]), global_batch_size=8, image_size=S
  )
  batches = list(input_pipeline.prefetch_to_mesh(it, mesh, size=3))
  assert len(batches) == 1
  np.testing.assert_array_equal(
    np.asarray(batches[0]['mask']), [True] * 6 + [False] * 2
  )
  with pytest.raises(ValueError, match='axis'):
    input_pipeline.prefetch_to_mesh(iter([]), mesh, axis='model')


class _Counting(input_pipeline.BatchIterator):
  """Batches {'x': [i, i]}; records the thread of every `next`; fails at
  `fail_at`."""

  def __init__(self, fail_at=None):
    self.i, self.threads, self.fail_at = 0, set(), fail_at

  def __next__(self):
    self.threads.add(threading.current_thread())
    if self.i == self.fail_at:
      raise input_pipeline.CorruptImageError(f'bad batch {self.i}')
    self.i += 1
    return {'x': np.full(2, self.i - 1, np.int32), 'name': np.array([b'a'] * 2)}

  def get_state(self):
    return {'i': self.i}

  def set_state(self, state):
    self.i = state['i']


def test_prefetch_to_mesh_reads_off_the_calling_thread_and_resumes():
  mesh = jax.make_mesh((1,), ('data',), devices=jax.devices()[:1])
  host = _Counting()
  batches = input_pipeline.prefetch_to_mesh(host, mesh, size=2)
  assert [int(next(batches)['x'][0]) for _ in range(3)] == [0, 1, 2]
  assert threading.current_thread() not in host.threads
  assert batches.get_state() == {'i': 3}
  batches.set_state({'i': 1})
  assert [int(next(batches)['x'][0]) for _ in range(2)] == [1, 2]
  batches.close()
  assert not any(thread.is_alive() for thread in host.threads)
  # Closing rewinds the host iterator to the last batch handed out.
  assert host.get_state() == {'i': 3}
  assert int(next(batches)['x'][0]) == 3
  batches.close()


def test_prefetch_to_mesh_raises_host_errors_in_order():
  mesh = jax.make_mesh((1,), ('data',), devices=jax.devices()[:1])
  batches = input_pipeline.prefetch_to_mesh(_Counting(fail_at=2), mesh)
  assert [int(next(batches)['x'][0]) for _ in range(2)] == [0, 1]
  with pytest.raises(input_pipeline.CorruptImageError, match='bad batch 2'):
    next(batches)


def test_area_train_resize_changes_pixels_only(clean, encoded):
  from jaxmix.data import crops

  exact = _take(_train(clean[0], train_resize='antialias'), 3)
  area_it = _train(clean[0], train_resize='area')
  area = _take(area_it, 3)
  differ = 0
  for a, b in zip(exact, area):
    # Same draws: the law of the resize touches nothing else.
    for key in ('label', 'crop_box', 'flip', 'file_name'):
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for i, name in enumerate(b['file_name']):
      shape = tf.io.extract_jpeg_shape(encoded[name]).numpy()
      window = _box_window(b['crop_box'][i], *shape[:2])
      crop = tf.io.decode_and_crop_jpeg(encoded[name], window)
      expected = crops.resize_area(crop, S).numpy()
      expected = expected[:, ::-1] if b['flip'][i] else expected
      got = b['image'][i].astype(np.float32)
      assert np.abs(got - expected).max() <= 1.0
      differ += int(np.any(a['image'][i] != b['image'][i]))
  assert differ > 0
  # Deterministic, and resumed exactly from a saved position.
  _assert_same(area, _take(_train(clean[0], train_resize='area'), 3))
  state = area_it.get_state()
  more = _take(area_it, 2)
  resumed = _train(clean[0], train_resize='area')
  resumed.set_state(state)
  _assert_same(more, _take(resumed, 2))


@pytest.mark.parametrize(
  'overrides',
  [
    dict(),
    dict(train_resize='area', photometric='device', pca_lighting=0.1),
    dict(color_jitter=0.4, pca_lighting=0.1),
    dict(random_flip=False, crop_scale=(0.5, 1.0), crop_ratio=(0.5, 2.0)),
    dict(auto_augment='rand-m9-mstd0.5-inc1'),
  ],
)
def test_block_draws_equal_per_example_draws(clean, monkeypatch, overrides):
  # The vectorised block draw (train_block + train_crop) gives the batches
  # of the per-example map function, across an epoch boundary.
  assert preprocess.drawn_per_block(data_config(clean[0], **overrides))
  blocked = _take(_train(clean[0], seed=4, **overrides), NUM_TRAIN // 4 + 2)
  monkeypatch.setattr(preprocess, 'drawn_per_block', lambda config: False)
  alone = _take(_train(clean[0], seed=4, **overrides), NUM_TRAIN // 4 + 2)
  _assert_same(blocked, alone)


def test_block_draw_with_copies_equals_per_example(clean, monkeypatch):
  overrides = dict(repeated_augmentation=3)
  blocked = _take(_train(clean[0], batch=8, **overrides), 3)
  monkeypatch.setattr(preprocess, 'drawn_per_block', lambda config: False)
  alone = _take(_train(clean[0], batch=8, **overrides), 3)
  _assert_same(blocked, alone)


def test_train_block_then_crop_is_train_preprocess(encoded):
  # Direct: the two halves on a block of examples with their shapes.
  config = data_config('unused')
  names = sorted(encoded)
  n = len(names)
  block = {
    'image_bytes': tf.stack([encoded[k] for k in names]),
    'file_name': tf.constant(names),
    'label': tf.range(n, dtype=tf.int64),
    'epoch': tf.constant([0, 3] * (n // 2), tf.int64),
    'index': tf.range(n, dtype=tf.int64) * 11,
  }
  shapes = tf.stack(
    [
      preprocess.with_shape({'image_bytes': b})['shape']
      for b in block['image_bytes']
    ]
  )
  drawn = preprocess.train_block(config, seed=9)({**block, 'shape': shapes})
  crop = preprocess.train_crop(config, image_size=S)
  whole = preprocess.train_preprocess(config, image_size=S, seed=9)
  for i in range(n):
    one = {k: v[i] for k, v in drawn.items()}
    want = whole({k: v[i] for k, v in block.items()})
    got = crop(one)
    assert got.keys() == want.keys()
    for key in want:
      np.testing.assert_array_equal(got[key].numpy(), want[key].numpy(), key)


def test_block_path_raises_at_the_bad_images_own_batch(corrupt, monkeypatch):
  # A bad image fails its whole block, read ahead of its batch; the
  # iterator must still deliver every batch before it, as per example.
  def batches_before_error():
    it, good = _train(corrupt[0], batch=2), []
    with pytest.raises(input_pipeline.CorruptImageError, match=BAD_TRAIN):
      for _ in range(4 * NUM_TRAIN):
        good.append(next(it))
    return good

  blocked = batches_before_error()
  monkeypatch.setattr(preprocess, 'drawn_per_block', lambda config: False)
  _assert_same(blocked, batches_before_error())
