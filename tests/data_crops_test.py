"""Tests of jaxmix.data.crops and jaxmix.data.photometric (TF ops)."""

import numpy as np
import pytest
import tensorflow as tf

from jaxmix.data import crops, photometric


def _asymmetric_image(h=40, w=60):
  """Left half dark, right half bright, a red top row: no symmetry."""
  image = np.zeros((h, w, 3), np.uint8)
  image[:, w // 2 :] = 200
  image[0, :, 0] = 255
  image += (np.arange(w)[None, :, None] % 7).astype(np.uint8)
  return image


def _seed(i):
  return tf.constant([i, 7], tf.int64)


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


@pytest.mark.parametrize('encode', [tf.io.encode_jpeg, tf.io.encode_png])
def test_decode_and_crop_matches_full_decode(encode):
  image = _asymmetric_image()
  data = encode(image)
  full = tf.io.decode_image(data, channels=3).numpy()
  window = tf.constant([3, 11, 20, 30])
  crop, got_window, shape = crops.decode_and_crop(data, lambda s: window)
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
