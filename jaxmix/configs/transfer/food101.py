"""Fine-tuning an ImageNet ResNet-50 on Food-101 (Bossard et al. 2014).

One of ReLabel's transfer datasets (Yun et al., CVPR 2021); the protocol,
its source and what the paper leaves unstated are in `jaxmix.configs.transfer`
(`configs/transfer/__init__.py`).

Command:
  tfds build food101 --data_dir $DATA   # downloads it once
  python -m jaxmix.apps.train --config configs/transfer/food101.py \
    --config.data.data_dir=$DATA --config.model.init_from=resnet50.safetensors \
    --workdir $WORKDIR/food101
  python -m jaxmix.apps.evaluate --workdir $WORKDIR/food101 --suite transfer

`resnet50.safetensors`: an ImageNet run exported with `python -m
jaxmix.apps.export`, or torchvision's weights. A grid point: add `:search`
to the config and `--config.optimizer.learning_rate=... \
--config.optimizer.weight_decay=...`.

Data: TFDS `food101`: 'train' (75,750 images) for fine-tuning, its
'validation' (25,250, the official test images) for the result; the grid
search holds out the last 10 % of 'train' (jaxmix's choice).

Hardware: one host with 8 accelerators; about 20,000 steps of 256
images. Not yet run with jaxmix.

Expected result: none stated here. ReLabel reports the fine-tuned top-1 of
its ResNet-50s on this dataset; jaxmix has not checked the figure against
the paper, so it is left to the user. `python -m jaxmix.apps.report`
tabulates the runs' 'transfer' top-1 by pretrained file and dataset.
"""

import ml_collections

from jaxmix.configs import transfer

FOOD101 = transfer.Dataset(
  tfds_name='food101',
  num_classes=101,
  train_split='train',
  eval_split='validation',
  search_train='train[:90%]',
  search_eval='train[90%:]',
  train_examples=75_750,
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The recipe; `arg`: None, 'search', 'smoke' or 'search,smoke'."""
  return transfer.get_config(FOOD101, arg)
