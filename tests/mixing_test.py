"""Tests of jaxmix._src.mixing and mix_or_cut: exact Mixup/CutMix values."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix
from tests.augment_cases import OPS, make_batch

KEY = jax.random.key(0)


def _keys(count, seed=1):
  return jax.random.split(jax.random.key(seed), count)


# The laws every op obeys (jit, vmap, pmap, per_shard, rows, prob 0, keys,
# retracing, dtypes) are tests/conformance_test.py's.


def _mix_with_weight(images, labels, *, weight, partners):
  """Mixup's applier: `apply_draw` with an empty box and blend = weight."""
  draw = jaxmix.make_draw(
    weight=weight,
    blend=weight,
    partners=partners,
    box=jaxmix.Box(0, 0, 0, 0),
    height=1,
    width=1,
  )
  return jaxmix.apply_draw((images, labels), draw, roles=('image', 'target'))


def _cut_with_box(images, labels, *, box, partners, weight=None):
  """CutMix's applier: `apply_draw` selecting inside `box`."""
  height, width = images.shape[1:3]
  if weight is None:
    weight = 1.0 - jaxmix.box_area(box) / (height * width)
  draw = jaxmix.make_draw(
    weight=weight, partners=partners, box=box, height=height, width=width
  )
  return jaxmix.apply_draw((images, labels), draw, roles=('mask', 'target'))


@pytest.mark.parametrize('name', list(OPS))
def test_gradients_are_finite(name):
  images, labels = make_batch()

  def loss(images):
    out_images, out_labels = OPS[name](KEY, images, labels)
    logits = out_images.mean(axis=(1, 2)) @ jnp.ones((3, labels.shape[1]))
    return jaxmix.soft_cross_entropy(logits, out_labels).mean()

  grads = jax.grad(loss)(images)
  assert np.isfinite(grads).all()
  assert np.abs(grads).sum() > 0


BLENDING = {
  'mixup': jaxmix.mixup,
  'mixup_or_cutmix': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=1, cutmix_alpha=1
  ),
}


@pytest.mark.parametrize('name', [*BLENDING, 'cutmix'])
def test_bad_inputs_raise_clear_errors(name):
  op = BLENDING.get(name, jaxmix.cutmix)
  images, labels = make_batch()
  with pytest.raises(
    ValueError, match=r'`images` must have rank 4.*\(12, 10, 3\)'
  ):
    op(KEY, images[0], labels)
  if name in BLENDING:  # Blending ops refuse integer images, and say why.
    with pytest.raises(
      TypeError, match=f'must be a float array for {name}, which blends'
    ):
      op(KEY, images.astype(jnp.uint8), labels)
  with pytest.raises(TypeError, match='`images` must be a float'):
    op(KEY, images.astype(jnp.int32), labels)
  with pytest.raises(ValueError, match='looks channels-first'):
    op(KEY, jnp.zeros((8, 3, 12, 10)), labels)
  with pytest.raises(TypeError, match='`labels` must be a float array'):
    op(KEY, images, labels.astype(jnp.int32))
  with pytest.raises(ValueError, match=r'`labels` must be dense \[B, K\]'):
    op(KEY, images, jnp.argmax(labels, -1).astype(jnp.float32))
  with pytest.raises(ValueError, match=r'batch size 4.*batch size 8'):
    op(KEY, images, labels[:4])
  with pytest.raises(TypeError, match='`key` must be a PRNG key'):
    op(images, images, labels)
  with pytest.raises(ValueError, match=r'`prob` must be in \[0, 1\], got 1.5'):
    op(KEY, images, labels, prob=1.5)


def test_bad_knobs_raise_clear_errors():
  images, labels = make_batch()
  with pytest.raises(ValueError, match='`alpha` must be > 0, got 0'):
    jaxmix.mixup(KEY, images, labels, alpha=0)
  with pytest.raises(ValueError, match='`alpha` must be > 0, got -1'):
    jaxmix.cutmix(KEY, images, labels, alpha=-1.0)
  with pytest.raises(ValueError, match='`cutmix_alpha` must be >= 0'):
    jaxmix.mixup_or_cutmix(
      KEY, images, labels, mixup_alpha=1.0, cutmix_alpha=-0.5
    )
  with pytest.raises(ValueError, match='both 0, which switches both'):
    jaxmix.mixup_or_cutmix(KEY, images, labels, mixup_alpha=0, cutmix_alpha=0)
  with pytest.raises(ValueError, match='needs an even batch size B, got 7'):
    jaxmix.mixup_or_cutmix(
      KEY, images[:7], labels[:7], mixup_alpha=1, cutmix_alpha=1, pairs=True
    )
  with pytest.raises(ValueError, match='leave `per_example` False'):
    jaxmix.mixup_or_cutmix(
      KEY,
      images,
      labels,
      mixup_alpha=1,
      cutmix_alpha=1,
      pairs=True,
      per_example=True,
    )
  with pytest.raises(ValueError, match='`switch_prob` must be in'):
    jaxmix.mixup_or_cutmix(
      KEY, images, labels, mixup_alpha=1, cutmix_alpha=1, switch_prob=-0.1
    )
  with pytest.raises(ValueError, match='`minmax` must be a'):
    jaxmix.cutmix(KEY, images, labels, minmax=(0.8, 0.2))
  with pytest.raises(
    ValueError, match=r'`weight` must be a scalar or have shape \(8,\)'
  ):
    _mix_with_weight(images, labels, weight=jnp.ones(3), partners=jnp.arange(8))
  with pytest.raises(ValueError, match=r'`partners` must be integer indices'):
    _mix_with_weight(images, labels, weight=0.5, partners=jnp.ones(8))


# ------------------------------------------------------------- exact values


def _partner_and_weight(out_labels, labels, i):
  """Recovers the partner of example i and its own-label weight."""
  own = int(np.argmax(labels[i]))
  weight = float(out_labels[i, own])
  if weight > 1 - 1e-6:
    return i, 1.0
  others = np.asarray(out_labels[i]).copy()
  others[own] = 0
  partner_class = int(np.argmax(others))
  partner = int(np.flatnonzero(np.argmax(labels, -1) == partner_class)[0])
  return partner, weight


def _pasted_rectangle(out_image, image):
  """The bounding box of changed pixels; asserts they fill it completely."""
  changed = np.any(np.asarray(out_image) != np.asarray(image), axis=-1)
  if not changed.any():
    return None
  rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
  box = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
  assert changed[box[0] : box[2], box[1] : box[3]].all(), 'not a rectangle'
  return box


@pytest.mark.parametrize('per_example', [False, True])
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_cutmix_pastes_one_rectangle_and_weights_labels_by_its_area(
  per_example, dtype
):
  images, labels = make_batch(batch_size=16, height=24, width=20, dtype=dtype)
  images, labels = np.asarray(images), np.asarray(labels)
  boxes_seen = set()
  for key in _keys(20):
    out_images, out_labels = jaxmix.cutmix(
      key, images, labels, per_example=per_example
    )
    out_images, out_labels = np.asarray(out_images), np.asarray(out_labels)
    for i in range(len(images)):
      partner, weight = _partner_and_weight(out_labels, labels, i)
      box = _pasted_rectangle(out_images[i], images[i])
      if partner == i or box is None:
        assert weight == pytest.approx(1.0) or partner == i
        continue
      top, left, bottom, right = box
      np.testing.assert_array_equal(
        out_images[i, top:bottom, left:right],
        images[partner, top:bottom, left:right],
      )
      kept = 1 - (bottom - top) * (right - left) / (24 * 20)
      assert weight == pytest.approx(kept, abs=1e-6)
      boxes_seen.add((per_example, int(np.asarray(key_data(key)).sum()), box))
  if not per_example:
    # One box per batch: every mixed example of a draw shares it.
    per_draw = {}
    for _, draw, box in boxes_seen:
      per_draw.setdefault(draw, set()).add(box)
    assert all(len(b) == 1 for b in per_draw.values())


def key_data(key):
  return jax.random.key_data(key)


def test_cutmix_per_example_boxes_differ_within_a_batch():
  images, labels = make_batch(batch_size=16, height=32, width=32)
  out_images, _ = jaxmix.cutmix(KEY, images, labels, per_example=True)
  boxes = {_pasted_rectangle(out_images[i], images[i]) for i in range(16)}
  assert len(boxes) > 4


@pytest.mark.parametrize('per_example', [False, True])
def test_mixup_output_is_the_weighted_sum_with_the_label_weight(per_example):
  images, labels = (np.asarray(a) for a in make_batch(batch_size=16))
  for key in _keys(5):
    out_images, out_labels = jaxmix.mixup(
      key, images, labels, alpha=1.0, per_example=per_example
    )
    out_images, out_labels = np.asarray(out_images), np.asarray(out_labels)
    weights = []
    for i in range(16):
      partner, weight = _partner_and_weight(out_labels, labels, i)
      expected = weight * images[i] + (1 - weight) * images[partner]
      np.testing.assert_allclose(out_images[i], expected, rtol=1e-5, atol=1e-5)
      if partner != i:
        weights.append(round(weight, 5))
    if not per_example:
      assert len(set(weights)) <= 1


def test_mixup_applier_exact_values():
  images = jnp.arange(2 * 2 * 2 * 1, dtype=jnp.float32).reshape(2, 2, 2, 1)
  labels = jnp.eye(2)
  out_images, out_labels = _mix_with_weight(
    images, labels, weight=jnp.array([0.25, 1.0]), partners=jnp.array([1, 0])
  )
  np.testing.assert_allclose(out_images[0], 0.25 * images[0] + 0.75 * images[1])
  np.testing.assert_array_equal(out_images[1], images[1])
  np.testing.assert_allclose(out_labels, [[0.25, 0.75], [0.0, 1.0]])


def test_cutmix_applier_exact_values_and_orientation():
  # Image 0 is zeros, image 1 ones; a box over the top-left 1x2 corner.
  images = jnp.stack([jnp.zeros((3, 4, 1)), jnp.ones((3, 4, 1))])
  labels = jnp.eye(2)
  box = jaxmix.Box(top=0, left=0, bottom=1, right=2)
  out_images, out_labels = _cut_with_box(
    images, labels, box=box, partners=jnp.array([1, 0])
  )
  expected = np.zeros((3, 4))
  expected[0, :2] = 1
  np.testing.assert_array_equal(out_images[0, ..., 0], expected)
  np.testing.assert_array_equal(out_images[1, ..., 0], 1 - expected)
  np.testing.assert_allclose(out_labels[0], [10 / 12, 2 / 12], rtol=1e-6)
  # An explicit weight replaces the area fraction (the uncorrected lambda).
  _, uncorrected = _cut_with_box(
    images, labels, box=box, partners=jnp.array([1, 0]), weight=0.5
  )
  np.testing.assert_allclose(uncorrected, [[0.5, 0.5], [0.5, 0.5]])
  # A zero-area box is the identity.
  empty = jaxmix.Box(2, 3, 2, 4)
  same, same_labels = _cut_with_box(
    images, labels, box=empty, partners=jnp.array([1, 0])
  )
  np.testing.assert_array_equal(same, images)
  np.testing.assert_array_equal(same_labels, labels)


def test_cutmix_uncorrected_label_weight_is_the_beta_draw():
  images, labels = make_batch(batch_size=2, height=16, width=16)
  weights = []
  for key in _keys(400):
    _, out = jaxmix.cutmix(key, images, labels, correct_lam=False)
    if float(out[0].max()) < 1:  # Not paired with itself.
      weights.append(float(out[0].max()))
  # Beta(1, 1) is uniform: mean 1/2 (the corrected weight averages ~0.7), and
  # the max of the two label weights is uniform on [0.5, 1].
  assert np.mean(weights) == pytest.approx(0.75, abs=0.03)


def test_mixup_or_cutmix_switch_probability_selects_the_method():
  images, labels = make_batch(batch_size=8, height=16, width=16)
  for key in _keys(5):
    cut_images, _ = jaxmix.mixup_or_cutmix(
      key, images, labels, mixup_alpha=1, cutmix_alpha=1, switch_prob=1.0
    )
    for i in range(8):  # Every change is a pasted rectangle of exact pixels.
      _pasted_rectangle(cut_images[i], images[i])
    mix_images, mix_labels = jaxmix.mixup_or_cutmix(
      key, images, labels, mixup_alpha=1, cutmix_alpha=1, switch_prob=0.0
    )
    for i in range(8):
      partner, weight = _partner_and_weight(mix_labels, labels, i)
      expected = weight * images[i] + (1 - weight) * images[partner]
      np.testing.assert_allclose(mix_images[i], expected, rtol=1e-5, atol=1e-5)


def test_per_example_gate_mixes_a_prob_fraction():
  images, labels = make_batch(batch_size=64)
  unmixed = []
  for key in _keys(20):
    _, out = jaxmix.mixup(key, images, labels, prob=0.3, per_example=True)
    unmixed.append(float((out.max(-1) > 1 - 1e-6).mean()))
  # Unmixed = gated off (0.7) or paired with itself (~1/64).
  assert np.mean(unmixed) == pytest.approx(0.7 + 0.3 / 64, abs=0.04)


# ------------------------------------------------------------ distributions


@pytest.mark.parametrize('alpha', [0.2, 1.0, 2.0])
def test_mix_weight_has_the_beta_moments(alpha):
  samples = jaxmix.sample_mix_weight(KEY, alpha=alpha, shape=(40000,))
  assert float(samples.min()) >= 0 and float(samples.max()) <= 1
  assert float(samples.mean()) == pytest.approx(0.5, abs=0.01)
  variance = 1 / (4 * (2 * alpha + 1))
  assert float(samples.var()) == pytest.approx(variance, rel=0.03)


def test_sample_partners_is_a_keyed_permutation():
  first = jaxmix.sample_partners(KEY, batch_size=32)
  np.testing.assert_array_equal(np.sort(first), np.arange(32))
  np.testing.assert_array_equal(
    first, jaxmix.sample_partners(KEY, batch_size=32)
  )
  other = jaxmix.sample_partners(jax.random.key(5), batch_size=32)
  assert not np.array_equal(first, other)
  with pytest.raises(ValueError, match='`batch_size` must be a positive'):
    jaxmix.sample_partners(KEY, batch_size=0)


# ------------------------------------------------- timm's Mixup conventions


def _switch_draw(key, batch_size, height=12, width=10, **knobs):
  return jaxmix.sample_mixup_or_cutmix(
    key, batch_size=batch_size, height=height, width=width, **knobs
  )


@pytest.mark.parametrize('per_example', [False, True])
def test_alpha_zero_never_takes_its_branch(per_example):
  images, labels = make_batch(batch_size=16)
  op = functools.partial(jaxmix.mixup_or_cutmix, per_example=per_example)
  traced = jax.jit(
    lambda key, mix_a, cut_a: op(
      key, images, labels, mixup_alpha=mix_a, cutmix_alpha=cut_a
    )
  )
  for key in _keys(8):
    # Mixup off: exactly CutMix with the draw's box, never a blend.
    draw = _switch_draw(
      key, 16, mixup_alpha=0.0, cutmix_alpha=1.0, per_example=per_example
    )
    np.testing.assert_array_equal(draw.blend, 1.0)
    assert (np.asarray(jaxmix.box_area(draw.box)) > 0).mean() > 0.5
    cut = op(key, images, labels, mixup_alpha=0, cutmix_alpha=1.0)
    expected = _cut_with_box(
      images, labels, box=draw.box, partners=draw.partners
    )
    np.testing.assert_array_equal(cut[0], expected[0])
    np.testing.assert_allclose(cut[1], expected[1], rtol=1e-6)
    # CutMix off: exactly Mixup with the draw's lambda, never a box.
    draw = _switch_draw(
      key, 16, mixup_alpha=0.8, cutmix_alpha=0.0, per_example=per_example
    )
    np.testing.assert_array_equal(jaxmix.box_area(draw.box), 0)
    np.testing.assert_array_equal(draw.weight, draw.blend)
    mix = op(key, images, labels, mixup_alpha=0.8, cutmix_alpha=0)
    expected = _mix_with_weight(
      images, labels, weight=draw.blend, partners=draw.partners
    )
    np.testing.assert_allclose(mix[0], expected[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mix[1], expected[1], rtol=1e-6)
    # Traced zeros switch the same branches off (jit == eager).
    for eager, alphas in ((cut, (0.0, 1.0)), (mix, (0.8, 0.0))):
      jitted = traced(key, *alphas)
      np.testing.assert_allclose(jitted[0], eager[0], rtol=1e-6, atol=1e-6)
      np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-6)
  # Both traced to 0: nothing to mix, the identity.
  same = traced(KEY, 0.0, 0.0)
  np.testing.assert_array_equal(same[0], images)
  np.testing.assert_array_equal(same[1], labels)


def _within(count, n, p, sigmas=4.5):
  """A binomial count within `sigmas` standard deviations of n * p."""
  return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p)) + 1e-9


@pytest.mark.parametrize('switch_prob', [0.0, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize('per_example', [False, True])
def test_branch_taken_follows_switch_prob_and_prob(switch_prob, per_example):
  # The sampler builds no images, so many draws cost little. A 1000-pixel
  # side makes an empty CutMix box (side < 2) practically impossible.
  prob, n = 0.6, 20000
  sample = functools.partial(
    _switch_draw,
    height=1000,
    width=1000,
    mixup_alpha=0.8,
    cutmix_alpha=1.0,
    switch_prob=switch_prob,
    prob=prob,
    per_example=per_example,
  )
  if per_example:
    draw = sample(KEY, n)
  else:  # One draw per batch of 2: n batches.
    draw = jax.vmap(lambda key: sample(key, 2))(jax.random.split(KEY, n))
  blend = np.asarray(draw.blend).reshape(n, -1)[:, 0]
  area = np.asarray(jaxmix.box_area(draw.box)).reshape(n, -1)[:, 0]
  cut, mixed_up = area > 0, blend < 1
  assert not (cut & mixed_up).any()
  assert _within(cut.sum(), n, prob * switch_prob)
  assert _within(mixed_up.sum(), n, prob * (1 - switch_prob))
  assert _within((~cut & ~mixed_up).sum(), n, 1 - prob)


def _ks_uniform(samples):
  """Kolmogorov-Smirnov distance of samples in [0, 1) to U(0, 1)."""
  x = np.sort(samples)
  n = len(x)
  above = np.arange(1, n + 1) / n - x
  below = x - np.arange(n) / n
  return max(above.max(), below.max())


def test_minmax_box_sides_and_positions_follow_the_law():
  # timm's rule: side uniform over the integers [int(N * min), int(N * max)),
  # independently per axis; the box wholly inside, its top-left uniform over
  # the N - side + 1 positions; the label weight the kept area. `minmax`
  # turns the CutMix branch on even with cutmix_alpha=0 (timm sets it to 1).
  n, height, width, minmax = 20000, 100, 60, (0.2, 0.8)
  draw = _switch_draw(
    KEY,
    n,
    height,
    width,
    mixup_alpha=0.0,
    cutmix_alpha=0.0,
    per_example=True,
    correct_lam=False,  # Ignored by minmax boxes: always the kept area.
    minmax=minmax,
  )
  box = jax.tree.map(np.asarray, draw.box)
  rng = np.random.default_rng(0)
  limit = 1.63 / np.sqrt(n)  # The KS critical value at the 1% level.
  for size, start, stop in (
    (height, box.top, box.bottom),
    (width, box.left, box.right),
  ):
    side = stop - start
    low, high = int(size * minmax[0]), int(size * minmax[1])
    assert side.min() == low and side.max() == high - 1
    # Integer-uniform sides plus U(0, 1) jitter are U(low, high) exactly.
    jittered = (side - low + rng.uniform(size=n)) / (high - low)
    assert _ks_uniform(jittered) < limit
    # Positions: uniform over 0..size - side, flush with either edge too.
    assert start.min() == 0 and (stop == size).any() and stop.max() <= size
    position = (start + rng.uniform(size=n)) / (size - side + 1)
    assert _ks_uniform(position) < limit
  # The height and width draws are independent: correlation ~ 0.
  corr = np.corrcoef(box.bottom - box.top, box.right - box.left)[0, 1]
  assert abs(corr) < 4.5 / np.sqrt(n)
  np.testing.assert_array_equal(draw.blend, 1.0)
  area = (box.bottom - box.top) * (box.right - box.left)
  np.testing.assert_allclose(draw.weight, 1 - area / (height * width))
  # A KS distance that fails: sides drawn over a wider range.
  wrong = (box.bottom - box.top - 20 + rng.uniform(size=n)) / 70
  assert _ks_uniform(wrong) > limit


@pytest.mark.parametrize('switch_prob', [0.0, 1.0, 0.5])
def test_pair_mode_mixes_each_example_with_its_mirror_symmetrically(
  switch_prob,
):
  images, labels = (np.asarray(a) for a in make_batch(batch_size=8))
  op = functools.partial(
    jaxmix.mixup_or_cutmix,
    mixup_alpha=1.0,
    cutmix_alpha=1.0,
    switch_prob=switch_prob,
    pairs=True,
  )
  boxes = set()
  for key in _keys(6):
    draw = _switch_draw(
      key,
      8,
      mixup_alpha=1.0,
      cutmix_alpha=1.0,
      switch_prob=switch_prob,
      pairs=True,
    )
    out, out_labels = (np.asarray(a) for a in op(key, images, labels))
    np.testing.assert_array_equal(draw.partners, 7 - np.arange(8))
    for field in (draw.weight, draw.blend, *draw.box):
      field = np.asarray(field)
      np.testing.assert_array_equal(field, field[::-1])  # One draw per pair.
    mask = np.asarray(jaxmix.box_mask(draw.box, height=12, width=10))
    for i in range(4):
      j, w, lam = 7 - i, float(draw.weight[i]), float(draw.blend[i])
      inside = mask[i][..., None]
      boxes.add(tuple(int(f[i]) for f in draw.box))
      for a, b in ((i, j), (j, i)):
        # CutMix swaps the box; Mixup blends both with the same lambda.
        expected = np.where(inside, images[b], lam * images[a])
        expected = expected + np.where(inside, 0, (1 - lam) * images[b])
        np.testing.assert_allclose(out[a], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
          out_labels[a], w * labels[a] + (1 - w) * labels[b], rtol=1e-6
        )
      if switch_prob == 1.0:
        assert lam == 1.0
        assert w == pytest.approx(1 - mask[i].mean())
      if switch_prob == 0.0:
        assert not mask[i].any() and w == lam
  if switch_prob == 1.0:
    assert len(boxes) > 6  # The pairs of a batch draw their own boxes.


def test_pair_mode_pairs_inside_each_shard():
  from jax.sharding import NamedSharding, PartitionSpec

  images, labels = make_batch(batch_size=16)
  op = functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0.8, cutmix_alpha=1.0, pairs=True
  )
  mesh = jax.make_mesh((8,), ('data',))
  sharding = NamedSharding(mesh, PartitionSpec('data'))
  out = jax.jit(jaxmix.per_shard(op, mesh))(
    KEY, jax.device_put(images, sharding), jax.device_put(labels, sharding)
  )
  out = [np.asarray(a) for a in out]
  for d in range(8):
    shard = slice(2 * d, 2 * d + 2)
    own = op(jax.random.fold_in(KEY, d), images[shard], labels[shard])
    np.testing.assert_allclose(out[0][shard], own[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[1][shard], own[1], rtol=1e-6)
