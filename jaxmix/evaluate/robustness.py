"""Robustness protocols of the CutMix paper: occlusion, in-between class, FGSM.

Yun et al., "CutMix", ICCV 2019, section "Robustness and uncertainty". Every
function takes a `logits_fn(images) -> logits [B, K]` on *normalised* images
(e.g. a model in eval mode), images `[B, H, W, C]` in *pixel* space (0..255
floats), and an optional `normalize_fn` (pixel -> model input, e.g.
`(x - mean) / std`). Perturbations are applied in pixel space, so hole fill
values and FGSM's epsilon are pixel values. All functions are pure JAX: wrap
them in `jax.jit` with `functools.partial` over `logits_fn` and the static
arguments. Results are `jaxmix.evaluate.metrics.Tally` counts with one entry
per hole size / mixing weight / epsilon; padded batches pass `mask`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix.evaluate.metrics import Tally

LogitsFn = Callable[[jax.Array], jax.Array]
OCCLUSION_MODES = ('center', 'boundary')
IN_BETWEEN_METHODS = ('mixup', 'cutmix')


def _identity(x: jax.Array) -> jax.Array:
  return x


def _check(images: ArrayLike, labels: ArrayLike, mask: ArrayLike | None):
  images, labels = jnp.asarray(images), jnp.asarray(labels)
  if images.ndim != 4 or not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(
      f'`images` must be float [B, H, W, C] pixels, got shape {images.shape} '
      f'and dtype {images.dtype}.'
    )
  batch = images.shape[0]
  if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
      f'`labels` must be int [B] = ({batch},), got shape {labels.shape} and '
      f'dtype {labels.dtype}.'
    )
  if mask is None:
    mask = jnp.ones((batch,), bool)
  mask = jnp.asarray(mask)
  if mask.shape != (batch,):
    raise ValueError(f'`mask` must be [B] = ({batch},), got {mask.shape}.')
  return images, labels, mask.astype(bool)


def _values(name: str, values: ArrayLike) -> jax.Array:
  values = jnp.asarray(values)
  if values.ndim > 1:
    raise ValueError(f'`{name}` must be a scalar or 1-D, got {values.shape}.')
  return values.reshape(-1)


def _count(hit: jax.Array, valid: jax.Array):
  return jnp.sum(hit & valid, dtype=jnp.int32)


def occlusion_mask(
  size: ArrayLike, *, height: int, width: int, mode: str
) -> jax.Array:
  """True on the pixels that the occlusion fills.

  'center': a centred `size x size` square hole (top-left corner at
  `((H - size) // 2, (W - size) // 2)`), the paper's centre occlusion.
  'boundary': everything except that centred square, the paper's boundary
  occlusion. Size 0 leaves the image intact ('center') or fills all of it
  ('boundary'); size >= max(H, W) the reverse.

  Args:
    size: the square's side in pixels, an int scalar (may be traced).
    height: H. Static.
    width: W. Static.
    mode: 'center' or 'boundary'.

  Returns:
    bool `[H, W]`.
  """
  if mode not in OCCLUSION_MODES:
    raise ValueError(f'`mode` must be one of {OCCLUSION_MODES}, got {mode!r}.')
  size = jnp.asarray(size, jnp.int32)
  top, left = (height - size) // 2, (width - size) // 2
  box = boxes_lib.Box(
    jnp.clip(top, 0, height),
    jnp.clip(left, 0, width),
    jnp.clip(top + size, 0, height),
    jnp.clip(left + size, 0, width),
  )
  inside = boxes_lib.box_mask(box, height=height, width=width)
  return inside if mode == 'center' else ~inside


def occlusion_tally(
  logits_fn: LogitsFn,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  sizes: ArrayLike,
  mode: str,
  mask: ArrayLike | None = None,
  normalize_fn: LogitsFn | None = None,
  fill_value: float = 0.0,
) -> Tally:
  """Top-1 counts on centre- or boundary-occluded images, per hole size.

  CutMix paper: "center occlusion by filling zeros in a center hole and
  boundary occlusion by filling zeros in the boundary region", hole sizes
  0..224 on 224 x 224 validation crops. The fill is `fill_value` in pixel
  space (0 = black). If the paper filled zeros after normalisation, that is
  the mean colour: pass `fill_value` = the mean pixel to reproduce it.

  Args:
    logits_fn: normalised images -> logits `[B, K]`.
    images: float `[B, H, W, C]` pixels.
    labels: int `[B]`.
    sizes: int `[S]` square sides (may be traced; one compilation for all).
    mode: 'center' or 'boundary' (static).
    mask: bool `[B]`, False on padding.
    normalize_fn: pixels -> model input; identity if None.
    fill_value: the pixel value written into the occluded region.

  Returns:
    `Tally` of int32 `[S]` arrays.
  """
  images, labels, valid = _check(images, labels, mask)
  normalize_fn = normalize_fn or _identity
  _, height, width, _ = images.shape

  def correct(size):
    hole = occlusion_mask(size, height=height, width=width, mode=mode)
    occluded = jnp.where(hole[None, :, :, None], fill_value, images)
    pred = jnp.argmax(logits_fn(normalize_fn(occluded)), axis=-1)
    return _count(pred == labels, valid)

  sizes = _values('sizes', sizes).astype(jnp.int32)
  total = jnp.sum(valid, dtype=jnp.int32)
  return Tally(jax.lax.map(correct, sizes), jnp.full(sizes.shape, total))


def _cutmix_box(key: jax.Array, weight, batch: int, height: int, width: int):
  """A box of area ~(1 - weight) * H * W, placed uniformly inside the image."""
  side = jnp.sqrt(1.0 - weight)
  cut_h = jnp.round(height * side).astype(jnp.int32)
  cut_w = jnp.round(width * side).astype(jnp.int32)
  key_y, key_x = jax.random.split(key)
  top = jax.random.randint(key_y, (batch,), 0, height - cut_h + 1)
  left = jax.random.randint(key_x, (batch,), 0, width - cut_w + 1)
  return boxes_lib.Box(top, left, top + cut_h, left + cut_w)


def in_between_tally(
  logits_fn: LogitsFn,
  images: ArrayLike,
  labels: ArrayLike,
  partners: ArrayLike,
  *,
  weights: ArrayLike,
  method: str,
  key: jax.Array | None = None,
  mask: ArrayLike | None = None,
  normalize_fn: LogitsFn | None = None,
) -> dict[str, Tally]:
  """Top-1 counts on in-between-class (Mixup-ed / CutMix-ed) images.

  The CutMix paper evaluates validation images mixed with another class at
  fixed mixing ratios. Image `i` is mixed with image `partners[i]`; `weights`
  are the shares λ of image `i`:

  - 'mixup': `λ x_i + (1 - λ) x_p`.
  - 'cutmix': `x_i` with a box of `round(H sqrt(1 - λ)) x round(W sqrt(1 -
    λ))` pixels pasted from `x_p`, placed uniformly inside the image (never
    clipped, so the pasted share is 1 - λ up to rounding), drawn from `key`.

  Pairs of the same class (and padded images or partners) are excluded. The
  paper does not spell out the counting rule, so three are returned: 'either'
  (prediction is one of the two classes), 'own' (the class of `x_i`, weight
  λ) and 'partner' (the class of `x_p`). `partners` can come from
  `jaxmix.sample_partners` or be a fixed shift such as `(i + 1) % B` of a
  shuffled split.

  Args:
    logits_fn: normalised images -> logits `[B, K]`.
    images: float `[B, H, W, C]` pixels.
    labels: int `[B]`.
    partners: int `[B]`.
    weights: λ values `[L]` in [0, 1] (may be traced).
    method: 'mixup' or 'cutmix' (static).
    key: PRNG key for the CutMix box positions (required for 'cutmix').
    mask: bool `[B]`, False on padding.
    normalize_fn: pixels -> model input; identity if None.

  Returns:
    {'either', 'own', 'partner'} -> `Tally` of int32 `[L]` arrays.
  """
  images, labels, valid = _check(images, labels, mask)
  if method not in IN_BETWEEN_METHODS:
    raise ValueError(
      f'`method` must be one of {IN_BETWEEN_METHODS}, got {method!r}.'
    )
  if method == 'cutmix' and key is None:
    raise ValueError("`key` is required for method='cutmix'.")
  batch, height, width, _ = images.shape
  partners = jnp.asarray(partners)
  if partners.shape != (batch,):
    raise ValueError(
      f'`partners` must be [B] = ({batch},), got shape {partners.shape}.'
    )
  normalize_fn = normalize_fn or _identity
  other = labels[partners]
  valid = valid & valid[partners] & (other != labels)
  weights = _values('weights', weights).astype(jnp.float32)

  def correct(index_and_weight):
    index, weight = index_and_weight
    if method == 'mixup':
      mixed = weight * images + (1.0 - weight) * images[partners]
    else:
      box = _cutmix_box(
        jax.random.fold_in(key, index), weight, batch, height, width
      )
      pasted = boxes_lib.box_mask(box, height=height, width=width)
      mixed = jnp.where(pasted[..., None], images[partners], images)
    pred = jnp.argmax(logits_fn(normalize_fn(mixed)), axis=-1)
    own, partner = pred == labels, pred == other
    return tuple(_count(h, valid) for h in (own | partner, own, partner))

  indices = jnp.arange(weights.shape[0])
  either, own, partner = jax.lax.map(correct, (indices, weights))
  total = jnp.full(weights.shape, jnp.sum(valid, dtype=jnp.int32))
  return {
    'either': Tally(either, total),
    'own': Tally(own, total),
    'partner': Tally(partner, total),
  }


def fgsm_images(
  logits_fn: LogitsFn,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  epsilon: ArrayLike,
  normalize_fn: LogitsFn | None = None,
  pixel_range: tuple[float, float] = (0.0, 255.0),
) -> jax.Array:
  """One FGSM step in pixel space (Goodfellow et al. 2015).

  `x_adv = clip(x + epsilon * sign(d CE(logits_fn(normalize_fn(x)), y) / d
  x), *pixel_range)`, with the gradient of the (untargeted) cross-entropy of
  the true labels. Epsilon is in pixel units (8/255 of the [0, 1] range is 8
  here). Pixels with a zero gradient do not move.

  Args:
    logits_fn: normalised images -> logits `[B, K]`.
    images: float `[B, H, W, C]` pixels.
    labels: int `[B]`.
    epsilon: the step size in pixels, a scalar (may be traced).
    normalize_fn: pixels -> model input; identity if None.
    pixel_range: the clip range of valid pixels.

  Returns:
    float `[B, H, W, C]` adversarial pixels.
  """
  images, labels, _ = _check(images, labels, None)
  return _fgsm(logits_fn, images, labels, normalize_fn, pixel_range)(epsilon)


def _fgsm(logits_fn, images, labels, normalize_fn, pixel_range):
  normalize_fn = normalize_fn or _identity

  def loss(x):
    logp = jax.nn.log_softmax(logits_fn(normalize_fn(x)).astype(jnp.float32))
    # A sum, so each example's gradient ignores the rest of the batch.
    return -jnp.sum(jnp.take_along_axis(logp, labels[:, None], axis=-1))

  direction = jnp.sign(jax.grad(loss)(images))
  low, high = pixel_range
  return lambda eps: jnp.clip(images + eps * direction, low, high)


def fgsm_tally(
  logits_fn: LogitsFn,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  epsilons: ArrayLike,
  mask: ArrayLike | None = None,
  normalize_fn: LogitsFn | None = None,
  pixel_range: tuple[float, float] = (0.0, 255.0),
) -> Tally:
  """Top-1 counts on FGSM images, one entry per epsilon (one gradient).

  The CutMix paper reports top-1 accuracy of ImageNet models under FGSM;
  pick its epsilon from the paper (not restated here) and pass it in pixel
  units.

  Args:
    logits_fn, images, labels, normalize_fn, pixel_range: as in `fgsm_images`.
    epsilons: `[E]` step sizes in pixels (or a scalar).
    mask: bool `[B]`, False on padding.

  Returns:
    `Tally` of int32 `[E]` arrays.
  """
  images, labels, valid = _check(images, labels, mask)
  attack = _fgsm(logits_fn, images, labels, normalize_fn, pixel_range)
  normalize_fn = normalize_fn or _identity

  def correct(eps):
    pred = jnp.argmax(logits_fn(normalize_fn(attack(eps))), axis=-1)
    return _count(pred == labels, valid)

  epsilons = _values('epsilons', epsilons).astype(jnp.float32)
  total = jnp.full(epsilons.shape, jnp.sum(valid, dtype=jnp.int32))
  return Tally(jax.lax.map(correct, epsilons), total)
