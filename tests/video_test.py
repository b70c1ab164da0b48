"""Tests of jaxmix._src.video: VideoMix's three modes, weights and sampler."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

KEY = jax.random.key(0)
NUM_DEVICES = 8
MODES = ('spatial', 'temporal', 'cuboid')


def _videos(batch=8, frames=6, height=8, width=10, dtype=jnp.float32):
  """Every voxel distinct: 1000 b + 100 t + 10 y + x (asymmetric in x, y)."""
  b, t, y, x = np.meshgrid(
    np.arange(batch),
    np.arange(frames),
    np.arange(height),
    np.arange(width),
    indexing='ij',
  )
  values = (1000 * b + 100 * t + 10 * y + x)[..., None]
  labels = jax.nn.one_hot(np.arange(batch), batch + 1)
  return jnp.asarray(values % 256 if dtype == jnp.uint8 else values, dtype), (
    labels
  )


def _changed_cuboid(out, own):
  """The bounding cuboid of changed voxels; asserts it is filled."""
  changed = np.any(np.asarray(out) != np.asarray(own), axis=-1)
  if not changed.any():
    return None
  spans = [
    np.flatnonzero(changed.any(axis=tuple(set(range(3)) - {a})))
    for a in range(3)
  ]
  cuboid = tuple((int(s[0]), int(s[-1]) + 1) for s in spans)
  (t0, t1), (y0, y1), (x0, x1) = cuboid
  assert changed[t0:t1, y0:y1, x0:x1].all(), 'not a cuboid'
  return cuboid


@pytest.mark.parametrize('mode', MODES)
def test_each_mode_pastes_its_region_and_weights_by_kept_voxels(mode):
  videos, labels = _videos()
  _, frames, height, width, _ = videos.shape
  op = functools.partial(jaxmix.videomix, mode=mode, per_example=True)
  for key in jax.random.split(KEY, 3):
    out, out_labels = op(key, videos, labels)
    draw = jaxmix.sample_videomix(
      key,
      batch_size=8,
      num_frames=frames,
      height=height,
      width=width,
      mode=mode,
      per_example=True,
    )
    partners = np.asarray(draw.partners)
    for i in range(8):
      p = partners[i]
      cuboid = _changed_cuboid(out[i], videos[i])
      kept = float(out_labels[i, i])
      if p == i or cuboid is None:
        assert p == i or kept == pytest.approx(1.0)
        continue
      (t0, t1), (y0, y1), (x0, x1) = cuboid
      np.testing.assert_array_equal(
        out[i, t0:t1, y0:y1, x0:x1], videos[p, t0:t1, y0:y1, x0:x1]
      )
      volume = (t1 - t0) * (y1 - y0) * (x1 - x0)
      assert kept == pytest.approx(1 - volume / (frames * height * width))
      assert float(out_labels[i, p]) == pytest.approx(1 - kept)
      if mode == 'spatial':  # One box through every frame.
        assert (t0, t1) == (0, frames)
      if mode == 'temporal':  # Whole frames.
        assert (y0, y1, x0, x1) == (0, height, 0, width)
      np.testing.assert_allclose(draw.weight[i], kept, rtol=1e-6)


def test_one_region_per_batch_by_default():
  videos, labels = _videos()
  out, out_labels = jaxmix.videomix(KEY, videos, labels, mode='cuboid')
  cuboids = {
    _changed_cuboid(out[i], videos[i])
    for i in range(8)
    if float(out_labels[i, i]) < 1
  }
  assert len(cuboids) == 1


# Mean pasted fraction for alpha = 1 (lambda uniform), a continuous centre and
# side N * (1 - lambda) ** (1 / d) per cut axis: a clipped segment of length s
# keeps s - s**2 / 4 on average, so E[prod over cut axes of (s - s**2 / 4)].
PASTED_MEAN = {
  'temporal': 1 / 2 - 1 / 12,
  'spatial': 1 / 2 - (1 / 2.5) / 2 + (1 / 3) / 16,
  'cuboid': 1 / 2 - 3 / 4 * 3 / 7 + 3 / 16 * 3 / 8 - 1 / 64 / 3,
}


@pytest.mark.parametrize('mode', MODES)
def test_sampler_matches_the_documented_rule_in_distribution(mode):
  # The sampler builds no video, so a fine grid costs nothing.
  draw = jaxmix.sample_videomix(
    KEY,
    batch_size=20000,
    num_frames=1000,
    height=1000,
    width=1000,
    mode=mode,
    per_example=True,
  )
  pasted = 1 - np.asarray(draw.weight)
  assert pasted.mean() == pytest.approx(PASTED_MEAN[mode], abs=0.01)
  lengths = np.asarray(draw.frames.stop - draw.frames.start)
  heights = np.asarray(draw.box.bottom - draw.box.top)
  if mode == 'spatial':
    assert (lengths == 1000).all()
  if mode == 'temporal':
    assert (heights == 1000).all()
  if mode == 'cuboid':
    # Unclipped regions have equal side ratios on the three axes.
    inside = (
      (np.asarray(draw.frames.start) > 0)
      & (np.asarray(draw.frames.stop) < 1000)
      & (np.asarray(draw.box.top) > 0)
      & (np.asarray(draw.box.bottom) < 1000)
    )
    assert inside.sum() > 100
    np.testing.assert_allclose(lengths[inside], heights[inside], atol=2)


def test_prob_gates_whole_examples():
  draw = jaxmix.sample_videomix(
    KEY,
    batch_size=4000,
    num_frames=1000,
    height=4,
    width=4,
    prob=0.3,
    mode='temporal',
    per_example=True,
  )
  mixed = np.asarray(draw.frames.stop > draw.frames.start)
  assert mixed.mean() == pytest.approx(0.3, abs=0.03)
  np.testing.assert_array_equal(np.asarray(draw.weight)[~mixed], 1.0)


def test_uint8_videos_and_integer_labels():
  videos, labels = _videos(dtype=jnp.uint8)
  classes = jnp.argmax(labels, -1)
  out, out_labels = jaxmix.videomix(
    KEY, videos, classes, num_classes=9, smoothing=0.1
  )
  assert out.dtype == jnp.uint8
  dense_out = jaxmix.videomix(
    KEY, videos, jaxmix.one_hot(classes, 9, smoothing=0.1)
  )
  np.testing.assert_array_equal(out, dense_out[0])
  np.testing.assert_allclose(out_labels, dense_out[1], rtol=1e-6)


def test_errors_name_the_argument():
  videos, labels = _videos()
  with pytest.raises(ValueError, match=r'`videos` must have rank 5'):
    jaxmix.videomix(KEY, videos[0], labels)
  with pytest.raises(TypeError, match='`videos` must be a float or uint8'):
    jaxmix.videomix(KEY, videos.astype(jnp.int32), labels)
  with pytest.raises(ValueError, match='`mode` must be one of'):
    jaxmix.videomix(KEY, videos, labels, mode='frames')
  with pytest.raises(ValueError, match=r'batch size 4'):
    jaxmix.videomix(KEY, videos, labels[:4])
  with pytest.raises(TypeError, match='`key` must be a PRNG key'):
    jaxmix.videomix(videos, videos, labels)
  with pytest.raises(ValueError, match='`num_frames` must be a positive'):
    jaxmix.sample_videomix(KEY, batch_size=2, num_frames=0, height=2, width=2)


@pytest.mark.parametrize('mode', MODES)
def test_region_is_the_documented_formula(mode):
  # The module docstring's rule, written out with the sampler's own keys:
  # ratio (1 - lambda) ** (1 / d), side floor(N * ratio), integer centre
  # uniform on 0..N-1, [centre - side // 2, centre + side // 2) clipped.
  b, t, h, w, alpha = 64, 7, 9, 11, 0.7
  draw = jaxmix.sample_videomix(
    KEY,
    batch_size=b,
    num_frames=t,
    height=h,
    width=w,
    alpha=alpha,
    mode=mode,
    per_example=True,
  )
  key_weight, _, key_t, key_y, key_x, _ = jax.random.split(KEY, 6)
  lam = np.asarray(jax.random.beta(key_weight, alpha, alpha, (b,)))
  cut_t, cut_s = mode != 'spatial', mode != 'temporal'
  ratio = (1 - lam) ** (1 / (cut_t + 2 * cut_s))

  def span(key, size, cut):
    if not cut:
      return np.zeros(b), np.full(b, size)
    half = np.floor(size * ratio).astype(int) // 2
    centre = np.asarray(jax.random.randint(key, (b,), 0, size))
    return np.clip(centre - half, 0, size), np.clip(centre + half, 0, size)

  expected = (
    span(key_t, t, cut_t),
    span(key_y, h, cut_s),
    span(key_x, w, cut_s),
  )
  got = (
    (draw.frames.start, draw.frames.stop),
    (draw.box.top, draw.box.bottom),
    (draw.box.left, draw.box.right),
  )
  for (start, stop), (got_start, got_stop) in zip(expected, got):
    np.testing.assert_array_equal(got_start, start)
    np.testing.assert_array_equal(got_stop, stop)
  volume = np.prod([np.maximum(e[1] - e[0], 0) for e in expected], axis=0)
  np.testing.assert_allclose(draw.weight, 1 - volume / (t * h * w), rtol=1e-6)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16, jnp.uint8])
def test_op_equals_its_draw_applied(mode, dtype):
  # The op's rows-view select gives exactly what applying the draw gives.
  videos, labels = _videos(dtype=dtype)
  _, frames, height, width, _ = videos.shape
  for key in jax.random.split(KEY, 3):
    out = jaxmix.videomix(key, videos, labels, mode=mode, per_example=True)
    draw = jaxmix.sample_videomix(
      key,
      batch_size=8,
      num_frames=frames,
      height=height,
      width=width,
      mode=mode,
      per_example=True,
    )
    expected = jaxmix.apply_draw(
      (videos, labels), draw, roles=('mask', 'target')
    )
    assert out[0].dtype == dtype
    np.testing.assert_array_equal(out[0], expected[0])
    np.testing.assert_array_equal(out[1], expected[1])
