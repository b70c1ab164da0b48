"""EfficientNet: timm's block plan, padding modes, CAM identity, modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxmix.models import create_model, efficientnet


def test_round_channels_is_timms_make_divisible():
  # Multiples of 8, rounded to nearest, never below 90 % of the exact value.
  assert efficientnet.round_channels(32, 1.1) == 32
  assert efficientnet.round_channels(32, 1.2) == 40
  assert efficientnet.round_channels(1280, 1.1) == 1408
  assert efficientnet.round_channels(16, 4.3) == 72
  assert efficientnet.round_channels(10, 1.0) == 16  # min is the divisor


@pytest.mark.parametrize(
  'scaling, repeats, widths, first_residual',
  [
    ('b0', (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 2),
    # B3's second depthwise-separable block keeps 24 channels: a residual.
    ('b3', (2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384), 1),
  ],
)
def test_block_plan(scaling, repeats, widths, first_residual):
  model = nnx.eval_shape(
    lambda: efficientnet.EfficientNet(
      scaling=scaling, num_classes=10, rngs=nnx.Rngs(0)
    )
  )
  assert tuple(p[0] for p in model.plan) == repeats
  assert tuple(p[4] for p in model.plan) == widths
  assert len(model.blocks) == sum(repeats)
  # Residuals where stride 1 keeps the width; the first block has none.
  residual = [b.residual for b in model.blocks]
  assert residual.index(True) == first_residual


def test_drop_path_grows_linearly_with_the_block_index():
  model = nnx.eval_shape(
    lambda: create_model(
      'efficientnet_b0', num_classes=10, drop_path_rate=0.2, rngs=nnx.Rngs(0)
    )
  )
  rates = [b.drop_path.rate for b in model.blocks]
  np.testing.assert_allclose(rates, 0.2 * np.arange(16) / 16)


@pytest.fixture(scope='module')
def b0():
  """B0 in eval mode (built once: its 213 layers take a while on CPU)."""
  model = create_model('efficientnet_b0', num_classes=7, rngs=nnx.Rngs(1))
  model.eval()
  return model


_apply = nnx.jit(lambda model, x: (model(x), model.features(x)))


def test_logits_are_pooled_features_times_head(b0):
  model = b0
  x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
  logits, feats = _apply(model, x)
  assert feats.shape == (2, 2, 2, 1280) and logits.dtype == jnp.float32
  cam = feats @ model.head.kernel[...] + model.head.bias[...]
  np.testing.assert_allclose(logits, cam.mean((1, 2)), rtol=1e-4, atol=1e-5)


def test_tf_padding_is_same_padding():
  kw = dict(
    dtype=jnp.float32, param_dtype=jnp.float32, rngs=nnx.Rngs(0), eps=1e-3
  )
  torch_conv = efficientnet._Conv(
    1, 1, 3, stride=2, kw=dict(kw, tf_padding=False)
  )
  tf_conv = efficientnet._Conv(1, 1, 3, stride=2, kw=dict(kw, tf_padding=True))
  ones = jnp.ones((3, 3, 1, 1))
  torch_conv.conv.kernel[...] = ones
  tf_conv.conv.kernel[...] = ones
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  # On even sizes 'SAME' pads a stride-2 conv (0, 1); torch pads (1, 1).
  padded = np.pad(np.arange(16.0).reshape(4, 4), 1)
  want_torch = [
    [padded[r : r + 3, c : c + 3].sum() for c in (0, 2)] for r in (0, 2)
  ]
  want_tf = [
    [padded[r : r + 3, c : c + 3].sum() for c in (1, 3)] for r in (1, 3)
  ]
  np.testing.assert_array_equal(torch_conv(x)[0, ..., 0], want_torch)
  np.testing.assert_array_equal(tf_conv(x)[0, ..., 0], want_tf)
  tf_model = nnx.eval_shape(
    lambda: create_model('tf_efficientnet_b0', num_classes=3, rngs=nnx.Rngs(0))
  )
  assert tf_model.bn_stem.epsilon == 1e-3


def test_dropout_acts_only_in_training(b0):
  model = b0
  x = jax.random.normal(jax.random.key(1), (2, 64, 64, 3))  # compiled above
  np.testing.assert_array_equal(_apply(model, x)[0], _apply(model, x)[0])
  assert model.dropout.rate == 0.2 and model.dropout.deterministic
  with pytest.raises(ValueError, match='scaling'):
    efficientnet.EfficientNet(scaling='b9', num_classes=3, rngs=nnx.Rngs(0))
