"""Fine-tuning an ImageNet ResNet-50 on Oxford-IIIT Pets (Parkhi et al. 2012).

One of ReLabel's transfer datasets (Yun et al., CVPR 2021); the protocol,
its source and what the paper leaves unstated are in `jaxmix.configs.transfer`
(`configs/transfer/__init__.py`).

Command:
  tfds build oxford_iiit_pet --data_dir $DATA
  python -m jaxmix.apps.train --config configs/transfer/oxford_pets.py \
    --config.data.data_dir=$DATA --config.model.init_from=resnet50.safetensors \
    --workdir $WORKDIR/oxford_pets
  python -m jaxmix.apps.evaluate --workdir $WORKDIR/oxford_pets --suite transfer

`resnet50.safetensors`: an ImageNet run exported with `python -m
jaxmix.apps.export`, or torchvision's weights. A grid point: add `:search`
to the config and `--config.optimizer.learning_rate=... \
--config.optimizer.weight_decay=...`.

Data: TFDS `oxford_iiit_pet`: 'train' (the release's trainval, 3,680 images)
for fine-tuning, 'test' (3,669) for the result, the 37 breeds as labels;
the grid search holds out the last 10 % of 'train' (jaxmix's choice).

Hardware: one host with 8 accelerators; about 20,000 steps of 256
images. Not yet run with jaxmix.

Expected result: none stated here. ReLabel reports the fine-tuned top-1 of
its ResNet-50s on this dataset; jaxmix has not checked the figure against
the paper, so it is left to the user. `python -m jaxmix.apps.report`
tabulates the runs' 'transfer' top-1 by pretrained file and dataset.
"""

import ml_collections

from jaxmix.configs import transfer

OXFORD_PETS = transfer.Dataset(
  tfds_name='oxford_iiit_pet',
  num_classes=37,
  train_split='train',
  eval_split='test',
  search_train='train[:90%]',
  search_eval='train[90%:]',
  train_examples=3_680,
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The recipe; `arg`: None, 'search', 'smoke' or 'search,smoke'."""
  return transfer.get_config(OXFORD_PETS, arg)
