"""Tests of jaxmix.data.crops and jaxmix.data.photometric (TF ops).

The samplers' laws are tested on many draws with Kolmogorov-Smirnov
statistics against the formula (analytic CDF, or a large NumPy Monte-Carlo
of the same rule), with the bound of the KS test at level `KS_ALPHA`; each
such test also shows that a plausible wrong law (linear instead of
log-uniform aspect, the old triangular jitter) exceeds the same bound.
"""

import colorsys
import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from jaxmix.data import crops, photometric

KS_ALPHA = 1e-4
DRAWS = 4000


def _asymmetric_image(h=40, w=60):
  """Left half dark, right half bright, a red top row: no symmetry."""
  image = np.zeros((h, w, 3), np.uint8)
  image[:, w // 2 :] = 200
  image[0, :, 0] = 255
  image += (np.arange(w)[None, :, None] % 7).astype(np.uint8)
  return image


def _seed(i):
  return tf.constant([i, 7], tf.int64)


def _seeds(n, salt=7):
  """int64 `[n, 2]` stateless seeds."""
  return tf.stack(
    [tf.range(n, dtype=tf.int64), tf.fill([n], tf.constant(salt, tf.int64))],
    axis=1,
  )


def _ks_bound(n, m=None):
  """KS statistic that a sample of n (vs m, or vs a CDF) exceeds w.p. alpha."""
  c = math.sqrt(-math.log(KS_ALPHA / 2) / 2)
  return c * math.sqrt(1 / n + (1 / m if m else 0.0))


def _ks_cdf(sample, cdf):
  """One-sample KS statistic of `sample` against the CDF `cdf`."""
  x = np.sort(np.asarray(sample, np.float64))
  f = cdf(x)
  n = len(x)
  return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def _ks_two(a, b):
  """Two-sample KS statistic (sup of the ECDF difference)."""
  a, b = np.sort(a), np.sort(b)
  x = np.concatenate([a, b])
  fa = np.searchsorted(a, x, side='right') / len(a)
  fb = np.searchsorted(b, x, side='right') / len(b)
  return np.max(np.abs(fa - fb))


def _uniform_cdf(lo, hi):
  return lambda x: np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def test_center_window_values():
  window = crops.center_window(tf.constant([100, 200, 3]), 0.875)
  np.testing.assert_array_equal(window.numpy(), [6, 56, 88, 88])
  box = crops.window_to_box(window, tf.constant([100, 200, 3]))
  np.testing.assert_allclose(box.numpy(), [0.06, 0.28, 0.94, 0.72], atol=1e-6)


def test_inception_window_respects_scale_and_ratio():
  shape = tf.constant([300, 400, 3])
  for i in range(30):
    window, fell_back = crops.inception_window(
      shape, _seed(i), scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)
    )
    y, x, h, w = window.numpy()
    assert y >= 0 and y + h <= 300 and x >= 0 and x + w <= 400
    if not fell_back:
      assert 0.08 * 0.9 <= h * w / (300 * 400) <= 1.0
      assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
  first = crops.inception_window(shape, _seed(3))[0].numpy()
  again = crops.inception_window(shape, _seed(3))[0].numpy()
  other = crops.inception_window(shape, _seed(4))[0].numpy()
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_inception_window_falls_back_to_center_crop():
  # No crop of area >= 90 % with ratio in [3/4, 4/3] fits a 20x200 image.
  shape = tf.constant([20, 200, 3])
  window, fell_back = crops.inception_window(
    shape, _seed(0), scale=(0.9, 1.0), crop_pct=0.5
  )
  assert bool(fell_back)
  np.testing.assert_array_equal(window.numpy(), [5, 95, 10, 10])


# --- torchvision's RandomResizedCrop law ------------------------------------


def _np_torchvision_window(height, width, uniforms, scale, ratio):
  """torchvision's RandomResizedCrop.get_params, one attempt at a time.

  Attempt a draws its area, aspect and offsets from `uniforms[a]`.
  Returns ((top, left, h, w), fell_back).
  """
  area = height * width
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  for u_area, u_aspect, u_top, u_left in uniforms:
    target_area = area * (scale[0] + (scale[1] - scale[0]) * u_area)
    aspect = math.exp(log_lo + (log_hi - log_lo) * u_aspect)
    w = round(math.sqrt(target_area * aspect))
    h = round(math.sqrt(target_area / aspect))
    if 0 < w <= width and 0 < h <= height:
      top = min(int(u_top * (height - h + 1)), height - h)
      left = min(int(u_left * (width - w + 1)), width - w)
      return (top, left, h, w), False
  in_ratio = width / height
  if in_ratio < min(ratio):
    w, h = width, round(width / min(ratio))
  elif in_ratio > max(ratio):
    h, w = height, round(height * max(ratio))
  else:
    h, w = height, width
  return ((height - h) // 2, (width - w) // 2, h, w), True


def _np_torchvision_sample(height, width, n, rng, scale, ratio, aspect='log'):
  """n accepted-or-fallback windows `[n, 4]` of the rule, vectorised.

  aspect='linear' draws the aspect ratio uniformly instead: a wrong law, to
  show that the distribution tests notice it.
  """
  u = rng.random((n, crops.MAX_ATTEMPTS, 4))
  area = height * width * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
  if aspect == 'log':
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    ar = np.exp(lo + (hi - lo) * u[..., 1])
  else:
    ar = ratio[0] + (ratio[1] - ratio[0]) * u[..., 1]
  w = np.round(np.sqrt(area * ar)).astype(int)
  h = np.round(np.sqrt(area / ar)).astype(int)
  ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
  first = np.argmax(ok, axis=1)
  rows = np.arange(n)
  h, w, u = h[rows, first], w[rows, first], u[rows, first]
  top = np.minimum((u[:, 2] * (height - h + 1)).astype(int), height - h)
  left = np.minimum((u[:, 3] * (width - w + 1)).astype(int), width - w)
  out = np.stack([top, left, h, w], axis=1)
  fallback, _ = _np_torchvision_window(height, width, [], scale, ratio)
  out[~ok.any(axis=1)] = fallback
  return out


@tf.function
def _tf_windows_from_uniforms(height, width, uniforms, scale, ratio):
  def one(u):
    window, fell_back = crops.torchvision_crop_window(
      height, width, u, scale=scale, ratio=ratio
    )
    return tf.concat([window, tf.cast(fell_back, tf.int32)[None]], axis=0)

  return tf.map_fn(one, uniforms, fn_output_signature=tf.int32)


def _sampled_windows(window_fn, shape, n, salt=7):
  """int32 `[n, 5]`: window and fell_back of `window_fn(shape, seed)`."""

  @tf.function
  def run(seeds):
    def one(seed):
      window, fell_back = window_fn(tf.constant(shape), seed)
      return tf.concat([window, tf.cast(fell_back, tf.int32)[None]], axis=0)

    return tf.map_fn(one, seeds, fn_output_signature=tf.int32)

  return run(_seeds(n, salt)).numpy()


@pytest.mark.parametrize(
  'height,width,scale,ratio',
  [
    (300, 400, (0.08, 1.0), (3 / 4, 4 / 3)),
    (400, 300, (0.08, 1.0), (3 / 4, 4 / 3)),
    (224, 224, (0.35, 1.0), (3 / 4, 4 / 3)),
    (30, 100, (0.08, 1.0), (3 / 4, 4 / 3)),
    (10, 1000, (0.08, 1.0), (3 / 4, 4 / 3)),
    (1000, 10, (0.08, 1.0), (3 / 4, 4 / 3)),
    (37, 53, (0.9, 1.0), (1.0, 1.0)),
    (1, 1, (0.08, 1.0), (3 / 4, 4 / 3)),
  ],
)
def test_torchvision_window_matches_the_rule_exactly(
  height, width, scale, ratio
):
  rng = np.random.default_rng(height * 7919 + width)
  uniforms = rng.random((300, crops.MAX_ATTEMPTS, 4))
  # The ends of [0, 1): offsets 0 and the largest, first attempts accepted.
  uniforms[:3] = 0.0
  uniforms[3:6] = np.nextafter(1.0, 0.0)
  got = _tf_windows_from_uniforms(
    height, width, tf.constant(uniforms), tuple(scale), tuple(ratio)
  ).numpy()
  fell_back = []
  for u, row in zip(uniforms, got):
    window, fb = _np_torchvision_window(height, width, u, scale, ratio)
    np.testing.assert_array_equal(row[:4], window, err_msg=str(u))
    assert bool(row[4]) == fb
    top, left, h, w = window
    assert 0 <= top and top + h <= height and 0 <= left and left + w <= width
    fell_back.append(fb)
  if width / height > 50 or height / width > 50:
    # No crop of the ratio range fits: always the clamped whole image.
    assert all(fell_back)
    side = round(min(height, width) * 4 / 3)
    expected = (
      [0, (width - side) // 2, height, side]
      if width > height
      else [(height - side) // 2, 0, side, width]
    )
    np.testing.assert_array_equal(got[0, :4], expected)
  if (height, width) == (30, 100):
    assert 0 < sum(fell_back) < len(fell_back)  # both branches exercised


def test_torchvision_fallback_cases():
  ratio = (3 / 4, 4 / 3)
  cases = {
    (10, 1000): [0, 493, 10, 13],  # wide: full height, w = round(10 * 4/3)
    (1000, 10): [493, 0, 13, 10],  # tall: full width, h = round(10 / 0.75)
    (100, 120): [0, 0, 100, 120],  # inside the range: the whole image
  }
  for (h, w), expected in cases.items():
    window = crops.torchvision_fallback_window(
      tf.constant(h), tf.constant(w), ratio
    )
    np.testing.assert_array_equal(window.numpy(), expected)


def test_torchvision_window_is_seeded():
  shape = tf.constant([300, 400, 3])
  first = crops.torchvision_window(shape, _seed(3))[0].numpy()
  again = crops.torchvision_window(shape, _seed(3))[0].numpy()
  other = crops.torchvision_window(shape, _seed(4))[0].numpy()
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_torchvision_area_and_aspect_follow_the_formula():
  # On a large square image with scale <= 0.5 every attempt is accepted, so
  # the area fraction is U(scale) and the log-aspect U(log r0, log r1), up to
  # the rounding of the sides (< 0.4 % here, allowed as slack).
  side, scale, ratio = 1000, (0.08, 0.5), (3 / 4, 4 / 3)

  def window_fn(shape, seed):
    return crops.torchvision_window(shape, seed, scale=scale, ratio=ratio)

  got = _sampled_windows(window_fn, [side, side, 3], DRAWS)
  assert not got[:, 4].any()
  frac = got[:, 2] * got[:, 3] / side**2
  log_aspect = np.log(got[:, 3] / got[:, 2])
  bound = _ks_bound(DRAWS) + 0.01
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  assert _ks_cdf(frac, _uniform_cdf(*scale)) < bound
  assert _ks_cdf(log_aspect, _uniform_cdf(log_lo, log_hi)) < bound
  # A linear aspect law (TensorFlow's) is visibly different.
  linear = np.random.default_rng(0).uniform(*ratio, DRAWS)
  assert _ks_cdf(np.log(linear), _uniform_cdf(log_lo, log_hi)) > bound
  # Offsets are uniform over the free range: mean ~ (side - size) / 2.
  rel_top = got[:, 0] / np.maximum(side - got[:, 2], 1)
  assert _ks_cdf(rel_top, _uniform_cdf(0.0, 1.0)) < bound


@pytest.mark.parametrize(
  'height,width,scale',
  [(300, 400, (0.08, 1.0)), (40, 60, (0.08, 1.0)), (100, 300, (0.4, 1.0))],
)
def test_torchvision_law_with_rejections_matches_monte_carlo(
  height, width, scale
):
  # Here large crops are often rejected (and on 100x300 some images fall
  # back), so the accepted law is compared with a large NumPy Monte-Carlo
  # of the same rule.
  ratio = (3 / 4, 4 / 3)

  def window_fn(shape, seed):
    return crops.torchvision_window(shape, seed, scale=scale, ratio=ratio)

  got = _sampled_windows(window_fn, [height, width, 3], DRAWS)
  rng = np.random.default_rng(1)
  big = 100 * DRAWS
  ref = _np_torchvision_sample(height, width, big, rng, scale, ratio)
  wrong = _np_torchvision_sample(
    height, width, DRAWS, rng, scale, ratio, aspect='linear'
  )

  def laws(w):
    return {
      'area': w[:, 2] * w[:, 3] / (height * width),
      'log_aspect': np.log(w[:, 3] / w[:, 2]),
      'top': (w[:, 0] + 0.5) / (height - w[:, 2] + 1),
    }

  bound = _ks_bound(DRAWS, big)
  got_laws, ref_laws, wrong_laws = laws(got), laws(ref), laws(wrong)
  for name in got_laws:
    d = _ks_two(got_laws[name], ref_laws[name])
    assert d < bound, (name, d, bound)
    print(f'{height}x{width} {name}: KS {d:.4f} < {bound:.4f}')
  if (height, width) == (300, 400):
    # (On the small or elongated images, rounding and rejection blur the
    # difference between the two aspect laws.)
    d = _ks_two(wrong_laws['log_aspect'], ref_laws['log_aspect'])
    assert d > bound, ('a linear aspect law went unnoticed', d, bound)
    print(f'linear aspect law: KS {d:.4f} > {bound:.4f}')
  fallback_rate = np.mean(got[:, 4])
  ref_rate = np.mean(np.all(ref == ref[np.argmax(ref[:, 2])], axis=1))
  if scale[0] < 0.2:
    assert fallback_rate < 0.01
  else:
    sigma = math.sqrt(max(ref_rate * (1 - ref_rate), 1e-4) / DRAWS)
    assert abs(fallback_rate - ref_rate) < 5 * sigma + 1e-3


def test_tensorflow_sampler_has_another_law():
  # The flax example's Inception crop: same range, smaller crops.
  shape, ratio, scale = [300, 400, 3], (3 / 4, 4 / 3), (0.08, 1.0)

  def tv(s, seed):
    return crops.torchvision_window(s, seed, scale=scale, ratio=ratio)

  def tfs(s, seed):
    return crops.inception_window(s, seed, scale=scale, ratio=ratio)

  got_tv = _sampled_windows(tv, shape, DRAWS)
  got_tf = _sampled_windows(tfs, shape, DRAWS)
  area_tv = got_tv[:, 2] * got_tv[:, 3] / (300 * 400)
  area_tf = got_tf[:, 2] * got_tf[:, 3] / (300 * 400)
  assert area_tf.mean() < area_tv.mean() - 0.03
  assert _ks_two(area_tv, area_tf) > _ks_bound(DRAWS, DRAWS)


@pytest.mark.parametrize('inside', [False, True])
@pytest.mark.parametrize('encode', [tf.io.encode_jpeg, tf.io.encode_png])
def test_decode_and_crop_matches_full_decode(encode, inside):
  # inside=True (the window is known to lie inside) skips only the check.
  image = _asymmetric_image()
  data = encode(image)
  full = tf.io.decode_image(data, channels=3).numpy()
  window = tf.constant([3, 11, 20, 30])
  crop, got_window, shape = tf.function(
    lambda data: crops.decode_and_crop(data, lambda s: window, inside=inside)
  )(data)
  np.testing.assert_array_equal(shape.numpy(), [40, 60, 3])
  np.testing.assert_array_equal(got_window.numpy(), window.numpy())
  np.testing.assert_array_equal(crop.numpy(), full[3:23, 11:41])


def test_cifar_window_and_clipped_box():
  shape = tf.constant([32, 32, 3])
  offsets = set()
  for i in range(60):
    y, x, h, w = crops.cifar_window(shape, _seed(i)).numpy()
    assert -4 <= y <= 4 and -4 <= x <= 4 and (h, w) == (32, 32)
    offsets.add((y, x))
  assert len(offsets) > 20
  box = crops.window_to_box(tf.constant([-3, 2, 32, 32]), shape).numpy()
  np.testing.assert_allclose(box, [0, 2 / 32, 29 / 32, 1], atol=1e-6)


def test_crop_decoded_pads_outside_with_zeros():
  image = _asymmetric_image(32, 32)
  crop = crops.crop_decoded(tf.constant(image), tf.constant([-3, 2, 32, 32]))
  expected = np.zeros_like(image)
  expected[3:, :30] = image[:29, 2:]
  np.testing.assert_array_equal(crop.numpy(), expected)
  # Through the encoded path too (PNG and JPEG both take the padded path).
  png = tf.io.encode_png(image)
  crop, _, _ = crops.decode_and_crop(
    png, lambda s: tf.constant([-3, 2, 32, 32])
  )
  np.testing.assert_array_equal(crop.numpy(), expected)


def test_random_flip_bit_matches_pixels():
  image = tf.constant(_asymmetric_image(), tf.float32)
  bits = []
  for i in range(20):
    out, flip = crops.random_flip(image, _seed(i))
    expected = image[:, ::-1] if flip else image
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    bits.append(bool(flip))
  assert 0 < sum(bits) < 20


def test_color_jitter_identity_and_brightness_factor():
  image = tf.constant(_asymmetric_image(), tf.float32) * 0.5 + 10
  same = photometric.color_jitter(
    image, _seed(0), brightness=0, contrast=0, saturation=0
  )
  np.testing.assert_allclose(same.numpy(), image.numpy(), atol=1e-4)
  for i in range(5):
    out = photometric.color_jitter(
      image, _seed(i), brightness=0.4, contrast=0, saturation=0
    ).numpy()
    factor = out / image.numpy()
    np.testing.assert_allclose(factor, factor.flat[0], rtol=1e-4)
    assert 0.6 <= factor.flat[0] <= 1.4
  out = photometric.color_jitter(image, _seed(1)).numpy()
  again = photometric.color_jitter(image, _seed(1)).numpy()
  np.testing.assert_array_equal(out, again)
  assert out.min() >= 0 and out.max() <= 255


def test_saturation_zero_gives_gray():
  image = tf.constant(_asymmetric_image(), tf.float32)
  gray = photometric._blend(image, photometric._gray(image), 0.0).numpy()
  np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-4)
  px = _asymmetric_image()[0, 0].astype(np.float64)
  np.testing.assert_allclose(gray[0, 0, 0], px @ [0.299, 0.587, 0.114], 1e-4)


def test_pca_lighting_adds_one_rgb_shift():
  image = tf.fill([8, 8, 3], 128.0)
  out = photometric.pca_lighting(image, _seed(2), alphastd=0.1).numpy()
  shift = out - 128.0
  np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape))
  alpha = tf.random.stateless_normal([3], _seed(2), stddev=0.1).numpy()
  expected = np.array(photometric.IMAGENET_EIGVEC) @ (
    alpha * np.array(photometric.IMAGENET_EIGVAL)
  )
  np.testing.assert_allclose(shift[0, 0], 255 * expected, rtol=1e-4)
  off = photometric.pca_lighting(image, _seed(2), alphastd=0.0).numpy()
  np.testing.assert_array_equal(off, image.numpy())


# --- colour jitter and PCA lighting laws ------------------------------------


def _map_seeds(fn, n, salt=7, dtype=tf.float32):
  """Stacks `fn(seed)` over n stateless seeds (one graph, many draws)."""
  run = tf.function(
    lambda seeds: tf.map_fn(fn, seeds, fn_output_signature=dtype)
  )
  return run(_seeds(n, salt)).numpy()


def _np_jitter(image, factors, shift, order, clip):
  """torchvision's ColorJitter adjustments, in NumPy, in `order`."""
  luma = np.array([0.299, 0.587, 0.114])

  def blend(x, other, factor):
    out = other + factor * (x - other)
    return np.clip(out, 0, 255) if clip else out

  def hue(x):
    x = np.clip(x, 0, 255) / 255
    flat = [colorsys.rgb_to_hsv(*px) for px in x.reshape(-1, 3)]
    flat = [colorsys.hsv_to_rgb((h + shift) % 1.0, s, v) for h, s, v in flat]
    return np.array(flat).reshape(x.shape) * 255

  for op in order:
    gray = (image @ luma)[..., None]
    if op == 0:
      image = blend(image, 0.0, factors[0])
    elif op == 1:
      image = blend(image, gray.mean(), factors[1])
    elif op == 2:
      image = blend(image, gray, factors[2])
    elif shift != 0:
      image = hue(image)
  return image


@pytest.mark.parametrize('clip', [True, False])
@pytest.mark.parametrize('hue', [0.0, 0.1])
def test_color_jitter_is_the_adjustments_in_the_drawn_order(clip, hue):
  rng = np.random.default_rng(0)
  image = rng.uniform(0, 255, (6, 5, 3)).astype(np.float32)
  image[0, 0] = [250, 250, 240]  # bright pixels leave the range when scaled
  strengths = dict(brightness=0.4, contrast=0.3, saturation=0.5)
  clipped_somewhere = False
  for i in range(12):
    out = photometric.color_jitter(
      tf.constant(image), _seed(i), hue=hue, clip=clip, **strengths
    ).numpy()
    factors, shift, order = (
      t.numpy()
      for t in photometric.jitter_params(_seed(i), hue=hue, **strengths)
    )
    expected = _np_jitter(image.astype(np.float64), factors, shift, order, clip)
    np.testing.assert_allclose(out, expected, atol=2e-3, rtol=1e-4)
    clipped_somewhere |= expected.max() > 255
  assert clipped_somewhere == (not clip)


def test_jitter_factors_are_torchvision_uniforms():
  s = np.array([0.4, 0.2, 1.5])  # the last clamps at 0: U(0, 2.5)

  def draw(seed):
    factors, shift, _ = photometric.jitter_params(
      seed, brightness=s[0], contrast=s[1], saturation=s[2], hue=0.1
    )
    return tf.concat([factors, shift[None]], axis=0)

  got = _map_seeds(draw, DRAWS)
  low = np.append(np.maximum(1 - s, 0), -0.1)
  high = np.append(1 + s, 0.1)
  bound = _ks_bound(DRAWS)
  for k in range(4):
    x = got[:, k]
    assert low[k] <= x.min() and x.max() <= high[k]
    assert _ks_cdf(x, _uniform_cdf(low[k], high[k])) < bound
    mean, std = (low[k] + high[k]) / 2, (high[k] - low[k]) / math.sqrt(12)
    assert abs(x.mean() - mean) < 4 * std / math.sqrt(DRAWS)
    # The sample std's standard error for a uniform is ~0.45 std / sqrt(n).
    assert abs(x.std() - std) < 4 * 0.45 * std / math.sqrt(DRAWS)
  # Independent: no correlation between the factors.
  corr = np.corrcoef(got.T)
  assert np.abs(corr - np.eye(4)).max() < 4 / math.sqrt(DRAWS)
  # The previous law, U(max(0, 1 - s), 1) + s U(0, 1), is triangular on the
  # same range and fails the same test.
  rng = np.random.default_rng(0)
  old = rng.uniform(0.6, 1.0, DRAWS) + 0.4 * rng.uniform(0, 1, DRAWS)
  assert _ks_cdf(old, _uniform_cdf(0.6, 1.4)) > bound
  assert abs(old.std() - 0.8 / math.sqrt(12)) > 0.05


def test_color_jitter_brightness_factor_from_pixels():
  # Through color_jitter itself: brightness alone scales the pixels by its
  # factor, which must be U(0.6, 1.4).
  image = tf.fill([2, 2, 3], 100.0)

  def draw(seed):
    out = photometric.color_jitter(
      image, seed, brightness=0.4, contrast=0.0, saturation=0.0
    )
    return out[0, 0, 0] / 100.0

  got = _map_seeds(draw, DRAWS)
  assert _ks_cdf(got, _uniform_cdf(0.6, 1.4)) < _ks_bound(DRAWS)
  assert abs(got.std() - 0.8 / math.sqrt(12)) < 0.01


def test_jitter_order_is_uniform_over_permutations():
  def draw(seed):
    return photometric.jitter_params(
      seed, brightness=0.4, contrast=0.4, saturation=0.4
    )[2]

  orders = _map_seeds(draw, DRAWS, dtype=tf.int32)
  assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
  # The order of brightness, contrast and saturation (hue removed): each of
  # the 6 permutations ~ DRAWS / 6 times; Pearson's chi-square with 5
  # degrees of freedom, 25.7 is its 1e-4 quantile.
  relative = [tuple(int(k) for k in o if k != 3) for o in orders]
  perms = list(itertools.permutations(range(3)))
  counts = np.array([relative.count(p) for p in perms])
  expected = DRAWS / 6
  assert ((counts - expected) ** 2 / expected).sum() < 25.7, counts
  # Every op is first a quarter of the time.
  first = np.bincount(orders[:, 0], minlength=4) / DRAWS
  assert np.abs(first - 0.25).max() < 4 * math.sqrt(0.25 * 0.75 / DRAWS)


def test_pca_lighting_alpha_is_normal_per_component():
  # On a mid-grey image (no clipping) the shift is 255 E (alpha * eigval), so
  # alpha = E^-1 shift / (255 eigval) must be i.i.d. N(0, alphastd^2), as in
  # the official Lighting(0.1, eigval, eigvec).
  alphastd = 0.1
  image = tf.fill([1, 1, 3], 128.0)

  def draw(seed):
    return photometric.pca_lighting(image, seed, alphastd)[0, 0] - 128.0

  shifts = _map_seeds(draw, DRAWS).astype(np.float64)
  eigvec = np.array(photometric.IMAGENET_EIGVEC)
  eigval = np.array(photometric.IMAGENET_EIGVAL)
  alpha = np.linalg.solve(eigvec, shifts.T).T / (255 * eigval)

  def normal_cdf(x):
    erf = np.vectorize(math.erf)
    return 0.5 * (1 + erf(x / (alphastd * math.sqrt(2))))

  bound = _ks_bound(DRAWS)
  for k in range(3):
    assert _ks_cdf(alpha[:, k], normal_cdf) < bound
    assert abs(alpha[:, k].std() - alphastd) < 4 * alphastd / math.sqrt(
      2 * DRAWS
    )
  assert np.abs(np.corrcoef(alpha.T) - np.eye(3)).max() < 4 / math.sqrt(DRAWS)
  # The official rule: rgb_i = sum_j eigvec[i, j] alpha_j eigval_j, so the
  # shift's covariance is 255^2 E diag(alphastd^2 eigval^2) E^T.
  cov = 255**2 * eigvec @ np.diag((alphastd * eigval) ** 2) @ eigvec.T
  np.testing.assert_allclose(np.cov(shifts.T), cov, rtol=0.1, atol=0.05)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
  a = np.round(np.clip(a, 0, 255))
  b = np.round(np.clip(b, 0, 255))
  return 10 * math.log10(255**2 / max(np.mean((a - b) ** 2), 1e-12))


# (offset_y, offset_x, height, width) windows of a 512 x 512 photo, shrunk
# to 224: 1.1x to 2.3x on both sides, unequal scales, and one side growing.
_SHRINK_WINDOWS = [
  (40, 60, 250, 250),
  (0, 0, 300, 340),
  (100, 20, 380, 290),
  (0, 0, 512, 512),
  (200, 10, 180, 400),
]


def test_resize_area_is_close_to_the_antialiased_resize_on_a_photo():
  from skimage import data as skdata

  photo = tf.io.encode_jpeg(skdata.astronaut(), quality=90)
  for window in _SHRINK_WINDOWS:
    crop, _, _ = crops.decode_and_crop(photo, lambda s, w=window: w)
    exact = crops.resize(crop, 224).numpy()
    got = crops.resize_area(crop, 224)
    assert got.shape == (224, 224, 3) and got.dtype == tf.float32
    got = got.numpy()
    assert got.min() >= 0 and got.max() <= 255
    plain = tf.image.resize(crop, [224, 224]).numpy()
    assert _psnr(got, exact) >= 40.0, window
    assert np.abs(got - exact).max() <= 30.0, window
    # Closer to the antialiased law than the unfiltered bilinear resize.
    assert _psnr(got, exact) > _psnr(plain, exact) + 2.0, window


def test_resize_area_grows_bilinearly_and_keeps_an_output_sized_crop():
  image = tf.constant(_asymmetric_image(224, 224))
  np.testing.assert_array_equal(
    crops.resize_area(image, 224).numpy(), image.numpy().astype(np.float32)
  )
  # A side already at the size is kept; the shorter one grows bilinearly,
  # as in the antialiased resize.
  tall = tf.constant(_asymmetric_image(224, 100))
  np.testing.assert_allclose(
    crops.resize_area(tall, 224).numpy(),
    crops.resize(tall, 224).numpy(),
    atol=1e-3,
  )
  # Shrinking one side, growing the other: the shrink is a box average.
  wide = tf.constant(_asymmetric_image(100, 448))
  got = crops.resize_area(wide, 224).numpy()
  pairs = wide.numpy().astype(np.float32).reshape(100, 224, 2, 3).mean(2)
  expected = tf.image.resize(pairs, [224, 224]).numpy()
  np.testing.assert_allclose(got, expected, atol=1e-3)


def test_exp_is_the_same_wherever_an_element_sits():
  # Eigen's SIMD and scalar-tail exp differ in the last bit for about one
  # value in ten; `crops._exp` must give an element one value in any block.
  rng = np.random.default_rng(3)
  x = np.log(0.75) + np.log(16 / 9) * rng.random(997)
  whole = crops._exp(tf.constant(x)).numpy()
  for size in (1, 2, 3, 7, 10, 16, 33):
    parts = [
      crops._exp(tf.constant(x[i : i + size])).numpy()
      for i in range(0, 200, size)
    ]
    np.testing.assert_array_equal(
      np.concatenate(parts), whole[: len(np.concatenate(parts))]
    )
  np.testing.assert_array_equal(
    crops._exp(tf.constant(x.reshape(997, 1))).numpy()[:, 0], whole
  )


def test_block_windows_equal_each_image_drawn_alone():
  rng = np.random.default_rng(5)
  n = 300
  heights = rng.integers(1, 900, n).astype(np.int32)
  widths = rng.integers(1, 900, n).astype(np.int32)
  # Extreme shapes, so that some images fall back.
  heights[:4], widths[:4] = (10, 1000, 1, 2), (1000, 10, 1, 700)
  uniforms = rng.random((n, crops.MAX_ATTEMPTS, 4))
  for scale, ratio in [((0.08, 1.0), (3 / 4, 4 / 3)), ((0.9, 1.0), (1.0, 2.0))]:
    windows, fell_back = crops.torchvision_crop_windows(
      heights, widths, uniforms, scale=scale, ratio=ratio
    )
    assert fell_back.numpy().any() and not fell_back.numpy().all()
    for i in range(n):
      window, alone = crops.torchvision_crop_window(
        heights[i], widths[i], uniforms[i], scale=scale, ratio=ratio
      )
      np.testing.assert_array_equal(windows[i].numpy(), window.numpy())
      assert bool(fell_back[i]) == bool(alone)


def test_batched_box_equals_one_window_at_a_time():
  windows = tf.constant([[3, 5, 20, 30], [-4, 2, 32, 32], [0, 0, 7, 9]])
  shapes = tf.constant([[40, 60, 3], [32, 32, 3], [7, 9, 3]])
  boxes = crops.window_to_box(windows, shapes).numpy()
  for w, s, box in zip(windows, shapes, boxes):
    np.testing.assert_array_equal(crops.window_to_box(w, s).numpy(), box)
