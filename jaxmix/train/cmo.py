"""CMO in the train step: minority images pasted onto the main batch.

A run with `config.cmo.enabled` reads a second stream beside the main one
(`jaxmix.data.minority`: examples drawn with weights `1 / n_c ** alpha`,
batch keys 'minority_image' and 'minority_label'). In the step, after the
per-example occlusions, `jaxmix.cmo` pastes a CutMix box (lambda ~
Beta(beta, beta)) of each minority image onto the main image at the same
place, with probability `cmo_prob` per batch, and mixes the (smoothed)
one-hot labels by the kept-pixel fraction: the official
`loss * lam + loss_2 * (1 - lam)` is this soft target's cross-entropy.
One box and gate per device shard (the official code: one per batch).

`cmo_prob` is a traced scalar the loop sets per epoch
(`jaxmix.train.augment_schedule.cmo_prob_at`): `config.cmo.prob` in the
epochs `start_epoch < epoch < num_epochs - stop_epochs` (0-based,
`augment_schedule.cmo_active`), 0 elsewhere, so switching it off needs no
recompilation. The step's augmentation hook (`jaxmix.train.augment`) calls
this after the pixel augmentation.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import Mesh

import jaxmix

CmoFn = Callable[..., tuple[jax.Array, jax.Array]]


def create_cmo_fn(
  config: ml_collections.ConfigDict, mesh: Mesh, *, normalize: Callable
) -> CmoFn:
  """The step's CMO.

  Args:
    config: the trainer config (`cmo`, `data.num_classes`,
      `label_smoothing`).
    mesh: the 'data' mesh.
    normalize: `fn(key, uint8 images) -> float images` as the step prepares
      its own images (`steps.prepare_images`).

  Returns:
    `fn(key, images, labels, batch, cmo_prob) -> (images, labels)` on the
    normalised `[B, H, W, C]` images and float32 `[B, K]` targets;
    `batch` holds 'minority_image' uint8 and 'minority_label' int32 `[B]`.
  """
  beta = float(config.cmo.beta)
  num_classes, smoothing = config.data.num_classes, config.label_smoothing

  def paste(key, images, labels, minority, minority_labels, *, prob):
    return jaxmix.cmo(
      key, images, labels, minority, minority_labels, alpha=beta, prob=prob
    )

  sharded = jaxmix.per_shard(paste, mesh, axis='data')

  def cmo_fn(key, images, labels, batch, cmo_prob):
    for name in ('minority_image', 'minority_label'):
      if name not in batch:
        raise ValueError(
          f'config.cmo.enabled needs the batch key {name!r}: the train '
          'iterator must be paired with the minority stream '
          '(jaxmix.data.minority.PairedBatches).'
        )
    # A key of its own for the minority images' colour jitter and lighting.
    minority = normalize(jax.random.fold_in(key, 7), batch['minority_image'])
    minority = minority.astype(images.dtype)
    minority_labels = jaxmix.one_hot(
      batch['minority_label'], num_classes, smoothing=smoothing
    )
    return sharded(
      key,
      images,
      labels,
      minority,
      minority_labels.astype(labels.dtype),
      prob=jnp.asarray(cmo_prob, jnp.float32),
    )

  return cmo_fn
