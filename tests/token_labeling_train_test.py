"""Token labeling in the trainer: the ViT's token head, the step's loss, a run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxmix
from jaxmix.configs import default
from jaxmix.data.label_maps.writer import LabelMapWriter
from jaxmix.models import create_model
from jaxmix.train import (
  augment,
  augment_schedule,
  build,
  setup,
  steps,
  token_labeling,
  validation,
)
from jaxmix.train import (
  state as state_lib,
)

K, S, TOP, B, SIZE = 10, 5, 3, 16, 16


def vit_config(token_weight=0.5, mixtoken=True):
  config = default.get_config('smoke')
  config.model.name = 'vit_ti16'
  config.model.kwargs = {
    'image_size': SIZE,
    'patch_size': 4,
    'dim': 16,
    'depth': 1,
    'num_heads': 2,
    'token_head': True,
  }
  config.image_size = SIZE
  config.relabel.update(
    enabled=True, token_labels=True, token_weight=token_weight
  )
  config.mix.method = 'mixtoken' if mixtoken else 'none'
  return config


def random_batch(seed=0):
  rng = np.random.default_rng(seed)
  top = rng.uniform(0.0, 0.4, (B, 2))
  boxes = np.concatenate([top, top + rng.uniform(0.3, 0.6, (B, 2))], 1)
  indices = np.stack(
    [rng.permutation(K)[:TOP] for _ in range(B * S * S)]
  ).reshape(B, S, S, TOP)
  return {
    'image': rng.integers(0, 256, (B, SIZE, SIZE, 3)).astype(np.uint8),
    'label': rng.integers(0, K, B).astype(np.int32),
    'crop_box': boxes.astype(np.float32),
    'flip': rng.random(B) < 0.5,
    'label_map_scores': rng.normal(2, 2, (B, S, S, TOP)).astype(np.float16),
    'label_map_indices': indices.astype(np.uint16),
    'label_map_found': np.ones(B, bool),
  }


@pytest.fixture(scope='module')
def mesh():
  return steps.create_mesh()


def test_vit_token_head_outputs_and_inference_rule():
  # Built and run under jit: one program each, not one per primitive.
  model = nnx.jit(
    lambda: create_model(
      'vit_ti16',
      num_classes=K,
      rngs=nnx.Rngs(0),
      image_size=SIZE,
      patch_size=4,
      dim=16,
      depth=1,
      num_heads=2,
      token_head=True,
    )
  )()
  model.eval()

  @nnx.jit
  def outputs(model, x):
    tokens = model.embed(x)
    return tokens, *model.encode(tokens), model(x)

  x = jax.random.normal(jax.random.key(1), (2, SIZE, SIZE, 3))
  tokens, class_logits, token_logits, logits = outputs(model, x)
  assert tokens.shape == (2, 4, 4, 16)
  assert class_logits.shape == (2, K) and token_logits.shape == (2, 4, 4, K)
  # LV-ViT's inference: class logits + 0.5 x the max token logit per class.
  want = class_logits + 0.5 * np.asarray(token_logits).reshape(2, 16, K).max(1)
  np.testing.assert_allclose(logits, want, rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match='token head'):
    token_labeling.check_model(  # the module's structure is what counts
      nnx.eval_shape(
        lambda: create_model('tiny_cnn', num_classes=K, rngs=nnx.Rngs(0))
      )
    )


def step_and_reference(mesh, config, mix_prob):
  """The jitted step's loss, and the loss recomputed from its parts."""
  tx, _ = build.optimizer(config, steps_per_epoch=4)
  model_def, state = state_lib.create_train_state(
    build.model_fn(config), tx, mesh=mesh
  )
  # The step donates the state: keep a copy of the weights it starts from.
  params = jax.tree.map(jnp.copy, state.params)
  batch_stats = jax.tree.map(jnp.copy, state.batch_stats)
  tx, lr = build.optimizer(config, steps_per_epoch=4)
  step = steps.jit_train_step(
    mesh,
    model_def=model_def,
    tx=tx,
    learning_rate_fn=lr,
    augment_fn=augment.create_augment_fn(config, mesh),
    config=setup.step_config(config),
    loss_fn=token_labeling.create_loss_fn(
      token_labeling.TokenSettings.from_config(config), mesh
    ),
  )
  batch = random_batch()
  schedule = augment_schedule.Schedule(np.float32(mix_prob), np.float32(0))
  _, metrics = step(state, batch, schedule)
  # Dropout and drop-path are 0: train mode is deterministic. The reference
  # is one jitted program of the public functions (not op-by-op dispatch,
  # which compiles every primitive on its own).

  @jax.jit
  def reference(params, batch_stats, batch):
    model = model_def.merge(params, batch_stats, train=True)
    images = steps.normalize(batch['image'], config.data.mean, config.data.std)
    tokens = model.embed(images)
    targets = jaxmix.relabel_targets(
      batch['label_map_scores'].astype(jnp.float32),
      batch['label_map_indices'].astype(jnp.int32),
      batch['crop_box'],
      num_classes=K,
    )
    token_targets = jaxmix.token_label_targets(
      batch['label_map_scores'].astype(jnp.float32),
      batch['label_map_indices'].astype(jnp.int32),
      batch['crop_box'],
      batch['flip'],
      grid=(4, 4),
      height=SIZE,
      width=SIZE,
      num_classes=K,
    )
    unmixed = targets
    if mix_prob > 0:  # the step's MixToken key: fold_in(its pixel key, 1)
      pixel_key, _ = jax.random.split(jax.random.fold_in(jax.random.key(0), 0))
      tokens, targets, token_targets = jaxmix.per_shard(jaxmix.mixtoken, mesh)(
        jax.random.fold_in(pixel_key, 1),
        tokens,
        targets,
        token_targets,
        alpha=1.0,
        prob=jnp.float32(mix_prob),
      )
    class_logits, token_logits = model.encode(tokens)
    return class_logits, token_logits, targets, token_targets, unmixed

  class_logits, token_logits, targets, token_targets, unmixed = reference(
    params, batch_stats, batch
  )
  if mix_prob > 0:
    assert not np.allclose(targets, unmixed)  # something was mixed
  return (
    float(metrics['loss']),
    class_logits,
    token_logits,
    targets,
    token_targets,
  )


def test_step_loss_is_the_token_labeling_loss(mesh):
  # Aux weight 0: exactly the class token's cross-entropy on ReLabel targets.
  loss, class_logits, _, targets, _ = step_and_reference(
    mesh, vit_config(token_weight=0.0), mix_prob=0.0
  )
  want = jaxmix.soft_cross_entropy(class_logits, targets).mean()
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  # Weight 0.5: class term + 0.5 x the mean token term on pooled token maps.
  loss, class_logits, token_logits, targets, token_targets = step_and_reference(
    mesh, vit_config(token_weight=0.5), mix_prob=0.0
  )
  want = jaxmix.token_labeling_loss(
    class_logits, token_logits, targets, token_targets, token_weight=0.5
  ).mean()
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  assert loss > jaxmix.soft_cross_entropy(class_logits, targets).mean() + 0.1
  # MixToken on: the loss of tokens, class and token targets mixed with
  # jaxmix.mixtoken inside each device's shard, between embed and encode.
  loss, class_logits, token_logits, targets, token_targets = step_and_reference(
    mesh, vit_config(), mix_prob=1.0
  )
  want = jaxmix.token_labeling_loss(
    class_logits, token_logits, targets, token_targets, token_weight=0.5
  ).mean()
  np.testing.assert_allclose(loss, want, rtol=1e-5)


@pytest.mark.parametrize(
  'edit, message',
  [
    (lambda c: c.relabel.update(enabled=False), r'relabel\.enabled'),
    (lambda c: c.model.kwargs.update(token_head=False), 'token_head'),
    (lambda c: c.mix.update(method='cutmix'), "'none' or 'mixtoken'"),
    (lambda c: c.relabel.update(token_weight=-1.0), 'token_weight'),
    (
      lambda c: c.relabel.update(token_labels=False),
      r"'mixtoken' needs config\.relabel\.token_labels",
    ),
  ],
)
def test_invalid_token_label_configs_fail_naming_the_field(edit, message):
  config = vit_config()
  edit(config)
  with pytest.raises(ValueError, match=message):
    validation.check_config(config)


def test_recipe_holds_the_official_settings():
  from jaxmix.configs.imagenet import token_labeling_vit_s16 as recipe

  config = recipe.get_config()
  validation.check_config(config)
  assert (config.num_epochs, config.global_batch_size) == (300, 1024)
  assert config.optimizer.learning_rate == 1.6e-3
  assert config.optimizer.weight_decay == 0.05
  assert config.mix.method == 'mixtoken' and config.relabel.token_weight == 0.5
  validation.check_config(recipe.get_config('smoke'))


def digit_store(data_dir, store_dir, size=8):
  """digit_scenes/small and a store of its objects' boxes (an exact annotator).

  Every cell of a map scores the digits whose box covers the cell's centre
  (logit 6) above the scene's label (logit 2), top-2.
  """
  import tensorflow_datasets as tfds

  from jaxmix.datasets import digit_scenes

  builder = digit_scenes.prepare(data_dir, 'small')
  names, all_scores, all_indices = [], [], []
  centres = (np.arange(size) + 0.5) / size
  for ex in tfds.as_numpy(builder.as_dataset(split='train')):
    scores = np.full((size, size, 2), [2.0, 0.0], np.float32)
    indices = np.empty((size, size, 2), np.int64)
    indices[..., 0] = ex['label']
    indices[..., 1] = (ex['label'] + 1) % K
    for box, label in zip(ex['objects']['bbox'], ex['objects']['label']):
      ymin, xmin, ymax, xmax = box
      inside = ((centres >= ymin) & (centres <= ymax))[:, None] & (
        (centres >= xmin) & (centres <= xmax)
      )[None, :]
      indices[..., 1] = np.where(inside, indices[..., 0], indices[..., 1])
      indices[..., 0] = np.where(inside, label, indices[..., 0])
      scores[..., 0] = np.where(inside, 6.0, scores[..., 0])
    names.append(ex['file_name'])
    all_scores.append(scores)
    all_indices.append(indices)
  writer = LabelMapWriter(
    str(store_dir), size=size, k=2, num_classes=K, source='digit objects'
  )
  writer.add(names, np.stack(all_scores), np.stack(all_indices))
  writer.finalize()


@pytest.mark.slow
def test_smoke_recipe_trains_on_digit_scenes_label_maps(
  tmp_path, digit_scenes_small
):
  from jaxmix.configs.imagenet import token_labeling_vit_s16 as recipe
  from jaxmix.train import loop

  data_dir, store = digit_scenes_small, tmp_path / 'maps'
  digit_store(data_dir, store)
  config = recipe.get_config('smoke')
  config.data.data_dir = data_dir
  config.relabel.store_dir = str(store)
  outcome = loop.train(config, str(tmp_path / 'run'))
  assert outcome.status == 'finished' and outcome.step == 8
  lines = (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()
  rows = [json.loads(x) for x in lines]
  losses = [r['train/loss'] for r in rows if 'train/loss' in r]
  assert losses and all(np.isfinite(losses))
  evals = [r for r in rows if 'eval/top1' in r]
  assert evals[-1]['eval/relabel_looked_up'] >= 256
  assert evals[-1]['eval/relabel_missing'] == 0
