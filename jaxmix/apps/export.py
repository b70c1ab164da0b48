"""Exports a trained run's weights as a PyTorch state dict (.safetensors).

  python -m jaxmix.apps.export --workdir RUN --out FILE.safetensors \
    [--step N] [--no_ema]

Takes the latest checkpoint (or `--step`) and its EMA parameters when the
run kept them (`--no_ema` for the raw ones), with the BatchNorm statistics,
and writes what `torchvision.models.<name>()` (ResNets) or timm's DeiT /
ViT (`vit_ti16`, `vit_s16`) load with `strict=True` and evaluate to the same
logits (`jaxmix.models.save_torch_weights`).

BatchNorm running variances: torch averages the unbiased batch variance
into them, flax the biased one (`jaxmix.models.layers.BatchNorm`). A run
trained with flax's rule is exported as it is, and the command says so: its
running variances are a factor up to n / (n - 1) (n the values per channel
in a batch) below what torch would have kept. The recipes of the PyTorch
papers train with torch's rule (`model.kwargs.unbiased_running_var=True`),
and models loaded from torch files keep it.
"""

import sys

from absl import flags
from flax import nnx

from jaxmix import models
from jaxmix.evaluate import runs
from jaxmix.io import command_line
from jaxmix.models import layers

FLAGS = flags.FlagValues()
flags.DEFINE_string('workdir', None, 'The run directory.', flag_values=FLAGS)
flags.DEFINE_string('out', None, 'A .safetensors file.', flag_values=FLAGS)
flags.DEFINE_integer(
  'step', None, 'Checkpoint (default: last).', flag_values=FLAGS
)
flags.DEFINE_bool(
  'no_ema', False, 'Raw, not EMA, parameters.', flag_values=FLAGS
)
flags.mark_flags_as_required(['workdir', 'out'], flag_values=FLAGS)


def main(argv: list[str] | None = None) -> None:
  command_line.parse(FLAGS, argv, __doc__)
  if not FLAGS.out.endswith('.safetensors'):
    sys.exit(f'--out must end in .safetensors, got {FLAGS.out!r}.')
  run = runs.load_run(FLAGS.workdir, step=FLAGS.step, use_ema=not FLAGS.no_ema)
  try:
    models.save_torch_weights(run.model, FLAGS.out)
  except TypeError as e:
    sys.exit(f'{run.config.model.name}: {e}')
  kind = 'EMA' if run.use_ema else 'raw'
  print(
    f'{run.name}: {run.config.model.name} step {run.step} ({kind} '
    f'parameters) -> {FLAGS.out}'
  )
  flax_rule = [
    m
    for _, m in nnx.iter_modules(run.model)
    if isinstance(m, layers.BatchNorm) and not m.unbiased_running_var
  ]
  if flax_rule:
    print(
      f'Note: {run.name} kept its {len(flax_rule)} BatchNorm running '
      "variances by flax's rule (the biased batch variance), not torch's "
      '(unbiased); train with --config.model.kwargs.unbiased_running_var=True '
      "for torch's."
    )


if __name__ == '__main__':
  main()
