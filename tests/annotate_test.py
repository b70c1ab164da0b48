"""Tests of the machine annotator and the whole-image reader on digit_scenes."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from jaxmix import models
from jaxmix.apps import annotate as annotate_app
from jaxmix.configs import default
from jaxmix.data import full_images
from jaxmix.data.label_maps.store import LabelMapStore
from jaxmix.data.label_maps.writer import LabelMapWriter
from jaxmix.datasets import digit_scenes
from jaxmix.evaluate import annotator
from jaxmix.train import checkpoints, optimizers, schedules, steps
from jaxmix.train import state as state_lib

IMAGE = 32


@pytest.fixture(scope='module')
def run(tmp_path_factory, digit_scenes_small):
  """digit_scenes/small and a tiny_cnn run directory (fresh weights, EMA)."""
  root = tmp_path_factory.mktemp('annotate')
  data_dir = digit_scenes_small
  builder = digit_scenes.prepare(data_dir, 'small')
  config = default.get_config('smoke')
  config.data.update(dataset='digit_scenes/small', data_dir=data_dir)
  config.image_size = IMAGE
  config.model.kwargs.width = 4
  config.optimizer.ema_decay = 0.9
  workdir = root / 'run'
  os.makedirs(workdir)
  (workdir / 'config.json').write_text(config.to_json_best_effort())
  schedule = schedules.create_learning_rate_schedule(
    config.schedule,
    base_learning_rate=0.1,
    steps_per_epoch=4,
    num_epochs=config.num_epochs,
  )
  tx = optimizers.create_optimizer(config.optimizer, schedule)
  _, state = state_lib.create_train_state(
    lambda: models.create_model(
      'tiny_cnn', num_classes=10, rngs=nnx.Rngs(5), width=4
    ),
    tx,
    mesh=steps.create_mesh(),
    ema=True,
  )
  # Distinct EMA weights, to see that the annotator prefers them.
  state = state.replace(
    ema_params=jax.tree.map(lambda p: p * 1.5 + 0.01, state.params)
  )
  ckpt = checkpoints.Checkpointer(
    str(workdir / 'checkpoints'), every_steps=1, keep=1
  )
  ckpt.save(3, state, {}, force=True)
  ckpt.close()
  names = [
    ex['file_name'] for ex in tfds.as_numpy(builder.as_dataset(split='train'))
  ]
  return {'data_dir': data_dir, 'workdir': str(workdir), 'names': names}


def args_for(run, out, *extra):
  return annotate_app._parse(
    [
      f'--workdir={run["workdir"]}',
      f'--data_dir={run["data_dir"]}',
      f'--out={out}',
      '--batch_size=48',  # 256 = 5 * 48 + 16: a padded last batch
      *extra,
    ]
  )


def test_full_image_reader_is_one_ordered_pass_of_whole_images(run):
  config = default.get_data_config()
  config.update(
    dataset='digit_scenes/small', data_dir=run['data_dir'], num_classes=10
  )
  reader = full_images.create_full_image_iterator(
    config, 'train', batch_size=48, image_size=16
  )
  batches = list(reader)
  assert reader.num_batches == len(batches) == 6
  masks = np.concatenate([b['mask'] for b in batches])
  names = np.concatenate([b['file_name'] for b in batches])[masks]
  assert masks.sum() == 256 and list(names) == run['names']
  assert batches[0]['image'].shape == (48, 16, 16, 3)
  assert batches[0]['image'].dtype == np.uint8
  assert not batches[-1]['image'][16:].any()


@pytest.mark.slow
def test_annotator_writes_top_k_of_the_full_conv_logits(run, tmp_path):
  out = str(tmp_path / 'maps')
  annotator.annotate(args_for(run, out, '--top_k=3'))
  store = LabelMapStore.open(out)
  assert len(store) == 256 and store.metadata['size'] == 8  # 32 px / 4
  assert store.metadata['k'] == 3 and store.num_classes == 10
  assert 'tiny_cnn' in store.metadata['annotator']
  scores, indices, found = store.lookup(run['names'])
  assert found.all()
  assert scores.shape == indices.shape == (256, 8, 8, 3)
  assert (scores.dtype, indices.dtype) == (np.float16, np.uint16)
  assert (np.diff(scores.astype(np.float32), axis=-1) <= 0).all()
  # Reference: the EMA model run by hand on the same whole images.
  config, model_def, variables, step = annotator.load_run(run['workdir'])
  assert step == 3
  data = default.get_data_config()
  data.update(
    dataset='digit_scenes/small', data_dir=run['data_dir'], num_classes=10
  )
  batch = next(
    iter(
      full_images.create_full_image_iterator(
        data, 'train', batch_size=8, image_size=IMAGE
      )
    )
  )
  model = model_def.merge(*variables, train=False)
  x = steps.normalize(batch['image'], config.data.mean, config.data.std)
  logits = np.asarray(annotator.label_map_logits(model, x))
  pooled = logits.mean(axis=(1, 2))
  np.testing.assert_allclose(pooled, model(x), rtol=1e-4, atol=1e-4)
  np.testing.assert_array_equal(indices[:8, ..., 0], logits.argmax(-1))
  top3 = np.sort(logits, -1)[..., ::-1][..., :3]
  np.testing.assert_allclose(
    scores[:8].astype(np.float32), top3, rtol=2e-3, atol=2e-3
  )
  # Not the raw (non-EMA) parameters.
  ema_off = jax.tree.map(lambda p: (p - 0.01) / 1.5, variables[0])
  raw = model_def.merge(ema_off, variables[1], train=False)
  raw_top = np.asarray(annotator.label_map_logits(raw, x)).argmax(-1)
  assert not np.array_equal(raw_top, indices[:8, ..., 0])


@pytest.mark.slow
def test_annotator_resizes_and_resumes(run, tmp_path, capsys):
  full = str(tmp_path / 'full')
  annotator.annotate(args_for(run, full, '--size=5'))
  store = LabelMapStore.open(full)
  assert store.scores.shape == (256, 5, 5, 5)
  # An interrupted run: 100 rows committed, no metadata.
  part = str(tmp_path / 'part')
  meta = store.metadata
  scores, indices, _ = store.lookup(run['names'][:100])
  writer = LabelMapWriter(
    part,
    size=5,
    k=5,
    num_classes=10,
    source=meta['source'],
    annotator=meta['annotator'],
  )
  writer.add(run['names'][:100], scores, indices)
  writer.commit()
  capsys.readouterr()
  annotator.annotate(args_for(run, part, '--size=5'))
  log = capsys.readouterr().err
  assert '256/256 images' in log and 'img/s' in log and 'ETA' in log
  resumed = LabelMapStore.open(part)
  a, b = store.lookup(run['names']), resumed.lookup(run['names'])
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  with open(os.path.join(part, 'metadata.json')) as f:
    assert json.load(f)['num_rows'] == 256


def test_annotator_rejects_bad_arguments(run, tmp_path):
  with pytest.raises(ValueError, match='multiple of the 8 local devices'):
    annotator.annotate(args_for(run, str(tmp_path / 'x'), '--batch_size=12'))
  with pytest.raises(FileNotFoundError, match=r'config\.json'):
    annotator.load_run(str(tmp_path))


def test_label_map_logits_needs_a_cnn():
  with pytest.raises(ValueError, match='no `features` and `head`'):
    annotator.label_map_logits(object(), jnp.zeros((1, 8, 8, 3)))


@pytest.mark.slow
def test_annotator_with_imported_torch_weights(run, tmp_path):
  """A torchvision-layout ResNet-18 file: maps are its full-conv logits."""
  model = models.create_model('resnet18', num_classes=10, rngs=nnx.Rngs(3))
  weights = str(tmp_path / 'resnet18.safetensors')
  models.save_torch_weights(model, weights)
  out = str(tmp_path / 'maps')
  argv = [
    f'--weights={weights}',
    '--model=resnet18',
    '--dataset=digit_scenes/small',
    f'--data_dir={run["data_dir"]}',
    f'--out={out}',
    '--image_size=64',  # a 2 x 2 map
    '--size=2',
    '--top_k=3',
    '--batch_size=48',
  ]
  annotator.annotate(annotate_app._parse(argv))
  store = LabelMapStore.open(out)
  assert (len(store), store.metadata['size'], store.num_classes) == (256, 2, 10)
  assert 'resnet18 at 64px, weights' in store.metadata['annotator']
  scores, indices, _ = store.lookup(run['names'][:8])
  # Reference: the imported model on the same whole images; the mean of
  # its map through the head is its logits (global-pool equality).
  imported = models.load_torch_weights('resnet18', weights)
  data = default.get_data_config()
  data.update(
    dataset='digit_scenes/small', data_dir=run['data_dir'], num_classes=10
  )
  batch = next(
    iter(
      full_images.create_full_image_iterator(
        data, 'train', batch_size=8, image_size=64
      )
    )
  )
  x = steps.normalize(batch['image'], data.mean, data.std)
  logits = np.asarray(annotator.label_map_logits(imported, x))
  np.testing.assert_allclose(
    logits.mean(axis=(1, 2)), imported(x), rtol=1e-4, atol=1e-4
  )
  np.testing.assert_array_equal(indices[..., 0], logits.argmax(-1))
  top3 = np.sort(logits, -1)[..., ::-1][..., :3]
  np.testing.assert_allclose(scores.astype(np.float32), top3, atol=2e-2)
  with pytest.raises(ValueError, match='--weights needs --model'):
    annotator.annotate(annotate_app._parse(argv[:1] + argv[2:]))
