"""Tests for jaxmix.train.schedules at exact step values.

The schedules are optax's since the hand-written ones were replaced;
`test_every_recipe_keeps_its_learning_rates` holds them to the values the
hand-written ones gave (recorded in tests/golden/schedules_before_optax.*)
to float32 rounding: optax orders the arithmetic differently (the warm-up as
`(0 - base) * (1 - step / W) + base`, the cosine as `cos(pi * step / D)`),
which moves a rate by at most a unit in the last place of the base rate.
"""

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxmix.train.schedules import create_learning_rate_schedule

GOLDEN = pathlib.Path(__file__).parent / 'golden' / 'schedules_before_optax'
# optax's arithmetic against the hand-written schedules': float32 rounding
# of the base rate (|lr| <= base; a float32 ulp of base is ~1.2e-7 * base).
ROUNDING = 2.5e-7

# ImageNet-1k at a global batch of 1024: ceil(1281167 / 1024) steps / epoch.
STEPS = 1252


def _schedule(**fields):
  base = fields.pop('base', 0.1)
  num_epochs = fields.pop('num_epochs', 300)
  steps = fields.pop('steps_per_epoch', STEPS)
  return create_learning_rate_schedule(
    ml_collections.ConfigDict(fields),
    base_learning_rate=base,
    steps_per_epoch=steps,
    num_epochs=num_epochs,
  )


def test_relabel_recipe_warmup_then_cosine():
  # lr 0.1, 5 warm-up epochs from 0, cosine per step to 0 at epoch 300.
  lr = _schedule(name='cosine', warmup_epochs=5)
  w, t = 5 * STEPS, 300 * STEPS
  expected = {
    0: 0.0,
    1: 0.1 / w,
    w // 2: 0.05,
    w - 1: 0.1 * (w - 1) / w,
    w: 0.1,
    w + 1: 0.05 * (1 + math.cos(math.pi / (t - w))),
    w + (t - w) // 2: 0.05,
    w + (t - w) // 3: 0.05 * (1 + math.cos(math.pi * ((t - w) // 3) / (t - w))),
    t - 1: 0.05 * (1 + math.cos(math.pi * (t - w - 1) / (t - w))),
    t: 0.0,
    t + 100: 0.0,
  }
  for step, value in expected.items():
    np.testing.assert_allclose(float(lr(step)), value, rtol=1e-5, atol=1e-9)
  assert lr(0).dtype == jnp.float32


def test_cutmix_imagenet_recipe_step_decay():
  # lr 0.1, x0.1 every 75 epochs for 300 epochs, no warm-up.
  lr = _schedule(name='step', decay_epochs=(75, 150, 225), decay_factor=0.1)
  b = 75 * STEPS
  expected = {
    0: 0.1,
    b - 1: 0.1,
    b: 0.01,
    2 * b - 1: 0.01,
    2 * b: 1e-3,
    3 * b: 1e-4,
    4 * b - 1: 1e-4,
    4 * b + 7: 1e-4,
  }
  for step, value in expected.items():
    np.testing.assert_allclose(float(lr(step)), value, rtol=1e-6)


def test_step_decay_with_warmup_and_fractional_epochs():
  lr = _schedule(
    name='step',
    base=0.4,
    warmup_epochs=0.5,
    decay_epochs=(1.5,),
    decay_factor=0.5,
    steps_per_epoch=10,
    num_epochs=3,
  )
  values = [float(lr(s)) for s in range(20)]
  close = dict(rtol=0, atol=ROUNDING * 0.4)
  np.testing.assert_allclose(values[:5], [0.0, 0.08, 0.16, 0.24, 0.32], **close)
  np.testing.assert_allclose(values[5:15], [0.4] * 10, **close)
  np.testing.assert_allclose(values[15:], [0.2] * 5, **close)


def test_constant_with_and_without_warmup():
  lr = _schedule(name='constant', base=2e-3, num_epochs=10, steps_per_epoch=4)
  np.testing.assert_allclose([float(lr(s)) for s in (0, 7, 100)], [2e-3] * 3)
  lr = _schedule(
    name='constant',
    base=2e-3,
    warmup_epochs=1,
    num_epochs=10,
    steps_per_epoch=4,
  )
  np.testing.assert_allclose(
    [float(lr(s)) for s in range(6)],
    [0.0, 5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3],
    rtol=0,
    atol=ROUNDING * 2e-3,
  )


def test_schedule_is_jittable_and_vectorised():
  lr = _schedule(name='cosine', warmup_epochs=5)
  steps = jnp.arange(0, 300 * STEPS + 1, 997)
  eager = np.array([float(lr(int(s))) for s in steps[:20]])
  np.testing.assert_allclose(jax.jit(lr)(steps)[:20], eager, rtol=1e-6)
  values = np.asarray(jax.vmap(lr)(steps))
  assert values.max() <= 0.1 + 1e-7 and values.min() >= 0.0


@pytest.mark.parametrize(
  'fields, match',
  [
    (dict(name='linear'), 'schedule.name'),
    (dict(name='cosine', warmup_epochs=300), 'warmup_epochs'),
    (dict(name='cosine', warmup_epochs=-1), 'warmup_epochs'),
    (dict(name='step', decay_epochs=(150, 75)), 'decay_epochs'),
    (dict(name='step', decay_epochs=(75,), decay_factor=0.0), 'decay_factor'),
    (dict(name='cosine', steps_per_epoch=0), 'steps_per_epoch'),
    (dict(name='cosine', steps_per_epoch=2.5), 'steps_per_epoch'),
    (dict(name='cosine', num_epochs=0), 'num_epochs'),
  ],
)
def test_bad_configs_raise(fields, match):
  with pytest.raises(ValueError, match=match):
    _schedule(**fields)


def test_exponential_staircase_changes_at_epoch_boundaries():
  """timm's step scheduler per epoch: x0.97 every 2.4 epochs, 3 warm-up."""
  schedule = create_learning_rate_schedule(
    ml_collections.ConfigDict(
      dict(
        name='exponential',
        warmup_epochs=3.0,
        decay_every_epochs=2.4,
        decay_factor=0.97,
      )
    ),
    base_learning_rate=0.016,
    steps_per_epoch=10,
    num_epochs=450,
  )
  lrs = np.asarray(schedule(jnp.arange(0, 100)))
  np.testing.assert_allclose(
    lrs[:30], 0.016 * np.arange(30) / 30, rtol=0, atol=ROUNDING * 0.016
  )
  epochs = np.arange(30, 100) // 10
  want = 0.016 * 0.97 ** np.floor(epochs / 2.4)
  np.testing.assert_allclose(lrs[30:], want, rtol=1e-6)
  assert lrs[49] == lrs[40] and lrs[50] < lrs[49]  # epoch 5 = 2 * 2.4 + 0.2


def test_every_recipe_keeps_its_learning_rates():
  """Every recipe's schedule (and warm-up variants of each kind) gives the
  rates of the hand-written schedules it replaced, to float32 rounding
  (optax multiplies the decay factors one by one where the hand-written
  schedule raised the factor to a power: one ulp apart at most)."""
  cases = json.loads(GOLDEN.with_suffix('.json').read_text())
  golden = np.load(GOLDEN.with_suffix('.npz'))
  assert len(cases) == 50
  for key, case in cases.items():
    schedule = create_learning_rate_schedule(
      ml_collections.ConfigDict(case['schedule']),
      base_learning_rate=0.1,
      steps_per_epoch=7,
      num_epochs=case['num_epochs'],
    )
    steps = golden[f'{key}/steps']
    got = np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps)))
    want = golden[f'{key}/lr']
    assert got.dtype == np.float32, key
    np.testing.assert_allclose(
      got, want, rtol=0, atol=ROUNDING * 0.1, err_msg=key
    )
