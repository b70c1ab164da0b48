"""Building blocks shared by the jaxmix CNNs.

Convolutions without bias and with torch's symmetric padding, BatchNorm with
the papers' settings (torch momentum 0.1 = flax momentum 0.9, eps 1e-5), and
`CNNClassifier`, the base class that defines `logits = head(mean_{h,w}
features(x))` with the head in float32.

Running variances: flax averages the biased batch variance into them,
torch the unbiased one (a factor n / (n - 1) per channel, n the values per
channel in the batch). `BatchNorm(unbiased_running_var=True)` follows
torch; `set_unbiased_running_var(model, True)` switches every BatchNorm of
a built model (a static attribute, like `model.train()`).
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


class BatchNorm(nnx.BatchNorm):
  """`nnx.BatchNorm` with torch's running-variance rule as an option.

  With `unbiased_running_var=True` a training call updates the running
  variance with the unbiased batch variance, `var * n / (n - 1)`, as
  torch's `BatchNorm2d` does; the normalisation itself (the biased batch
  variance) and the running mean are flax's. Masks are not supported then.
  """

  def __init__(self, *args, unbiased_running_var: bool = False, **kwargs):
    super().__init__(*args, **kwargs)
    self.unbiased_running_var = unbiased_running_var

  def __call__(self, x, use_running_average=None, *, mask=None):
    running = (
      self.use_running_average
      if use_running_average is None
      else use_running_average
    )
    if running or not self.unbiased_running_var:
      return super().__call__(x, use_running_average, mask=mask)
    if mask is not None:
      raise ValueError('unbiased_running_var does not support `mask`.')
    before = self.var[...]
    y = super().__call__(x, use_running_average, mask=mask)
    n = x.size // x.shape[-1]  # values per channel (feature axis last)
    if n > 1:
      # flax left m * before + (1 - m) * var; torch's rule scales var.
      kept = self.momentum * before
      self.var[...] = jax.lax.stop_gradient(
        kept + (self.var[...] - kept) * (n / (n - 1))
      )
    return y


def set_unbiased_running_var(model: nnx.Module, on: bool = True) -> int:
  """Sets torch's (True) or flax's (False) running-variance rule.

  Args:
    model: a built model; every `BatchNorm` of this module is switched.
    on: the rule.

  Returns:
    The number of BatchNorms switched.

  Raises:
    ValueError: `on` for a model with a BatchNorm that has no such option
      (a plain `nnx.BatchNorm`).
  """
  count = 0
  for _, module in nnx.iter_modules(model):
    if isinstance(module, BatchNorm):
      module.unbiased_running_var = bool(on)
      count += 1
    elif on and isinstance(module, nnx.BatchNorm):
      raise ValueError(
        f'{type(model).__name__} has a plain nnx.BatchNorm; '
        'unbiased_running_var needs jaxmix.models.layers.BatchNorm.'
      )
  return count


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
  return BatchNorm(
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
