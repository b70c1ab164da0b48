"""Tests of `data.auto_augment`: the host ops (timm's golden file), the draw
law, and the policy in the input pipeline and the synthetic source."""

import json
import os

import numpy as np
import pytest
from imagenet_fixture_util import NUM_TRAIN, data_config, prepared_imagenet
from PIL import Image
from scipy import stats

from jaxmix._src import auto_augment as aa
from jaxmix.data import auto_augment_host as host

GOLDEN = os.path.join(
  os.path.dirname(__file__), 'golden', 'auto_augment_timm.npz'
)
RA = 'rand-m9-mstd0.5-inc1'
S = 40


def test_every_host_op_equals_timms_bit_for_bit():
  data = np.load(GOLDEN)
  meta = json.loads(str(data['meta']))
  image = Image.fromarray(data['image'])
  for i, (name, magnitude, sign, _) in enumerate(meta['cases']):
    got = np.asarray(host.apply_op(image, name, magnitude, sign))
    np.testing.assert_array_equal(got, data[f'case/{i}'], err_msg=name)
  # Where Pillow >= 10 refuses timm's 0-bit posterize: black, as the JAX op.
  for name, magnitude, _, _ in meta['failures']:
    out = host.apply_op(image, name, magnitude)
    assert not np.asarray(out).any()


def test_rand_augment_plan_follows_timms_law():
  rng = np.random.default_rng(0)
  n = 20_000
  plans = [host.draw_plan(rng, RA) for _ in range(n)]
  # Two layers, each kept with probability 0.5: Binomial(2, 0.5) ops.
  counts = np.bincount([len(p) for p in plans], minlength=3)
  assert stats.chisquare(counts, n * np.array([0.25, 0.5, 0.25])).pvalue > 1e-3
  steps = [s for p in plans for s in p]
  # Ops uniform over the increasing set (with replacement).
  ops = aa.RAND_INCREASING_OPS
  by_op = np.bincount([ops.index(s.name) for s in steps], minlength=len(ops))
  assert stats.chisquare(by_op).pvalue > 1e-3
  # Magnitude N(9, 0.5) clipped to [0, 10]: the clip holds the upper tail.
  m = np.array([s.magnitude for s in steps])
  assert m.max() == 10.0 and m.min() >= 0.0
  inside = m[m < 10.0]
  tail = np.mean(m == 10.0)
  assert abs(tail - stats.norm.sf(10, 9, 0.5)) < 0.005
  assert abs(np.median(inside) - 9.0) < 0.02
  # Signs: +-1 with probability one half.
  signs = np.array([s.sign for s in steps])
  assert set(signs) == {-1.0, 1.0} and abs(np.mean(signs > 0) - 0.5) < 0.01
  # The layers of a plan are drawn independently (with replacement).
  pairs = [p for p in plans if len(p) == 2]
  same = np.mean([a.name == b.name for a, b in pairs])
  assert abs(same - 1 / len(ops)) < 0.01


def test_auto_augment_plan_follows_the_imagenet_policy():
  rng = np.random.default_rng(1)
  policy = aa.IMAGENET_POLICY
  n = 30_000
  plans = [host.draw_plan(rng, 'original') for _ in range(n)]
  # Each op's frequency: sum over sub-policies of P(sub) * its probability.
  want = {}
  for sub in policy:
    for name, prob, magnitude in sub:
      key = (name, float(magnitude))
      want[key] = want.get(key, 0.0) + prob / len(policy)
  got = {}
  for plan in plans:
    assert len(plan) <= 2
    for step in plan:
      key = (step.name, step.magnitude)
      assert key in want, key
      got[key] = got.get(key, 0) + 1
  for key, p in want.items():
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(got.get(key, 0) / n - p) < 5 * sd + 1e-9, key


@pytest.mark.parametrize(
  'spec, message',
  [
    ('rand-m9-mstd0.5-x1', 'Unknown RandAugment section'),
    ('v0', "must start with 'rand'"),
    ('randaugment', 'data.auto_augment must be'),
  ],
)
def test_unknown_policies_fail_naming_the_field(spec, message):
  with pytest.raises(ValueError, match=r'data\.auto_augment') as error:
    host.check_spec(spec)
  assert message in str(error.value)


def test_same_seed_same_image_other_seed_differs():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (S, S, 3)).astype(np.uint8)
  seed = np.array([-5, 7], np.int64)  # TF's stateless seeds may be < 0
  a = host.augment(image, seed, RA)
  np.testing.assert_array_equal(a, host.augment(image, seed, RA))
  others = [host.augment(image, np.array([-5, k]), RA) for k in range(8)]
  assert any(not np.array_equal(a, o) for o in others)
  assert a.dtype == np.uint8 and a.shape == image.shape


# --- in the input pipeline ------------------------------------------------------


@pytest.fixture(scope='module')
def clean(tmp_path_factory):
  return prepared_imagenet(str(tmp_path_factory.getbasetemp()))


def _train(data_dir, seed=0, **overrides):
  from jaxmix.data import input_pipeline

  return input_pipeline.create_train_iterator(
    data_config(data_dir, **overrides),
    global_batch_size=4,
    image_size=S,
    seed=seed,
    process_index=0,
    process_count=1,
  )


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _policy_seeds(seed, epoch, indices):
  """The policy's seed of each example: the pipeline's fifth stream."""
  import tensorflow as tf

  from jaxmix.data import preprocess

  return [
    tf.random.experimental.stateless_split(
      preprocess.example_seed(seed, epoch, int(i)), num=5
    )[4].numpy()
    for i in indices
  ]


@pytest.mark.parametrize('spec', [RA, 'original'])
def test_pipeline_applies_the_policy_after_crop_and_flip(clean, spec):
  # The same crops and flips as without a policy, then the host policy
  # drawn from the example's own seed: exactly.
  plain = _take(_train(clean[0], seed=3), NUM_TRAIN // 4)
  policy = _take(_train(clean[0], seed=3, auto_augment=spec), NUM_TRAIN // 4)
  index_of = _indices(clean, seed=3)
  changed = 0
  for a, b in zip(plain, policy):
    for key in ('crop_box', 'flip', 'file_name', 'label'):
      np.testing.assert_array_equal(a[key], b[key])
    seeds = _policy_seeds(3, 0, [index_of[n] for n in a['file_name']])
    for image, got, s in zip(a['image'], b['image'], seeds):
      np.testing.assert_array_equal(got, host.augment(image, s, spec))
      changed += not np.array_equal(image, got)
  assert changed > 0


def _indices(clean, seed):
  """file name -> the example index (read order) that seeds it in epoch 0."""
  from jaxmix.data import input_pipeline, tfds_source

  config = data_config(clean[0])
  source = tfds_source.Source(config, 'train', 0, 1, drop_remainder=True)
  seeds = input_pipeline.epoch_seeds(seed, np.int64(0))
  return {
    ex['file_name'].numpy(): int(ex['index'])
    for ex in source.read_epoch(seeds[0])
  }


def test_pipeline_policy_is_deterministic_and_resumes(clean):
  it = _train(clean[0], seed=5, auto_augment=RA)
  _take(it, 2)
  state = it.get_state()
  rest = _take(it, 3)  # into epoch 1
  restored = _train(clean[0], seed=5, auto_augment=RA)
  restored.set_state(state)
  for a, b in zip(rest, _take(restored, 3)):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_synthetic_source_applies_the_policy_per_example():
  from jaxmix.configs import default
  from jaxmix.datasets import synthetic

  config = default.get_config('smoke').data

  def first(spec, seed=0):
    config.auto_augment = spec
    return next(
      synthetic.create_train_iterator(
        config, global_batch_size=16, image_size=32, seed=seed
      )
    )

  plain, policy = first(''), first(RA)
  np.testing.assert_array_equal(plain['file_name'], policy['file_name'])
  assert any(
    not np.array_equal(a, b) for a, b in zip(plain['image'], policy['image'])
  )
  np.testing.assert_array_equal(first(RA)['image'], policy['image'])


def test_trainer_config_checks_name_the_fields():
  from jaxmix.configs import default
  from jaxmix.train import validation

  for edit, field in (
    (dict(auto_augment='rand-m9-q1'), 'data.auto_augment'),
    (dict(repeated_augmentation=0), 'data.repeated_augmentation'),
    (
      dict(auto_augment=RA, photometric='host', color_jitter=0.4),
      'config.data.color_jitter',
    ),
  ):
    config = default.get_config('smoke')
    config.data.update(edit)
    with pytest.raises(ValueError, match=field):
      validation.check_config(config)
  # The device photometric runs after the policy (timm's order when colour
  # jitter is forced): allowed.
  config = default.get_config('smoke')
  config.data.update(auto_augment=RA, photometric='device', color_jitter=0.4)
  validation.check_config(config)
