"""Writes a split's ReLabel label maps with a trained run or pretrained weights.

  python -m jaxmix.apps.annotate --workdir RUN --data_dir DIR --split train \\
      --out STORE [--size S] [--top_k 5] [--batch_size 256] [--image_size R]
  python -m jaxmix.apps.annotate --weights tf_efficientnet_l2_ns_475.pth \\
      --model tf_efficientnet_l2_ns_475 --dataset imagenet2012 \\
      --data_dir DIR --split train --out STORE

The recipe and its steps are in `jaxmix.evaluate.annotator`. Run the same
command again after an interruption and it resumes.
"""

import argparse
import sys

from jaxmix.evaluate import annotator


def _parse(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument('--workdir', help='a trained jaxmix run')
  source.add_argument(
    '--weights', help='a torchvision / timm state dict (with --model)'
  )
  parser.add_argument(
    '--model', default=None, help='with --weights, e.g. tf_efficientnet_l2'
  )
  parser.add_argument('--out', required=True, help='label-map store to write')
  parser.add_argument('--data_dir', default=None, help='TFDS data_dir')
  parser.add_argument('--dataset', default=None, help="default: the run's")
  parser.add_argument('--split', default='train')
  parser.add_argument(
    '--size', type=int, default=None, help='S; default h (15 for --weights)'
  )
  parser.add_argument('--top_k', type=int, default=5)
  parser.add_argument('--batch_size', type=int, default=256)
  parser.add_argument('--image_size', type=int, default=None, help='R')
  parser.add_argument('--log_every', type=int, default=20, help='batches')
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
  annotator.annotate(_parse(sys.argv[1:] if argv is None else argv))


if __name__ == '__main__':
  main()
