"""Token labeling in the train step (Jiang et al. 2021, LV-ViT).

A run with `config.relabel.token_labels` trains a ViT built with
`model.kwargs.token_head=True` on two targets: the class token on the run's
class targets (ReLabel's crop targets, smoothed by `config.label_smoothing`)
and every patch token on the label map pooled over the region of the
original image that the token shows, through the crop and the flip
(`jaxmix.token_label_targets`, with `config.relabel`'s box order and
temperature). The loss is `jaxmix.token_labeling_loss`: class cross-entropy
plus `config.relabel.token_weight` x the mean per-token cross-entropy.

With `config.mix.method == 'mixtoken'`, MixToken (`jaxmix.mixtoken`) mixes
the patch tokens (after the patch embedding, before the class token and the
position embeddings are added), the class targets and the token targets
with one token-aligned CutMix box, `config.mix.cutmix_alpha`, and the step's
traced mixing probability (so `config.mix.off_epoch` switches it off).
Partners are drawn inside each device's shard (`jaxmix.per_shard`), one
box per device (`mix.draw='device'`), per batch (`'batch'`, the same key on
every device) or per example (`'example'`).

The token targets are not smoothed: they are already soft.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from jax.sharding import Mesh

import jaxmix

Maps = tuple[jax.Array, jax.Array, jax.Array, jax.Array]
LossFn = Callable[..., tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class TokenSettings:
  """The static token-labeling settings of a run.

  Attributes:
    num_classes: K.
    token_weight: weight of the mean per-token cross-entropy, >= 0.
    mixtoken: mix the tokens with MixToken.
    alpha: MixToken's Beta concentration (`config.mix.cutmix_alpha`).
    draw: 'batch' | 'device' | 'example', as `config.mix.draw`.
    official_box_order: pool the official ReLabel (y, x)-swapped region.
    temperature: softmax temperature of the pooled logits.
  """

  num_classes: int
  token_weight: float = 0.5
  mixtoken: bool = False
  alpha: float = 1.0
  draw: str = 'device'
  official_box_order: bool = False
  temperature: float = 1.0

  @classmethod
  def from_config(cls, config: Any) -> TokenSettings:
    """Settings of a trainer config (`relabel`, `mix`, `data`)."""
    return cls(
      num_classes=config.data.num_classes,
      token_weight=float(config.relabel.token_weight),
      mixtoken=config.mix.method == 'mixtoken',
      alpha=float(config.mix.cutmix_alpha),
      draw=config.mix.draw,
      official_box_order=bool(config.relabel.official_box_order),
      temperature=float(config.relabel.temperature),
    )


def check_model(model: Any) -> None:
  """Raises ValueError unless `model` is a ViT with a token head."""
  if getattr(model, 'aux_head', None) is None or not hasattr(model, 'encode'):
    raise ValueError(
      'config.relabel.token_labels needs a ViT with per-token outputs: set '
      "config.model.name to a ViT ('vit_s16', 'vit_ti16') and "
      f'config.model.kwargs.token_head=True; got a {type(model).__name__} '
      'without a token head.'
    )


def create_loss_fn(settings: TokenSettings, mesh: Mesh) -> LossFn:
  """The train step's loss of a token-labeling run.

  Args:
    settings: the static settings.
    mesh: the 'data' mesh the batch is sharded over.

  Returns:
    `fn(model, augmented, key, schedule) -> (losses, logits)`, the train
    step's `loss_fn`: `augmented` the `jaxmix.train.augment.Augmented` of
    the step (images float `[B, H, W, 3]` normalised, float `[B, K]` class
    targets, `maps = (scores, indices, crop_boxes, flips)` from
    `jaxmix.train.relabel`), `key` the mixing key, `schedule` the
    epoch's `Schedule` (its `mix_prob`); returns float32 per-example losses
    `[B]` and the class logits `[B, K]`.
  """
  same_key = settings.draw == 'batch'

  def pooled(key, scores, indices, crop_boxes, flips, *, grid, size):
    del key  # pooling is deterministic
    return jaxmix.token_label_targets(
      scores,
      indices,
      crop_boxes,
      flips,
      grid=grid,
      height=size[0],
      width=size[1],
      num_classes=settings.num_classes,
      official_box_order=settings.official_box_order,
      temperature=settings.temperature,
    )

  targets = jaxmix.per_shard(pooled, mesh, axis='data', per_device_keys=False)

  def mix(key, tokens, labels, token_labels, *, prob):
    return jaxmix.mixtoken(
      key,
      tokens,
      labels,
      token_labels,
      alpha=settings.alpha,
      prob=prob,
      per_example=settings.draw == 'example',
    )

  mixed = jaxmix.per_shard(mix, mesh, axis='data', per_device_keys=not same_key)

  def loss_fn(model, augmented, key, schedule):
    images, labels, maps = augmented
    if maps is None:
      raise ValueError(
        'token labeling needs the label maps: enable config.relabel.'
      )
    check_model(model)
    tokens = model.embed(images)
    grid = tuple(tokens.shape[1:3])
    token_labels = targets(
      jax.random.key(0), *maps, grid=grid, size=tuple(images.shape[1:3])
    )
    if settings.mixtoken:
      tokens, labels, token_labels = mixed(
        key,
        tokens,
        labels,
        token_labels,
        prob=jax.numpy.asarray(schedule.mix_prob, jax.numpy.float32),
      )
    class_logits, token_logits = model.encode(tokens)
    losses = jaxmix.token_labeling_loss(
      class_logits,
      token_logits,
      labels,
      token_labels,
      token_weight=settings.token_weight,
    )
    return losses, class_logits

  return loss_fn
