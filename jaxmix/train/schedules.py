"""Learning-rate schedules of the jaxmix recipes, per optimiser step.

A schedule maps the number of updates done so far (`step`, 0 for the first
update, optax's convention) to a learning rate. With `W` warm-up steps and
`T` total steps (`warmup_epochs` and `num_epochs` times `steps_per_epoch`,
rounded to whole steps):

* warm-up (any schedule): `lr = base * step / W` for `step < W`, linear from
  0 (the ReLabel recipe: 5 epochs);
* 'cosine': `lr = base * (1 + cos(pi * (step - W) / (T - W))) / 2` after the
  warm-up, reaching 0 at `T` and staying there;
* 'step': `lr = base * decay_factor ** k`, `k` = the number of
  `decay_epochs` boundaries `e` with `step >= e * steps_per_epoch` (the
  CutMix ImageNet recipe: x0.1 at epochs 75, 150 and 225 of 300);
* 'exponential': `lr = base * decay_factor ** floor(step / (E *
  steps_per_epoch))`, `E` = `decay_every_epochs` (timm's step scheduler,
  per epoch: the EfficientNet recipes' x0.97 every 2.4 epochs);
* 'constant': `lr = base`.
"""

from typing import Any

import jax.numpy as jnp
import numpy as np
import optax

SCHEDULES = ('cosine', 'step', 'exponential', 'constant')


def _field(config: Any, name: str, default: Any) -> Any:
  return config.get(name, default)


def create_learning_rate_schedule(
  schedule_config: Any,
  *,
  base_learning_rate: float,
  steps_per_epoch: int,
  num_epochs: float,
) -> optax.Schedule:
  """Builds the schedule a config names.

  Args:
    schedule_config: `ml_collections.ConfigDict` (or dict) with `name`
      (one of `SCHEDULES`), `warmup_epochs` (float, default 0),
      `decay_epochs` (increasing epochs, for 'step'), `decay_every_epochs`
      (for 'exponential') and `decay_factor` (default 0.1).
    base_learning_rate: the peak learning rate.
    steps_per_epoch: optimiser steps per epoch, >= 1.
    num_epochs: length of the run in epochs (the cosine reaches 0 there).

  Returns:
    `schedule(step) -> float32 scalar`, usable under `jit` with a traced
    step.
  """
  name = _field(schedule_config, 'name', None)
  if name not in SCHEDULES:
    raise ValueError(
      f'`schedule.name` must be one of {SCHEDULES}, got {name!r}.'
    )
  if not isinstance(steps_per_epoch, (int, np.integer)) or steps_per_epoch < 1:
    raise ValueError(
      f'`steps_per_epoch` must be an integer >= 1, got {steps_per_epoch!r}.'
    )
  if not num_epochs > 0:
    raise ValueError(f'`num_epochs` must be > 0, got {num_epochs}.')
  warmup_epochs = float(_field(schedule_config, 'warmup_epochs', 0.0))
  if not 0.0 <= warmup_epochs < num_epochs:
    raise ValueError(
      f'`schedule.warmup_epochs` must be in [0, num_epochs={num_epochs}), '
      f'got {warmup_epochs}.'
    )
  base = float(base_learning_rate)
  warmup_steps = round(warmup_epochs * steps_per_epoch)
  total_steps = max(round(num_epochs * steps_per_epoch), warmup_steps + 1)

  if name == 'cosine':
    decay_steps = total_steps - warmup_steps

    def main(step):
      t = jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
      return base * 0.5 * (1.0 + jnp.cos(jnp.pi * t))

  elif name == 'step':
    decay_epochs = tuple(_field(schedule_config, 'decay_epochs', ()))
    factor = float(_field(schedule_config, 'decay_factor', 0.1))
    if list(decay_epochs) != sorted(decay_epochs) or any(
      e <= 0 for e in decay_epochs
    ):
      raise ValueError(
        '`schedule.decay_epochs` must be increasing positive epochs, got '
        f'{decay_epochs}.'
      )
    if not factor > 0:
      raise ValueError(f'`schedule.decay_factor` must be > 0, got {factor}.')
    # NumPy, not jnp: building a schedule must not touch a device.
    boundaries = np.asarray(
      [round(e * steps_per_epoch) for e in decay_epochs], np.int32
    ).reshape(-1)

    def main(step):
      passed = jnp.sum(step >= boundaries)
      return base * factor ** passed.astype(jnp.float32)

  elif name == 'exponential':
    every = float(_field(schedule_config, 'decay_every_epochs', 1.0))
    factor = float(_field(schedule_config, 'decay_factor', 0.1))
    if not (every > 0 and factor > 0):
      raise ValueError(
        '`schedule.decay_every_epochs` and `schedule.decay_factor` must be '
        f'> 0, got {every} and {factor}.'
      )

    # timm counts whole epochs: the rate changes at epoch boundaries only.
    def main(step):
      epochs = jnp.floor(step / steps_per_epoch)
      return base * factor ** jnp.floor(epochs / every)

  else:

    def main(step):
      return jnp.full(jnp.shape(step), base)

  def schedule(step):
    step = jnp.asarray(step)
    lr = main(step)
    if warmup_steps:
      lr = jnp.where(step < warmup_steps, base * step / warmup_steps, lr)
    return jnp.asarray(lr, jnp.float32)

  return schedule
