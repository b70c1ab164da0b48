"""Tests of the device photometric augmentation (`jaxmix.photometric`).

The laws (jitter factors, the six orders, lighting's alpha) are tested on
many draws with Kolmogorov-Smirnov and chi-square statistics at level
`KS_ALPHA`, as the host ops' laws are in data_crops_test.py; the applier is
compared with the host ops given the same factors, order and alpha, and the
two placements are compared in distribution through their outputs.
"""

import doctest
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from jax.sharding import NamedSharding, PartitionSpec

import jaxmix
from jaxmix._src import photometric as device_ops
from jaxmix.configs import default
from jaxmix.data import photometric as host_ops
from jaxmix.data import preprocess
from jaxmix.train import setup, steps, validation

KS_ALPHA = 1e-4
DRAWS = 4000
MEAN = default.IMAGENET_MEAN
STD = default.IMAGENET_STD


def _ks_bound(n, m=None):
  c = math.sqrt(-math.log(KS_ALPHA / 2) / 2)
  return c * math.sqrt(1 / n + (1 / m if m else 0.0))


def _ks_cdf(sample, cdf):
  x = np.sort(np.asarray(sample, np.float64))
  f = cdf(x)
  n = len(x)
  return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def _ks_two(a, b):
  a, b = np.sort(a), np.sort(b)
  grid = np.concatenate([a, b])
  fa = np.searchsorted(a, grid, side='right') / len(a)
  fb = np.searchsorted(b, grid, side='right') / len(b)
  return np.abs(fa - fb).max()


def _uniform_cdf(lo, hi):
  return lambda x: np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _normal_cdf(std):
  erf = np.vectorize(math.erf)
  return lambda x: 0.5 * (1 + erf(x / (std * math.sqrt(2))))


def _images(b=6, h=5, w=7, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)
  images[:, 0, 0] = [250, 250, 240]  # leaves the range when brightened
  return images


def test_module_docstring_examples_run():
  assert doctest.testmod(device_ops, optionflags=doctest.ELLIPSIS).failed == 0


# --- the applier against the host ops --------------------------------------


@pytest.mark.parametrize('clip', [True, False])
def test_apply_equals_the_host_ops_given_the_same_draw(clip):
  images = _images(b=12)
  draw = jaxmix.sample_photometric(
    jax.random.key(3), 12, color_jitter=0.6, lighting=0.3
  )
  jittered = np.asarray(
    jaxmix.apply_photometric(images, draw, lighting=False, clip=clip)
  )
  both = np.asarray(jaxmix.apply_photometric(images, draw, clip=clip))
  orders = set()
  for i in range(12):
    x = tf.constant(images[i], tf.float32)
    host = host_ops.apply_color_jitter(
      x, tf.constant(draw.factors[i]), tf.constant(draw.order[i]), clip=clip
    )
    np.testing.assert_allclose(jittered[i], host.numpy(), atol=1e-3, rtol=0)
    # The host rounds to uint8 next, so it clips after lighting.
    lit = host_ops.apply_pca_lighting(host, tf.constant(draw.alpha[i]))
    np.testing.assert_allclose(
      np.clip(both[i], 0, 255), lit.numpy(), atol=1e-3, rtol=0
    )
    orders.add(tuple(np.asarray(draw.order[i])))
  assert len(orders) > 1
  # Unclipped blends leave [0, 255] on the bright pixel; clipped never do.
  assert (jittered.max() > 255) == (not clip)


def test_each_example_takes_its_own_order():
  # The blends commute but for clipping: brightness 1.8 then contrast 0.5
  # differs from the reverse where the bright pixel clips. Each row must
  # follow its own order.
  images = _images(b=2)
  factors = jnp.array([[1.8, 0.5, 1.0]] * 2)
  order = jnp.array([[0, 1, 2], [1, 0, 2]])
  draw = jaxmix.PhotometricDraw(factors, order, jnp.zeros((2, 3)))
  out = np.asarray(jaxmix.apply_photometric(images, draw))
  for i in range(2):
    x = tf.constant(images[i], tf.float32)
    host = host_ops.apply_color_jitter(
      x, tf.constant(factors[i]), tf.constant(order[i])
    )
    np.testing.assert_allclose(out[i], host.numpy(), atol=1e-3)
  swapped = jaxmix.PhotometricDraw(factors, order[::-1], jnp.zeros((2, 3)))
  assert not np.allclose(out, jaxmix.apply_photometric(images, swapped))


def test_lighting_adds_the_official_rgb_shift():
  images = np.full((2, 3, 3, 3), 128, np.uint8)
  alpha = np.array([[0.1, -0.2, 0.05], [0.0, 0.0, 0.0]], np.float32)
  draw = jaxmix.PhotometricDraw(
    jnp.ones((2, 3)), jnp.tile(jnp.arange(3), (2, 1)), jnp.asarray(alpha)
  )
  out = np.asarray(jaxmix.apply_photometric(images, draw, jitter=False))
  eigvec = np.array(device_ops.IMAGENET_EIGVEC)
  eigval = np.array(device_ops.IMAGENET_EIGVAL)
  shift = 255 * eigvec @ (alpha[0] * eigval)
  np.testing.assert_allclose(out[0, 1, 2], 128 + shift, atol=1e-4)
  np.testing.assert_array_equal(out[1], 128.0)


def test_normalisation_alone_is_the_steps_normalize_bit_for_bit():
  images = _images(b=4, h=8, w=8)
  for dtype in (jnp.float32, jnp.bfloat16):
    got = jaxmix.photometric(
      jax.random.key(0),
      images,
      color_jitter=0.0,
      lighting=0.0,
      mean=MEAN,
      std=STD,
      dtype=dtype,
    )
    want = steps.normalize(images, MEAN, STD, dtype)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(
      np.asarray(got, np.float32), np.asarray(want, np.float32)
    )


def test_bfloat16_is_the_float32_result_rounded_once():
  images = _images(b=4, h=8, w=8)
  key = jax.random.key(1)
  full = jaxmix.photometric(key, images, mean=MEAN, std=STD)
  half = jaxmix.photometric(key, images, mean=MEAN, std=STD, dtype=jnp.bfloat16)
  assert half.dtype == jnp.bfloat16
  np.testing.assert_array_equal(
    np.asarray(half, np.float32),
    np.asarray(full.astype(jnp.bfloat16), np.float32),
  )


def test_jit_equals_eager_and_the_key_decides():
  images = _images(b=8, h=6, w=6)
  key = jax.random.key(7)
  fn = jax.jit(
    lambda k, x: jaxmix.photometric(k, x, mean=MEAN, std=STD, clip=False)
  )
  eager = jaxmix.photometric(key, images, mean=MEAN, std=STD, clip=False)
  np.testing.assert_allclose(fn(key, images), eager, atol=1e-5)
  other = fn(jax.random.key(8), images)
  assert not np.allclose(other, eager)


def test_sharded_batch_has_no_cross_device_traffic_and_same_values():
  # Per-example keys: the sharded result is the unsharded one, whatever the
  # number of devices, and XLA moves no image between devices.
  mesh = jax.make_mesh((jax.device_count(),), ('data',))
  images = _images(b=2 * jax.device_count(), h=8, w=8)
  key = jax.random.key(5)

  def fn(k, x):
    return jaxmix.photometric(k, x, mean=MEAN, std=STD, dtype=jnp.bfloat16)

  sharded = jax.device_put(images, NamedSharding(mesh, PartitionSpec('data')))
  compiled = jax.jit(fn).lower(key, sharded).compile()
  hlo = compiled.as_text()
  for collective in ('collective-permute', 'all-gather', 'all-to-all'):
    assert collective not in hlo
  np.testing.assert_array_equal(
    np.asarray(compiled(key, sharded), np.float32),
    np.asarray(jax.jit(fn)(key, images), np.float32),
  )


# --- the laws ---------------------------------------------------------------


def test_jitter_factors_are_torchvision_uniforms():
  for s in (0.4, 1.5):  # 1.5 clamps at 0: U(0, 2.5)
    draw = jaxmix.sample_photometric(jax.random.key(0), DRAWS, color_jitter=s)
    got = np.asarray(draw.factors, np.float64)
    low, high = max(0.0, 1 - s), 1 + s
    for k in range(3):
      x = got[:, k]
      assert low <= x.min() and x.max() <= high
      assert _ks_cdf(x, _uniform_cdf(low, high)) < _ks_bound(DRAWS)
    corr = np.corrcoef(got.T)
    assert np.abs(corr - np.eye(3)).max() < 4 / math.sqrt(DRAWS)
  # A wrong law (triangular on the same range) fails the same test.
  rng = np.random.default_rng(0)
  old = rng.uniform(0.6, 1.0, DRAWS) + 0.4 * rng.uniform(0, 1, DRAWS)
  assert _ks_cdf(old, _uniform_cdf(0.6, 1.4)) > _ks_bound(DRAWS)


def test_jitter_brightness_factor_from_pixels():
  images = np.full((DRAWS, 1, 1, 3), 100, np.uint8)
  draw = jaxmix.sample_photometric(jax.random.key(1), DRAWS, color_jitter=0.4)
  # Contrast and saturation are the identity on a grey image.
  out = jaxmix.apply_photometric(images, draw, lighting=False)
  got = np.asarray(out)[:, 0, 0, 0] / 100.0
  assert _ks_cdf(got, _uniform_cdf(0.6, 1.4)) < _ks_bound(DRAWS)


def test_the_six_orders_are_uniform():
  draw = jaxmix.sample_photometric(jax.random.key(2), DRAWS)
  orders = [tuple(int(k) for k in o) for o in np.asarray(draw.order)]
  perms = list(itertools.permutations(range(3)))
  assert set(orders) == set(perms)
  counts = np.array([orders.count(p) for p in perms])
  expected = DRAWS / 6
  # Pearson's chi-square, 5 degrees of freedom: 25.7 is its 1e-4 quantile.
  assert ((counts - expected) ** 2 / expected).sum() < 25.7, counts
  # A biased sampler (the identity order twice as likely) fails it.
  biased = counts.astype(float)
  biased[0] *= 2
  biased *= DRAWS / biased.sum()
  assert ((biased - expected) ** 2 / expected).sum() > 25.7


def test_lighting_alpha_is_normal_per_component():
  alphastd = 0.1
  draw = jaxmix.sample_photometric(jax.random.key(4), DRAWS, lighting=alphastd)
  alpha = np.asarray(draw.alpha, np.float64)
  for k in range(3):
    assert _ks_cdf(alpha[:, k], _normal_cdf(alphastd)) < _ks_bound(DRAWS)
    assert abs(alpha[:, k].std() - alphastd) < 4 * alphastd / math.sqrt(
      2 * DRAWS
    )
  assert np.abs(np.corrcoef(alpha.T) - np.eye(3)).max() < 4 / math.sqrt(DRAWS)
  # Through the images: the shift's covariance is
  # 255^2 E diag(alphastd^2 eigval^2) E^T, the official Lighting's.
  images = np.full((DRAWS, 1, 1, 3), 128, np.uint8)
  shifts = np.asarray(jaxmix.apply_photometric(images, draw, jitter=False))
  shifts = shifts[:, 0, 0].astype(np.float64) - 128
  eigvec = np.array(device_ops.IMAGENET_EIGVEC)
  eigval = np.array(device_ops.IMAGENET_EIGVAL)
  cov = 255**2 * eigvec @ np.diag((alphastd * eigval) ** 2) @ eigvec.T
  np.testing.assert_allclose(np.cov(shifts.T), cov, rtol=0.1, atol=0.05)


def test_host_and_device_agree_in_distribution():
  # The same 2x2 image through each placement's full chain (jitter 0.4 with
  # clipping, lighting 0.1), many draws: the two-sample KS statistic of
  # every output value stays under the bound.
  n = 2000
  image = np.array(
    [[[200, 60, 30], [40, 180, 90]], [[90, 90, 200], [150, 140, 130]]],
    np.uint8,
  )

  def host(seed):
    seeds = tf.random.experimental.stateless_split(seed, 2)
    x = host_ops.color_jitter(tf.constant(image, tf.float32), seeds[0])
    return tf.reshape(host_ops.pca_lighting(x, seeds[1], 0.1), [-1])

  seeds = tf.stack(
    [tf.range(n, dtype=tf.int64), tf.fill([n], tf.constant(11, tf.int64))],
    axis=1,
  )
  run = tf.function(
    lambda s: tf.map_fn(host, s, fn_output_signature=tf.float32)
  )
  on_host = run(seeds).numpy()
  images = np.broadcast_to(image, (n, 2, 2, 3))
  on_device = np.clip(jaxmix.photometric(jax.random.key(9), images), 0, 255)
  on_device = np.asarray(on_device).reshape(n, -1)
  for k in range(on_host.shape[1]):
    assert _ks_two(on_host[:, k], on_device[:, k]) < _ks_bound(n, n), k
  # A wrong device law (no jitter) is told apart by the same statistic.
  unjittered = np.asarray(
    jaxmix.photometric(jax.random.key(9), images, color_jitter=0.0)
  ).reshape(n, -1)
  assert _ks_two(on_host[:, 0], unjittered[:, 0]) > _ks_bound(n, n)


# --- errors -----------------------------------------------------------------


def test_errors_name_the_argument():
  images = _images(b=2)
  draw = jaxmix.sample_photometric(jax.random.key(0), 3)
  with pytest.raises(ValueError, match=r'`images` must be \[B, H, W, 3\]'):
    jaxmix.apply_photometric(images[..., :1], draw)
  with pytest.raises(ValueError, match='`draw` is None'):
    jaxmix.apply_photometric(images, None)
  with pytest.raises(ValueError, match=r'`draw.factors` must have shape'):
    jaxmix.apply_photometric(images, draw)
  with pytest.raises(ValueError, match='`color_jitter` must be >= 0'):
    jaxmix.photometric(jax.random.key(0), images, color_jitter=-0.1)
  with pytest.raises(ValueError, match='`lighting` must be >= 0'):
    jaxmix.photometric(jax.random.key(0), images, lighting=-1.0)


# --- configuration and the train step ---------------------------------------


def test_every_imagenet_recipe_runs_photometric_on_the_device():
  assert default.get_config().data.photometric == 'device'
  import importlib
  import pkgutil

  import jaxmix.configs.imagenet as package

  names = [m.name for m in pkgutil.iter_modules(package.__path__)]
  assert names
  for name in names:
    config = importlib.import_module(f'{package.__name__}.{name}').get_config()
    assert config.data.photometric == 'device', name


def test_the_choices_agree_and_a_bad_placement_is_named():
  assert validation._CHOICES['data.photometric'] == preprocess.PHOTOMETRIC
  config = default.get_config()
  config.data.photometric = 'gpu'
  with pytest.raises(
    ValueError, match=r'config\.data\.photometric must be one'
  ):
    validation.check_config(config)
  with pytest.raises(ValueError, match=r'data\.photometric must be one of'):
    preprocess.check_config(config.data)


def test_the_step_config_carries_the_device_placement_only():
  config = default.get_config()
  config.data.color_jitter = 0.4
  config.data.pca_lighting = 0.1
  config.data.color_jitter_clip = False
  on_device = setup.step_config(config)
  assert (on_device.color_jitter, on_device.pca_lighting) == (0.4, 0.1)
  assert on_device.jitter_clip is False
  config.data.photometric = 'host'
  on_host = setup.step_config(config)
  assert (on_host.color_jitter, on_host.pca_lighting) == (0.0, 0.0)


def test_the_train_step_inputs_are_jittered_from_the_step_key():
  images = _images(b=4, h=8, w=8)
  plain = steps.StepConfig(num_classes=10, mean=MEAN, std=STD)
  jitter = steps.StepConfig(
    num_classes=10, mean=MEAN, std=STD, color_jitter=0.4, pca_lighting=0.1
  )

  def inputs(config, key):
    # The step's one image preparation, before any batch augmentation.
    return steps.prepare_images(key, jnp.asarray(images), config)

  key = jax.random.key(0)
  np.testing.assert_array_equal(
    inputs(plain, key), steps.normalize(images, MEAN, STD)
  )
  got = inputs(jitter, key)
  want = jaxmix.photometric(
    jax.random.fold_in(key, 3),
    images,
    color_jitter=0.4,
    lighting=0.1,
    mean=MEAN,
    std=STD,
  )
  np.testing.assert_array_equal(got, want)
  assert not np.allclose(got, inputs(jitter, jax.random.key(1)))
