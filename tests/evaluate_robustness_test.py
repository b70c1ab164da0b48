"""Tests of jaxmix.evaluate.robustness: occlusion, in-between class, FGSM."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmix.evaluate import robustness

SIZE = 8
NUM_CLASSES = 4


def test_occlusion_masks_are_centred_squares_and_complements():
  center = robustness.occlusion_mask(2, height=6, width=6, mode='center')
  expected = np.zeros((6, 6), bool)
  expected[2:4, 2:4] = True
  np.testing.assert_array_equal(center, expected)
  boundary = robustness.occlusion_mask(2, height=6, width=6, mode='boundary')
  np.testing.assert_array_equal(boundary, ~expected)
  full = robustness.occlusion_mask(6, height=6, width=6, mode='center')
  assert bool(full.all())
  assert not robustness.occlusion_mask(
    0, height=6, width=6, mode='center'
  ).any()
  with pytest.raises(ValueError, match='`mode`'):
    robustness.occlusion_mask(2, height=6, width=6, mode='ring')


def _centre_pixel_classifier(x):
  """Class = centre pixel - 1; a zeroed centre predicts the unused class 3."""
  value = jnp.round(x[:, SIZE // 2, SIZE // 2, 0]).astype(jnp.int32)
  return jax.nn.one_hot((value - 1) % NUM_CLASSES, NUM_CLASSES)


def _label_images(labels):
  labels = jnp.asarray(labels)
  return jnp.broadcast_to(
    (labels + 1.0)[:, None, None, None], (labels.shape[0], SIZE, SIZE, 3)
  )


def test_occlusion_curve_follows_the_centre_pixel():
  labels = jnp.array([0, 1, 2, 2])
  images = _label_images(labels)
  mask = jnp.array([True, True, True, False])
  sizes = jnp.arange(SIZE + 1)
  run = jax.jit(
    functools.partial(
      robustness.occlusion_tally, _centre_pixel_classifier, mode='center'
    )
  )
  center = run(images, labels, sizes=sizes, mask=mask)
  # The centre pixel (4, 4) is inside the hole [(8 - s) // 2, + s) for s >= 2.
  np.testing.assert_array_equal(center.correct, [3, 3, 0, 0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(center.total, [3] * 9)
  boundary = robustness.occlusion_tally(
    _centre_pixel_classifier,
    images,
    labels,
    sizes=sizes,
    mode='boundary',
    mask=mask,
  )
  np.testing.assert_array_equal(boundary.correct, [0, 0, 3, 3, 3, 3, 3, 3, 3])


def test_occlusion_fills_pixels_before_normalisation():
  labels = jnp.array([1])
  images = _label_images(labels)
  # The fill (2.0) is a pixel value: normalised, it reads as class 0.
  tally = robustness.occlusion_tally(
    _centre_pixel_classifier,
    images * 10.0,
    labels,
    sizes=[0, 8],
    mode='center',
    normalize_fn=lambda x: x / 10.0,
    fill_value=10.0,
  )
  np.testing.assert_array_equal(tally.correct, [1, 0])


def _mean_colour_classifier(x):
  """Logits = mean channel values: one channel per class."""
  return jnp.mean(x, axis=(1, 2))


def test_in_between_counts_the_dominant_class():
  labels = jnp.array([0, 1, 2, 3, 0])
  images = jnp.broadcast_to(
    jax.nn.one_hot(labels, NUM_CLASSES)[:, None, None, :],
    (5, 10, 10, NUM_CLASSES),
  )
  partners = jnp.array([1, 2, 3, 4, 0])  # pair (4, 0) has one class: dropped
  for method in ('mixup', 'cutmix'):
    run = jax.jit(
      functools.partial(
        robustness.in_between_tally, _mean_colour_classifier, method=method
      )
    )
    out = run(
      images,
      labels,
      partners,
      weights=jnp.array([0.2, 0.8]),
      key=jax.random.key(0),
    )
    np.testing.assert_array_equal(out['either'].correct, [4, 4])
    np.testing.assert_array_equal(out['own'].correct, [0, 4])
    np.testing.assert_array_equal(out['partner'].correct, [4, 0])
    np.testing.assert_array_equal(out['own'].total, [4, 4])
  with pytest.raises(ValueError, match='`key`'):
    robustness.in_between_tally(
      _mean_colour_classifier,
      images,
      labels,
      partners,
      weights=[0.5],
      method='cutmix',
    )


def test_cutmix_boxes_lie_inside_with_the_asked_area():
  box = robustness._cutmix_box(jax.random.key(3), 0.75, 64, 20, 16)
  np.testing.assert_array_equal(box.bottom - box.top, 10)  # 20 * sqrt(0.25)
  np.testing.assert_array_equal(box.right - box.left, 8)
  assert int(box.top.min()) >= 0 and int(box.bottom.max()) <= 20
  assert int(box.left.min()) >= 0 and int(box.right.max()) <= 16
  assert len(set(np.asarray(box.top).tolist())) > 1  # positions vary


def test_fgsm_on_a_linear_model_matches_the_closed_form():
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 255, size=(6, 4, 4, 3)).astype(np.float32)
  labels = rng.integers(0, 5, size=6).astype(np.int32)
  weights = rng.normal(size=(48, 5)).astype(np.float32)
  mean, std = 120.0, 60.0

  def logits_fn(x):
    return x.reshape(x.shape[0], -1) @ weights

  def normalize(x):
    return (x - mean) / std

  adversarial = robustness.fgsm_images(
    logits_fn, images, labels, epsilon=8.0, normalize_fn=normalize
  )
  # d CE / d x = (softmax - onehot) @ W.T / std; std > 0 keeps the sign.
  logits = normalize(images).reshape(6, -1) @ weights
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  grad = (probs - np.eye(5)[labels]) @ weights.T
  expected = np.clip(images + 8.0 * np.sign(grad).reshape(images.shape), 0, 255)
  np.testing.assert_allclose(adversarial, expected, rtol=0, atol=1e-4)

  clean = int(np.sum(np.argmax(logits, -1) == labels))
  tally = robustness.fgsm_tally(
    logits_fn,
    images,
    labels,
    epsilons=[0.0, 8.0],
    normalize_fn=normalize,
  )
  attacked_logits = normalize(expected).reshape(6, -1) @ weights
  attacked = int(np.sum(np.argmax(attacked_logits, -1) == labels))
  np.testing.assert_array_equal(tally.correct, [clean, attacked])
  np.testing.assert_array_equal(tally.total, [6, 6])


def test_bad_images_and_labels_name_the_argument():
  with pytest.raises(ValueError, match='`images`'):
    robustness.fgsm_images(
      _mean_colour_classifier,
      jnp.zeros((2, 4, 4), jnp.float32),
      jnp.zeros((2,), jnp.int32),
      epsilon=1.0,
    )
  with pytest.raises(ValueError, match='`labels`'):
    robustness.fgsm_tally(
      _mean_colour_classifier,
      jnp.zeros((2, 4, 4, 3)),
      jnp.zeros((2,), jnp.float32),
      epsilons=1.0,
    )
