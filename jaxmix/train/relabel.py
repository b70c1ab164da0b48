"""ReLabel targets inside the train step, from label maps in the batch.

The host joins every train batch with its label maps
(`jaxmix.data.label_maps.join`), so the device batch carries, beside 'image',
'label', 'crop_box' and 'flip':

  'label_map_scores'   float16 `[B, S, S, k]`  top-k annotator logits
  'label_map_indices'  uint16  `[B, S, S, k]`  their class ids
  'label_map_found'    bool    `[B]`           False where the store had none

`create_targets_fn` turns these into dense targets with
`jaxmix.relabel_targets` (RoIAlign over each crop box, softmax over all K
classes), per device shard under `jaxmix.per_shard`.

Examples without a map (stores opened with `missing='one_hot'`) get a
stand-in map: their label in every cell with logit `MISSING_LOGIT` = 1e4.
Its ReLabel target is exactly their one-hot label (`exp(-1e4 / T)` is 0 in
float32 for any temperature T <= 100), and the same stand-in flows through
the localised ReLabel + CutMix, whose regions then carry one-hot labels too.

Label smoothing: `config.label_smoothing` is applied to every target, by
`jaxmix.smooth_labels`. The official ReLabel code applies it only inside its
CutMix function (so a ReLabel-only run silently ignores it); because
smoothing is affine, smoothing before or after CutMix gives the same
targets, so with CutMix on the two agree exactly, and without CutMix jaxmix
smooths where the official code does not. The official recipes use 0.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

import jaxmix

MAP_KEYS = ('label_map_scores', 'label_map_indices', 'label_map_found')
MISSING_LOGIT = 1e4

Batch = dict[str, jax.Array]
Maps = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


@dataclasses.dataclass(frozen=True)
class RelabelSettings:
  """The static ReLabel settings of a run (from `config.relabel`).

  Attributes:
    num_classes: K.
    official_box_order: pool the official code's (y, x)-swapped region.
    temperature: softmax temperature of the pooled logits, > 0.
    label_smoothing: smoothing applied to the targets, in [0, 1).
  """

  num_classes: int
  official_box_order: bool = False
  temperature: float = 1.0
  label_smoothing: float = 0.0

  @classmethod
  def from_config(cls, config) -> 'RelabelSettings':
    """Settings of a trainer config (`config.relabel`, `label_smoothing`)."""
    return cls(
      num_classes=config.data.num_classes,
      official_box_order=bool(config.relabel.official_box_order),
      temperature=float(config.relabel.temperature),
      label_smoothing=float(config.label_smoothing),
    )


def filled_maps(
  scores: jax.Array, indices: jax.Array, found: jax.Array, labels: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """The batch's maps with a one-hot stand-in where `found` is False.

  Args:
    scores: float `[B, S, S, k]` stored top-k logits.
    indices: integer `[B, S, S, k]` their class ids.
    found: bool `[B]`.
    labels: int `[B]` the examples' labels.

  Returns:
    float32 scores and int32 indices, `[B, S, S, k]`.
  """
  keep = found.astype(bool)[:, None, None, None]
  stand_in = jnp.zeros(scores.shape, jnp.float32).at[..., 0].set(MISSING_LOGIT)
  label_ids = jnp.broadcast_to(
    labels.astype(jnp.int32)[:, None, None, None], indices.shape
  )
  return (
    jnp.where(keep, scores.astype(jnp.float32), stand_in),
    jnp.where(keep, indices.astype(jnp.int32), label_ids),
  )


def check_batch(batch: Batch) -> None:
  """Raises ValueError when the batch lacks the keys ReLabel needs."""
  needed = (*MAP_KEYS, 'crop_box', 'flip', 'label')
  absent = [k for k in needed if k not in batch]
  if absent:
    raise ValueError(
      f'ReLabel needs batch keys {list(needed)}; missing {absent}. Join the '
      'train iterator with jaxmix.data.label_maps.join.join_label_maps.'
    )


def create_targets_fn(
  settings: RelabelSettings, mesh: Mesh, *, axis: str = 'data'
) -> Callable[[Batch], tuple[jax.Array, Maps]]:
  """The step's target function for a ReLabel run.

  Args:
    settings: the static ReLabel settings.
    mesh: the mesh the batch is sharded over.
    axis: its batch axis.

  Returns:
    `fn(batch) -> (targets, maps)`: float32 `[B, K]` smoothed ReLabel
    targets of each crop box, and `maps = (scores, indices, crop_boxes,
    flips)` (filled as in `filled_maps`) for mixing ops that pool regions.
  """

  def pooled(key, scores, indices, crop_boxes):
    del key  # pooling is deterministic
    return jaxmix.relabel_targets(
      scores,
      indices,
      crop_boxes,
      num_classes=settings.num_classes,
      official_box_order=settings.official_box_order,
      temperature=settings.temperature,
    )

  sharded = jaxmix.per_shard(pooled, mesh, axis=axis, per_device_keys=False)

  def targets_fn(batch: Batch) -> tuple[jax.Array, Maps]:
    check_batch(batch)
    scores, indices = filled_maps(
      batch['label_map_scores'],
      batch['label_map_indices'],
      batch['label_map_found'],
      batch['label'],
    )
    crop_boxes = batch['crop_box'].astype(jnp.float32)
    targets = sharded(jax.random.key(0), scores, indices, crop_boxes)
    if settings.label_smoothing > 0:
      targets = jaxmix.smooth_labels(targets, settings.label_smoothing)
    return targets, (scores, indices, crop_boxes, batch['flip'])

  return targets_fn
