"""Base config: ResNet-50 on ImageNet, SGD, no mixing.

Every recipe in `configs/` imports this file, changes a few fields and ends
with `return default.finish(config, arg)`, so `:smoke` works for all of them.

Command:
  python -m jaxmix.apps.train --config configs/default.py --workdir /tmp/rn50
  python -m jaxmix.apps.train --config configs/default.py:smoke --workdir /tmp/smoke

Hardware: meant for one host with 8 accelerators (8 GPUs or a TPU v4-8);
the `:smoke` variant runs on one CPU in seconds (synthetic data, tiny CNN).

Expected result: the ResNet-50 90-epoch step-schedule baseline (about 76 %
top-1 on ImageNet, the usual figure for this recipe; not measured with jaxmix
yet), with torchvision's RandomResizedCrop law (`data.crop_sampler`) and
flips; the crop is shrunk to 224 px with a box filter (`data.train_resize`),
not torchvision's antialiased bilinear resize, to spare host CPU. The paper rows live in `configs/imagenet/` and `configs/cifar100/`.
"""

import ml_collections
from ml_collections import config_dict

# ImageNet channel statistics on the 0..255 scale (normalised on the device).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def get_data_config() -> ml_collections.ConfigDict:
  """The input-pipeline fields (`jaxmix.data.input_pipeline`)."""
  data = ml_collections.ConfigDict()
  data.dataset = 'imagenet2012'  # any TFDS name, 'digit_scenes', 'synthetic'
  data.data_dir = config_dict.placeholder(str)
  data.manual_dir = config_dict.placeholder(str)
  data.train_split = 'train'
  data.eval_split = 'validation'
  data.image_key = 'image'
  data.label_key = 'label'
  data.file_name_key = 'file_name'
  data.num_classes = 1000
  data.augment = 'inception'  # 'inception' | 'cifar' | 'none'
  # Law of the 'inception' (random-resized) crop: 'torchvision' is
  # RandomResizedCrop, the crop of the PyTorch papers' code; 'tensorflow' is
  # the flax ImageNet example's Inception crop (jaxmix.data.crops).
  data.crop_sampler = 'torchvision'
  data.crop_scale = (0.08, 1.0)
  data.crop_ratio = (3 / 4, 4 / 3)
  data.crop_pct = 0.875
  # Train resize of the crop to the model's size: 'area' shrinks with a box
  # filter (~3x cheaper on the host CPU; a difference from torchvision, whose
  # antialiased bilinear shrink it matches to > 40 dB PSNR); 'antialias' is
  # torchvision's law itself (jaxmix.data.crops.resize / resize_area).
  data.train_resize = 'area'
  data.random_flip = True
  data.color_jitter = 0.0  # torchvision ColorJitter strength (b, c, s)
  # Clip to [0, 255] after each jitter step (torchvision); False blends
  # unclipped, as the CutMix code's own ColorJitter on float tensors.
  data.color_jitter_clip = True
  data.pca_lighting = 0.0
  # Where colour jitter and PCA lighting run: 'device' (inside the train
  # step, per example, fused with normalisation: jaxmix.photometric; the
  # host then only decodes, crops, resizes and flips) or 'host' (TF ops in
  # the input pipeline: jaxmix.data.photometric). The same laws either way.
  data.photometric = 'device'
  # A per-example policy on the uint8 crop after the flip, in timm's order
  # (crop, flip, policy; normalisation and Random Erasing follow on the
  # device), through PIL on the host (jaxmix.data.auto_augment_host): ''
  # (off), a timm RandAugment string ('rand-m9-mstd0.5-inc1': DeiT's and
  # ConvNeXt's) or 'original' (AutoAugment's ImageNet policy).
  data.auto_augment = ''
  # DeiT's repeated augmentation: each epoch shows its first 1/r examples r
  # times each, the copies augmented apart and spread over the devices
  # (jaxmix.data.repeated). 1 = off; DeiT uses 3.
  data.repeated_augmentation = 1
  # A long-tailed subset of the train split (CIFAR-LT's rule): class c keeps
  # n_max * ratio ** (-c / (K - 1)) of its examples (exponential profile),
  # the kept ones chosen with `seed` (jaxmix.data.long_tail). 1.0 = off.
  data.long_tail = ml_collections.ConfigDict()
  data.long_tail.imbalance_ratio = 1.0
  data.long_tail.seed = 0
  # Train on the examples a keep list names (label cleaning: written by
  # python -m jaxmix.apps.clean_labels; jaxmix.data.keep_list). None = all.
  data.keep_list = config_dict.placeholder(str)
  data.shuffle_buffer = 16384
  data.on_corrupt = 'error'  # 'error' | 'skip'
  data.mean = IMAGENET_MEAN
  data.std = IMAGENET_STD
  # Only read when dataset == 'synthetic' (jaxmix.datasets.synthetic).
  data.synthetic = ml_collections.ConfigDict()
  data.synthetic.train_examples = 1_281_167
  data.synthetic.eval_examples = 50_000
  return data


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the base config; `arg='smoke'` shrinks it to a CPU run."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.model = ml_collections.ConfigDict()
  config.model.name = 'resnet50'  # a key of jaxmix.models.MODELS
  config.model.dtype = 'float32'  # compute dtype: 'float32' | 'bfloat16'
  config.model.kwargs = ml_collections.ConfigDict()  # extra model arguments
  # A torchvision / timm state dict (.safetensors or .pth) to start a new
  # run from (jaxmix.models.load_torch_weights); a classifier of another
  # size is replaced by a fresh one. Ignored when the run resumes.
  config.model.init_from = config_dict.placeholder(str)
  # A recipe that fine-tunes pretrained weights sets this: a fresh run
  # without `init_from` is then an error instead of a silent run from
  # random initialisation (set False to train from scratch on purpose).
  config.model.init_required = False

  config.image_size = 224
  config.data = get_data_config()

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'sgd'  # 'sgd' | 'adamw' | 'adamp' | 'rmsproptf'
  config.optimizer.learning_rate = 0.1  # for the global batch below
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.weight_decay = 1e-4
  config.optimizer.decay_mask = 'all'  # 'all' | 'no_bias_norm'
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.eps = 1e-8
  config.optimizer.delta = 0.1  # AdamP
  config.optimizer.wd_ratio = 0.1  # AdamP
  config.optimizer.ema_decay = 0.0  # 0 = no EMA copy of the parameters

  config.schedule = ml_collections.ConfigDict()
  config.schedule.name = 'step'  # 'cosine' | 'step' | 'exponential' | ...
  config.schedule.warmup_epochs = 0.0
  config.schedule.decay_epochs = (30, 60, 80)
  config.schedule.decay_factor = 0.1
  config.schedule.decay_every_epochs = 2.4  # 'exponential' (timm's step)

  config.num_epochs = 90
  config.global_batch_size = 256
  config.label_smoothing = 0.0

  # Batch mixing, applied on the device inside the train step.
  config.mix = ml_collections.ConfigDict()
  # 'none' | 'mixup' | 'cutmix' | 'mixup_or_cutmix' | 'mixtoken' (CutMix of
  # a ViT's patch tokens and token labels, with cutmix_alpha; needs
  # relabel.token_labels) | 'manifold_mixup' (Mixup of the hidden state at a
  # point drawn per step from `manifold_layers`, with mixup_alpha; a model
  # with the `mix_at` hook: the ResNets, tiny_cnn).
  config.mix.method = 'none'
  config.mix.mixup_alpha = 1.0  # Beta concentration of Mixup
  config.mix.cutmix_alpha = 1.0  # Beta concentration of CutMix
  config.mix.prob = 1.0  # probability of mixing a batch (or an example)
  # mixup_or_cutmix takes timm's rule: an alpha of 0 switches its branch
  # off (mixup_alpha=0: CutMix only; both 0 is an error).
  config.mix.switch_prob = 0.5  # mixup_or_cutmix: probability of CutMix
  # Draw granularity of lambda and box: 'batch' (one for the global batch,
  # CutMix-PyTorch's DataParallel run), 'device' (one per device, DDP runs),
  # 'example' (one per example, timm's 'elem' mode), 'pair' (one per
  # mirrored pair i, b-1-i of each device's b examples, the two each other's
  # partners: timm's 'pair' mode; b even; not with 'mixtoken').
  config.mix.draw = 'device'
  config.mix.correct_lam = True  # CutMix label weight = kept-pixel fraction
  # timm cutmix_minmax: box sides uniform in these fractions; the CutMix
  # alpha is then unused (may be 0).
  config.mix.minmax = config_dict.placeholder(tuple)
  # 'dense': one-hot (smoothed) targets [B, K], mixed by the op. 'two_target':
  # integer labels through the mixing, the loss w CE(a) + (1 - w) CE(b)
  # (jaxmix.two_target_cross_entropy) with no [B, K] target: the same loss
  # and gradients to float rounding, for many classes (ImageNet-21k). Off by
  # default so recorded runs keep their arithmetic; single labels only (not
  # with relabel.enabled, relabel.token_labels or cmo.enabled).
  config.mix.targets = 'dense'
  config.mix.off_epoch = 0  # no mixing in the last `off_epoch` epochs
  # manifold_mixup's points, drawn uniformly per step: 0 the input, k the
  # output of block group k (the authors' ResNet set: input, stages 1, 2).
  config.mix.manifold_layers = (0, 1, 2)

  config.cutout = ml_collections.ConfigDict()
  config.cutout.size = 0  # square side in pixels; 0 = off
  config.cutout.prob = 1.0
  config.cutout.count = 1

  config.random_erasing = ml_collections.ConfigDict()
  config.random_erasing.prob = 0.0  # 0 = off
  config.random_erasing.area = (0.02, 1 / 3)
  config.random_erasing.aspect = (0.3, 1 / 0.3)
  config.random_erasing.fill = 'pixel'  # 'zero' | 'random' | 'pixel'
  config.random_erasing.max_count = 1

  # ReLabel: soft targets pooled from label maps over each crop box (see
  # jaxmix.train.relabel); the store is written by
  # jaxmix.data.label_maps.convert or python -m jaxmix.apps.annotate.
  config.relabel = ml_collections.ConfigDict()
  config.relabel.enabled = False
  # The label-map store; synthetic data without one gets made-up maps.
  config.relabel.store_dir = config_dict.placeholder(str)
  config.relabel.missing = 'error'  # 'error' | 'one_hot' for unmapped images
  config.relabel.official_box_order = False  # the official (y, x) swap
  config.relabel.temperature = 1.0  # softmax temperature of the targets
  config.relabel.localized_cutmix = False  # pool pasted boxes from own maps
  # Token labeling (LV-ViT): a ViT with model.kwargs.token_head=True also
  # learns, on every patch token, the map pooled over the token's region of
  # the crop (jaxmix.train.token_labeling).
  config.relabel.token_labels = False
  config.relabel.token_weight = 0.5  # weight of the mean per-token loss

  # CMO (Park et al. 2022): a second, class-balanced input stream (example
  # weights 1 / n_c ** alpha) whose images are pasted as CutMix boxes onto
  # the main batch, with probability `prob` per batch, in the epochs
  # start_epoch < epoch < num_epochs - stop_epochs (0-based, the official
  # rule; jaxmix.data.minority, jaxmix.train.cmo).
  config.cmo = ml_collections.ConfigDict()
  config.cmo.enabled = False
  config.cmo.alpha = 1.0  # the sampler's exponent (weighted_alpha)
  config.cmo.beta = 1.0  # Beta concentration of the box's lambda
  config.cmo.prob = 0.5
  config.cmo.start_epoch = 3
  config.cmo.stop_epochs = 3

  # Knowledge distillation with an online teacher (Hinton et al.): the
  # frozen teacher runs in eval mode inside the step on every augmented
  # (and mixed) crop; the loss is (1 - alpha) CE(targets) + alpha T^2
  # KL(softmax(t / T) || softmax(s / T)) (jaxmix.train.distill).
  config.distill = ml_collections.ConfigDict()
  config.distill.enabled = False
  # A jaxmix run directory, or a torchvision / timm state dict (with
  # teacher_model); synthetic data without one gets a randomly initialised
  # teacher_model (as it gets made-up label maps).
  config.distill.teacher = config_dict.placeholder(str)
  config.distill.teacher_model = config_dict.placeholder(str)
  config.distill.temperature = 1.0  # T
  config.distill.alpha = 1.0  # weight of the distillation term

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 1000
  config.checkpoint.keep = 3

  config.log_every_steps = 100
  config.eval_every_epochs = 1

  # Multi-host: jax.distributed.initialize(); on Cloud TPU, Slurm and
  # Kubernetes the three fields below may stay None (auto-detected).
  config.distributed = ml_collections.ConfigDict()
  config.distributed.initialize = False
  config.distributed.coordinator_address = config_dict.placeholder(str)
  config.distributed.num_processes = config_dict.placeholder(int)
  config.distributed.process_id = config_dict.placeholder(int)
  return finish(config, arg)


def finish(
  config: ml_collections.ConfigDict, arg: str | None
) -> ml_collections.ConfigDict:
  """Applies the config argument: None/'' (as is) or 'smoke'."""
  if arg in (None, ''):
    return config
  if arg != 'smoke':
    raise ValueError(
      f"Config argument {arg!r} is not known; use nothing or ':smoke'."
    )
  return smoke(config)


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks any config to a CPU run of seconds, keeping its recipe.

  Synthetic 32x32 data with 10 classes, `tiny_cnn`, batch 16, two epochs of
  4 steps; mixing, Cutout and Random Erasing stay as the recipe sets them.
  """
  config.model.name = 'tiny_cnn'
  config.model.dtype = 'float32'
  # Listed so that the command line can change it (the config is locked).
  config.model.kwargs = ml_collections.ConfigDict({'width': 16})
  config.image_size = 32
  config.data.dataset = 'synthetic'
  config.data.num_classes = 10
  config.data.synthetic.train_examples = 64
  config.data.synthetic.eval_examples = 40
  config.global_batch_size = 16
  config.num_epochs = 2
  config.schedule.warmup_epochs = min(config.schedule.warmup_epochs, 0.5)
  config.schedule.decay_epochs = (1,)
  config.mix.off_epoch = min(config.mix.off_epoch, 1)
  if config.cmo.enabled:  # in the first epoch only: both sides of its window
    config.cmo.start_epoch = min(config.cmo.start_epoch, -1)
    config.cmo.stop_epochs = min(config.cmo.stop_epochs, 1)
  # A long tail stays, at most 2:1, so 64 examples still fill batches.
  lt = config.data.long_tail
  lt.imbalance_ratio = min(lt.imbalance_ratio, 2.0)
  config.cutout.size = min(config.cutout.size, 8)
  if config.distill.enabled:  # a random tiny teacher on the synthetic data
    config.distill.teacher = None
    config.distill.teacher_model = 'tiny_cnn'
  config.checkpoint.every_steps = 4
  config.log_every_steps = 2
  config.eval_every_epochs = 1
  return config
