"""Tests of ReLabel in the trainer: host join, step targets, config, a run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from jaxmix.configs import default
from jaxmix.data.label_maps import join as label_map_join
from jaxmix.data.label_maps.store import LabelMapStore, MissingLabelMapError
from jaxmix.data.label_maps.writer import LabelMapWriter
from jaxmix.train import augment, augment_schedule, steps, validation
from jaxmix.train import relabel as train_targets

K, S, TOP = 10, 5, 3
B = 16
# The references run jitted: one program each, not one per primitive.
relabel_targets = jax.jit(
  jaxmix.relabel_targets, static_argnames=('num_classes', 'official_box_order')
)
normalize = jax.jit(steps.normalize, static_argnames=('mean', 'std'))


def random_batch(seed=0, found=None):
  rng = np.random.default_rng(seed)
  top = rng.uniform(0.05, 0.5, (B, 2))
  size = rng.uniform(0.3, 0.5, (B, 2))
  boxes = np.concatenate([top, top + size], 1).astype(np.float32)
  indices = np.stack(
    [rng.permutation(K)[:TOP] for _ in range(B * S * S)]
  ).reshape(B, S, S, TOP)
  return {
    'image': rng.integers(0, 256, (B, 8, 8, 3)).astype(np.uint8),
    'label': rng.integers(0, K, B).astype(np.int32),
    'crop_box': boxes,
    'flip': rng.random(B) < 0.5,
    'label_map_scores': rng.normal(2, 2, (B, S, S, TOP)).astype(np.float16),
    'label_map_indices': indices.astype(np.uint16),
    'label_map_found': np.ones(B, bool) if found is None else found,
  }


def relabel_config(**relabel):
  config = default.get_config('smoke')
  config.relabel.update(enabled=True, **relabel)
  return config


@pytest.fixture(scope='module')
def mesh():
  return steps.create_mesh()


def test_step_targets_are_relabel_targets_of_the_crop_boxes(mesh):
  batch = random_batch()
  settings = train_targets.RelabelSettings(num_classes=K, temperature=0.7)
  targets, maps = jax.jit(train_targets.create_targets_fn(settings, mesh))(
    batch
  )
  want = relabel_targets(
    batch['label_map_scores'],
    batch['label_map_indices'],
    batch['crop_box'],
    num_classes=K,
    temperature=0.7,
  )
  np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(maps[3], batch['flip'])
  # The official box order reaches the pooling.
  swapped = train_targets.RelabelSettings(
    num_classes=K, official_box_order=True
  )
  targets, _ = jax.jit(train_targets.create_targets_fn(swapped, mesh))(batch)
  want = relabel_targets(
    batch['label_map_scores'],
    batch['label_map_indices'],
    batch['crop_box'],
    num_classes=K,
    official_box_order=True,
  )
  np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-7)


def test_missing_maps_give_exact_one_hot_and_smoothing_is_uniform(mesh):
  found = np.arange(B) % 3 != 0
  batch = random_batch(1, found)
  settings = train_targets.RelabelSettings(num_classes=K, label_smoothing=0.1)
  targets, _ = jax.jit(train_targets.create_targets_fn(settings, mesh))(batch)
  pooled = relabel_targets(
    batch['label_map_scores'],
    batch['label_map_indices'],
    batch['crop_box'],
    num_classes=K,
  )
  one_hot = jaxmix.one_hot(batch['label'], K)
  want = jaxmix.smooth_labels(np.where(found[:, None], pooled, one_hot), 0.1)
  np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-7)
  # Exactly the smoothed one-hot label for the missing ones.
  np.testing.assert_array_equal(
    targets[~found], jaxmix.one_hot(batch['label'][~found], K, smoothing=0.1)
  )


def step_targets(mesh, config, batch, mix_prob, seed=3):
  augment_fn = augment.create_augment_fn(config, mesh)
  step_config = steps.StepConfig(
    num_classes=K,
    label_smoothing=config.label_smoothing,
    mean=tuple(config.data.mean),
    std=tuple(config.data.std),
  )

  @jax.jit
  def run(key, batch, prob):
    images, targets, _ = steps.inputs_and_targets(
      key,
      batch,
      augment_schedule.Schedule(mix_prob=prob, cmo_prob=jnp.float32(0)),
      augment_fn=augment_fn,
      config=step_config,
    )
    return images, targets

  return run(jax.random.key(seed), batch, jnp.float32(mix_prob))


@pytest.mark.slow
@pytest.mark.parametrize('localized', [False, True])
def test_step_cutmix_is_relabel_cutmix_and_off_at_prob_zero(mesh, localized):
  config = relabel_config(localized_cutmix=localized)
  config.mix.method = 'cutmix'
  batch = random_batch(2)
  images, targets = step_targets(mesh, config, batch, 0.0)
  np.testing.assert_array_equal(
    images,
    normalize(batch['image'], tuple(config.data.mean), tuple(config.data.std)),
  )
  want = relabel_targets(
    batch['label_map_scores'],
    batch['label_map_indices'],
    batch['crop_box'],
    num_classes=K,
  )
  np.testing.assert_allclose(targets, want, rtol=1e-6, atol=1e-7)

  images, targets = step_targets(mesh, config, batch, 1.0)

  def reference(key, images, scores, indices, crop_boxes, flips):
    # As augment.create_mix_fn with mix.draw='device': split, then fold
    # the device index into the mixing key.
    mix_key = jax.random.fold_in(
      jax.random.split(key, 3)[0], jax.lax.axis_index('data')
    )
    return jaxmix.relabel_cutmix(
      mix_key,
      images,
      scores,
      indices,
      crop_boxes,
      flips,
      num_classes=K,
      localized=localized,
    )

  aug_key = jax.random.key(3)  # inputs_and_targets gets the key as is
  normalized = normalize(
    batch['image'], tuple(config.data.mean), tuple(config.data.std)
  )
  want_images, want_targets = jax.jit(
    jaxmix.per_shard(reference, mesh, per_device_keys=False)
  )(
    aug_key,
    normalized,
    batch['label_map_scores'].astype(np.float32),
    batch['label_map_indices'].astype(np.int32),
    batch['crop_box'],
    batch['flip'],
  )
  assert not np.array_equal(images, normalized)
  np.testing.assert_allclose(images, want_images, rtol=1e-6)
  np.testing.assert_allclose(targets, want_targets, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)


def write_store(path, names, num_classes=K, seed=0):
  rng = np.random.default_rng(seed)
  scores = rng.normal(0, 3, (len(names), S, S, TOP)).astype(np.float32)
  indices = rng.integers(0, num_classes, (len(names), S, S, TOP))
  writer = LabelMapWriter(
    str(path), size=S, k=TOP, num_classes=num_classes, source='test'
  )
  writer.add(names, scores, indices)
  writer.finalize()
  return scores.astype(np.float16), indices.astype(np.uint16)


class Batches:
  """A tiny train iterator with a position."""

  def __init__(self, names):
    self.names, self.position = names, 0

  def __iter__(self):
    return self

  def __next__(self):
    names = self.names[self.position : self.position + 2]
    self.position += 2
    return {
      'label': np.array([1, 2], np.int32),
      'file_name': np.array(names, dtype=object),
    }

  def get_state(self):
    return {'position': self.position}

  def set_state(self, state):
    self.position = state['position']


def open_maps(config):
  """`open_label_maps` with a recipe's fields, as the trainer calls it."""
  return label_map_join.open_label_maps(
    config.relabel.store_dir,
    missing=config.relabel.missing,
    num_classes=config.data.num_classes,
    synthetic=config.data.dataset == 'synthetic',
  )


def test_join_gives_the_rows_of_the_store_and_keeps_the_position(tmp_path):
  names = [b'b.jpg', b'a.jpg', b'c.jpg', b'd.jpg']
  scores, indices = write_store(tmp_path / 'maps', names)
  config = relabel_config(store_dir=str(tmp_path / 'maps'))
  config.data.update(dataset='imagenet2012', num_classes=K)
  maps_fn, store = open_maps(config)
  joined = label_map_join.join_label_maps(Batches(names), maps_fn)
  next(joined)
  batch = next(joined)
  np.testing.assert_array_equal(batch['label_map_scores'], scores[2:])
  np.testing.assert_array_equal(batch['label_map_indices'], indices[2:])
  assert batch['label_map_found'].tolist() == [True, True]
  assert joined.get_state() == {'position': 4}
  joined.set_state({'position': 0})
  np.testing.assert_array_equal(next(joined)['label_map_scores'], scores[:2])
  assert store.num_looked_up == 6 and store.num_missing == 0


class BoxedBatches(Batches):
  """`Batches` with crop boxes; `bad_box` breaks the second row's."""

  def __init__(self, names, bad_box=False):
    super().__init__(names)
    self.bad_box = bad_box

  def __next__(self):
    batch = super().__next__()
    boxes = np.array([[0.1, 0.1, 0.9, 0.9]] * 2, np.float32)
    if self.bad_box:
      boxes[1] = [0.5, 0.2, 0.4, 1.2]  # ymin > ymax, xmax > 1
    batch['crop_box'] = boxes
    return batch


def test_join_checks_boxes_and_class_ids_naming_the_file(tmp_path):
  names = [b'a.jpg', b'b.jpg']
  write_store(tmp_path / 'maps', names, num_classes=K)
  store = LabelMapStore.open(str(tmp_path / 'maps'))
  maps_fn = label_map_join.store_maps_fn(store)
  good = label_map_join.join_label_maps(
    BoxedBatches(names), maps_fn, num_classes=K
  )
  assert next(good)['label_map_found'].all()
  bad_box = label_map_join.join_label_maps(
    BoxedBatches(names, bad_box=True), maps_fn, num_classes=K
  )
  with pytest.raises(ValueError, match=r"of b'b\.jpg'.*crop_boxes"):
    next(bad_box)
  # Ids the classifier cannot have: a store of more classes than the run's.
  few = label_map_join.join_label_maps(
    BoxedBatches(names), maps_fn, num_classes=2
  )
  with pytest.raises(ValueError, match=r"of b'a\.jpg'"):
    next(few)


def test_missing_map_errors_by_default_and_falls_back_when_asked(tmp_path):
  write_store(tmp_path / 'maps', [b'a.jpg', b'b.jpg'])
  config = relabel_config(store_dir=str(tmp_path / 'maps'))
  config.data.update(dataset='imagenet2012', num_classes=K)
  names = [b'a.jpg', b'zebra.jpg']
  maps_fn, _ = open_maps(config)
  joined = label_map_join.join_label_maps(Batches(names), maps_fn)
  with pytest.raises(MissingLabelMapError, match=r"'zebra\.jpg'"):
    next(joined)
  config.relabel.missing = 'one_hot'
  maps_fn, store = open_maps(config)
  batch = next(label_map_join.join_label_maps(Batches(names), maps_fn))
  assert batch['label_map_found'].tolist() == [True, False]
  assert not batch['label_map_scores'][1].any()
  assert (store.num_missing, store.num_looked_up) == (1, 2)


def test_open_label_maps_checks_store_dir_and_classes(tmp_path):
  config = relabel_config()
  config.data.dataset = 'imagenet2012'
  with pytest.raises(ValueError, match=r'config\.relabel\.store_dir'):
    open_maps(config)
  write_store(tmp_path / 'maps', [b'a'], num_classes=12)
  config.relabel.store_dir = str(tmp_path / 'maps')
  with pytest.raises(ValueError, match='12 classes'):
    open_maps(config)
  # Synthetic data without a store: made-up maps from the label.
  config = relabel_config()
  maps_fn, store = open_maps(config)
  scores, indices, found = maps_fn({'label': np.array([3, 9])})
  assert store is None and found.all() and scores.dtype == np.float16
  assert indices[0, 3, 3, 0] == 3 and indices[1, 0, 0, 1] == 0


@pytest.mark.parametrize(
  ('edit', 'message'),
  [
    (lambda c: c.relabel.update(missing='skip'), r'config\.relabel\.missing'),
    (lambda c: c.relabel.update(temperature=0.0), r'relabel\.temperature'),
    (
      lambda c: c.relabel.update(localized_cutmix=True),
      r"localized_cutmix needs config\.mix\.method='cutmix'",
    ),
    (
      lambda c: c.update(
        mix=dict(method='cutmix', draw='example'),
        relabel=dict(localized_cutmix=True),
      ),
      r"config\.mix\.draw must be 'batch' or 'device'",
    ),
  ],
)
def test_invalid_relabel_configs_fail_naming_the_field(edit, message):
  config = relabel_config()
  edit(config)
  with pytest.raises(ValueError, match=message):
    validation.check_config(config)


def test_valid_relabel_config_passes():
  config = relabel_config(localized_cutmix=True, missing='one_hot')
  config.mix.method = 'cutmix'
  validation.check_config(config)


def digit_scenes_names(data_dir):
  import tensorflow_datasets as tfds

  from jaxmix.datasets import digit_scenes

  builder = digit_scenes.prepare(data_dir, 'small')
  ds = builder.as_dataset(split='train')
  return [ex['file_name'] for ex in tfds.as_numpy(ds)]


@pytest.mark.slow
def test_relabel_run_end_to_end_on_digit_scenes(tmp_path, digit_scenes_small):
  from jaxmix.train import loop

  data_dir = digit_scenes_small
  names = digit_scenes_names(data_dir)
  assert len(names) == 256
  # Maps for all but the first 16 images; those train on one-hot labels.
  write_store(tmp_path / 'maps', names[16:])
  config = default.get_config('smoke')
  config.data.update(
    dataset='digit_scenes/small',
    data_dir=data_dir,
    num_classes=K,
    shuffle_buffer=64,
  )
  config.update(image_size=16, global_batch_size=32, num_epochs=1)
  config.model.kwargs.width = 4
  config.mix.update(method='cutmix', off_epoch=0)
  config.relabel.update(
    enabled=True, store_dir=str(tmp_path / 'maps'), missing='one_hot'
  )
  config.checkpoint.every_steps = 8
  final = loop.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(final.step) == 8
  lines = (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()
  evals = [json.loads(x) for x in lines if 'eval/top1' in x]
  assert evals[-1]['eval/relabel_looked_up'] >= 256
  assert 0 < evals[-1]['eval/relabel_missing'] <= 32  # 16 an epoch, prefetch
  config.relabel.missing = 'error'
  with pytest.raises(MissingLabelMapError, match='no label map for file_name'):
    loop.train_and_evaluate(config, str(tmp_path / 'strict'))


def test_relabel_recipes_hold_the_official_settings():
  from jaxmix.configs.imagenet import (
    relabel_cutmix_resnet18,
    relabel_cutmix_resnet50,
    relabel_resnet50,
    relabel_resnet101,
  )

  plain = relabel_resnet50.get_config()
  assert plain.relabel.enabled and plain.mix.method == 'none'
  assert (plain.num_epochs, plain.global_batch_size) == (300, 1024)
  assert (plain.schedule.name, plain.schedule.warmup_epochs) == ('cosine', 5)
  assert (plain.optimizer.name, plain.optimizer.nesterov) == ('sgd', True)
  assert (plain.optimizer.learning_rate, plain.optimizer.weight_decay) == (
    0.1,
    1e-4,
  )
  assert (plain.data.color_jitter, plain.data.pca_lighting) == (0.4, 0.1)
  mixed = relabel_cutmix_resnet50.get_config()
  assert (mixed.optimizer.name, mixed.optimizer.nesterov) == ('adamp', True)
  assert (mixed.optimizer.learning_rate, mixed.optimizer.weight_decay) == (
    2e-3,
    1e-2,
  )
  assert (mixed.mix.method, mixed.mix.prob, mixed.mix.cutmix_alpha) == (
    'cutmix',
    1.0,
    1.0,
  )
  assert mixed.mix.off_epoch == 5 and not mixed.relabel.localized_cutmix
  assert relabel_resnet101.get_config().model.name == 'resnet101'
  row = relabel_cutmix_resnet18.get_config()
  assert (row.model.name, row.optimizer.name) == ('resnet18', 'adamp')
