"""Tests of jaxmix.models.drop and the ResNets' stochastic depth / DropBlock."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxmix import models
from jaxmix.configs import default
from jaxmix.models import drop
from jaxmix.train import augment, augment_schedule, steps
from jaxmix.train import state as state_lib

# --- stochastic depth --------------------------------------------------------


def test_huang_rates_decay_linearly_to_the_final_rate():
  rates = drop.huang_drop_rates(0.5, 16)
  np.testing.assert_allclose(rates, 0.5 * np.arange(1, 17) / 16)
  with pytest.raises(ValueError, match='drop_path_rate'):
    drop.huang_drop_rates(1.0, 4)


def test_resnet50_blocks_carry_huang_rates_and_mode():
  model = models.create_model(
    'resnet50', num_classes=4, rngs=nnx.Rngs(0), drop_path_rate=0.5
  )
  got = [b.drop_path.rate for b in model.blocks]
  np.testing.assert_allclose(got, 0.5 * np.arange(1, 17) / 16)
  assert not any(b.drop_path.per_example for b in model.blocks)


def test_drop_path_per_example_law():
  x = jnp.ones((20000, 2, 2, 3))
  fn = jax.jit(functools.partial(drop.drop_path, per_example=True))
  out = np.asarray(fn(jax.random.key(0), x, 0.3))
  np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.7], rtol=1e-6)
  rows = out.reshape(len(out), -1) > 0
  assert (rows.all(1) | ~rows.any(1)).all()  # whole examples go together
  assert abs(rows[:, 0].mean() - 0.7) < 4 * np.sqrt(0.21 / len(out))
  np.testing.assert_array_equal(
    drop.drop_path(jax.random.key(0), x, 0.3, per_example=True), out
  )


def test_drop_path_per_batch_law():
  x = jnp.ones((4, 2, 2, 3))
  fn = jax.jit(functools.partial(drop.drop_path, per_example=False))
  kept = []
  for k in range(2000):
    values = np.unique(np.asarray(fn(jax.random.key(k), x, 0.3)))
    assert values.size == 1  # the whole batch goes together (Huang et al.)
    kept.append(values[0] > 0)
    if values[0] > 0:
      np.testing.assert_allclose(values[0], 1 / 0.7, rtol=1e-6)
  assert abs(np.mean(kept) - 0.7) < 4 * np.sqrt(0.21 / len(kept))


# --- DropBlock ----------------------------------------------------------------


@pytest.mark.parametrize(
  ('k', 'center'), [(7, (6, 7)), (3, (2, 2)), (1, (5, 0))]
)
def test_one_seed_drops_one_k_by_k_square(k, center):
  seeds = np.zeros((1, 14, 14, 1), bool)
  seeds[0, center[0], center[1], 0] = True
  mask = np.asarray(drop.block_mask(jnp.asarray(seeds), k))[0, :, :, 0]
  want = np.ones((14, 14))
  r = k // 2
  want[
    max(center[0] - r, 0) : center[0] + r + 1,
    max(center[1] - r, 0) : center[1] + r + 1,
  ] = 0
  np.testing.assert_array_equal(mask, want)
  if k > 1 or center[1] > 0:
    assert (1 - mask).sum() == k * k  # a valid centre's block is whole


def test_valid_centers_keep_blocks_inside():
  valid = np.asarray(drop.valid_centers(14, 10, 7))
  rows = np.flatnonzero(valid.any(1))
  cols = np.flatnonzero(valid.any(0))
  assert (rows[0], rows[-1], cols[0], cols[-1]) == (3, 10, 3, 6)
  # A block as large as the map: only its centre.
  assert np.asarray(drop.valid_centers(7, 7, 7)).sum() == 1


def test_gamma_is_tensorflow_tpu_formula():
  # (1 - keep) * W^2 / k^2 / (W - k + 1)^2.
  assert drop.dropblock_gamma(0.9, 14, 14, 7) == pytest.approx(
    0.1 * 196 / 49 / 64
  )
  assert drop.dropblock_gamma(0.9, 7, 7, 7) == pytest.approx(0.1)
  assert drop.dropblock_gamma(0.9, 4, 4, 7) == pytest.approx(0.1)  # k -> 4


def expected_kept_fraction(keep, h, w, k):
  """Exact E[kept]: a unit survives when no valid centre within its block
  window was seeded."""
  gamma = drop.dropblock_gamma(keep, h, w, k)
  valid = np.asarray(drop.valid_centers(h, w, k), np.float32)
  kk = min(k, h, w)
  pad = ((kk - 1) // 2, kk // 2)
  padded = np.pad(valid, (pad, pad))
  n = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      n[i, j] = padded[i : i + kk, j : j + kk].sum()
  return float(np.mean((1 - gamma) ** n))


@pytest.mark.parametrize(('keep', 'size'), [(0.9, 14), (0.9, 7), (0.7, 28)])
def test_dropblock_kept_fraction_and_rescaling(keep, size):
  x = jnp.ones((8, size, size, 512))
  out = jax.jit(drop.drop_block, static_argnums=3)(
    jax.random.key(1), x, keep, 7
  )
  kept = np.asarray(out > 0)
  want = expected_kept_fraction(keep, size, size, 7)
  assert abs(kept.mean() - want) < 0.01, (kept.mean(), want)
  # Without overlaps the law would keep exactly `keep`; overlapping blocks
  # keep a little more.
  assert keep - 0.005 < want < keep + 0.06
  # Kept units are scaled by size / kept over the whole tensor: sum kept.
  np.testing.assert_allclose(float(out.sum()), x.size, rtol=1e-5)
  assert np.unique(np.asarray(out)).size == 2


def test_dropblock_masks_are_blocks_per_channel():
  x = jnp.ones((2, 28, 28, 64))
  out = np.asarray(drop.drop_block(jax.random.key(3), x, 0.9, 7))
  dropped = out == 0
  # Every dropped unit lies in a fully dropped 7x7 square (the block) that
  # lies inside the map.
  some = [
    (b, c) for b in range(2) for c in range(64) if dropped[b, ..., c].any()
  ]
  assert len(some) > 10
  for b, c in some[:10]:
    d = dropped[b, :, :, c]
    for i, j in zip(*np.nonzero(d)):
      found = any(
        d[y : y + 7, x0 : x0 + 7].all()
        for y in range(max(i - 6, 0), min(i, 21) + 1)
        for x0 in range(max(j - 6, 0), min(j, 21) + 1)
      )
      assert found
  # Channels draw their own blocks.
  masks = {dropped[b, :, :, c].tobytes() for b, c in some}
  assert len(masks) > len(some) // 2


def test_dropblock_keep_one_is_identity_and_jit_equals_eager():
  x = jax.random.normal(jax.random.key(0), (2, 14, 14, 8))
  np.testing.assert_array_equal(
    drop.drop_block(jax.random.key(1), x, 1.0, 7), x
  )
  eager = drop.drop_block(jax.random.key(1), x, 0.8, 7)
  jitted = jax.jit(drop.drop_block, static_argnums=3)(
    jax.random.key(1), x, 0.8, 7
  )
  np.testing.assert_array_equal(eager, jitted)


def test_schedule_is_linear_and_groups_scale_by_four():
  for step, base in ((0, 1.0), (50, 0.95), (100, 0.9)):
    got = [float(drop.dropblock_keep_prob(step, 100, 0.9, g)) for g in (3, 4)]
    np.testing.assert_allclose(got, [1 - (1 - base) / 4, base], rtol=1e-6)


# --- the ResNet ---------------------------------------------------------------


def dropblock_resnet(**kw):
  return models.create_model(
    'resnet50',
    num_classes=5,
    rngs=nnx.Rngs(0),
    width=8,
    drop_path_rate=0.2,
    dropblock_keep_prob=0.9,
    dropblock_steps=10,
    **kw,
  )


def test_dropblock_only_in_groups_3_and_4_of_bottlenecks():
  model = dropblock_resnet()
  groups = [g for b, g in zip(model.blocks, model.block_groups) if b.dropblock]
  assert set(groups) == {3, 4} and len(groups) == 6 + 3
  with pytest.raises(ValueError, match='bottleneck ResNets'):
    models.create_model(
      'resnet18',
      num_classes=5,
      rngs=nnx.Rngs(0),
      dropblock_keep_prob=0.9,
      dropblock_steps=10,
    )
  with pytest.raises(ValueError, match='dropblock_steps'):
    models.create_model(
      'resnet50', num_classes=5, rngs=nnx.Rngs(0), dropblock_keep_prob=0.9
    )
  with pytest.raises(ValueError, match='dropblock_groups'):
    dropblock_resnet(dropblock_groups=(5,))


def test_inference_is_the_plain_resnet():
  model = dropblock_resnet()
  plain = models.create_model(
    'resnet50', num_classes=5, rngs=nnx.Rngs(1), width=8
  )
  # The torch layout ignores the schedule counter.
  models.assign_torch_weights(plain, models.torch_state_dict(model))
  model.eval()
  plain.eval()
  x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
  np.testing.assert_array_equal(model(x), plain(x))
  assert int(model.schedule_step[...]) == 0  # eval does not count
  model.train()
  model(x)
  assert int(model.schedule_step[...]) == 1


def test_train_step_carries_the_schedule_and_draws_drops():
  model_fn = functools.partial(dropblock_resnet)
  tx = optax.sgd(0.01)
  mesh = steps.create_mesh(jax.devices()[:1])
  model_def, state = state_lib.create_train_state(model_fn, tx, mesh=mesh)
  config = default.get_config()
  config.data.num_classes = 5
  config.mix.method = 'none'
  step = jax.jit(
    functools.partial(
      steps.train_step,
      model_def=model_def,
      tx=tx,
      learning_rate_fn=lambda s: 0.01,
      augment_fn=augment.create_augment_fn(config, mesh),
      config=steps.StepConfig(num_classes=5),
    )
  )
  batch = {
    'image': jnp.full((4, 64, 64, 3), 128, jnp.uint8),
    'label': jnp.arange(4, dtype=jnp.int32),
  }
  no_mixing = augment_schedule.Schedule(jnp.float32(0.0), jnp.float32(0.0))
  losses = []
  for _ in range(3):
    state, metrics = step(state, batch, no_mixing)
    losses.append(float(metrics['loss']))
  flat = dict(nnx.to_flat_state(state.batch_stats))
  assert int(flat[('schedule_step',)][...]) == 3
  assert np.isfinite(losses).all()


@pytest.mark.parametrize(
  'name', ['stochdepth_resnet50', 'dropblock_resnet50', 'resnet152_baseline']
)
def test_recipe_models_build(name):
  from jaxmix.train import build, recipes

  config = recipes.load(f'configs/imagenet/{name}.py')
  model = nnx.eval_shape(build.model_fn(config))
  kwargs = config.model.kwargs
  if 'drop_path_rate' in kwargs:
    assert model.blocks[-1].drop_path.rate == kwargs.drop_path_rate
  if 'dropblock_keep_prob' in kwargs:
    assert model.dropblock == (kwargs.dropblock_steps, 0.9)
    assert kwargs.dropblock_steps == 300 * (1_281_167 // 256)
  assert len(model.blocks) == (50 if name.startswith('resnet152') else 16)
