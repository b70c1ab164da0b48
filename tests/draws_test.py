"""Tests of jaxmix._src.draws and the integer-label losses of labels."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from tests.augment_cases import make_batch

KEY = jax.random.key(0)
NUM_DEVICES = 8
ROLES = {'images': 'image', 'labels': 'target'}


def _keys(count, seed=1):
  return jax.random.split(jax.random.key(seed), count)


def _halves(batch=2, height=4, width=6):
  """Example b: left half 10 * b + 1, right half 10 * b + 2 (asymmetric)."""
  images = np.zeros((batch, height, width, 1), np.float32)
  for b in range(batch):
    images[b, :, : width // 2] = 10 * b + 1
    images[b, :, width // 2 :] = 10 * b + 2
  return jnp.asarray(images)


def _swap_draw(box, height, width, weight=None, blend=1.0):
  partners = jnp.array([1, 0])
  if weight is None:
    area = (box.bottom - box.top) * (box.right - box.left)
    weight = 1.0 - area / (height * width)
  return jaxmix.make_draw(
    weight=weight,
    partners=partners,
    box=box,
    blend=blend,
    height=height,
    width=width,
  )


# ------------------------------------------------------------ apply_draw


def test_apply_draw_images_select_inside_the_box_with_orientation():
  images = _halves()
  box = jaxmix.Box(top=1, left=0, bottom=3, right=2)  # rows 1-2, columns 0-1
  draw = _swap_draw(box, 4, 6)
  out = jaxmix.apply_draw(images, draw, roles='image')
  expected = np.asarray(images).copy()
  expected[0, 1:3, 0:2] = images[1, 1:3, 0:2]
  expected[1, 1:3, 0:2] = images[0, 1:3, 0:2]
  np.testing.assert_array_equal(out, expected)
  assert float(out[0, 1, 0, 0]) == 11.0  # the partner's left half


def test_apply_draw_blends_outside_the_box_and_mixes_targets():
  images = _halves()
  labels = jnp.eye(2)
  box = jaxmix.Box(0, 0, 1, 1)
  draw = _swap_draw(box, 4, 6, weight=0.25, blend=0.5)
  out = jaxmix.apply_draw(
    {'images': images, 'labels': labels}, draw, roles=ROLES
  )
  own, partner = np.asarray(images[0]), np.asarray(images[1])
  expected = 0.5 * own + 0.5 * partner
  expected[0, 0] = partner[0, 0]
  np.testing.assert_allclose(out['images'][0], expected)
  np.testing.assert_allclose(out['labels'], [[0.25, 0.75], [0.75, 0.25]])


def test_masks_select_at_their_own_resolution_by_the_cell_centre_rule():
  # A box of rows [0, 4) and columns [0, 6) on an 8 x 12 image.
  draw = _swap_draw(jaxmix.Box(0, 0, 4, 6), 8, 12)
  # Half resolution (4 x 6): centres at 1, 3, 5, 7 (rows) -> rows 0, 1.
  half = jaxmix.draw_mask(draw, height=4, width=6)[0]
  np.testing.assert_array_equal(np.flatnonzero(half.any(1)), [0, 1])
  np.testing.assert_array_equal(np.flatnonzero(half.any(0)), [0, 1, 2])
  # 3 x 5 grid: row centres at 8/6, 4, 20/3 -> only row 0 is inside [0, 4).
  odd = jaxmix.draw_mask(draw, height=3, width=5)[0]
  np.testing.assert_array_equal(np.flatnonzero(odd.any(1)), [0])
  # centres (i + 0.5) * 12 / 5 = 1.2, 3.6, 6.0 -> columns 0, 1 (6 is out).
  np.testing.assert_array_equal(np.flatnonzero(odd.any(0)), [0, 1])
  # At the image's own resolution the mask is exactly the box.
  full = jaxmix.draw_mask(draw, height=8, width=12)
  np.testing.assert_array_equal(
    full, jaxmix.box_mask(draw.box, height=8, width=12)
  )


def test_integer_segmentation_masks_and_soft_maps_follow_the_draw():
  images = _halves(height=8, width=8)
  seg = jnp.stack([jnp.zeros((4, 4), jnp.int32), jnp.ones((4, 4), jnp.int32)])
  soft = jax.nn.one_hot(seg, 3)  # [B, 4, 4, 3] per-cell soft targets
  draw = _swap_draw(jaxmix.Box(0, 4, 4, 8), 8, 8)  # the top-right quarter
  out = jaxmix.apply_draw(
    {'images': images, 'seg': seg, 'soft': soft, 'ids': jnp.arange(2)},
    draw,
    roles={'images': 'image', 'seg': 'mask', 'soft': 'mask', 'ids': 'keep'},
  )
  expected = np.zeros((4, 4), np.int32)
  expected[0:2, 2:4] = 1
  np.testing.assert_array_equal(out['seg'][0], expected)
  np.testing.assert_array_equal(out['seg'][1], 1 - expected)
  assert out['seg'].dtype == jnp.int32
  np.testing.assert_array_equal(out['soft'], jax.nn.one_hot(out['seg'], 3))
  np.testing.assert_array_equal(out['ids'], [0, 1])


def test_uint8_images_select_exactly_and_blend_with_rounding():
  images = jnp.asarray(np.array([[[[10]]], [[[13]]]], np.uint8))
  selected = jaxmix.apply_draw(
    images, _swap_draw(jaxmix.Box(0, 0, 1, 1), 1, 1), roles='image'
  )
  np.testing.assert_array_equal(selected.ravel(), [13, 10])
  assert selected.dtype == jnp.uint8
  blended = jaxmix.apply_draw(
    images,
    _swap_draw(jaxmix.Box(0, 0, 0, 0), 1, 1, weight=0.5, blend=0.5),
    roles='image',
  )
  np.testing.assert_array_equal(blended.ravel(), [12, 12])  # 11.5 rounds up


def test_video_draws_map_frames_by_the_same_rule():
  draw = jaxmix.make_draw(
    weight=0.5,
    partners=jnp.array([1, 0]),
    box=jaxmix.Box(0, 0, 2, 2),
    frames=jaxmix.Span(jnp.array(0), jnp.array(4)),
    height=2,
    width=2,
    num_frames=8,
  )
  # Per-frame labels at half the frame rate: frames [0, 4) -> cells 0, 1.
  mask = jaxmix.draw_mask(draw, num_frames=4, height=1, width=1)
  np.testing.assert_array_equal(mask[0, :, 0, 0], [True, True, False, False])


def test_apply_draw_errors_name_the_leaf_and_shape():
  draw = _swap_draw(jaxmix.Box(0, 0, 1, 1), 4, 4)
  with pytest.raises(ValueError, match=r"leaf \['seg'\].*\[B, h, w, \.\.\.\]"):
    jaxmix.apply_draw({'seg': jnp.zeros((2, 4))}, draw, roles={'seg': 'mask'})
  with pytest.raises(ValueError, match=r'B = 2.*\(3, 4, 4\)'):
    jaxmix.apply_draw(jnp.zeros((3, 4, 4)), draw, roles='mask')
  with pytest.raises(TypeError, match='role "target" and must be float'):
    jaxmix.apply_draw(jnp.zeros((2, 3), jnp.int32), draw, roles='target')
  with pytest.raises(ValueError, match='`roles` entries must be one of'):
    jaxmix.apply_draw(jnp.zeros((2, 3)), draw, roles='label')
  with pytest.raises(ValueError, match='`roles` must be one role or a pytree'):
    jaxmix.apply_draw({'a': jnp.zeros((2, 3))}, draw, roles={'b': 'keep'})
  with pytest.raises(TypeError, match=r'`draw` must be a jaxmix\.MixDraw'):
    jaxmix.apply_draw(jnp.zeros((2, 3)), (0.5, [1, 0]), roles='target')
  with pytest.raises(ValueError, match='`num_frames` is 4 but `draw` is an'):
    jaxmix.draw_mask(draw, height=4, width=4, num_frames=4)


# ------------------------------------------- samplers reproduce the ops


SAMPLED = {
  'mixup': (
    functools.partial(jaxmix.mixup, alpha=0.4),
    lambda key, b, h, w: jaxmix.sample_mixup(key, batch_size=b, alpha=0.4),
  ),
  'mixup_elem': (
    functools.partial(jaxmix.mixup, alpha=0.4, prob=0.7, per_example=True),
    lambda key, b, h, w: jaxmix.sample_mixup(
      key, batch_size=b, alpha=0.4, prob=0.7, per_example=True
    ),
  ),
  'cutmix': (
    jaxmix.cutmix,
    lambda key, b, h, w: jaxmix.sample_cutmix(
      key, batch_size=b, height=h, width=w
    ),
  ),
  'cutmix_elem_uncorrected': (
    functools.partial(jaxmix.cutmix, per_example=True, correct_lam=False),
    lambda key, b, h, w: jaxmix.sample_cutmix(
      key, batch_size=b, height=h, width=w, per_example=True, correct_lam=False
    ),
  ),
  'cutmix_minmax': (
    functools.partial(jaxmix.cutmix, minmax=(0.2, 0.8)),
    lambda key, b, h, w: jaxmix.sample_cutmix(
      key, batch_size=b, height=h, width=w, minmax=(0.2, 0.8)
    ),
  ),
  'mixup_or_cutmix_elem': (
    functools.partial(
      jaxmix.mixup_or_cutmix,
      mixup_alpha=0.8,
      cutmix_alpha=1.0,
      per_example=True,
    ),
    lambda key, b, h, w: jaxmix.sample_mixup_or_cutmix(
      key,
      batch_size=b,
      height=h,
      width=w,
      mixup_alpha=0.8,
      cutmix_alpha=1.0,
      per_example=True,
    ),
  ),
  'mixup_or_cutmix_minmax': (
    functools.partial(
      jaxmix.mixup_or_cutmix,
      mixup_alpha=0.8,
      cutmix_alpha=1.0,
      minmax=(0.3, 0.6),
    ),
    lambda key, b, h, w: jaxmix.sample_mixup_or_cutmix(
      key,
      batch_size=b,
      height=h,
      width=w,
      mixup_alpha=0.8,
      cutmix_alpha=1.0,
      minmax=(0.3, 0.6),
    ),
  ),
}


def _by_draw(sampler, key, images, labels):
  b, h, w, _ = images.shape
  draw = sampler(key, b, h, w)
  out = jaxmix.apply_draw(
    {'images': images, 'labels': labels}, draw, roles=ROLES
  )
  return out['images'], out['labels']


@pytest.mark.parametrize('name', list(SAMPLED))
def test_applying_the_draw_reproduces_the_op(name):
  op, sampler = SAMPLED[name]
  images, labels = make_batch()
  for key in _keys(4):
    expected = op(key, images, labels)
    got = _by_draw(sampler, key, images, labels)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-6, atol=1e-6)


def test_mixup_or_cutmix_alpha_zero_switches_its_branch_off():
  b, h, w = 64, 12, 10
  draw_fn = jax.jit(
    lambda key, mix_a, cut_a: jaxmix.sample_mixup_or_cutmix(
      key,
      batch_size=b,
      height=h,
      width=w,
      mixup_alpha=mix_a,
      cutmix_alpha=cut_a,
      per_example=True,
    )
  )
  cut_only = draw_fn(KEY, 0.0, 1.0)
  assert (np.asarray(cut_only.blend) == 1).all()  # never blended
  assert (jaxmix.box_area(cut_only.box) > 0).mean() > 0.8
  mix_only = draw_fn(KEY, 0.8, 0.0)
  assert (jaxmix.box_area(mix_only.box) == 0).all()
  assert (np.asarray(mix_only.blend) < 1).mean() > 0.9
  off = draw_fn(KEY, 0.0, 0.0)
  np.testing.assert_array_equal(off.weight, 1.0)
  np.testing.assert_array_equal(off.blend, 1.0)
  assert (jaxmix.box_area(off.box) == 0).all()
  with pytest.raises(ValueError, match='`cutmix_alpha` must be >= 0'):
    jaxmix.sample_mixup_or_cutmix(
      KEY, batch_size=2, height=4, width=4, mixup_alpha=1, cutmix_alpha=-1
    )


def test_minmax_boxes_of_mixup_or_cutmix_have_the_minmax_sides():
  draw = jaxmix.sample_mixup_or_cutmix(
    KEY,
    batch_size=512,
    height=20,
    width=20,
    mixup_alpha=1.0,
    cutmix_alpha=1.0,
    switch_prob=1.0,
    per_example=True,
    minmax=(0.2, 0.8),
  )
  sides = np.asarray(draw.box.bottom - draw.box.top)
  assert sides.min() >= 4 and sides.max() < 16
  assert np.asarray(draw.box.bottom).max() <= 20  # never clipped
  area = np.asarray(jaxmix.box_area(draw.box))
  np.testing.assert_allclose(draw.weight, 1 - area / 400, rtol=1e-6)


# -------------------------------------------------- integer labels


@pytest.mark.parametrize(
  'op',
  [
    functools.partial(jaxmix.mixup, alpha=1.0),
    jaxmix.cutmix,
    functools.partial(jaxmix.mixup_or_cutmix, mixup_alpha=1, cutmix_alpha=1),
  ],
  ids=['mixup', 'cutmix', 'mixup_or_cutmix'],
)
def test_integer_labels_with_num_classes_equal_dense_smoothed_labels(op):
  images, labels = make_batch()
  classes = jnp.argmax(labels, -1)
  dense = jaxmix.one_hot(classes, labels.shape[1], smoothing=0.1)
  expected = op(KEY, images, dense)
  got = op(KEY, images, classes, num_classes=labels.shape[1], smoothing=0.1)
  np.testing.assert_array_equal(got[0], expected[0])
  np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
  with pytest.raises(ValueError, match=r'integer class indices \[B\]'):
    op(KEY, images, labels, num_classes=10)
  with pytest.raises(ValueError, match='`smoothing` applies to integer'):
    op(KEY, images, labels, smoothing=0.1)


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_mixed_cross_entropy_equals_the_dense_mixed_loss(smoothing):
  _, labels = make_batch(batch_size=16)
  classes = jnp.argmax(labels, -1)
  logits = jax.random.normal(jax.random.key(3), labels.shape)

  @jax.jit
  def both(key):
    draw = jaxmix.sample_mixup_or_cutmix(
      key,
      batch_size=16,
      height=12,
      width=10,
      mixup_alpha=0.8,
      cutmix_alpha=1.0,
      per_example=True,
    )
    dense = jaxmix.one_hot(classes, labels.shape[1], smoothing=smoothing)
    mixed = jaxmix.apply_draw(dense, draw, roles='target')
    expected = jaxmix.soft_cross_entropy(logits, mixed)
    got = jaxmix.mixed_cross_entropy(logits, classes, draw, smoothing=smoothing)
    return got, expected

  for key in _keys(3):
    got, expected = both(key)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_mixed_cross_entropy_builds_no_dense_target():
  classes, k = 4096, 21843
  logits = jax.ShapeDtypeStruct((classes, k), jnp.bfloat16)
  labels = jax.ShapeDtypeStruct((classes,), jnp.int32)

  def loss(key, logits, labels):
    draw = jaxmix.sample_cutmix(key, batch_size=classes, height=8, width=8)
    return jaxmix.mixed_cross_entropy(logits, labels, draw, smoothing=0.1)

  jaxpr = jax.make_jaxpr(loss)(KEY, logits, labels)
  # The only [B, K] values are the logits and their float32 copy (and the
  # reductions' intermediates); no one-hot, no gather of [B, K] rows.
  ops = {e.primitive.name for e in jaxpr.eqns}
  assert 'iota' not in ops or all(
    e.outvars[0].aval.shape != (classes, k)
    for e in jaxpr.eqns
    if e.primitive.name == 'iota'
  )
  gathers = [e for e in jaxpr.eqns if e.primitive.name == 'gather']
  assert all(e.outvars[0].aval.shape[-1] != k for e in gathers)


@pytest.mark.parametrize('smoothing', [0.0, 0.2])
def test_two_target_cross_entropy_equals_the_dense_loss(smoothing):
  k = 7
  key_l, key_a, key_b, key_w = jax.random.split(jax.random.key(5), 4)
  logits = 3 * jax.random.normal(key_l, (6, k))
  a = jax.random.randint(key_a, (6,), 0, k)
  b = jax.random.randint(key_b, (6,), 0, k)
  weight = jax.random.uniform(key_w, (6,))
  dense = weight[:, None] * jaxmix.one_hot(a, k, smoothing=smoothing) + (
    1 - weight[:, None]
  ) * jaxmix.one_hot(b, k, smoothing=smoothing)
  got = jaxmix.two_target_cross_entropy(
    logits, a, b, weight, smoothing=smoothing
  )
  want = jaxmix.soft_cross_entropy(logits, dense)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # A scalar weight of 1 is the plain (smoothed) loss of the own label.
  plain = jaxmix.two_target_cross_entropy(
    logits, a, b, 1.0, smoothing=smoothing
  )
  np.testing.assert_allclose(
    plain,
    jaxmix.soft_cross_entropy(
      logits, jaxmix.one_hot(a, k, smoothing=smoothing)
    ),
    rtol=1e-5,
    atol=1e-6,
  )


def test_two_target_cross_entropy_errors():
  logits, labels = jnp.zeros((2, 4)), jnp.array([0, 1])
  with pytest.raises(ValueError, match=r'`partner_labels` must be integer'):
    jaxmix.two_target_cross_entropy(logits, labels, jnp.eye(2), 0.5)
  with pytest.raises(ValueError, match=r'`labels` must be integer .* \(2,\)'):
    jaxmix.two_target_cross_entropy(logits, labels[:1], labels, 0.5)
  with pytest.raises(ValueError, match=r'`weight` must be a scalar or'):
    jaxmix.two_target_cross_entropy(logits, labels, labels, jnp.ones(3))


def test_mixed_cross_entropy_errors():
  draw = jaxmix.sample_mixup(KEY, batch_size=2, alpha=1.0)
  with pytest.raises(ValueError, match=r'`logits` must be \[B, K\]'):
    jaxmix.mixed_cross_entropy(jnp.zeros(4), jnp.array([0, 1]), draw)
  with pytest.raises(ValueError, match=r'integer class indices of shape \(2,'):
    jaxmix.mixed_cross_entropy(jnp.zeros((2, 4)), jnp.eye(2), draw)
  with pytest.raises(
    ValueError, match=r'`draw` must be a jaxmix\.MixDraw for a batch of 3'
  ):
    jaxmix.mixed_cross_entropy(jnp.zeros((3, 4)), jnp.array([0, 1, 2]), draw)


# ------------------------------------------ jit, vmap, per_shard, pmap


def _cutmix_with_masks(key, images, seg, labels):
  """CutMix of images, a half-resolution mask and labels with one draw."""
  b, h, w, _ = images.shape
  draw = jaxmix.sample_cutmix(key, batch_size=b, height=h, width=w)
  out = jaxmix.apply_draw(
    (images, seg, labels), draw, roles=('image', 'mask', 'target')
  )
  return (*out, draw.weight)


def _mask_batch(batch_size):
  images, labels = make_batch(batch_size=batch_size, height=8, width=8)
  seg = jnp.arange(batch_size * 16, dtype=jnp.int32).reshape(-1, 4, 4)
  return images, seg, labels
