"""Tests of jaxmix._src.auto_augment against timm (golden file) and PIL."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageOps

from jaxmix._src import auto_augment as aa

GOLDEN = os.path.join(
  os.path.dirname(__file__), 'golden', 'auto_augment_timm.npz'
)
WARPS = {'Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'}


@pytest.fixture(scope='module')
def golden():
  data = np.load(GOLDEN)
  return data, json.loads(str(data['meta']))


@functools.cache
def _apply():
  return jax.jit(functools.partial(aa.apply_op, ops=aa.ALL_OPS))


def apply(image, name, level, sign=1.0):
  return np.asarray(
    _apply()(
      jnp.asarray(image),
      jnp.int32(aa.ALL_OPS.index(name)),
      jnp.float32(level),
      jnp.float32(sign),
    )
  )


def test_tables_equal_timms(golden):
  _, meta = golden
  assert list(aa.RAND_INCREASING_OPS) == meta['rand_increasing_ops']
  assert list(aa.RAND_OPS) == meta['rand_ops']
  policy = [[list(op) for op in sub] for sub in aa.IMAGENET_POLICY]
  assert policy == meta['imagenet_policy']
  ra = meta['rand_m9_mstd05_inc1']
  config = aa.parse_rand_augment('rand-m9-mstd0.5-inc1')
  assert list(config.ops) == ra['ops'] and ra['choice_weights'] is None
  assert config.num_layers == ra['num_layers']
  assert {config.prob} == set(ra['prob'])
  assert {config.magnitude} == set(ra['magnitude'])
  assert {config.magnitude_std} == set(ra['magnitude_std'])
  assert config == aa.RandAugmentConfig()  # the default is DeiT's


def test_every_op_matches_timm(golden):
  data, meta = golden
  image = data['image']
  for i, (name, magnitude, sign, _) in enumerate(meta['cases']):
    want = data[f'case/{i}'].astype(int)
    got = apply(image, name, magnitude, sign).astype(int)
    diff = np.abs(got - want)
    if name in WARPS:
      # float32 here, float64 in PIL: a sample may land one level lower.
      assert diff.max() <= 1 and np.mean(diff > 0) < 0.01, (name, magnitude)
    else:
      np.testing.assert_array_equal(got, want, err_msg=f'{name} {magnitude}')


def test_posterize_to_zero_bits_is_black(golden):
  # timm asks for 0 bits at the ends of the range; Pillow >= 10 raises
  # there (the golden file records it), older Pillow and TensorFlow's
  # AutoAugment give black.
  _, meta = golden
  failed = {(n, m) for n, m, _, _ in meta['failures']}
  assert failed == {('Posterize', 0.0), ('PosterizeIncreasing', 10.0)}
  image = np.full((4, 4, 3), 200, np.uint8)
  assert not apply(image, 'PosterizeIncreasing', 10.0).any()


@pytest.mark.parametrize('seed', range(4))
def test_histogram_ops_match_pil_on_narrow_and_flat_images(seed):
  rng = np.random.default_rng(seed)
  lo = rng.integers(0, 200)
  hi = lo + rng.integers(0, 56)
  image = rng.integers(lo, hi + 1, (16, 20, 3)).astype(np.uint8)
  image[..., 2] = lo  # a flat channel: the identity table
  pil = Image.fromarray(image)
  np.testing.assert_array_equal(
    apply(image, 'AutoContrast', 0), ImageOps.autocontrast(pil)
  )
  np.testing.assert_array_equal(
    apply(image, 'Equalize', 0), ImageOps.equalize(pil)
  )


def test_autocontrast_equals_pil_for_every_range():
  # PIL computes int(i * scale + offset) in float64, jaxmix the exact
  # integer floor: every (lo, hi) pair agrees on every level present.
  levels = np.arange(256)
  fn = jax.jit(
    jax.vmap(lambda x: aa.apply_lut(x, aa.autocontrast_lut(aa.histogram(x))))
  )
  for lo in range(256):
    his = np.minimum(np.arange(lo, lo + 256), 255)  # one shape: one compile
    images = np.clip(levels[None, :], lo, his[:, None]).astype(np.uint8)
    images = np.repeat(images[:, None, :, None], 3, -1)  # [256, 1, 256, 3]
    got = np.asarray(fn(jnp.asarray(images)))
    for image, out in zip(images[: 256 - lo], got):
      want = np.asarray(ImageOps.autocontrast(Image.fromarray(image)))
      np.testing.assert_array_equal(out, want, err_msg=f'lo {lo}')


def test_rand_augment_draws_ops_uniformly():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
  config = aa.RandAugmentConfig(
    magnitude=9.0, magnitude_std=0.0, num_layers=1, prob=1.0
  )
  candidates = {
    (name, sign): apply(image, name, 9.0, sign)
    for name in config.ops
    for sign in (1.0, -1.0)
  }
  fn = jax.jit(
    jax.vmap(lambda k: aa.rand_augment(k, jnp.asarray(image), config))
  )
  outs = np.asarray(fn(jax.random.split(jax.random.key(0), 1500)))
  counts = dict.fromkeys(config.ops, 0)
  for out in outs:
    # vmap may fuse a warp's float32 arithmetic differently: one level.
    names = {
      n
      for (n, _), c in candidates.items()
      if np.abs(c.astype(int) - out).max() <= 1 and np.mean(c != out) < 0.01
    }
    assert names, 'an output that no op of the set makes'
    if len(names) == 1:
      counts[names.pop()] += 1
  seen = np.array(list(counts.values()))
  assert seen.sum() > 1400
  expected = seen.sum() / len(seen)
  assert np.all(np.abs(seen - expected) < 5 * np.sqrt(expected)), counts


def test_rand_augment_magnitude_law():
  keys = jax.random.split(jax.random.key(1), 20000)
  m = jax.vmap(lambda k: aa._noisy_magnitude(k, 9.0, 0.5, 10.0))(keys)
  m = np.asarray(m)
  assert m.max() == 10.0 and m.min() >= 0
  # N(9, 0.5) clipped at 10 (2.3 % mass above): mean and spread below 10.
  assert abs(np.mean(m) - 8.998) < 0.01
  assert abs(np.mean(m == 10.0) - 0.0228) < 0.004


def test_rand_augment_probability_and_per_example_draws():
  image = np.random.default_rng(1).integers(0, 256, (12, 16, 3), np.uint8)
  config = aa.RandAugmentConfig(num_layers=1, prob=0.5)
  fn = jax.jit(
    jax.vmap(lambda k: aa.rand_augment(k, jnp.asarray(image), config))
  )
  outs = np.asarray(fn(jax.random.split(jax.random.key(2), 800)))
  unchanged = np.mean([np.array_equal(o, image) for o in outs])
  # Skipped with probability 0.5; few applied ops give the input back.
  assert 0.43 < unchanged < 0.59  # 4 sigma at n = 800
  eager = aa.rand_augment(jax.random.key(3), jnp.asarray(image), config)
  jitted = jax.jit(lambda k, x: aa.rand_augment(k, x, config))(
    jax.random.key(3), jnp.asarray(image)
  )
  np.testing.assert_array_equal(eager, jitted)


def test_auto_augment_applies_a_sub_policy_in_order():
  rng = np.random.default_rng(2)
  image = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
  policy = ((('Equalize', 1.0, 0), ('Solarize', 1.0, 5)),)
  out = aa.auto_augment(jax.random.key(0), jnp.asarray(image), policy)
  pil = ImageOps.solarize(ImageOps.equalize(Image.fromarray(image)), 128)
  np.testing.assert_array_equal(out, pil)
  never = ((('Invert', 0.0, 0), ('Invert', 0.0, 0)),)
  out = aa.auto_augment(jax.random.key(0), jnp.asarray(image), never)
  np.testing.assert_array_equal(out, image)
  # The ImageNet policy: one of its 25 sub-policies, per example.
  fn = jax.jit(jax.vmap(lambda k: aa.auto_augment(k, jnp.asarray(image))))
  outs = np.asarray(fn(jax.random.split(jax.random.key(4), 64)))
  assert len({o.tobytes() for o in outs}) > 10


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match='uint8 RGB image'):
    aa.rand_augment(jax.random.key(0), jnp.zeros((4, 4, 3), jnp.float32))
  with pytest.raises(ValueError, match='Unknown ops'):
    aa.apply_op(jnp.zeros((4, 4, 3), jnp.uint8), 0, 1.0, 1.0, ops=('Blur',))
  with pytest.raises(ValueError, match="section 'x9'"):
    aa.parse_rand_augment('rand-m9-x9')
  with pytest.raises(ValueError, match="start with 'rand'"):
    aa.parse_rand_augment('aa-m9')
  assert aa.parse_rand_augment('rand-m7-n3-mstd0-inc0').ops == aa.RAND_OPS
