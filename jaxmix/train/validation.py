"""Start-up checks of a trainer config, with errors naming the field.

`check_config` runs before anything is built: unknown keys (compared with
`configs/default.py`, so a misspelled field in a recipe fails even though
recipes edit an unlocked config), values with a fixed set of choices, every
numeric field outside its domain (`_DOMAINS`: a learning rate > 0, a
standard deviation > 0 per channel, probabilities in [0, 1], ...; NaN
included), alphas the chosen mixing method uses that are not positive (for
'mixup_or_cutmix': both 0), and combinations that cannot run together.
This module is the one home of the trainer's combination rules: the
augmentation and the step trust a checked config. `check_devices` runs
once the devices are known.
"""

from typing import Any

import ml_collections

from jaxmix.models import MODELS
from jaxmix.train.augment import (
  MIX_DRAWS,
  MIX_METHODS,
  MIX_TARGETS,
  MODEL_MIX_METHODS,
)
from jaxmix.train.optimizers import OPTIMIZERS
from jaxmix.train.schedules import SCHEDULES

# Sub-dicts whose keys are free (passed through as keyword arguments).
_FREE_FORM = ('model.kwargs',)
# Every field with a fixed set of values, checked at start-up (the input
# pipeline's own two are repeated here: importing it would load TensorFlow;
# tests/run_record_test.py checks that they agree).
_CHOICES = {
  'model.dtype': ('float32', 'bfloat16'),
  'data.crop_sampler': ('torchvision', 'tensorflow'),
  'data.augment': ('inception', 'cifar', 'none'),
  'data.train_resize': ('antialias', 'area'),
  'data.on_corrupt': ('error', 'skip'),
  'data.photometric': ('host', 'device'),
  'relabel.missing': ('error', 'one_hot'),
  'mix.method': MIX_METHODS,
  'mix.draw': MIX_DRAWS,
  'mix.targets': MIX_TARGETS,
  'random_erasing.fill': ('zero', 'random', 'pixel'),
  'optimizer.name': OPTIMIZERS,
  'optimizer.decay_mask': ('all', 'no_bias_norm'),
  'schedule.name': SCHEDULES,
}
# Every numeric field with a domain, as an interval: '(' and ')' exclude
# the bound, '[' and ']' include it, `inf` is unbounded. A tuple field is
# checked element by element. Fields whose domain depends on other fields
# (the alphas, `mix.minmax`, `mix.off_epoch`) are checked below.
_DOMAINS = {
  'seed': '[0, inf)',
  'num_epochs': '(0, inf)',
  'global_batch_size': '(0, inf)',
  'image_size': '(0, inf)',
  'label_smoothing': '[0, 1)',
  'log_every_steps': '(0, inf)',
  'eval_every_epochs': '(0, inf)',
  'checkpoint.every_steps': '(0, inf)',
  'checkpoint.keep': '(0, inf)',
  'data.num_classes': '(0, inf)',
  'data.mean': '[0, 255]',
  'data.std': '(0, inf)',
  'data.crop_pct': '(0, 1]',
  'data.crop_scale': '(0, 1]',
  'data.crop_ratio': '(0, inf)',
  'data.color_jitter': '[0, inf)',
  'data.pca_lighting': '[0, inf)',
  'data.shuffle_buffer': '[0, inf)',
  'data.long_tail.imbalance_ratio': '[1, inf)',
  'data.long_tail.seed': '[0, inf)',
  'data.synthetic.train_examples': '(0, inf)',
  'data.synthetic.eval_examples': '(0, inf)',
  'optimizer.learning_rate': '(0, inf)',
  'optimizer.momentum': '[0, 1)',
  'optimizer.b1': '[0, 1)',
  'optimizer.b2': '[0, 1)',
  'optimizer.eps': '(0, inf)',
  'optimizer.weight_decay': '[0, inf)',
  'optimizer.delta': '[0, inf)',
  'optimizer.wd_ratio': '[0, inf)',
  'optimizer.ema_decay': '[0, 1)',
  'schedule.warmup_epochs': '[0, inf)',
  'schedule.decay_epochs': '[0, inf)',
  'schedule.decay_factor': '(0, inf)',
  'schedule.decay_every_epochs': '(0, inf)',
  'mix.prob': '[0, 1]',
  'mix.switch_prob': '[0, 1]',
  'mix.mixup_alpha': '[0, inf)',
  'mix.cutmix_alpha': '[0, inf)',
  'mix.manifold_layers': '[0, inf)',
  'cutout.size': '[0, inf)',
  'cutout.prob': '[0, 1]',
  'cutout.count': '(0, inf)',
  'random_erasing.prob': '[0, 1]',
  'random_erasing.area': '(0, 1]',
  'random_erasing.aspect': '(0, inf)',
  'random_erasing.max_count': '(0, inf)',
  'relabel.temperature': '(0, 100]',
  'relabel.token_weight': '[0, inf)',
  'cmo.prob': '[0, 1]',
  'cmo.beta': '(0, inf)',
  'cmo.alpha': '[0, inf)',
  'cmo.start_epoch': '[-1, inf)',
  'cmo.stop_epochs': '[0, inf)',
  'distill.temperature': '(0, inf)',
  'distill.alpha': '[0, 1]',
}
# (min, max) pairs: the first must not exceed the second.
_ORDERED_PAIRS = (
  'data.crop_scale',
  'data.crop_ratio',
  'random_erasing.area',
  'random_erasing.aspect',
)


def _get(config: Any, field: str) -> Any:
  value = config
  for part in field.split('.'):
    value = value[part]
  return value


def _unknown_keys(config: Any, reference: Any, prefix: str = '') -> list[str]:
  unknown = []
  for key in config:
    field = f'{prefix}{key}'
    if key not in reference:
      unknown.append(field)
    elif (
      field not in _FREE_FORM
      and isinstance(config[key], ml_collections.ConfigDict)
      and isinstance(reference[key], ml_collections.ConfigDict)
    ):
      unknown += _unknown_keys(config[key], reference[key], f'{field}.')
  return unknown


def _parse_interval(text: str):
  """'(0, 1]' -> (0.0, 1.0, low_open, high_open)."""
  low, high = (float(v) for v in text[1:-1].split(','))
  return low, high, text[0] == '(', text[-1] == ')'


def _describe(text: str) -> str:
  low, high, low_open, _ = _parse_interval(text)
  if high == float('inf'):
    return f'{">" if low_open else ">="} {low:g}'
  return f'in {text}'


def _in_interval(value: Any, text: str) -> bool:
  low, high, low_open, high_open = _parse_interval(text)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return False
  above = value > low if low_open else value >= low
  below = value < high if high_open else value <= high
  return above and below  # False for NaN


def _check_domains(config: Any) -> None:
  """Every field of `_DOMAINS` (each element of a tuple field) in range."""
  for field, interval in _DOMAINS.items():
    value = _get(config, field)
    if isinstance(value, (tuple, list)):
      items = [(f'{field}[{i}]', v) for i, v in enumerate(value)]
      if not items:
        raise ValueError(f'config.{field} must not be empty.')
    else:
      items = [(field, value)]
    for name, item in items:
      if not _in_interval(item, interval):
        raise ValueError(
          f'config.{name} must be {_describe(interval)}, got {item!r}.'
        )
  for field in _ORDERED_PAIRS:
    value = tuple(_get(config, field))
    if len(value) != 2 or value[0] > value[1]:
      raise ValueError(
        f'config.{field} must be (min, max) with min <= max, got {value}.'
      )
  channels = {len(config.data.mean), len(config.data.std)}
  if len(channels) != 1:
    raise ValueError(
      f'config.data.mean ({len(config.data.mean)} values) and config.data.std'
      f' ({len(config.data.std)} values) must have one value per channel.'
    )


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad field of `config`."""
  from jaxmix.configs import default  # the schema, shipped with jaxmix

  unknown = _unknown_keys(config, default.get_config())
  if unknown:
    raise ValueError(
      f'Unknown config field(s) {unknown}; see configs/default.py for the '
      'known fields.'
    )
  # The registry is read at call time: models may be registered at run time.
  for field, choices in {**_CHOICES, 'model.name': tuple(MODELS)}.items():
    if _get(config, field) not in choices:
      raise ValueError(
        f'config.{field} must be one of {choices}, got {_get(config, field)!r}.'
      )
  _check_alphas(config)
  _check_domains(config)
  if config.mix.minmax is not None:
    low, high = config.mix.minmax
    if not 0 < low < high <= 1:
      raise ValueError(
        f'config.mix.minmax must be (min, max) with 0 < min < max <= 1, got '
        f'{tuple(config.mix.minmax)}.'
      )
  if not 0 <= config.mix.off_epoch <= config.num_epochs:
    raise ValueError(
      f'config.mix.off_epoch must be in [0, num_epochs={config.num_epochs}], '
      f'got {config.mix.off_epoch}.'
    )
  kwargs_size = config.model.kwargs.get('image_size', config.image_size)
  if kwargs_size != config.image_size:
    raise ValueError(
      f'config.model.kwargs.image_size ({kwargs_size}) must equal '
      f'config.image_size ({config.image_size}).'
    )
  _check_mix_forms(config)
  _check_manifold_layers(config)
  if config.relabel.enabled:
    _check_relabel(config)
  _check_token_labels(config)
  _check_cmo(config)
  _check_sample_augmentation(config.data)
  _check_distill(config)


def _check_sample_augmentation(data: ml_collections.ConfigDict) -> None:
  """`data.auto_augment` and `data.repeated_augmentation`, and the host
  photometric that would come before the policy (timm's order is policy,
  then any forced colour jitter, as the device photometric runs)."""
  from jaxmix.data import auto_augment_host, repeated  # TF-free

  auto_augment_host.check_spec(data.auto_augment)
  repeated.check(data.repeated_augmentation)
  if not data.auto_augment or data.photometric != 'host':
    return
  for field in ('color_jitter', 'pca_lighting'):
    if data[field] > 0:
      raise ValueError(
        f"config.data.{field}={data[field]} with data.photometric='host' "
        'would run before config.data.auto_augment='
        f'{data.auto_augment!r}; timm applies its policy first. Use '
        "data.photometric='device' (after the policy) or turn one off."
      )


def _check_alphas(config: ml_collections.ConfigDict) -> None:
  """The alphas the mixing method uses (timm's alpha-0 rule for both)."""
  mix = config.mix
  method = mix.method
  if method == 'mixup_or_cutmix':
    # 0 switches a branch off (jaxmix.mixup_or_cutmix); one must stay on.
    for name in ('mixup_alpha', 'cutmix_alpha'):
      if not mix[name] >= 0:
        raise ValueError(
          f'config.mix.{name} must be >= 0 (0 switches its branch off) when '
          f"config.mix.method is 'mixup_or_cutmix', got {mix[name]}."
        )
    if mix.mixup_alpha == 0 and mix.cutmix_alpha == 0 and mix.minmax is None:
      raise ValueError(
        'config.mix.mixup_alpha and config.mix.cutmix_alpha are both 0 with '
        "config.mix.method='mixup_or_cutmix', which switches both branches "
        'off: set one > 0 (or config.mix.minmax for CutMix), or '
        "config.mix.method='none'."
      )
    return
  needs = {
    'mixup': 'mixup_alpha',
    'cutmix': 'cutmix_alpha',
    'mixtoken': 'cutmix_alpha',
    'manifold_mixup': 'mixup_alpha',
  }.get(method)
  if needs is None:
    return
  if method == 'cutmix' and mix.minmax is not None:
    # minmax boxes do not use the alpha (timm sets it to 1); 0 is fine.
    if not mix.cutmix_alpha >= 0:
      raise ValueError(
        f'config.mix.cutmix_alpha must be >= 0, got {mix.cutmix_alpha}.'
      )
    return
  if not mix[needs] > 0:
    raise ValueError(
      f'config.mix.{needs} must be > 0 when config.mix.method is '
      f'{method!r}, got {mix[needs]}.'
    )


def _check_mix_forms(config: ml_collections.ConfigDict) -> None:
  """Integer-label targets need single labels; pair draws, pixel mixing."""
  mix = config.mix
  if mix.draw == 'pair' and mix.method == 'mixtoken':
    raise ValueError(
      "config.mix.draw='pair' applies to 'mixup', 'cutmix' and "
      "'mixup_or_cutmix'; config.mix.method='mixtoken' draws per 'batch', "
      "'device' or 'example'."
    )
  if mix.targets != 'two_target':
    return
  for field, on, why in (
    ('relabel.token_labels', config.relabel.token_labels, 'token labels'),
    ('relabel.enabled', config.relabel.enabled, 'soft ReLabel targets'),
    ('cmo.enabled', config.cmo.enabled, "CMO's targets"),
  ):
    if on:
      raise ValueError(
        "config.mix.targets='two_target' carries single integer labels and "
        f'cannot be combined with config.{field}=True ({why} are dense '
        "[B, K]); use config.mix.targets='dense'."
      )


def _check_manifold_layers(config: ml_collections.ConfigDict) -> None:
  """Manifold Mixup's points: distinct integers (domain checked above)."""
  layers = tuple(config.mix.manifold_layers)
  if any(isinstance(k, bool) or not isinstance(k, int) for k in layers) or (
    len(set(layers)) != len(layers)
  ):
    raise ValueError(
      'config.mix.manifold_layers must be distinct integer mixing points '
      f'(0: the input, k: the output of block group k), got {layers}.'
    )


def _check_token_labels(config: ml_collections.ConfigDict) -> None:
  """Token labeling and MixToken need each other's fields."""
  relabel, method = config.relabel, config.mix.method
  if method == 'mixtoken' and not relabel.token_labels:
    raise ValueError(
      "config.mix.method='mixtoken' needs config.relabel.token_labels=True "
      '(it mixes the token labels with the tokens).'
    )
  if not relabel.token_labels:
    return
  if not relabel.enabled:
    raise ValueError(
      'config.relabel.token_labels needs config.relabel.enabled=True: the '
      'token labels are pooled from the ReLabel label maps.'
    )
  if not config.model.kwargs.get('token_head', False):
    raise ValueError(
      'config.relabel.token_labels needs a ViT with a token head: set '
      'config.model.kwargs.token_head=True.'
    )
  if method not in ('none', 'mixtoken'):
    raise ValueError(
      "config.mix.method must be 'none' or 'mixtoken' with "
      f'config.relabel.token_labels, got {method!r} (pixel mixing would '
      'leave the token labels unmixed).'
    )
  if relabel.localized_cutmix:
    raise ValueError(
      'config.relabel.localized_cutmix cannot be combined with '
      'config.relabel.token_labels.'
    )


def _check_distill(config: ml_collections.ConfigDict) -> None:
  """The teacher's fields (its file or run is opened at start)."""
  distill = config.distill
  if not distill.enabled:
    return
  if distill.teacher is None:
    # Needed at start (`jaxmix.train.distill.load_teacher`), as ReLabel's
    # store, so a recipe may leave it to the command line.
    if config.data.dataset != 'synthetic':
      return
    if distill.teacher_model not in MODELS:
      raise ValueError(
        'config.distill.teacher_model must name the random teacher of a '
        f'synthetic run, one of {tuple(MODELS)}, got '
        f'{distill.teacher_model!r}.'
      )
  elif not isinstance(distill.teacher, str) or not distill.teacher:
    raise ValueError(
      'config.distill.teacher must be a run directory or a state-dict file, '
      f'got {distill.teacher!r}.'
    )
  if config.mix.method in MODEL_MIX_METHODS or config.relabel.token_labels:
    what = (
      'config.relabel.token_labels'
      if config.relabel.token_labels
      else f'config.mix.method={config.mix.method!r}'
    )
    raise ValueError(
      f'config.distill.enabled cannot be combined with {what}: the teacher '
      'sees the input images, which that method does not mix.'
    )


def _check_cmo(config: ml_collections.ConfigDict) -> None:
  """CMO runs alone: no ReLabel maps, no other mixing."""
  cmo = config.cmo
  if not cmo.enabled:
    return
  if config.relabel.enabled:
    raise ValueError(
      'config.cmo.enabled cannot be combined with config.relabel.enabled '
      '(the minority stream has no label maps).'
    )
  if config.mix.method != 'none':
    raise ValueError(
      "config.cmo.enabled needs config.mix.method='none' (CMO is the run's "
      f'mixing, as in the official code), got {config.mix.method!r}.'
    )


def _check_relabel(config: ml_collections.ConfigDict) -> None:
  """ReLabel's combinations; the store is opened (and checked) at start."""
  relabel = config.relabel
  if relabel.localized_cutmix:
    mix = config.mix
    if mix.method != 'cutmix':
      raise ValueError(
        "config.relabel.localized_cutmix needs config.mix.method='cutmix', "
        f'got {mix.method!r}.'
      )
    # jaxmix.relabel_cutmix draws one official box per batch (or device).
    if mix.draw not in ('batch', 'device'):
      raise ValueError(
        "config.mix.draw must be 'batch' or 'device' with "
        f'config.relabel.localized_cutmix, got {mix.draw!r}.'
      )
    for field, value, want in (
      ('correct_lam', mix.correct_lam, True),
      ('minmax', mix.minmax, None),
    ):
      if value != want:
        raise ValueError(
          f'config.mix.{field} must be {want} with '
          f'config.relabel.localized_cutmix, got {value!r}.'
        )


def check_devices(
  config: ml_collections.ConfigDict, *, device_count: int, process_count: int
) -> None:
  """The global batch must split evenly over devices and processes (and
  into pairs on each device with `mix.draw='pair'`)."""
  batch = config.global_batch_size
  for what, count in (('device', device_count), ('process', process_count)):
    if batch % count:
      raise ValueError(
        f'config.global_batch_size ({batch}) must be divisible by the '
        f'{what} count ({count}).'
      )
  per_device = batch // device_count
  if config.mix.draw == 'pair' and per_device % 2:
    raise ValueError(
      "config.mix.draw='pair' mirrors pairs inside each device's shard and "
      f'needs an even batch per device: config.global_batch_size ({batch}) '
      f'/ {device_count} devices = {per_device}.'
    )
