"""Tests for jaxmix.models: parameter counts, modes, heads, split/merge steps."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxmix.models import MODELS, create_model
from jaxmix.models.resnet import BasicBlock, Bottleneck, ResNet

# Small configurations that run in well under a second on a CPU.
SMALL_CNNS = {
  'tiny_cnn': dict(width=4),
  'cifar_resnet': dict(depth=8),
  'cifar_resnet_projection': dict(depth=8, shortcut='projection'),
  'pyramidnet': dict(depth=11, alpha=8, bottleneck=True),
  'pyramidnet_basic': dict(depth=8, alpha=6, bottleneck=False),
}
SMALL_VIT = dict(image_size=16, patch_size=8, dim=16, depth=2, num_heads=2)


def _rngs() -> nnx.Rngs:
  # An RBG key: initialisers compile about twice as fast as threefry on CPU.
  return nnx.Rngs(jax.random.key(0, impl='rbg'))


@functools.cache
def _cached(key: str, num_classes: int, dtype, extra: tuple) -> nnx.Module:
  name = key.replace('_projection', '').replace('_basic', '')
  kwargs = {**SMALL_CNNS.get(key, {}), **dict(extra)}
  if key.startswith('resnet_'):  # ResNet-18 / -50 blocks, one per stage
    return ResNet(
      BasicBlock if key == 'resnet_basic' else Bottleneck,
      (1, 1, 1, 1),
      num_classes=num_classes,
      width=2,
      rngs=_rngs(),
      dtype=dtype,
      **kwargs,
    )
  return create_model(
    name, num_classes=num_classes, rngs=_rngs(), dtype=dtype, **kwargs
  )


def _build(
  key: str, num_classes: int = 7, dtype=jnp.float32, **extra
) -> nnx.Module:
  """A fresh copy of a small model (each is initialised once per session)."""
  extra = tuple(sorted(extra.items()))
  return nnx.clone(_cached(key, num_classes, dtype, extra))


def _abstract(name: str, **kwargs) -> nnx.Module:
  """The model with shapes only: nothing is allocated or compiled."""
  return nnx.eval_shape(lambda: create_model(name, rngs=nnx.Rngs(0), **kwargs))


def _num_params(name: str, **kwargs) -> int:
  model = _abstract(name, **kwargs)
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  return sum(int(np.prod(p.shape)) for p in params)


def _images(shape=(4, 16, 16, 3), seed=0) -> jax.Array:
  return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize(
  'name, kwargs, expected',
  [
    # torchvision's published counts.
    ('resnet18', dict(num_classes=1000), 11_689_512),
    ('resnet34', dict(num_classes=1000), 21_797_672),
    ('resnet50', dict(num_classes=1000), 25_557_032),
    # timm's DeiT-S / DeiT-Ti.
    ('vit_s16', dict(num_classes=1000), 22_050_664),
    ('vit_ti16', dict(num_classes=1000), 5_717_416),
    # timm's EfficientNets (the tf_ variants differ only in padding).
    ('efficientnet_b0', dict(num_classes=1000), 5_288_548),
    ('tf_efficientnet_b0', dict(num_classes=1000), 5_288_548),
    ('efficientnet_b1', dict(num_classes=1000), 7_794_184),
    ('efficientnet_b2', dict(num_classes=1000), 9_109_994),
    ('efficientnet_b3', dict(num_classes=1000), 12_233_232),
    pytest.param(
      'tf_efficientnet_l2',
      dict(num_classes=1000),
      480_309_308,
      marks=pytest.mark.slow,  # tracing 480M parameters takes a while
    ),
    # He et al. CIFAR ResNets with option-A shortcuts (0.27M and 0.85M).
    ('cifar_resnet', dict(num_classes=10, depth=20), 269_722),
    ('cifar_resnet', dict(num_classes=10, depth=56), 853_018),
  ],
)
def test_parameter_counts(name, kwargs, expected):
  assert _num_params(name, **kwargs) == expected


@pytest.mark.slow
def test_pyramidnet200_matches_paper_count():
  # Han et al. / CutMix: PyramidNet-200 (alpha 240), CIFAR-100: 26.8M.
  count = _num_params('pyramidnet200', num_classes=100)
  assert count == 26_844_952
  assert abs(count - 26.8e6) / 26.8e6 < 0.01


def test_registry_names_and_errors():
  assert set(MODELS) >= {
    'resnet18',
    'resnet34',
    'resnet50',
    'resnet101',
    'resnet152',
    'cifar_resnet',
    'pyramidnet',
    'pyramidnet200',
    'vit_s16',
    'vit_ti16',
    'tiny_cnn',
  }
  with pytest.raises(ValueError, match='resnet5'):
    _abstract('resnet5', num_classes=10)
  with pytest.raises(ValueError, match='6n \\+ 2'):
    _abstract('cifar_resnet', num_classes=10, depth=21)
  with pytest.raises(ValueError, match='9n \\+ 2'):
    _abstract('pyramidnet', num_classes=10, depth=12)
  with pytest.raises(ValueError, match="'pad'"):
    _abstract('cifar_resnet', num_classes=10, depth=8, shortcut='B')
  with pytest.raises(ValueError, match='num_classes'):
    _abstract('tiny_cnn', num_classes=0)
  with pytest.raises(ValueError, match='divisible'):
    _abstract('vit_s16', num_classes=3, num_heads=5)
  with pytest.raises(ValueError, match='patch_size'):
    _abstract('vit_s16', num_classes=3, image_size=100)
  model = _abstract('tiny_cnn', num_classes=10)
  with pytest.raises(ValueError, match=r'\[B, H, W, 3\].*\(4, 16, 16\)'):
    model(jnp.zeros((4, 16, 16)))
  with pytest.raises(TypeError, match='uint8'):
    model(jnp.zeros((4, 16, 16, 3), jnp.uint8))


@pytest.mark.parametrize(
  'key, size, expected_hw',
  [
    ('tiny_cnn', 16, 4),
    ('cifar_resnet', 32, 8),
    ('cifar_resnet_projection', 16, 4),
    ('pyramidnet', 18, 5),  # odd sizes: ceil-mode pooling in the shortcuts
    ('pyramidnet_basic', 16, 4),
    ('resnet_basic', 64, 2),
    ('resnet_bottleneck', 33, 2),
  ],
)
def test_cnn_logits_are_pooled_features_times_head(key, size, expected_hw):
  model = _build(key)
  model.eval()
  graphdef, state = nnx.split(model)

  @jax.jit
  def apply(state, x):
    model = nnx.merge(graphdef, state)
    return model(x), model.features(x)

  logits, feats = apply(state, _images((2, size, size, 3)))
  assert logits.shape == (2, 7) and logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()
  assert feats.shape == (2, expected_hw, expected_hw, model.head.in_features)
  cam = feats @ model.head.kernel[...] + model.head.bias[...]
  np.testing.assert_allclose(
    logits, cam.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5
  )


def test_pyramidnet_widths_grow_additively():
  model = _abstract('pyramidnet', num_classes=10, depth=20, alpha=12)
  # n = 2 blocks per stage, +12 / 6 = +2 channels per block.
  widths = [b.convs[0].out_features for b in model.blocks]
  assert widths == [18, 20, 22, 24, 26, 28]
  assert [b.stride for b in model.blocks] == [1, 1, 2, 1, 2, 1]
  assert model.head.in_features == 28 * 4


def test_zero_init_residual_zeroes_last_bn_scale():
  model = _build('resnet_basic', zero_init_residual=True)
  for block in model.blocks:
    assert not np.any(block.bn2.scale[...])
    assert np.all(block.bn1.scale[...] == 1)
  model = _build('resnet_bottleneck', zero_init_residual=True)
  assert all(not np.any(b.bn3.scale[...]) for b in model.blocks)
  model = _build('resnet_bottleneck')
  assert all(np.all(b.bn3.scale[...] == 1) for b in model.blocks)


def test_batch_norm_uses_the_papers_momentum_and_epsilon():
  model = _build('resnet_basic')
  bn = model.stem_bn
  assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)


# One compile per model structure and mode; updates BN statistics and RNG
# counters of the model in place, as an eager call would.
_forward = nnx.jit(lambda model, x: model(x))
_forward_features = nnx.jit(lambda model, x: (model(x), model.features(x)))


def test_train_and_eval_modes_switch_batch_norm():
  model = _build('tiny_cnn')
  x = _images((4, 16, 16, 3))
  other = x.at[1:].set(_images((3, 16, 16, 3), seed=1))
  model.eval()
  # Running averages: an example's logits do not depend on the batch.
  np.testing.assert_allclose(
    _forward(model, x)[0], _forward(model, other)[0], rtol=1e-6
  )
  model.train()
  assert not np.allclose(
    _forward(model, x)[0], _forward(model, other)[0], rtol=1e-3
  )


def _sgd_step_fn(graphdef, tx):
  """A trainer-style pure step: merge, loss, grads, update, split."""

  @jax.jit
  def step(params, rest, opt_state, x, y):
    def loss_fn(params):
      # copy=True: fresh Variables at this trace level, so BatchNorm may
      # write its running averages inside `jax.value_and_grad`.
      model = nnx.merge(graphdef, params, rest, copy=True)
      logits = model(x)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
      return loss.mean(), nnx.state(model, nnx.Not(nnx.Param))

    (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), rest, opt_state, loss

  return step


def test_jitted_split_merge_step_updates_batch_stats_only_in_train():
  x = _images((8, 16, 16, 3))
  y = jnp.arange(8) % 5
  tx = optax.sgd(0.1, momentum=0.9)
  for training in (True, False):
    model = _build('tiny_cnn', num_classes=5)
    model.train() if training else model.eval()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    step = _sgd_step_fn(graphdef, tx)
    new_params, new_rest, _, loss = step(params, rest, tx.init(params), x, y)
    assert np.isfinite(float(loss))
    old_stats = jax.tree.leaves(nnx.filter_state(rest, nnx.BatchStat))
    new_stats = jax.tree.leaves(nnx.filter_state(new_rest, nnx.BatchStat))
    assert len(new_stats) == 6  # mean and var of three BatchNorms
    changed = [not np.array_equal(a, b) for a, b in zip(old_stats, new_stats)]
    assert all(changed) if training else not any(changed)
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), params, new_params)
    assert all(jax.tree.leaves(moved))
    # The new state has the old structure and dtypes: no retrace next step.
    assert jax.tree.structure(new_rest) == jax.tree.structure(rest)
    dtypes = lambda tree: [a.dtype for a in jax.tree.leaves(tree)]  # noqa: E731
    assert dtypes(new_params) == dtypes(params)
    assert dtypes(new_rest) == dtypes(rest)


def test_bfloat16_compute_keeps_float32_params_stats_and_logits():
  model = _build('tiny_cnn', dtype=jnp.bfloat16)
  reference = _build('tiny_cnn')  # same initial parameters, float32
  x = _images((4, 16, 16, 3))
  logits, feats = _forward_features(model, x)
  assert feats.dtype == jnp.bfloat16 and logits.dtype == jnp.float32
  np.testing.assert_allclose(
    logits, _forward_features(reference, x)[0], rtol=0.05, atol=0.05
  )
  # Training-mode updates keep the running averages in float32.
  state = nnx.state(model, nnx.Param, nnx.BatchStat)
  assert {a.dtype for a in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}
  assert not np.array_equal(model.bns[0].mean[...], np.zeros(4))


def test_vit_forward_dropout_and_drop_path():
  model = create_model(
    'vit_ti16',
    num_classes=3,
    rngs=_rngs(),
    dropout=0.3,
    drop_path_rate=0.5,
    **SMALL_VIT,
  )
  # Stochastic depth rises linearly from 0 to the rate over the blocks.
  assert [b.drop_path.rate for b in model.blocks] == [0.0, 0.5]
  x = _images((2, 16, 16, 3))
  model.eval()
  assert all(b.drop_path.deterministic for b in model.blocks)
  logits = _forward(model, x)
  assert logits.shape == (2, 3) and logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()
  np.testing.assert_array_equal(_forward(model, x), logits)
  model.train()
  first, second = _forward(model, x), _forward(model, x)
  assert not np.allclose(first, second)
  assert not np.allclose(first, logits)


def test_vit_bfloat16_and_input_checks():
  model = create_model(
    'vit_s16',
    num_classes=3,
    rngs=_rngs(),
    dtype=jnp.bfloat16,
    **SMALL_VIT,
  )
  logits = _forward(model, _images((2, 16, 16, 3)))
  assert logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()
  params = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert {p.dtype for p in params} == {jnp.dtype(jnp.float32)}
  with pytest.raises(ValueError, match='16, 16, 3'):
    model(_images((2, 32, 32, 3)))
