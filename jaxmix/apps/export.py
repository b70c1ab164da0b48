"""Exports a trained run's weights as a PyTorch state dict (.safetensors).

  python -m jaxmix.apps.export --workdir RUN --out FILE.safetensors \
    [--step N] [--no_ema]

Takes the latest checkpoint (or `--step`) and its EMA parameters when the
run kept them (`--no_ema` for the raw ones), with the BatchNorm statistics,
and writes what `torchvision.models.<name>()` (ResNets) or timm's DeiT /
ViT (`vit_ti16`, `vit_s16`) load with `strict=True` and evaluate to the same
logits (`jaxmix.models.save_torch_weights`).
"""

import argparse
import sys

from jaxmix import models
from jaxmix.evaluate import runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog='python -m jaxmix.apps.export', description=__doc__.splitlines()[0]
  )
  parser.add_argument('--workdir', required=True, help='The run directory.')
  parser.add_argument('--out', required=True, help='A .safetensors file.')
  parser.add_argument('--step', type=int, help='Checkpoint (default: last).')
  parser.add_argument(
    '--no_ema', action='store_true', help='Raw, not EMA, parameters.'
  )
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
  ns = parse_args(argv)
  if not ns.out.endswith('.safetensors'):
    sys.exit(f'--out must end in .safetensors, got {ns.out!r}.')
  run = runs.load_run(ns.workdir, step=ns.step, use_ema=not ns.no_ema)
  try:
    models.save_torch_weights(run.model, ns.out)
  except TypeError as e:
    sys.exit(f'{run.config.model.name}: {e}')
  kind = 'EMA' if run.use_ema else 'raw'
  print(
    f'{run.name}: {run.config.model.name} step {run.step} ({kind} '
    f'parameters) -> {ns.out}'
  )


if __name__ == '__main__':
  main()
