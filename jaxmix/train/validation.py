"""Start-up checks of a trainer config, with errors naming the field.

`check_config` runs before anything is built: unknown keys (compared with
`configs/default.py`, so a misspelled field in a recipe fails even though
recipes edit an unlocked config), probabilities outside [0, 1], alphas the
chosen mixing method uses that are not positive (for 'mixup_or_cutmix':
negative, or both 0), values with a fixed set of choices, and combinations
that cannot run together. `check_devices` runs once the devices are known.
"""

from typing import Any

import ml_collections

from jaxmix.models import MODELS
from jaxmix.train.augment import MIX_DRAWS, MIX_METHODS, MIX_TARGETS
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
_PROBABILITIES = (
  'mix.prob',
  'mix.switch_prob',
  'cutout.prob',
  'random_erasing.prob',
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
  for field in _PROBABILITIES:
    value = _get(config, field)
    if not 0.0 <= value <= 1.0:
      raise ValueError(f'config.{field} must be in [0, 1], got {value}.')
  _check_alphas(config)
  if config.mix.minmax is not None:
    low, high = config.mix.minmax
    if not 0 < low < high <= 1:
      raise ValueError(
        f'config.mix.minmax must be (min, max) with 0 < min < max <= 1, got '
        f'{tuple(config.mix.minmax)}.'
      )
  if not 0.0 <= config.label_smoothing < 1.0:
    raise ValueError(
      f'config.label_smoothing must be in [0, 1), got {config.label_smoothing}.'
    )
  positive = {
    'num_epochs': config.num_epochs,
    'global_batch_size': config.global_batch_size,
    'image_size': config.image_size,
    'data.num_classes': config.data.num_classes,
    'checkpoint.every_steps': config.checkpoint.every_steps,
    'checkpoint.keep': config.checkpoint.keep,
    'log_every_steps': config.log_every_steps,
    'eval_every_epochs': config.eval_every_epochs,
    'random_erasing.max_count': config.random_erasing.max_count,
    'cutout.count': config.cutout.count,
  }
  for field, value in positive.items():
    if not value > 0:
      raise ValueError(f'config.{field} must be > 0, got {value}.')
  if config.cutout.size < 0:
    raise ValueError(
      f'config.cutout.size must be >= 0, got {config.cutout.size}.'
    )
  if not 0 <= config.mix.off_epoch <= config.num_epochs:
    raise ValueError(
      f'config.mix.off_epoch must be in [0, num_epochs={config.num_epochs}], '
      f'got {config.mix.off_epoch}.'
    )
  if not 0.0 <= config.optimizer.ema_decay < 1.0:
    raise ValueError(
      f'config.optimizer.ema_decay must be in [0, 1), got '
      f'{config.optimizer.ema_decay}.'
    )
  kwargs_size = config.model.kwargs.get('image_size', config.image_size)
  if kwargs_size != config.image_size:
    raise ValueError(
      f'config.model.kwargs.image_size ({kwargs_size}) must equal '
      f'config.image_size ({config.image_size}).'
    )
  _check_mix_forms(config)
  if config.relabel.enabled:
    _check_relabel(config)
  _check_token_labels(config)
  _check_cmo(config)
  _check_long_tail(config)


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
  if not relabel.token_weight >= 0:
    raise ValueError(
      f'config.relabel.token_weight must be >= 0, got {relabel.token_weight}.'
    )


def _check_cmo(config: ml_collections.ConfigDict) -> None:
  """CMO's fields: a probability, positive concentrations, an epoch window."""
  cmo = config.cmo
  if not cmo.enabled:
    return
  if not 0.0 <= cmo.prob <= 1.0:
    raise ValueError(f'config.cmo.prob must be in [0, 1], got {cmo.prob}.')
  if not cmo.beta > 0:
    raise ValueError(f'config.cmo.beta must be > 0, got {cmo.beta}.')
  if not cmo.alpha >= 0:
    raise ValueError(f'config.cmo.alpha must be >= 0, got {cmo.alpha}.')
  if cmo.start_epoch < -1 or cmo.stop_epochs < 0:
    raise ValueError(
      'config.cmo.start_epoch must be >= -1 and config.cmo.stop_epochs >= 0, '
      f'got {cmo.start_epoch} and {cmo.stop_epochs}.'
    )
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


def _check_long_tail(config: ml_collections.ConfigDict) -> None:
  ratio = config.data.long_tail.imbalance_ratio
  if not ratio >= 1.0:
    raise ValueError(
      f'config.data.long_tail.imbalance_ratio must be >= 1 (1 = off), got '
      f'{ratio}.'
    )


def _check_relabel(config: ml_collections.ConfigDict) -> None:
  """ReLabel fields; the store itself is opened (and checked) at start."""
  relabel = config.relabel
  if not 0 < relabel.temperature <= 100:
    raise ValueError(
      f'config.relabel.temperature must be in (0, 100], got '
      f'{relabel.temperature}.'
    )
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
