"""Fine-tuning an ImageNet ResNet-50 on FGVC Aircraft (Maji et al. 2013).

One of ReLabel's transfer datasets (Yun et al., CVPR 2021); the protocol,
its source and what the paper leaves unstated are in `jaxmix.configs.transfer`
(`configs/transfer/__init__.py`).

Command:
  tfds build fgvc_aircraft --imports jaxmix.datasets.fgvc_aircraft \
    --data_dir $DATA --config variant \
    --manual_dir $DOWNLOADS   # holds fgvc-aircraft-2013b.tar.gz
  python -m jaxmix.apps.train --config configs/transfer/fgvc_aircraft.py \
    --config.data.data_dir=$DATA --config.model.init_from=resnet50.safetensors \
    --workdir $WORKDIR/fgvc_aircraft
  python -m jaxmix.apps.evaluate --workdir $WORKDIR/fgvc_aircraft \
    --suite transfer

`resnet50.safetensors`: an ImageNet run exported with `python -m
jaxmix.apps.export`, or torchvision's weights. A grid point: add `:search`
to the config and `--config.optimizer.learning_rate=... \
--config.optimizer.weight_decay=...`.

Data: jaxmix's builder (`jaxmix.datasets.fgvc_aircraft`, over the user's
download of the 2013b release): 'train' + 'validation' (the release's
trainval, 6,667 images) for fine-tuning, 'test' (3,333) for the result;
the grid search trains on 'train' and evaluates on 'validation'. Images are
read as released, the bottom copyright banner included.

Hardware: one host with 8 accelerators; about 20,000 steps of 256
images. Not yet run with jaxmix.

Expected result: none stated here. ReLabel reports the fine-tuned top-1 of
its ResNet-50s on this dataset; jaxmix has not checked the figure against
the paper, so it is left to the user. `python -m jaxmix.apps.report`
tabulates the runs' 'transfer' top-1 by pretrained file and dataset.
"""

import ml_collections

from jaxmix.configs import transfer

FGVC_AIRCRAFT = transfer.Dataset(
  tfds_name='fgvc_aircraft/variant',
  num_classes=100,
  train_split='train+validation',
  eval_split='test',
  search_train='train',
  search_eval='validation',
  train_examples=6_667,
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The recipe; `arg`: None, 'search', 'smoke' or 'search,smoke'."""
  return transfer.get_config(FGVC_AIRCRAFT, arg)
