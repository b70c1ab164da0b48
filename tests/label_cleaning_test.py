"""Label cleaning: the rule, the keep list, and training on exactly it.

The rule keeps an example when its label is among the scorer's top-k on a
planted set; `python -m jaxmix.apps.clean_labels` on a prepared TFDS split
with a planted scorer keeps exactly the images of the class it predicts;
the TFDS and synthetic train pipelines then read exactly the kept
examples; a missing, damaged or foreign list fails naming the file.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from jaxmix import models
from jaxmix.apps import clean_labels
from jaxmix.configs import default
from jaxmix.data import input_pipeline, keep_list
from jaxmix.datasets import synthetic
from jaxmix.evaluate import label_cleaning
from jaxmix.train import validation


def test_the_rule_keeps_labels_among_the_top_k_on_a_planted_set():
  logits = jnp.array(
    [
      [5.0, 1.0, 0.0, -1.0],  # label 0: top-1
      [5.0, 1.0, 0.0, -1.0],  # label 1: second
      [5.0, 1.0, 0.0, -1.0],  # label 3: last
      [0.0, 0.0, 9.0, 0.5],  # label 2: top-1
      [0.0, 0.0, 9.0, 0.5],  # label 3: second
    ]
  )
  labels = jnp.array([0, 1, 3, 2, 3])
  np.testing.assert_array_equal(
    label_cleaning.keep_mask(logits, labels), [1, 0, 0, 1, 0]
  )
  np.testing.assert_array_equal(
    label_cleaning.keep_mask(logits, labels, top_k=2), [1, 1, 0, 1, 1]
  )
  np.testing.assert_array_equal(
    label_cleaning.keep_mask(logits, labels, top_k=4), [1, 1, 1, 1, 1]
  )
  with pytest.raises(ValueError, match='top_k'):
    label_cleaning.keep_mask(logits, labels, top_k=0)


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
  from imagenet_fixture_util import prepared_imagenet

  data_dir, _ = prepared_imagenet(str(tmp_path_factory.mktemp('imagenet')))
  return data_dir


def _names_and_labels(data_dir):
  ds = tfds.load(
    'imagenet2012',
    split='train',
    data_dir=data_dir,
    decoders={'image': tfds.decode.SkipDecoding()},
  )
  return {
    ex['file_name'].decode(): int(ex['label']) for ex in tfds.as_numpy(ds)
  }


@pytest.fixture(scope='module')
def cleaned(imagenet, tmp_path_factory):
  """A keep list written by the app with a scorer that always predicts the
  class of the first training image (its head's bias planted)."""
  truth = _names_and_labels(imagenet)
  planted = next(iter(truth.values()))
  model = models.create_model('resnet18', num_classes=1000, rngs=nnx.Rngs(0))
  model.head.bias[...] = model.head.bias[...].at[planted].set(1e4)
  root = tmp_path_factory.mktemp('cleaned')
  weights = root / 'scorer.safetensors'
  models.save_torch_weights(model, weights)
  out = root / 'keep.json'
  clean_labels.main(
    [
      f'--weights={weights}',
      '--model=resnet18',
      '--dataset=imagenet2012',
      f'--data_dir={imagenet}',
      '--split=train',
      f'--out={out}',
      '--batch_size=8',
      '--image_size=32',
    ]
  )
  want = sorted(n for n, label in truth.items() if label == planted)
  return out, want, truth


def test_the_app_keeps_exactly_the_images_the_scorer_agrees_with(cleaned):
  out, want, truth = cleaned
  record = keep_list.read(out)
  assert record['kept'] == want and 0 < len(want) < len(truth)
  assert record['num_examples'] == len(truth)
  assert record['dataset'] == 'imagenet2012' and record['split'] == 'train'
  assert (
    'resnet18' in record['scorer']
    and 'scorer.safetensors' in (record['scorer'])
  )
  assert record['rule'] == 'label is the prediction'


def test_the_tfds_pipeline_trains_on_exactly_the_kept_examples(
  imagenet, cleaned
):
  from imagenet_fixture_util import data_config

  out, want, _ = cleaned
  config = data_config(imagenet, keep_list=str(out))
  batch = 2
  steps = input_pipeline.steps_per_epoch(config, batch, process_count=1)
  assert steps == len(want) // batch
  it = input_pipeline.create_train_iterator(
    config,
    global_batch_size=batch,
    image_size=32,
    seed=0,
    process_index=0,
    process_count=1,
  )
  for epoch in range(2):
    seen = [n.decode() for _ in range(steps) for n in next(it)['file_name']]
    assert sorted(seen) == want, epoch  # each kept image once an epoch
  with pytest.raises(ValueError, match=r'data\.keep_list need a single'):
    input_pipeline.create_train_iterator(
      config,
      global_batch_size=batch,
      image_size=32,
      seed=0,
      process_index=0,
      process_count=2,
    )


def synthetic_config(path=None):
  config = default.get_config('smoke')
  config.data.synthetic.train_examples = 64
  config.data.keep_list = None if path is None else str(path)
  return config


def test_the_synthetic_pipeline_trains_on_exactly_the_kept_examples(tmp_path):
  rng = np.random.default_rng(0)
  kept = sorted(synthetic.file_name(i) for i in rng.choice(64, 24, False))
  path = tmp_path / 'keep.json'
  keep_list.write(
    path,
    kept,
    dataset='synthetic',
    split='train',
    scorer='planted',
    rule='planted',
    num_examples=64,
  )
  config = synthetic_config(path)
  validation.check_config(config)
  steps = synthetic.steps_per_epoch(config.data, 8)
  assert steps == 3
  it = synthetic.create_train_iterator(
    config.data, global_batch_size=8, image_size=8, seed=1
  )
  for _ in range(2):
    seen = [n.decode() for _ in range(steps) for n in next(it)['file_name']]
    assert sorted(seen) == kept
  # Without the list: all 64.
  assert synthetic.num_examples(synthetic_config().data, 'train') == 64


def test_a_missing_damaged_or_foreign_list_is_named(tmp_path):
  path = tmp_path / 'keep.json'
  names = [synthetic.file_name(i) for i in (3, 5, 8)]
  keep_list.write(
    path,
    names,
    dataset='synthetic',
    split='train',
    scorer='s',
    rule='r',
    num_examples=64,
  )
  assert synthetic.num_examples(synthetic_config(path).data, 'train') == 3

  with pytest.raises(ValueError, match=r'config\.data\.keep_list=.*not exist'):
    synthetic.num_examples(synthetic_config(tmp_path / 'no.json').data, 'train')

  record = json.loads(path.read_text())
  record['kept'] = record['kept'][:2]  # a name lost, digest kept
  damaged = tmp_path / 'damaged.json'
  damaged.write_text(json.dumps(record))
  with pytest.raises(ValueError, match=r'damaged\.json is damaged'):
    synthetic.num_examples(synthetic_config(damaged).data, 'train')

  truncated = tmp_path / 'truncated.json'
  truncated.write_bytes(path.read_bytes()[:40])
  with pytest.raises(ValueError, match=r'truncated\.json is not a readable'):
    synthetic.num_examples(synthetic_config(truncated).data, 'train')

  foreign = tmp_path / 'foreign.json'
  keep_list.write(
    foreign,
    ['n01440764_10026.JPEG', synthetic.file_name(1)],
    dataset='imagenet2012',
    split='train',
    scorer='s',
    rule='r',
    num_examples=2,
  )
  with pytest.raises(ValueError, match=r'1 of the 2 names in .*foreign'):
    synthetic.num_examples(synthetic_config(foreign).data, 'train')


def test_the_recipe_is_relabels_recipe_on_one_hot_labels():
  from jaxmix.train import recipes

  full = recipes.load('imagenet/label_cleaning_resnet50.py')
  relabel = recipes.load('imagenet/relabel_resnet50.py')
  assert not full.relabel.enabled and full.data.keep_list is None
  for field in ('model', 'optimizer', 'schedule', 'mix'):
    assert full[field].to_dict() == relabel[field].to_dict(), field
  smoke = recipes.load('imagenet/label_cleaning_resnet50.py:smoke')
  validation.check_config(smoke)
