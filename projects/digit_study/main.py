"""The digit study's command: every recipe at three object sizes, offline.

  python -m projects.digit_study.main --workdir workdir/digits [--jobs 2]

Run from the repository's root (the study is not part of the installed
package). It trains the baseline, Cutout, Mixup and CutMix at three object
sizes of digit_scenes, ReLabel (+ CutMix, + localised CutMix) with the
label maps of a strong annotator, knowledge distillation from the same
annotator and the baseline on the scenes it agrees with (label cleaning),
each over seeds 0, 1, 2 (`experiment.Plan`); it writes
`WORKDIR/results.md` (means, standard deviations, paired 95 % intervals),
`WORKDIR/results.json` and `WORKDIR/gain_vs_coverage.png`, and resumes
where an earlier call stopped.
`--coverages`, `--recipes`, `--relabel_coverages`, `--relabel_recipes`,
`--annotator_recipes`, `--seeds`, `--jobs` narrow or spread it;
`--tables_only` writes the tables of the runs finished so far; `--long`
trains every run in the regime of `study_runs.long_schedule` (3,000
training scenes, a CNN twice as wide, 60 epochs); `--smoke` shrinks
everything to seconds (tests).
"""

import os

from absl import flags

from jaxmix.io import command_line, paths
from projects.digit_study import experiment

FLAGS = flags.FlagValues()
flags.DEFINE_string('workdir', None, 'Output directory.', flag_values=FLAGS)
flags.DEFINE_bool(
  'long',
  False,
  'The overfitting regime (3,000 scenes, 60 epochs).',
  flag_values=FLAGS,
)
flags.DEFINE_list(
  'recipes',
  None,
  'Recipes at every coverage (default: baseline,cutout,mixup,cutmix).',
  flag_values=FLAGS,
)
flags.DEFINE_list(
  'coverages',
  None,
  'digit_scenes configs (default: default,medium,imagenet).',
  flag_values=FLAGS,
)
flags.DEFINE_list(
  'relabel_coverages',
  None,
  "Coverages that also run ReLabel (default: all of them; 'none' for none).",
  flag_values=FLAGS,
)
flags.DEFINE_list(
  'relabel_recipes',
  None,
  'ReLabel recipes where the annotator runs (default: relabel,'
  "relabel_cutmix,relabel_cutmix_localized; 'none' for none).",
  flag_values=FLAGS,
)
flags.DEFINE_list(
  'annotator_recipes',
  None,
  "The annotator's other recipes there (default: kd,label_cleaning; "
  "'none' for none).",
  flag_values=FLAGS,
)
flags.DEFINE_list('seeds', None, 'Seeds (default 0,1,2).', flag_values=FLAGS)
flags.DEFINE_integer('jobs', None, 'Runs at a time.', flag_values=FLAGS)
flags.DEFINE_bool(
  'tables_only',
  False,
  'Train nothing, tabulate the runs finished so far.',
  flag_values=FLAGS,
)
flags.DEFINE_bool(
  'smoke', False, 'Tiny data and models (seconds).', flag_values=FLAGS
)
flags.mark_flag_as_required('workdir', flag_values=FLAGS)


def plan_from_flags(values: flags.FlagValues = FLAGS) -> experiment.Plan:
  """The study's Plan from the parsed flags; unset flags keep its defaults."""

  def names(value: list[str] | None) -> tuple[str, ...] | None:
    if value is None:
      return None
    return () if value == ['none'] else tuple(v for v in value if v)

  fields = {
    'recipes': names(values.recipes),
    'coverages': names(values.coverages),
    'relabel_coverages': names(values.relabel_coverages),
    'relabel_recipes': names(values.relabel_recipes),
    'annotator_recipes': names(values.annotator_recipes),
    'seeds': None
    if values.seeds is None
    else tuple(int(s) for s in names(values.seeds)),
  }
  given = {k: v for k, v in fields.items() if v is not None}
  return experiment.Plan(**given, smoke=values.smoke, long=values.long)


def main(argv: list[str] | None = None) -> str:
  """Runs (or resumes) the study; returns the path of `results.md`."""
  command_line.parse(FLAGS, argv, __doc__)
  from jaxmix.train import metrics_log

  metrics_log.log_to_console()  # the trainer's progress lines
  return experiment.run_experiment(
    plan_from_flags(),
    os.fspath(paths.resolve(FLAGS.workdir)),  # a URL stays a URL
    jobs=FLAGS.jobs,
    tables_only=FLAGS.tables_only,
  )


if __name__ == '__main__':
  main()
