"""The augmentation's per-epoch probabilities, in one pytree.

The loop computes `schedule_at(config, epoch)` on the host before every
step and passes it to the jitted step as one argument. Its leaves are
float32 scalars, traced by the step, so switching mixing or CMO off late in
training never recompiles, and the step's arguments are the same for every
config (a field a run does not use is 0 and ignored).
"""

from typing import Any, NamedTuple

import numpy as np


class Schedule(NamedTuple):
  """The probabilities of one epoch, float32 scalars.

  Attributes:
    mix_prob: the probability passed to the mixing (pixel mixing or
      MixToken): `config.mix.prob`, 0 in the last `config.mix.off_epoch`
      epochs and when nothing mixes.
    cmo_prob: CMO's probability of pasting: `config.cmo.prob` inside its
      epoch window (`cmo_active`), 0 elsewhere and when CMO is off.
  """

  mix_prob: Any
  cmo_prob: Any


def cmo_active(
  epoch: int, *, num_epochs: int, start: int = 3, stop_margin: int = 3
) -> bool:
  """Whether CMO runs in `epoch` (0-based): `start < epoch < E - margin`.

  The official rule (`cifar_train.py`: `args.start_data_aug < epoch <
  (args.epochs - args.end_data_aug)`, epochs counted from 0), both bounds
  strict: with the defaults and 200 epochs, epochs 4 to 196. (Before
  jaxmix 0.2 this was `jaxmix.cmo_active`.)

  Examples:
    >>> [cmo_active(e, num_epochs=9) for e in range(9)]
    [False, False, False, False, True, True, False, False, False]
  """
  return start < epoch < num_epochs - stop_margin


def mix_prob_at(config: Any, epoch: int) -> float:
  """The mixing probability in `epoch`: 0 in the last `mix.off_epoch`."""
  if epoch >= config.num_epochs - config.mix.off_epoch:
    return 0.0
  return float(config.mix.prob)


def cmo_prob_at(config: Any, epoch: int) -> float:
  """CMO's probability in `epoch` (0-based): `cmo.prob` inside its window."""
  cmo = config.cmo
  if not cmo.enabled:
    return 0.0
  active = cmo_active(
    epoch,
    num_epochs=config.num_epochs,
    start=cmo.start_epoch,
    stop_margin=cmo.stop_epochs,
  )
  return float(cmo.prob) if active else 0.0


def schedule_at(config: Any, epoch: int) -> Schedule:
  """The `Schedule` of `epoch` (0-based) for the trainer `config`."""
  return Schedule(
    mix_prob=np.float32(mix_prob_at(config, epoch)),
    cmo_prob=np.float32(cmo_prob_at(config, epoch)),
  )
