"""Building blocks shared by the jaxmix CNNs.

Convolutions without bias and with torch's symmetric padding, BatchNorm with
the papers' settings (torch momentum 0.1 = flax momentum 0.9, eps 1e-5), and
`CNNClassifier`, the base class that defines `logits = head(mean_{h,w}
features(x))` with the head in float32.

Running variances are updated with the biased batch variance (flax); torch
uses the unbiased one, a difference of a factor n / (n - 1) per channel.
"""

import jax
import jax.numpy as jnp
from flax import nnx

# torch's BatchNorm2d(momentum=0.1) keeps 0.9 of the old running average.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
# torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu').
CONV_INIT = nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal')
# torch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
HEAD_INIT = nnx.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


def conv(
  in_features: int,
  out_features: int,
  kernel_size: int,
  *,
  stride: int = 1,
  dtype: jnp.dtype,
  param_dtype: jnp.dtype,
  rngs: nnx.Rngs,
) -> nnx.Conv:
  """A bias-free square conv with torch's symmetric `kernel_size // 2` pad."""
  pad = kernel_size // 2
  return nnx.Conv(
    in_features,
    out_features,
    (kernel_size, kernel_size),
    strides=stride,
    padding=((pad, pad), (pad, pad)),
    use_bias=False,
    kernel_init=CONV_INIT,
    dtype=dtype,
    param_dtype=param_dtype,
    rngs=rngs,
  )


def batch_norm(
  features: int,
  *,
  zero_scale: bool = False,
  dtype: jnp.dtype,
  param_dtype: jnp.dtype,
  rngs: nnx.Rngs,
) -> nnx.BatchNorm:
  """BatchNorm with the papers' momentum and epsilon (torch defaults)."""
  ones, zeros = nnx.initializers.ones_init(), nnx.initializers.zeros_init()
  return nnx.BatchNorm(
    features,
    momentum=BN_MOMENTUM,
    epsilon=BN_EPSILON,
    scale_init=zeros if zero_scale else ones,
    dtype=dtype,
    param_dtype=param_dtype,
    rngs=rngs,
  )


def check_input(x: jax.Array, channels: int) -> None:
  """Raises if `x` is not a float `[B, H, W, channels]` batch."""
  shape = jnp.shape(x)
  if len(shape) != 4 or shape[-1] != channels:
    raise ValueError(
      f'`x` must be an image batch [B, H, W, {channels}], got shape {shape}.'
    )
  if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
    raise TypeError(
      f'`x` must be a float array (normalised images), got dtype '
      f'{jnp.result_type(x)}.'
    )


def pad_channels(x: jax.Array, channels: int) -> jax.Array:
  """Zero-pads the channel axis of `[B, H, W, C]` up to `channels`."""
  extra = channels - x.shape[-1]
  if extra == 0:
    return x
  return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, extra)))


class CNNClassifier(nnx.Module):
  """Base class: `logits = head(mean_{h,w} features(x))`, in float32."""

  head: nnx.Linear

  def features(self, x: jax.Array) -> jax.Array:
    raise NotImplementedError

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits.

    Args:
      x: float `[B, H, W, 3]`, already normalised.

    Returns:
      float32 `[B, num_classes]`.
    """
    pooled = jnp.mean(self.features(x).astype(jnp.float32), axis=(1, 2))
    return self.head(pooled)


def make_head(
  in_features: int, num_classes: int, param_dtype: jnp.dtype, rngs: nnx.Rngs
) -> nnx.Linear:
  """The classifier; computed in float32 so logits stay float32."""
  if num_classes < 1:
    raise ValueError(f'`num_classes` must be >= 1, got {num_classes}.')
  return nnx.Linear(
    in_features,
    num_classes,
    kernel_init=HEAD_INIT,
    dtype=jnp.float32,
    param_dtype=param_dtype,
    rngs=rngs,
  )


class DropPath(nnx.Module):
  """Stochastic depth: zeroes whole examples' residual branches.

  Kept examples are scaled by `1 / (1 - rate)`, so the expectation is kept.
  `deterministic` is switched by `model.train()` / `model.eval()`.
  """

  def __init__(self, rate: float, *, rngs: nnx.Rngs):
    if not 0.0 <= rate < 1.0:
      raise ValueError(f'`drop_path_rate` must be in [0, 1), got {rate}.')
    self.rate = rate
    self.deterministic = False
    self.rngs = rngs['dropout'].fork() if rate > 0 else nnx.data(None)

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.deterministic or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = jax.random.bernoulli(self.rngs(), keep, shape)
    return jnp.where(mask, x / keep, 0).astype(x.dtype)
