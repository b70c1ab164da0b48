"""CMO in the train step: minority images pasted onto the main batch.

A run with `config.cmo.enabled` reads a second stream beside the main one
(`jaxmix.data.minority`: examples drawn with weights `1 / n_c ** alpha`,
batch keys 'minority_image' and 'minority_label'). `minority_inputs`
prepares that stream's images as the step prepares its own and one-hot
encodes its labels; the step's augmentation (`jaxmix.train.augment`) then
draws CMO's sampler (`jaxmix.train.samplers.cmo_sampler`, i.e.
`jaxmix.sample_cmo`: a CutMix box with lambda ~ Beta(beta, beta), the gate
`cmo_prob`, partners by position) once per device shard, after the
per-example occlusions, and applies that draw with the minority batch as
`jaxmix.apply_draw`'s `partner_tree`: the minority image inside the box, the
(smoothed) one-hot labels mixed by the kept-pixel fraction. The official
`loss * lam + loss_2 * (1 - lam)` is this soft target's cross-entropy. One
box and gate per device shard (the official code: one per batch).

`cmo_prob` is a traced scalar the loop sets per epoch
(`jaxmix.train.augment_schedule.cmo_prob_at`): `config.cmo.prob` in the
epochs `start_epoch < epoch < num_epochs - stop_epochs` (0-based,
`augment_schedule.cmo_active`), 0 elsewhere, so switching it off needs no
recompilation.
"""

from collections.abc import Callable
from typing import Any

import jax

import jaxmix


def minority_inputs(
  key: jax.Array,
  batch: dict[str, jax.Array],
  images: jax.Array,
  labels: jax.Array,
  *,
  config: Any,
  normalize: Callable,
) -> tuple[jax.Array, jax.Array]:
  """The minority stream's images and targets, ready to paste.

  Args:
    key: the step's augmentation key.
    batch: the host batch, with 'minority_image' uint8 ``[B, H, W, C]`` and
      'minority_label' int ``[B]``.
    images: the step's prepared images (their dtype is kept).
    labels: the step's float ``[B, K]`` targets (their dtype is kept).
    config: the trainer config (`data.num_classes`, `label_smoothing`).
    normalize: `fn(key, uint8 images) -> float images` as the step prepares
      its own images (`steps.prepare_images`).

  Returns:
    `(minority_images, minority_targets)` of `images`' and `labels`' shapes
    and dtypes.
  """
  for name in ('minority_image', 'minority_label'):
    if name not in batch:
      raise ValueError(
        f'config.cmo.enabled needs the batch key {name!r}: the train '
        'iterator must be paired with the minority stream '
        '(jaxmix.data.minority.PairedBatches).'
      )
  # The keys of old: CMO's own (fold 2), and in it the minority images'
  # colour jitter and lighting (fold 7).
  jitter_key = jax.random.fold_in(jax.random.fold_in(key, 2), 7)
  minority = normalize(jitter_key, batch['minority_image'])
  minority_labels = jaxmix.one_hot(
    batch['minority_label'],
    config.data.num_classes,
    smoothing=config.label_smoothing,
  )
  return minority.astype(images.dtype), minority_labels.astype(labels.dtype)
