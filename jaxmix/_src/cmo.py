"""CMO (Park et al., CVPR 2022): minority images pasted onto the main stream.

Context-rich Minority Oversampling trains a long-tailed classifier on two
streams: the usual, instance-balanced batches, and a second stream that
oversamples rare classes. With probability `prob` (0.5) a CutMix box of each
minority image is pasted onto the main image at the same place, and the
labels mix by area, so a rare object appears in the varied contexts of the
frequent classes' images.

The second stream's rule (the official `get_weighted_sampler`): every
training example of class `c` is drawn, with replacement, with weight
`1 / n_c ** alpha` (`alpha = 1`), so class `c` as a whole is drawn with
probability proportional to `n_c ** (1 - alpha)`: uniform over classes for
`alpha = 1`. The input pipeline computes these weights on the host
(`jaxmix.data.minority`); `sample_minority_indices` draws from them on the
device. The official recipe runs CMO in the epochs `3 < epoch < E - 3`
(0-based; the trainer's `jaxmix.train.augment_schedule.cmo_active`).

Pairing is by position: example `i` of the main batch takes its box from
example `i` of the minority batch: `sample_cmo`'s draw has the identity as
partners, and `jaxmix.apply_draw` takes the minority batch as its
`partner_tree`.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mixing
from jaxmix._src.knobs import takes

Array = jax.Array


def sample_minority_indices(
  key: Array, weights: ArrayLike, *, num_samples: int
) -> Array:
  """Draws dataset indices with replacement by `weights`.

  Args:
    key: a PRNG key (e.g. `fold_in(seed_key, step)` for a resumable stream).
    weights: float ``[N]``, e.g. `jaxmix.data.minority.minority_example_weights`.
    num_samples: how many indices. Static.

  Returns:
    int32 ``[num_samples]`` indices into the dataset.

  Examples:
    >>> import jax
    >>> idx = sample_minority_indices(jax.random.key(0), [0.0, 1.0],
    ...                               num_samples=3)
    >>> idx.tolist()
    [1, 1, 1]
  """
  checks.check_key(key)
  weights = jnp.asarray(weights, jnp.float32)
  if weights.ndim != 1:
    raise ValueError(f'`weights` must be [N], got shape {weights.shape}.')
  picks = jax.random.categorical(key, jnp.log(weights), shape=(num_samples,))
  return picks.astype(jnp.int32)


@takes('alpha', 'prob', 'per_example', 'axis_name', prob=0.5)
def sample_cmo(
  key: Array, *, batch_size: int, height: int, width: int, **knobs
) -> draws.MixDraw:
  """Samples what `cmo` draws: the box and the gate (partners by position).

  Args:
    key: a PRNG key.
    batch_size: B (one example is fine: the partner is the minority
      example). Static.
    height: image height H. Static.
    width: image width W. Static.
    alpha, prob, per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.

  Returns:
    A `MixDraw` with identity partners, `blend == 1` and the kept-pixel
    fraction as weight; apply it with `partner_tree` = the minority batch.

  Examples:
    >>> import jax
    >>> draw = sample_cmo(jax.random.key(0), batch_size=2, height=8, width=8)
    >>> draw.partners.tolist()
    [0, 1]
  """
  shape, (key_weight, key_box, key_gate) = mixing.start_draw(
    key, batch_size, knobs, num_keys=3, within_batch=False
  )
  lam = mixing.sample_mix_weight(key_weight, alpha=knobs['alpha'], shape=shape)
  box = boxes_lib.sample_cutmix_box(
    key_box, height=height, width=width, weight=lam
  )
  apply = mixing.gate(key_gate, knobs['prob'], shape)
  partners = jnp.arange(batch_size, dtype=jnp.int32)
  return mixing.box_draw(box, apply, partners, height=height, width=width)


@takes(sample_cmo)
def cmo(
  key: Array,
  images: ArrayLike,
  labels: ArrayLike,
  minority_images: ArrayLike,
  minority_labels: ArrayLike,
  **knobs,
) -> tuple[Array, Array]:
  """Pastes a CutMix box of each minority image onto the main image.

  `lambda ~ Beta(alpha, alpha)` and the box follow `jaxmix.sample_cutmix_box`;
  inside the box example `i` shows `minority_images[i]`, and its labels are
  `w * labels[i] + (1 - w) * minority_labels[i]` with `w` the exact
  kept-pixel fraction. Only selects, so uint8 images are accepted.

  Args:
    key: a PRNG key.
    images: float or uint8 ``[B, H, W, C]``, the main (instance-balanced)
      batch.
    labels: dense float ``[B, K]``.
    minority_images: ``[B, H, W, C]`` from the minority stream, same dtype.
    minority_labels: dense float ``[B, K]``.
    alpha: 1 in the paper.
    prob: probability of pasting; 0.5 in the paper.
    per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.

  Returns:
    `(images, labels)` with the main batch's shapes and dtypes.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x, y = jnp.zeros((2, 8, 8, 1)), jnp.eye(3)[:2]
    >>> xm, ym = jnp.ones((2, 8, 8, 1)), jnp.eye(3)[jnp.array([2, 2])]
    >>> x2, y2 = cmo(jax.random.key(0), x, y, xm, ym, prob=1.0)
    >>> bool(jnp.allclose(y2[:, 2], x2.mean((1, 2, 3))))  # pasted share
    True

  References:
    Park et al., The Majority Can Help the Minority: Context-rich Minority
    Oversampling for Long-tailed Classification,
    https://arxiv.org/abs/2112.00412
  """
  checks.check_key(key)
  checks.check_select_batch(images, labels)
  checks.check_select_batch(
    minority_images, minority_labels, name='minority_images'
  )
  images, minority_images = jnp.asarray(images), jnp.asarray(minority_images)
  if (
    minority_images.shape != images.shape
    or minority_images.dtype != images.dtype
    or jnp.shape(minority_labels) != jnp.shape(labels)
  ):
    raise ValueError(
      '`minority_images` and `minority_labels` must match the main batch, '
      f'got {minority_images.shape} {minority_images.dtype} and '
      f'{jnp.shape(minority_labels)} for {images.shape} {images.dtype} and '
      f'{jnp.shape(labels)}.'
    )
  batch_size, height, width, _ = images.shape
  draw = sample_cmo(
    key, batch_size=batch_size, height=height, width=width, **knobs
  )
  return draws.apply_draw(
    (images, labels),
    draw,
    roles=('mask', 'target'),
    partner_tree=(minority_images, minority_labels),
  )
