"""VideoMix: CutMix for videos ``[B, T, H, W, C]``, in three region shapes.

A region of each partner video replaces the same region of the example's
own video, and the labels mix by the exact fraction of voxels kept. The
region is one of the VideoMix paper's three shapes:

- `'spatial'`: a box through all frames;
- `'temporal'`: a span of whole frames;
- `'cuboid'`: a box over a span of frames (spatio-temporal).

The paper's definition (Yun et al. 2020, Sec. 3): a binary voxel mask `M`
over `T x H x W` that is 1 inside one cuboid `C = (t1, t2, y1, y2, x1, x2)`,
the mixed video `M * partner + (1 - M) * own`, the labels mixed by the voxel
shares; spatial VideoMix fixes `(t1, t2) = (0, T)`, temporal VideoMix fixes
the box to the whole frame, spatio-temporal VideoMix draws all six, each cut
axis drawn as CutMix draws a box side (a side from lambda, a uniform
centre, clipping at the border). This summary was checked against the
abstract (labels mixed by voxel shares) and third-party implementations,
not against the equations of Sec. 3 themselves.

The exact rule here: `lambda ~ Beta(alpha, alpha)`; the `d` cut axes
(`d` = 2 spatial, 1 temporal, 3 cuboid) share one side ratio
`r = (1 - lambda) ** (1 / d)` (`sqrt` as in CutMix for `'spatial'`,
`1 - lambda` itself for `'temporal'`, the cube root for `'cuboid'`), so
the nominal region is
`1 - lambda` of the video's volume; each cut side is `floor(N * r)` for an
axis of `N` voxels, its integer centre uniform over `0 .. N - 1`, and the
region `[centre - side // 2, centre + side // 2)` clipped to `[0, N)`; an
axis not cut is spanned whole. One lambda and one centre per axis are drawn
per batch, or per example with `per_example`. Clipping makes the region
smaller than nominal, and the label weight is always the exact kept-voxel
fraction `1 - |region| / (T H W)`, never lambda. As Beta(alpha, alpha) is
symmetric, pasting `1 - lambda` (CutMix's convention) or `lambda` of the
volume is the same law.

The partner rule, gates and draw granularity are those of `jaxmix.cutmix`.
Like CutMix, VideoMix only selects, so uint8 videos are accepted.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxmix._src import boxes as boxes_lib
from jaxmix._src import checks, draws, mixing
from jaxmix._src.knobs import takes

Array = jax.Array

MODES = ('spatial', 'temporal', 'cuboid')
# The axes each mode cuts: (time, space).
_CUTS = {
  'spatial': (False, True),
  'temporal': (True, False),
  'cuboid': (True, True),
}


def _centred_span(key: Array, length: Array, size: int, shape) -> Array:
  """`(start, stop)` of `centre +- length // 2`, clipped, centre uniform."""
  centre = jax.random.randint(key, shape, 0, size)
  half = length // 2
  return jnp.clip(centre - half, 0, size), jnp.clip(centre + half, 0, size)


@takes('alpha', 'prob', 'per_example', 'axis_name')
def sample_videomix(
  key: Array,
  *,
  batch_size: int,
  num_frames: int,
  height: int,
  width: int,
  mode: str = 'cuboid',
  **knobs,
) -> draws.MixDraw:
  """Samples what `videomix` draws: the region, the partners, the weight.

  Args:
    key: a PRNG key.
    batch_size: B, at least 2. Static.
    num_frames: T. Static.
    height: frame height H. Static.
    width: frame width W. Static.
    alpha, prob, per_example, axis_name: the shared knobs of
      `jaxmix._src.knobs`.
    mode: `'spatial'`, `'temporal'` or `'cuboid'` (module docstring). Static.

  Returns:
    A video `MixDraw` (box on H x W, `frames` on T, `blend == 1`) whose
    `weight` is the exact kept-voxel fraction (1 where not mixed).

  Examples:
    >>> import jax
    >>> draw = sample_videomix(jax.random.key(0), batch_size=2,
    ...     num_frames=8, height=8, width=8, mode='temporal')
    >>> int(draw.box.bottom[0]), draw.num_frames
    (8, 8)
  """
  checks.check_key(key)
  if mode not in MODES:
    raise ValueError(f'`mode` must be one of {MODES}, got {mode!r}.')
  sizes = {'num_frames': num_frames, 'height': height, 'width': width}
  for name, size in sizes.items():
    checks.check_int(name, size)
  shape, keys = mixing.start_draw(key, batch_size, knobs, num_keys=6)
  key_weight, key_gate, key_t, key_y, key_x, key_partners = keys
  lam = mixing.sample_mix_weight(key_weight, alpha=knobs['alpha'], shape=shape)
  cut_time, cut_space = _CUTS[mode]
  ratio = jnp.clip(1.0 - lam, 0.0, 1.0) ** (1.0 / (cut_time + 2 * cut_space))
  full = jnp.zeros(shape, jnp.int32)

  def side(size):
    return jnp.floor(size * ratio).astype(jnp.int32)

  if cut_time:
    start, stop = _centred_span(key_t, side(num_frames), num_frames, shape)
  else:
    start, stop = full, full + num_frames
  if cut_space:
    top, bottom = _centred_span(key_y, side(height), height, shape)
    left, right = _centred_span(key_x, side(width), width, shape)
  else:
    top, left, bottom, right = full, full, full + height, full + width
  apply = mixing.gate(key_gate, knobs['prob'], shape)
  # Not mixed: an empty span empties the region in every mode.
  stop = jnp.where(apply, stop, start)
  box = boxes_lib.Box(top, left, bottom, right)
  volume = boxes_lib.box_area(box) * jnp.maximum(stop - start, 0)
  weight = 1.0 - volume.astype(jnp.float32) / (num_frames * height * width)
  return draws.make_draw(
    weight=weight,
    partners=mixing.sample_partners(key_partners, batch_size=batch_size),
    box=box,
    frames=draws.Span(start, stop),
    **sizes,
  )


@takes(sample_videomix, 'num_classes', 'smoothing')
def videomix(
  key: Array, videos: ArrayLike, labels: ArrayLike, **knobs
) -> tuple[Array, Array]:
  """VideoMix: pastes a region of each partner video, mixes labels by volume.

  See the module docstring for the three modes and the sampling rule;
  `sample_videomix` with the same key returns the draw (to mix masks or
  per-frame labels alike with `jaxmix.apply_draw`).

  Args:
    key: a PRNG key.
    videos: float or uint8 ``[B, T, H, W, C]``.
    labels: dense float ``[B, K]``, or integer ``[B]`` with `num_classes`.
    alpha, prob, per_example, num_classes, smoothing, axis_name: the shared
      knobs of `jaxmix._src.knobs`.
    mode: `'spatial'`, `'temporal'` or `'cuboid'`. Static.

  Returns:
    `(videos, labels)`: videos with the input shape and dtype, labels dense
    ``[B, K]`` (of the input dtype when dense).

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> v, y = jnp.zeros((2, 4, 8, 8, 3), jnp.uint8), jnp.array([0, 1])
    >>> v2, y2 = videomix(jax.random.key(0), v, y, num_classes=2)
    >>> v2.dtype, y2.sum(-1).tolist()
    (dtype('uint8'), [1.0, 1.0])

  References:
    Yun et al., VideoMix: Rethinking Data Augmentation for Video
    Classification, https://arxiv.org/abs/2012.03457
  """
  labels = mixing.op_inputs(
    key, videos, labels, knobs, name='videos', layout=checks.VIDEO_LAYOUT
  )
  batch_size, num_frames, height, width, _ = jnp.shape(videos)
  draw = sample_videomix(
    key,
    batch_size=batch_size,
    num_frames=num_frames,
    height=height,
    width=width,
    **knobs,
  )
  return draws.apply_draw((videos, labels), draw, roles=('mask', 'target'))
