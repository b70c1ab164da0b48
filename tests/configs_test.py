"""Tests of configs/: load every file as the CLI does; knobs reach their ops."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import flags

import jaxmix
from jaxmix.train import augment, recipes, samplers, steps, validation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(
  os.path.relpath(path, os.path.join(ROOT, 'jaxmix'))
  for path in glob.glob(
    os.path.join(ROOT, 'jaxmix', 'configs', '**', '*.py'), recursive=True
  )
  if not path.endswith('__init__.py')
)


@pytest.fixture
def at_root(monkeypatch):
  """Recipe paths below are relative to the repository root."""
  monkeypatch.chdir(ROOT)


# Parses `--config=spec` as `jaxmix.apps.train` does (locked config flag).
load = recipes.load


def test_packaged_recipes_are_found_by_their_path_under_configs(
  monkeypatch, tmp_path
):
  monkeypatch.chdir(tmp_path)  # no checkout here
  for spec, arg in (
    ('imagenet/cutmix_resnet50.py', ''),
    ('configs/default.py:smoke', 'smoke'),
  ):
    path, _, got = recipes.resolve(spec).partition(':')
    assert os.path.isfile(path) and got == arg
    assert path.endswith(spec.split(':')[0].removeprefix('configs/'))
  assert load('imagenet/cutmix_resnet50.py:smoke').mix.method == 'cutmix'
  with pytest.raises(FileNotFoundError, match='neither a file nor a packaged'):
    recipes.resolve('imagenet/no_such_recipe.py')


def test_all_recipes_are_present():
  assert set(CONFIG_FILES) >= {
    'configs/default.py',
    'configs/imagenet/resnet50_baseline.py',
    'configs/imagenet/cutout_resnet50.py',
    'configs/imagenet/mixup_resnet50.py',
    'configs/imagenet/cutmix_resnet50.py',
    'configs/imagenet/deit_s_mixup_cutmix.py',
    'configs/cifar100/pyramidnet200_baseline.py',
    'configs/cifar100/pyramidnet200_cutmix.py',
  }


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_config_loads_like_the_cli_and_validates(at_root, path):
  config = load(path)
  validation.check_config(config)
  validation.check_devices(config, device_count=8, process_count=2)
  with open(recipes.resolve(path)) as f:
    text = f.read()
  doc = text.split('"""')[1]
  for word in ('Command', 'Hardware', 'Expected result'):
    assert word in doc, f'{path}: docstring lacks {word!r}'
  assert path in doc.replace('\\\n', '')  # the command names this file


# Recipes whose smoke run needs real label maps: a small ViT on
# digit_scenes/small (the store is passed on the command line).
OFFLINE_SMOKE = {'configs/imagenet/token_labeling_vit_s16.py'}


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_smoke_variant_is_a_tiny_cpu_run(at_root, path):
  full, smoke = load(path), load(path + ':smoke')
  validation.check_config(smoke)
  if path in OFFLINE_SMOKE:
    assert smoke.data.dataset == 'digit_scenes/small'
    assert smoke.model.kwargs.depth <= 2 and smoke.num_epochs == 1
  else:
    # Transfer recipes start from a torchvision-layout file (init_from):
    # their smoke model is a width-8 ResNet-18, with the dataset's classes.
    tiny = 'resnet18' if path.startswith('configs/transfer/') else 'tiny_cnn'
    assert smoke.model.name == tiny and smoke.data.dataset == 'synthetic'
    assert smoke.global_batch_size == 16
  assert smoke.image_size == 32
  # The recipe itself is kept.
  assert smoke.mix.method == full.mix.method
  assert smoke.mix.to_dict().keys() == full.mix.to_dict().keys()
  assert (smoke.random_erasing.prob > 0) == (full.random_erasing.prob > 0)
  assert (smoke.cutout.size > 0) == (full.cutout.size > 0)
  # The synthetic source applies both (jaxmix.datasets.synthetic).
  assert smoke.data.auto_augment == full.data.auto_augment
  assert smoke.data.repeated_augmentation == full.data.repeated_augmentation


def test_overrides_work_and_misspelled_fields_fail(at_root):
  config = load('configs/default.py', '--config.mix.cutmix_alpha=0.3')
  assert config.mix.cutmix_alpha == 0.3
  with pytest.raises(Exception, match='cutmix_alpah'):
    load('configs/default.py', '--config.mix.cutmix_alpah=0.3')


def test_unknown_config_argument_fails(at_root):
  with pytest.raises(flags.IllegalFlagValueError, match="argument 'bogus'"):
    load('configs/default.py:bogus')


def test_paper_settings(at_root):
  cutmix = load('configs/imagenet/cutmix_resnet50.py')
  assert (cutmix.mix.method, cutmix.mix.cutmix_alpha, cutmix.mix.prob) == (
    'cutmix',
    1.0,
    1.0,
  )
  assert cutmix.num_epochs == 300 and cutmix.global_batch_size == 256
  assert cutmix.schedule.decay_epochs == (75, 150, 225)
  pyramid = load('configs/cifar100/pyramidnet200_cutmix.py')
  assert (pyramid.model.name, pyramid.global_batch_size) == (
    'pyramidnet200',
    64,
  )
  assert pyramid.optimizer.learning_rate == 0.25 and pyramid.num_epochs == 300
  assert (pyramid.mix.method, pyramid.mix.cutmix_alpha, pyramid.mix.prob) == (
    'cutmix',
    1.0,
    0.5,
  )
  assert pyramid.schedule.decay_epochs == (150, 225)
  assert pyramid.data.num_classes == 100
  deit = load('configs/imagenet/deit_s_mixup_cutmix.py')
  assert deit.mix.method == 'mixup_or_cutmix'
  assert (deit.mix.mixup_alpha, deit.mix.cutmix_alpha) == (0.8, 1.0)
  assert deit.label_smoothing == 0.1 and deit.random_erasing.prob == 0.25
  # DeiT's main.py: RandAugment rand-m9-mstd0.5-inc1, repeated aug 3, and
  # no colour jitter under RandAugment; ConvNeXt's: the same RandAugment.
  convnext = load('configs/imagenet/convnext_t.py')
  for recipe in (deit, convnext):
    assert recipe.data.auto_augment == 'rand-m9-mstd0.5-inc1'
    assert recipe.data.color_jitter == 0 and recipe.data.pca_lighting == 0
  assert deit.data.repeated_augmentation == 3
  assert convnext.data.repeated_augmentation == 1
  assert load('configs/imagenet/cutout_resnet50.py').cutout.size == 112
  assert load('configs/imagenet/mixup_resnet50.py').mix.method == 'mixup'


# The official codes' draw granularity and precision, per recipe family.
DRAWS = {
  'configs/imagenet/resnet50_baseline.py': 'batch',  # one DataParallel process
  'configs/imagenet/cutmix_resnet50.py': 'batch',
  'configs/imagenet/mixup_resnet50.py': 'batch',
  'configs/imagenet/cutout_resnet50.py': 'batch',
  'configs/imagenet/manifold_mixup_resnet50.py': 'batch',
  'configs/cifar100/pyramidnet200_cutmix.py': 'batch',
  'configs/imagenet/relabel_cutmix_resnet50.py': 'device',  # DDP processes
  'configs/imagenet/relabel_cutmix_resnet18.py': 'device',
  'configs/imagenet/relabel_cutmix_resnet101.py': 'device',
  'configs/imagenet/deit_s_mixup_cutmix.py': 'device',  # timm, per process
}


@pytest.mark.parametrize('path', sorted(DRAWS))
def test_recipes_draw_and_compute_as_their_official_code(at_root, path):
  config = load(path)
  assert config.mix.draw == DRAWS[path]
  assert config.model.dtype == 'bfloat16'  # accelerator recipes
  assert load(path + ':smoke').model.dtype == 'float32'  # exact CPU tests


@pytest.mark.parametrize(
  'path', [p for p in CONFIG_FILES if p.startswith('configs/imagenet/')]
)
def test_pytorch_recipes_use_torchvision_crop_and_name_it(at_root, path):
  """The PyTorch papers' ImageNet recipes crop with torchvision's law."""
  config = load(path)
  assert config.data.augment == 'inception'
  assert config.data.crop_sampler == 'torchvision'
  with open(recipes.resolve(path)) as f:
    doc = f.read().split('"""')[1]
  assert 'RandomResizedCrop law' in doc.replace('\n', ' ')


def test_cifar_recipes_name_their_crop_law(at_root):
  for path in CONFIG_FILES:
    if path.startswith('configs/cifar100/'):
      assert load(path).data.augment == 'cifar'
      with open(recipes.resolve(path)) as f:
        doc = f.read().split('"""')[1].replace('\n', ' ')
      assert 'RandomCrop(32, padding=4) law' in doc, path


def test_cutmix_recipes_jitter_unclipped_relabel_recipes_clipped(at_root):
  # The CutMix code's own ColorJitter lerps float tensors without clipping;
  # ReLabel uses torchvision's, which clips after each step.
  for name in ('resnet50_baseline', 'cutmix_resnet50', 'mixup_resnet50'):
    config = load(f'configs/imagenet/{name}.py')
    assert (config.data.color_jitter, config.data.pca_lighting) == (0.4, 0.1)
    assert not config.data.color_jitter_clip
  relabel = load('configs/imagenet/relabel_cutmix_resnet50.py')
  assert (relabel.data.color_jitter, relabel.data.pca_lighting) == (0.4, 0.1)
  assert relabel.data.color_jitter_clip


# --- every knob reaches the op it names ------------------------------------


OCCLUSIONS = ('cutout', 'random_erasing')


def spy_on_ops(monkeypatch):
  """Replaces the samplers and occlusions by recorders that change nothing."""
  calls = {}
  for name in samplers.SAMPLERS:

    def sample(key, *, batch_size, _name=name, **knobs):
      calls[_name] = knobs
      return jaxmix.make_draw(
        weight=1.0,
        partners=jnp.arange(batch_size),
        box=jaxmix.Box(0, 0, 0, 0),
        height=1,
        width=1,
      )

    monkeypatch.setitem(samplers.SAMPLERS, name, sample)
  for name in OCCLUSIONS:

    def record(key, images, _name=name, **knobs):
      calls[_name] = knobs
      return images

    monkeypatch.setattr(samplers, name, record)
  return calls


def run_augment(config, mix_prob=None, keys=(1,)):
  """The config's augmentation of 64 random 32x32 images (8 per device).

  Compiled once per call; returns one `(images, labels)` per key.
  """
  mesh = steps.create_mesh()
  fn = augment.create_mix_fn(config, mesh)
  images = jax.random.normal(jax.random.key(0), (64, 32, 32, 3))
  labels = jaxmix.one_hot(jnp.arange(64) % 4, 4)
  prob = config.mix.prob if mix_prob is None else mix_prob

  cmo = {}
  if config.cmo.enabled:  # The minority stream CMO pastes from.
    minority = jax.random.normal(jax.random.key(1), images.shape)
    cmo = dict(minority=(minority, labels[::-1]))

  @jax.jit
  def run(key, prob):
    if cmo:
      return fn(key, images, labels, mix_prob=prob, cmo_prob=prob, **cmo)
    return fn(key, images, labels, mix_prob=prob)

  outputs = [run(jax.random.key(k), jnp.float32(prob)) for k in keys]
  return outputs[0] if len(keys) == 1 else outputs


@pytest.mark.parametrize('path', CONFIG_FILES)
def test_recipe_knobs_reach_the_ops_they_name(at_root, monkeypatch, path):
  config = load(path + ':smoke')
  if config.relabel.localized_cutmix:
    # Mixes label maps, not labels: relabel_train_test checks that step.
    assert config.mix.method == 'cutmix' and config.relabel.enabled
    return
  calls = spy_on_ops(monkeypatch)
  # Distinct values, so that a knob passed to the wrong argument shows.
  config.mix.update(mixup_alpha=0.31, cutmix_alpha=0.67, switch_prob=0.23)
  run_augment(config, mix_prob=0.41)
  method = config.mix.method
  expected = {
    'mixup': {'alpha': 0.31},
    'cutmix': {'alpha': 0.67, 'correct_lam': config.mix.correct_lam},
    'mixup_or_cutmix': {
      'mixup_alpha': 0.31,
      'cutmix_alpha': 0.67,
      'switch_prob': 0.23,
    },
  }
  if method in augment.MODEL_MIX_METHODS:
    # Mixes inside the model (patch tokens, hidden states):
    # token_labeling_train_test and manifold_mixup_train_test check them.
    assert not calls.keys() & {'mixtoken', 'mixup'}
  elif method != 'none':
    knobs = calls.pop(method)
    for name, value in expected[method].items():
      assert knobs[name] == value, (path, name)
    assert isinstance(knobs['prob'], jax.Array)  # traced, not baked in
    assert knobs['per_example'] == (config.mix.draw == 'example')
  if config.cmo.enabled:
    knobs = calls.pop('cmo')
    assert knobs['alpha'] == config.cmo.beta
    assert isinstance(knobs['prob'], jax.Array)
  if config.cutout.size:
    knobs = calls.pop('cutout')
    assert (knobs['size'], knobs['prob']) == (
      config.cutout.size,
      config.cutout.prob,
    )
  if config.random_erasing.prob:
    knobs = calls.pop('random_erasing')
    assert knobs['prob'] == config.random_erasing.prob
    assert knobs['fill'] == config.random_erasing.fill
  assert calls == {}  # no op ran that the config did not ask for


def default_config(**mix):
  from jaxmix.configs import default

  config = default.get_config('smoke')
  config.mix.update(mix)
  return config


def changes(config, field, value):
  """Whether setting config.mix.<field> = value changes the output."""
  before = run_augment(config, keys=(0, 1, 2))
  config.mix[field] = value
  after = run_augment(config, keys=(0, 1, 2))
  return not all(
    np.array_equal(a, b)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))
  )


@pytest.mark.parametrize(
  ('method', 'field', 'effect'),
  [
    ('cutmix', 'cutmix_alpha', True),
    ('cutmix', 'mixup_alpha', False),
    ('mixup', 'mixup_alpha', True),
    ('mixup', 'cutmix_alpha', False),
  ],
)
def test_each_alpha_changes_only_its_own_path(at_root, method, field, effect):
  config = default_config(
    method=method, mixup_alpha=0.4, cutmix_alpha=1.0, switch_prob=0.5
  )
  assert changes(config, field, 3.0 if 'alpha' in field else 0.9) == effect


def test_switch_prob_zero_is_pure_mixup(at_root):
  config = default_config(method='mixup_or_cutmix', switch_prob=0.0)
  assert not changes(config, 'cutmix_alpha', 3.0)


def test_mix_prob_zero_leaves_the_batch_alone(at_root):
  config = default_config(method='cutmix')
  images, labels = run_augment(config, mix_prob=0.0)
  want_images = jax.random.normal(jax.random.key(0), (64, 32, 32, 3))
  np.testing.assert_array_equal(images, want_images)
  np.testing.assert_array_equal(labels, jaxmix.one_hot(jnp.arange(64) % 4, 4))
  images, labels = run_augment(config, mix_prob=1.0)
  assert not np.array_equal(images, want_images)


# --- validation --------------------------------------------------------------


@pytest.mark.parametrize(
  ('edit', 'message'),
  [
    (lambda c: c.update(mixx=1), r"\['mixx'\]"),
    (lambda c: c.mix.update(alpah=1.0), r"\['mix.alpah'\]"),
    (
      lambda c: c.mix.update(prob=1.5),
      r'config\.mix\.prob must be in \[0, 1\]',
    ),
    (lambda c: c.cutout.update(prob=-0.1), r'config\.cutout\.prob'),
    (
      lambda c: c.random_erasing.update(prob=2.0),
      r'config\.random_erasing\.prob',
    ),
    (
      lambda c: c.mix.update(method='cutmix', cutmix_alpha=0.0),
      r"config\.mix\.cutmix_alpha must be > 0 when config\.mix\.method is 'cutmix'",
    ),
    (
      lambda c: c.mix.update(method='mixup_or_cutmix', mixup_alpha=-1.0),
      r'config\.mix\.mixup_alpha',
    ),
    (
      lambda c: c.mix.update(method='mixup_or_cutmix', cutmix_alpha=-0.5),
      r'config\.mix\.cutmix_alpha must be >= 0 \(0 switches its branch off\)',
    ),
    (
      lambda c: c.mix.update(
        method='mixup_or_cutmix', mixup_alpha=0.0, cutmix_alpha=0.0
      ),
      r'config\.mix\.mixup_alpha and config\.mix\.cutmix_alpha are both 0',
    ),
    (
      lambda c: c.mix.update(
        method='cutmix', cutmix_alpha=-1.0, minmax=(0.2, 0.8)
      ),
      r'config\.mix\.cutmix_alpha must be >= 0',
    ),
    (
      lambda c: c.mix.update(method='mixtoken', draw='pair'),
      r"config\.mix\.draw='pair' applies to",
    ),
    (lambda c: c.mix.update(draw='pairs'), r'config\.mix\.draw must be one of'),
    (
      lambda c: c.mix.update(targets='sparse'),
      r'config\.mix\.targets must be one of',
    ),
    (
      lambda c: (
        c.relabel.update(enabled=True, localized_cutmix=True),
        c.mix.update(method='cutmix', draw='pair'),
      ),
      r"config\.mix\.draw must be 'batch' or 'device' with "
      r"config\.relabel\.localized_cutmix, got 'pair'",
    ),
    (lambda c: c.mix.update(method='cutmixx'), r'config\.mix\.method'),
    (lambda c: c.model.update(dtype='float16'), r'config\.model\.dtype'),
    (
      lambda c: c.data.update(crop_sampler='pil'),
      r'config\.data\.crop_sampler',
    ),
    (
      lambda c: c.data.update(train_resize='bicubic'),
      r'config\.data\.train_resize',
    ),
    (lambda c: c.update(label_smoothing=1.0), r'config\.label_smoothing'),
    (lambda c: c.mix.update(off_epoch=3), r'config\.mix\.off_epoch'),
    (lambda c: c.mix.update(minmax=(0.8, 0.2)), r'config\.mix\.minmax'),
    (lambda c: c.checkpoint.update(every_steps=0), r'checkpoint\.every_steps'),
    (
      lambda c: c.model.kwargs.update(image_size=64),
      r'config\.model\.kwargs\.image_size \(64\) must equal',
    ),
  ],
)
def test_invalid_configs_fail_naming_the_field(at_root, edit, message):
  from jaxmix.configs import default

  config = default.get_config('smoke')
  edit(config)
  with pytest.raises(ValueError, match=message):
    validation.check_config(config)


def test_unused_alpha_may_be_zero(at_root):
  from jaxmix.configs import default

  config = default.get_config('smoke')
  config.mix.update(method='mixup', mixup_alpha=0.2, cutmix_alpha=0.0)
  validation.check_config(config)
  # timm's rule: 0 switches a branch of mixup_or_cutmix off; minmax boxes
  # do not use the CutMix alpha.
  for mix in (
    dict(method='mixup_or_cutmix', mixup_alpha=0.0, cutmix_alpha=1.0),
    dict(method='mixup_or_cutmix', mixup_alpha=0.8, cutmix_alpha=0.0),
    dict(method='mixup_or_cutmix', mixup_alpha=0.0, cutmix_alpha=0.0,
         minmax=(0.2, 0.8)),
    dict(method='cutmix', cutmix_alpha=0.0, minmax=(0.2, 0.8)),
  ):  # fmt: skip
    config = default.get_config('smoke')
    config.mix.update(**mix)
    validation.check_config(config)


def test_pair_draw_needs_an_even_batch_per_device(at_root):
  from jaxmix.configs import default

  config = default.get_config('smoke')  # global batch 16
  config.mix.update(method='mixup_or_cutmix', draw='pair')
  validation.check_devices(config, device_count=8, process_count=1)
  with pytest.raises(
    ValueError, match=r"config\.mix\.draw='pair' .* / 16 devices = 1"
  ):
    validation.check_devices(config, device_count=16, process_count=1)


def test_batch_must_divide_over_devices_and_processes(at_root):
  from jaxmix.configs import default

  config = default.get_config('smoke')  # global batch 16
  with pytest.raises(
    ValueError, match=r'global_batch_size \(16\).*device count \(6\)'
  ):
    validation.check_devices(config, device_count=6, process_count=1)
  with pytest.raises(ValueError, match=r'process count \(3\)'):
    validation.check_devices(config, device_count=8, process_count=3)
