"""Saliency-guided CutMix (SaliencyMix's rule): the box on the partner's peak.

SaliencyMix (Uddin et al., ICLR 2021) keeps CutMix's box size and label
rule but places the box where the *source* image is most salient: the box
is centred on the peak of the partner's saliency map and pasted at the same
place in the example, so the pasted patch holds the partner's object rather
than, often, its background.

Saliency is the caller's: any non-negative map ``[B, h, w]`` per example, at
any resolution, that the training step already has or computes cheaply, for
example a class activation map of the previous step's forward pass, the
norm of the input gradient, or a static saliency detector on the host (the
paper used OpenCV's fine-grained static saliency). Its peak cell maps to the
image pixel under the cell's centre, `y = floor((i + 0.5) * H / h)`.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mixing
from jaxmix._src.knobs import takes

Array = jax.Array


def salient_peaks(saliency: ArrayLike, *, height: int, width: int) -> Array:
  """The image pixel under each map's peak cell (the first on ties).

  Args:
    saliency: float ``[B, h, w]``.
    height: image height H. Static.
    width: image width W. Static.

  Returns:
    int32 ``[B, 2]``, `(y, x)` pixel coordinates of each peak.

  Examples:
    >>> import jax.numpy as jnp
    >>> s = jnp.zeros((1, 2, 2)).at[0, 1, 0].set(1.0)
    >>> salient_peaks(s, height=8, width=8).tolist()
    [[6, 2]]
  """
  saliency = jnp.asarray(saliency)
  if saliency.ndim != 3:
    raise ValueError(
      f'`saliency` must be [B, h, w], got shape {saliency.shape}.'
    )
  _, rows, cols = saliency.shape
  peak = jnp.argmax(saliency.reshape(saliency.shape[0], -1), axis=-1)
  row, col = peak // cols, peak % cols
  y = ((2 * row + 1) * height) // (2 * rows)
  x = ((2 * col + 1) * width) // (2 * cols)
  return jnp.stack([y, x], axis=-1).astype(jnp.int32)


@takes('alpha', 'prob', 'per_example', 'axis_name')
def sample_saliency_cutmix(
  key: Array, saliency: ArrayLike, *, height: int, width: int, **knobs
) -> draws.MixDraw:
  """Samples SaliencyMix's draw: CutMix's size, the partner's peak as centre.

  Args:
    key: a PRNG key.
    saliency: non-negative float ``[B, h, w]``, each example's own map,
      B >= 2.
    height: image height H. Static.
    width: image width W. Static.
    alpha, prob, axis_name: the shared knobs of
      `jaxmix._src.knobs`.
    per_example: one lambda and gate per example (the box is always per
      example: each partner has its own peak). Static.

  Returns:
    A `MixDraw` with `blend == 1` and the kept-pixel fraction as weight.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> s = jnp.zeros((2, 4, 4)).at[:, 0, 0].set(1.0)
    >>> draw = sample_saliency_cutmix(jax.random.key(0), s, height=8,
    ...                               width=8)
    >>> int(draw.box.top.min()), int(draw.box.left.min())
    (0, 0)
  """
  checks.check_key(key)
  saliency = jnp.asarray(saliency)
  peaks = salient_peaks(saliency, height=height, width=width)
  batch_size = saliency.shape[0]
  checks.check_batch_size(batch_size, name='saliency.shape[0]')
  shape, (key_weight, key_gate, key_partners) = mixing.start_draw(
    key, batch_size, knobs, num_keys=3
  )
  lam = mixing.sample_mix_weight(key_weight, alpha=knobs['alpha'], shape=shape)
  lam = jnp.broadcast_to(lam, (batch_size,))
  ratio = jnp.sqrt(jnp.clip(1.0 - lam, 0.0, 1.0))
  partners = mixing.sample_partners(key_partners, batch_size=batch_size)
  box = boxes_lib.centered_box(
    peaks[partners, 0],
    peaks[partners, 1],
    cut_height=jnp.floor(height * ratio).astype(jnp.int32),
    cut_width=jnp.floor(width * ratio).astype(jnp.int32),
    height=height,
    width=width,
  )
  apply = jnp.broadcast_to(
    mixing.gate(key_gate, knobs['prob'], shape), (batch_size,)
  )
  return mixing.box_draw(box, apply, partners, height=height, width=width)


@takes(sample_saliency_cutmix, 'num_classes', 'smoothing')
def saliency_cutmix(
  key: Array,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  saliency: ArrayLike,
  **knobs,
) -> tuple[Array, Array]:
  """Saliency-guided CutMix: the partner's most salient box, labels by area.

  See the module docstring for the rule and for where saliency comes from.

  Args:
    key: a PRNG key.
    images: float or uint8 ``[B, H, W, C]``.
    labels: dense float ``[B, K]``, or integer ``[B]`` with `num_classes`.
    saliency: non-negative float ``[B, h, w]`` of each example's own image,
      at any resolution.
    alpha: 1.0 in the paper.
    prob, per_example, num_classes, smoothing, axis_name: the shared knobs
      of `jaxmix._src.knobs`.

  Returns:
    `(images, labels)`: images with the input shape and dtype, labels dense
    ``[B, K]``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x, y = jnp.ones((2, 8, 8, 3)), jnp.eye(2)
    >>> s = jnp.ones((2, 4, 4))
    >>> x2, y2 = saliency_cutmix(jax.random.key(0), x, y, saliency=s)
    >>> y2.sum(-1).tolist()
    [1.0, 1.0]

  References:
    Uddin et al., SaliencyMix: A Saliency Guided Data Augmentation Strategy
    for Better Regularization, https://arxiv.org/abs/2006.01791
  """
  labels = mixing.op_inputs(key, images, labels, knobs)
  batch_size, height, width, _ = jnp.shape(images)
  if jnp.ndim(saliency) != 3 or jnp.shape(saliency)[0] != batch_size:
    raise ValueError(
      f'`saliency` must be [B, h, w] with B = {batch_size}, got shape '
      f'{jnp.shape(saliency)}.'
    )
  draw = sample_saliency_cutmix(
    key, saliency, height=height, width=width, **knobs
  )
  return draws.apply_draw((images, labels), draw, roles=('mask', 'target'))
