"""Result tables and comparison pictures over several evaluated runs.

  python -m jaxmix.apps.report RUN_DIR... [--out table.md]
    [--curves curves.png] [--cams cams.png --data_dir DIR --dataset NAME]

One row per run, a column per `suite/metric` of its `RUN/eval/*.json`, and
a transfer table when runs were fine-tuned (`jaxmix.evaluate.report`);
`--curves` draws the runs' `metrics.jsonl`, `--cams` their class
activation maps side by side for the same images of a boxed dataset.
Run directories and outputs may be URLs (`gs://...`).
"""

import sys

from absl import flags

from jaxmix.io import command_line, paths

FLAGS = flags.FlagValues()
flags.DEFINE_string(
  'out', None, 'Also write the markdown table here.', flag_values=FLAGS
)
flags.DEFINE_string(
  'curves',
  None,
  'PNG of the metrics.jsonl curves of all runs.',
  flag_values=FLAGS,
)
flags.DEFINE_list(
  'curve_keys', None, 'Metrics for --curves.', flag_values=FLAGS
)
flags.DEFINE_string(
  'cams',
  None,
  'PNG of the CAMs of all runs on the same images.',
  flag_values=FLAGS,
)
flags.DEFINE_string(
  'dataset', 'digit_scenes', 'Boxed TFDS dataset (--cams).', flag_values=FLAGS
)
flags.DEFINE_string('split', 'test', 'Split for --cams.', flag_values=FLAGS)
flags.DEFINE_string(
  'data_dir', None, 'TFDS data_dir for --cams.', flag_values=FLAGS
)
flags.DEFINE_integer('num_images', 8, 'Images in --cams.', flag_values=FLAGS)


def main(argv: list[str] | None = None) -> int:
  run_dirs = command_line.parse(FLAGS, argv, __doc__, positional=True)
  if not run_dirs:
    print('FATAL Give at least one run directory.', file=sys.stderr)
    return 2
  from jaxmix.evaluate import report

  table = report.markdown_table([report.row_for_run(d) for d in run_dirs])
  transfer = report.transfer_table(
    [r for d in run_dirs for r in report.load_results(d)]
  )
  if transfer is not None:
    table += '\nTransfer (top-1, by pretrained weights):\n\n' + transfer
  sys.stdout.write(table)
  if FLAGS.out:
    paths.write_text(FLAGS.out, table)
  if FLAGS.curves:
    from jaxmix.evaluate import plots

    logs = {
      paths.resolve(d).name: paths.resolve(d) / 'metrics.jsonl'
      for d in run_dirs
    }
    path = plots.plot_training_curves(logs, FLAGS.curves, keys=FLAGS.curve_keys)
    print(f'curves: {path}')
  if FLAGS.cams:
    path = report.plot_run_cams(
      run_dirs,
      FLAGS.cams,
      dataset=FLAGS.dataset,
      split=FLAGS.split,
      data_dir=FLAGS.data_dir,
      num_images=FLAGS.num_images,
    )
    print(f'cams: {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
