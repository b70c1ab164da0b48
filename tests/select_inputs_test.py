"""uint8 images in the ops that only select pixels; blending ops refuse them.

Each select-only op must give uint8 out for uint8 in, bit-identical to the
float path on the same pixel values cast back, under jit as eagerly.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmix

KEY = jax.random.key(0)


def _uint8_batch(batch=8, height=12, width=10, frames=None):
  """Every pixel value 0..255 present, distinct across examples."""
  shape = (batch,) + ((frames,) if frames else ()) + (height, width, 3)
  values = np.random.default_rng(0).integers(0, 256, size=shape)
  labels = jax.nn.one_hot(np.arange(batch), batch + 2)
  return jnp.asarray(values, jnp.uint8), labels


def _box(key, b, h, w):
  box = jaxmix.sample_cutmix_box(key, height=h, width=w, weight=0.6)
  return jaxmix.Box(*(jnp.broadcast_to(f, (b,)) for f in box))


SELECT_ONLY = {
  'cutmix': jaxmix.cutmix,
  'cutmix_elem': functools.partial(jaxmix.cutmix, per_example=True),
  'cutmix_minmax': functools.partial(jaxmix.cutmix, minmax=(0.2, 0.8)),
  'apply_draw': lambda key, x, y: jaxmix.apply_draw(
    (x, y),
    jaxmix.make_draw(
      weight=0.5,
      box=_box(key, *x.shape[:3]),
      partners=jax.random.permutation(key, x.shape[0]),
      height=x.shape[1],
      width=x.shape[2],
    ),
    roles=('mask', 'target'),
  ),
  'mixup_or_cutmix_cut_only': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0, cutmix_alpha=1.0, per_example=True
  ),
  'mixup_or_cutmix_cut_only_pairs': functools.partial(
    jaxmix.mixup_or_cutmix, mixup_alpha=0, cutmix_alpha=1.0, pairs=True
  ),
  'cutout': lambda key, x, y: (
    jaxmix.cutout(key, x, size=6, count=2, fill_value=7),
    y,
  ),
  'random_erasing': lambda key, x, y: (
    jaxmix.random_erasing(key, x, prob=1.0, max_count=3),
    y,
  ),
  'videomix_spatial': functools.partial(jaxmix.videomix, mode='spatial'),
  'videomix_temporal': functools.partial(
    jaxmix.videomix, mode='temporal', per_example=True
  ),
  'videomix_cuboid': functools.partial(
    jaxmix.videomix, mode='cuboid', per_example=True
  ),
}


@pytest.mark.parametrize('name', list(SELECT_ONLY))
def test_uint8_equals_the_float_path_cast_back(name):
  op = SELECT_ONLY[name]
  frames = 5 if name.startswith('videomix') else None
  images, labels = _uint8_batch(frames=frames)
  jitted = jax.jit(op)
  changed = 0
  for key in jax.random.split(KEY, 4):
    out, out_labels = op(key, images, labels)
    assert out.dtype == jnp.uint8 and out.shape == images.shape
    as_float, float_labels = op(key, images.astype(jnp.float32), labels)
    np.testing.assert_array_equal(out, as_float.astype(jnp.uint8))
    np.testing.assert_array_equal(out_labels, float_labels)
    again, again_labels = jitted(key, images, labels)
    np.testing.assert_array_equal(again, out)
    np.testing.assert_allclose(again_labels, out_labels, rtol=1e-6)
    changed += int((out != images).any())
  assert changed > 0  # The op did select something.


def test_blending_ops_refuse_integer_images_and_say_why():
  images, labels = _uint8_batch()
  with pytest.raises(TypeError, match='float array for mixup, which blends'):
    jaxmix.mixup(KEY, images, labels)
  with pytest.raises(TypeError, match=r'mixup_or_cutmix with mixup_alpha=0'):
    jaxmix.mixup_or_cutmix(
      KEY, images, labels, mixup_alpha=0.8, cutmix_alpha=1.0
    )
  with pytest.raises(TypeError, match="float for fill='pixel'"):
    jaxmix.random_erasing(KEY, images, fill='pixel')
  with pytest.raises(ValueError, match=r'`fill_value` must be in \[0, 255\]'):
    jaxmix.cutout(KEY, images, size=4, fill_value=-1.0)
  with pytest.raises(TypeError, match='must be a float or uint8'):
    jaxmix.cutmix(KEY, images.astype(jnp.int32), labels)
