"""Manifold Mixup in the train step (Verma et al. 2019).

A run with `config.mix.method == 'manifold_mixup'` mixes a hidden state of
the model instead of its input. Every step draws one point k uniformly from
`config.mix.manifold_layers` (the authors' ResNet set (0, 1, 2): the input
and the outputs of the first two residual stages; one point for the whole
global batch, as their code draws one per batch) and one Mixup draw
(`jaxmix.MixDraw`, from the sampler `config.mix` names:
`jaxmix.train.samplers.mix_sampler`, Beta(`mix.mixup_alpha`), the traced
`mix_prob`, `mix.draw` granularity). The model runs with the hook
`model(x, mix_at=k, mix_fn=fn)` (`jaxmix.models.manifold_mixup`): `fn`
applies that draw to the hidden state at k (`jaxmix.apply_draw`, roles
'image'), and the targets are mixed by the same draw (roles 'target', or
`augment.TwoTargets` from its partners and weight). With k = 0 the step is
input Mixup with that draw.

Partners are drawn inside each device's shard (`jaxmix.per_shard`), as the
pixel mixing draws them. The draw is made from the step's mixing key at
every point, with the input's sizes, so the hidden states at every point
and the targets share one draw.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

import jaxmix
from jaxmix.models.manifold_mixup import draw_mix_layer
from jaxmix.train import augment, samplers, steps

LossFn = steps.LossFn


def layer_key(key: jax.Array) -> jax.Array:
  """The key the step's point is drawn with, from the loss's key."""
  return jax.random.fold_in(key, 0)


def draw_key(key: jax.Array) -> jax.Array:
  """The key the step's `MixDraw` is drawn with, from the loss's key."""
  return jax.random.fold_in(key, 1)


def check_model(model: Any, method: str = 'manifold_mixup') -> None:
  """Raises ValueError unless `model(x, mix_at=..., mix_fn=...)` exists."""
  try:
    params = inspect.signature(model.__call__).parameters
  except (TypeError, ValueError):
    params = {}
  if 'mix_at' not in params or 'mix_fn' not in params:
    raise ValueError(
      f'config.mix.method={method!r} mixes a hidden state through the '
      "model's `mix_at` / `mix_fn` hook, which "
      f'{type(model).__name__} lacks: use a ResNet (config.model.name '
      "'resnet18' ... 'resnet152') or 'tiny_cnn'."
    )


def create_loss_fn(
  config: Any, mesh: Mesh, *, step_config: steps.StepConfig
) -> LossFn:
  """The train step's loss of a Manifold Mixup run.

  Args:
    config: the trainer config, validated (`mix.method ==
      'manifold_mixup'`).
    mesh: the 'data' mesh the batch is sharded over.
    step_config: the step's static settings (the loss of the targets).

  Returns:
    `fn(model, augmented, key, schedule) -> (losses [B], logits [B, K])`,
    the train step's `loss_fn`: `augmented.images` float `[B, H, W, C]`
    unmixed, `augmented.targets` the unmixed targets (dense `[B, K]` or
    `augment.TwoTargets`), `key` the step's model-mixing key.
  """
  sampler = samplers.mix_sampler(config)
  layers: Sequence[int] = tuple(int(k) for k in config.mix.manifold_layers)
  two_target = config.mix.targets == 'two_target'

  def draw(key, batch_size, prob, size):
    return sampler(
      key, batch_size=batch_size, height=size[0], width=size[1], prob=prob
    )

  def mix_hidden(key, hidden, *, prob, size):
    d = draw(key, hidden.shape[0], prob, size)
    return jaxmix.apply_draw(hidden, d, roles='image')

  def mix_targets(key, labels, *, prob, size):
    d = draw(key, labels.shape[0], prob, size)
    if two_target:
      return augment.TwoTargets(labels, labels[d.partners], d.weight)
    return jaxmix.apply_draw(labels, d, roles='target')

  per_device = config.mix.draw != 'batch'
  hidden_fn = jaxmix.per_shard(
    mix_hidden, mesh, axis='data', per_device_keys=per_device
  )
  targets_fn = jaxmix.per_shard(
    mix_targets, mesh, axis='data', per_device_keys=per_device
  )

  def loss_fn(model, augmented, key, schedule):
    check_model(model)
    images = augmented.images
    size = tuple(images.shape[1:3])
    prob = jnp.asarray(schedule.mix_prob, jnp.float32)
    mix_key = draw_key(key)
    labels = augmented.targets
    if two_target:  # the unmixed TwoTargets: mix the labels themselves
      labels = labels.labels
    targets = targets_fn(mix_key, labels, prob=prob, size=size)
    logits = model(
      images,
      mix_at=draw_mix_layer(layer_key(key), layers),
      mix_fn=lambda h: hidden_fn(mix_key, h, prob=prob, size=size),
    )
    return steps.loss_of_targets(logits, targets, step_config), logits

  return loss_fn
