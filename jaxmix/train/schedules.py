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

Built from optax's schedules (`warmup_cosine_decay_schedule`,
`linear_schedule`, `piecewise_constant_schedule`, `constant_schedule`,
`join_schedules`); only timm's epoch-floored 'exponential' decay is written
here, because optax's staircase decay floors steps, not epochs
(`_epoch_floored_decay`). The rates equal the formulas above to float32
rounding (optax orders the arithmetic differently; tests/schedules_test.py
holds every recipe to the rates of the earlier hand-written schedules).
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

  warmup = optax.linear_schedule(0.0, base, warmup_steps)
  if name == 'cosine':
    # optax's warm-up and cosine: 0 -> base over W steps, then down to 0 at T.
    return _float32(
      optax.warmup_cosine_decay_schedule(
        0.0, base, warmup_steps, total_steps, end_value=0.0
      )
    )
  if name == 'step':
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
    # Boundaries in steps from the start of the run, as optax counts them
    # after the warm-up (`join_schedules` restarts the count there); two
    # epochs rounding to one step decay twice there.
    scales = {}
    for e in decay_epochs:
      boundary = round(e * steps_per_epoch) - warmup_steps
      scales[boundary] = scales.get(boundary, 1.0) * factor
    main = optax.piecewise_constant_schedule(base, scales)
  elif name == 'exponential':
    every = float(_field(schedule_config, 'decay_every_epochs', 1.0))
    factor = float(_field(schedule_config, 'decay_factor', 0.1))
    if not (every > 0 and factor > 0):
      raise ValueError(
        '`schedule.decay_every_epochs` and `schedule.decay_factor` must be '
        f'> 0, got {every} and {factor}.'
      )
    main = _epoch_floored_decay(
      base, factor, every, steps_per_epoch, offset=warmup_steps
    )
  else:
    main = optax.constant_schedule(base)
  if not warmup_steps:
    return _float32(main)
  return _float32(optax.join_schedules([warmup, main], [warmup_steps]))


def _epoch_floored_decay(
  base: float, factor: float, every: float, steps_per_epoch: int, *, offset
) -> optax.Schedule:
  """timm's step scheduler: x`factor` every `every` epochs, whole epochs.

  Kept by hand because optax cannot express it: `optax.exponential_decay`
  with `staircase=True` floors `step / (every * steps_per_epoch)`, while
  timm floors the epoch first (`floor(floor(step / steps_per_epoch) /
  every)`), so with a fractional `every` (the EfficientNet recipes' 2.4)
  the rate changes at epoch boundaries only, never inside an epoch.
  `offset`: the warm-up steps before it (`optax.join_schedules` counts from
  there; the decay counts from the start of the run).
  """

  def schedule(step):
    epochs = jnp.floor((step + offset) / steps_per_epoch)
    return base * factor ** jnp.floor(epochs / every)

  return schedule


def _float32(schedule: optax.Schedule) -> optax.Schedule:
  return lambda step: jnp.asarray(schedule(jnp.asarray(step)), jnp.float32)
