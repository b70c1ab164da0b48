"""digit_scenes baseline: a small CNN on offline multi-digit scenes.

The base of the six digit_scenes recipes (`baseline`, `cutout`, `mixup`,
`cutmix`, `relabel`, `relabel_cutmix`): each imports this file, changes the
training strategy only, and ends with `default.finish(config, arg)`.

Command:
  tfds build digit_scenes --imports jaxmix.datasets.digit_scenes \
    --data_dir $WORKDIR/data --config default
  python -m jaxmix.apps.train --config configs/digits/base.py \
    --config.data.data_dir=$WORKDIR/data --workdir $WORKDIR/baseline

Hardware: sized for 2 CPU cores (about 5 minutes); `python -m jaxmix.apps.demo`
prepares the data and runs everything.

Expected result: see `configs/digits/baseline.py`.
"""

import ml_collections

from jaxmix.configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The shared digit_scenes setting, no mixing."""
  config = default.get_config()
  config.model.name = 'cifar_resnet'
  config.model.kwargs = ml_collections.ConfigDict({'depth': 8, 'width': 16})
  config.image_size = 32

  data = config.data
  data.dataset = 'digit_scenes'
  data.num_classes = 10
  data.eval_split = 'validation'
  # Pad-and-crop (CIFAR style): random-resized crops kept a 12-epoch run at
  # chance (measured). Multi-digit scenes still make single labels wrong.
  data.augment = 'cifar'
  data.crop_pct = 1.0  # Evaluate on the whole scene: digits reach the edges.
  data.random_flip = False  # A mirrored digit is not the same digit.
  # The exact antialiased resize (64 -> 32 px): speed does not matter at
  # this size, and the offline tables were measured with it.
  data.train_resize = 'antialias'
  data.shuffle_buffer = 10_000
  data.mean = (127.5, 127.5, 127.5)
  data.std = (64.0, 64.0, 64.0)

  # Small CNNs sit at chance on these scenes for the first ~500 updates
  # (colour-invariant strokes must be found first); small batches give many
  # cheap updates, and Adam leaves the plateau sooner than SGD (measured).
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 1e-4
  config.optimizer.decay_mask = 'no_bias_norm'
  config.schedule.name = 'cosine'
  config.schedule.warmup_epochs = 0.5
  config.num_epochs = 12
  config.global_batch_size = 32

  config.checkpoint.every_steps = 500
  config.checkpoint.keep = 2
  config.log_every_steps = 100
  config.eval_every_epochs = 3
  return default.finish(config, arg)
