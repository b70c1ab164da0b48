"""The digit study: the papers' claims, offline, over every recipe.

  python -m projects.digit_study.main --workdir workdir/digits [--jobs 2]

What it runs (`Plan`): the baseline, Cutout, Mixup and CutMix on digit
scenes at three object sizes (digit_scenes 'default': small digits, 7.6 %
of the image; 'medium': 21 %; 'imagenet': ILSVRC's 44 %), and at every
size also ReLabel, ReLabel + CutMix and ReLabel + localised CutMix with the
label maps of a strong annotator per size
(`configs/digits/strong_annotator.py`: its scenes plus the config's
`extra` split, 2.2x the parameters), each with seeds 0, 1 and 2. Every student
sees the same 5,000 training scenes for 6 epochs
(`student_schedule`). The annotator must beat the baseline students on the
validation scenes by `Plan.annotator_margin` before its maps are written;
otherwise the ReLabel rows are left out and the tables say why.

The same checked annotator serves the two rows ReLabel is compared with
(`ANNOTATOR_RECIPES`): 'kd' (`configs/digits/kd.py`: the annotator run as
the trainer's online teacher, `config.distill`, on every augmented crop;
the ReLabel student's schedule and seeds) and 'label_cleaning'
(`configs/digits/label_cleaning.py`: the baseline recipe on the keep list
that `jaxmix.apps.clean_labels` writes from the annotator's scores of the
students' training scenes, the `keep_list` task).

What it writes (`experiment_tables`): `WORKDIR/results.md`
with each row's mean and standard deviation over the seeds, each method's
difference from the baseline with a 95 % interval paired by seed (and which
differences are distinguishable from zero), the annotator next to its
students, the label-fit figures of each scene config, the machine and the
wall time; `WORKDIR/results.json` with every run's numbers; and
`WORKDIR/gain_vs_coverage.png`, CutMix's (Mixup's, Cutout's) gain against
object coverage.

Resumable: a second call continues where the first stopped. A finished run
is only reopened (never retrained) and an evaluated one not re-evaluated, so
the study can be spread over several sittings. `--jobs N` trains N runs at
once in worker processes (default: one per two CPU cores, at least one).
"""

import concurrent.futures
import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import time

from jaxmix.apps import digit_runs
from jaxmix.io import paths
from projects.digit_study import study_runs

SWEEP_RECIPES = ('baseline', 'cutout', 'mixup', 'cutmix')
RELABEL_RECIPES = ('relabel', 'relabel_cutmix', 'relabel_cutmix_localized')
# The annotator's other two uses in ReLabel's comparisons: online teacher
# (knowledge distillation) and label cleaner (Beyer et al.).
ANNOTATOR_RECIPES = ('kd', 'label_cleaning')
RECIPES = SWEEP_RECIPES + RELABEL_RECIPES + ANNOTATOR_RECIPES
COVERAGES = ('default', 'medium', 'imagenet')  # digit_scenes configs
# The sizes where an annotator (trained with the `extra` split) and ReLabel
# run by default: all of them.
RELABEL_COVERAGES = COVERAGES
STUDENT_SCENES = 5_000
STUDENT_EPOCHS = 6


@dataclasses.dataclass(frozen=True)
class Plan:
  """Which runs the experiment trains.

  coverages: digit_scenes configs, small objects to large.
  recipes: configs/digits recipes trained at every coverage.
  relabel_coverages: coverages that also get an annotator and the ReLabel
    recipes; default: those of `RELABEL_COVERAGES` among `coverages`.
  relabel_recipes: the ReLabel recipes trained there.
  annotator_recipes: the other recipes of the annotator trained there
    (`ANNOTATOR_RECIPES`: 'kd', 'label_cleaning').
  seeds: the seeds of every row.
  annotator_margin: how much higher than the best baseline student's the
    annotator's validation top-1 must be before its maps are used.
  smoke: every config's '_small' version and tiny models (tests).
  long: the regime of `study_runs.long_schedule` on top.
  """

  coverages: tuple[str, ...] = COVERAGES
  recipes: tuple[str, ...] = SWEEP_RECIPES
  relabel_coverages: tuple[str, ...] | None = None
  relabel_recipes: tuple[str, ...] = RELABEL_RECIPES
  annotator_recipes: tuple[str, ...] = ANNOTATOR_RECIPES
  seeds: tuple[int, ...] = (0, 1, 2)
  annotator_margin: float = 0.05
  smoke: bool = False
  long: bool = False

  def __post_init__(self):
    unknown = set(self.coverages) - set(COVERAGES)
    if unknown:
      raise ValueError(f'Unknown coverages {sorted(unknown)}; use {COVERAGES}.')
    if self.relabel_coverages is None:  # frozen: set once, here
      default = tuple(c for c in RELABEL_COVERAGES if c in self.coverages)
      object.__setattr__(self, 'relabel_coverages', default)
    if not set(self.relabel_coverages) <= set(self.coverages):
      raise ValueError(
        f'relabel_coverages {self.relabel_coverages} must be among the '
        f'coverages {self.coverages}.'
      )
    if 'baseline' not in self.recipes:
      raise ValueError('The recipes must include the baseline.')
    if not set(self.relabel_recipes) <= set(RELABEL_RECIPES):
      raise ValueError(f'relabel_recipes must be among {RELABEL_RECIPES}.')
    if not set(self.annotator_recipes) <= set(ANNOTATOR_RECIPES):
      raise ValueError(f'annotator_recipes must be among {ANNOTATOR_RECIPES}.')
    if not self.seeds:
      raise ValueError('Need at least one seed.')

  def dataset(self, coverage: str) -> str:
    """The TFDS name of a coverage ('digit_scenes/imagenet_small')."""
    if self.smoke:
      return 'digit_scenes/' + (
        'small' if coverage == 'default' else f'{coverage}_small'
      )
    return f'digit_scenes/{coverage}'

  def recipes_at(self, coverage: str) -> tuple[str, ...]:
    if coverage not in self.relabel_coverages:
      return self.recipes
    return self.recipes + self.relabel_recipes + self.annotator_recipes


@dataclasses.dataclass(frozen=True)
class Task:
  """One unit of work for a worker: train + evaluate, or annotate."""

  name: str
  kind: str  # 'train' | 'annotate' | 'clean'
  coverage: str
  recipe: str
  seed: int
  needs: tuple[str, ...] = ()


def run_dir(workdir: str, task: Task) -> str:
  if task.recipe == 'strong_annotator':
    return os.path.join(workdir, 'runs', task.coverage, 'annotator')
  return os.path.join(
    workdir, 'runs', task.coverage, f'{task.recipe}_seed{task.seed}'
  )


def store_dir(workdir: str, coverage: str) -> str:
  return os.path.join(workdir, 'label_maps', coverage)


def keep_list_path(workdir: str, coverage: str) -> str:
  """The annotator's keep list of a coverage's student scenes."""
  return os.path.join(workdir, 'keep_lists', f'{coverage}.json')


def _needs(coverage: str, recipe: str) -> tuple[str, ...]:
  """What a student run waits for: the checked annotator's products."""
  if recipe in RELABEL_RECIPES or recipe == 'kd':
    # The label_maps task checks the annotator against the baselines; KD
    # uses the same checked annotator (its run, not its maps).
    return (f'{coverage}/label_maps',)
  if recipe == 'label_cleaning':
    return (f'{coverage}/keep_list',)
  return ()


def tasks(plan: Plan) -> list[Task]:
  """Every task, in the order workers take them up.

  The annotators first (the longest chains); baseline and CutMix at the
  largest objects, the label maps and ReLabel there, then KD, the keep
  list and label cleaning (ReLabel's comparisons); baseline and CutMix at
  the other sizes; the other ReLabel recipes; then the remaining recipes:
  a study stopped early has its most telling rows complete.
  """
  train = {}
  for coverage in plan.coverages:
    for recipe in plan.recipes_at(coverage):
      for seed in plan.seeds:
        name = f'{coverage}/{recipe}/{seed}'
        train[name] = Task(
          name, 'train', coverage, recipe, seed, _needs(coverage, recipe)
        )

  def runs(coverage: str, recipes: tuple[str, ...]) -> list[Task]:
    return [
      train[f'{coverage}/{recipe}/{seed}']
      for recipe in recipes
      if recipe in plan.recipes_at(coverage)
      for seed in plan.seeds
    ]

  out = [
    Task(f'{c}/annotator', 'train', c, 'strong_annotator', 0)
    for c in reversed(plan.relabel_coverages)
  ]
  first = ('baseline', 'cutmix')
  largest, *others = reversed(plan.coverages)
  out += runs(largest, first)
  for coverage in reversed(plan.relabel_coverages):
    baselines = tuple(f'{coverage}/baseline/{s}' for s in plan.seeds)
    out.append(
      Task(
        f'{coverage}/label_maps',
        'annotate',
        coverage,
        'strong_annotator',
        0,
        (f'{coverage}/annotator', *baselines),
      )
    )
    out += runs(coverage, plan.relabel_recipes[:1])
    out += runs(coverage, ('kd',))
    if 'label_cleaning' in plan.annotator_recipes:
      out.append(
        Task(
          f'{coverage}/keep_list',
          'clean',
          coverage,
          'strong_annotator',
          0,
          (f'{coverage}/label_maps',),
        )
      )
      out += runs(coverage, ('label_cleaning',))
  for coverage in others:
    out += runs(coverage, first)
  for coverage in reversed(plan.relabel_coverages):
    out += runs(coverage, plan.relabel_recipes[1:])
  rest = tuple(r for r in plan.recipes if r not in first)
  for coverage in reversed(plan.coverages):
    out += runs(coverage, rest)
  return out


def student_schedule(config, plan: Plan, coverage: str, seed: int) -> None:
  """The students' shared setting, in place: same scenes, epochs, seed.

  With `plan.long` (or `plan.smoke`) the recipe keeps the scenes and
  epochs `digit_runs.load_recipe` gave it.
  """
  config.data.dataset = plan.dataset(coverage)
  config.seed = seed
  if not (plan.smoke or plan.long):
    config.data.train_split = f'train[:{STUDENT_SCENES}]'
    config.num_epochs = STUDENT_EPOCHS
    config.eval_every_epochs = STUDENT_EPOCHS


def task_config(plan: Plan, workdir: str, task: Task):
  """The config a train task runs."""
  data_dir = os.path.join(workdir, 'data')
  if task.recipe == 'strong_annotator':
    config = digit_runs.load_recipe('strong_annotator', smoke=plan.smoke)
    config.data.dataset = plan.dataset(task.coverage)
    if plan.smoke:
      config.data.train_split = 'train+extra'
      config.model.kwargs.width = 16
  else:
    config = digit_runs.load_recipe(task.recipe, smoke=plan.smoke)
    if plan.long:
      study_runs.long_schedule(config, smoke=plan.smoke)
    student_schedule(config, plan, task.coverage, task.seed)
  config.data.data_dir = data_dir
  if config.relabel.enabled:
    config.relabel.store_dir = store_dir(workdir, task.coverage)
  if config.distill.enabled:  # the size's annotator, online
    config.distill.teacher = run_dir(
      workdir, Task('', 'train', task.coverage, 'strong_annotator', 0)
    )
  if task.recipe == 'label_cleaning':
    config.data.keep_list = keep_list_path(workdir, task.coverage)
  return config


def student_split(plan: Plan) -> str:
  """The training split every student reads ('train[:5000]')."""
  config = digit_runs.load_recipe('baseline', smoke=plan.smoke)
  if plan.long:
    study_runs.long_schedule(config, smoke=plan.smoke)
  student_schedule(config, plan, 'default', 0)
  return config.data.train_split


def validation_top1(run: str) -> float:
  """The last 'eval/top1' a run logged (its eval split: validation)."""
  found = None
  text = paths.read_text(paths.resolve(run) / 'metrics.jsonl')
  for line in text.splitlines():
    row = json.loads(line) if line.strip() else {}
    found = row.get('eval/top1', found)
  if found is None:
    raise ValueError(f'{run}/metrics.jsonl has no eval/top1.')
  return found


class AnnotatorTooWeak(RuntimeError):
  """The annotator does not beat its students; its maps would mislead."""


def check_annotator(plan: Plan, workdir: str, coverage: str) -> dict:
  """The annotator's and the baselines' validation top-1; raises if weak."""
  annotator = validation_top1(
    run_dir(workdir, Task('', 'train', coverage, 'strong_annotator', 0))
  )
  students = {
    seed: validation_top1(
      run_dir(workdir, Task('', 'train', coverage, 'baseline', seed))
    )
    for seed in plan.seeds
  }
  best = max(students.values())
  found = {
    'annotator': annotator,
    'baseline_best': best,
    'margin': plan.annotator_margin,
  }
  if annotator < best + plan.annotator_margin:
    raise AnnotatorTooWeak(
      f'The {coverage} annotator reaches {100 * annotator:.1f} % validation '
      f'top-1, the best baseline student {100 * best:.1f} %: less than '
      f'{100 * plan.annotator_margin:.0f} points ahead, so its label maps are '
      'not written and the ReLabel runs are left out.'
    )
  return found


def _init_worker(cache_dir: str, single_thread: bool) -> None:
  """Worker start: a shared compilation cache, one XLA thread if crowded."""
  if single_thread:
    flags = os.environ.get('XLA_FLAGS', '')
    os.environ['XLA_FLAGS'] = (
      flags
      + ' --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1'
    )
  import jax

  jax.config.update('jax_compilation_cache_dir', cache_dir)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  from jaxmix.train import metrics_log

  metrics_log.log_to_console()


def run_task(plan: Plan, workdir: str, task: Task) -> dict:
  """Runs one task (in a worker); returns what the tables need of it."""
  data_dir = os.path.join(workdir, 'data')
  if task.kind == 'annotate':
    from jaxmix.apps import annotate as annotate_app

    check = check_annotator(plan, workdir, task.coverage)
    store = store_dir(workdir, task.coverage)
    # A label-map store is memory-mapped: local, never a URL.
    if not os.path.exists(os.path.join(store, 'metadata.json')):
      annotate_app.main(
        [
          '--workdir',
          run_dir(workdir, task),
          '--data_dir',
          data_dir,
          '--dataset',
          plan.dataset(task.coverage),
          '--split',
          'train',
          '--out',
          store,
        ]
      )
    return {'check': check}
  if task.kind == 'clean':
    return {'cleaned': clean(plan, workdir, task.coverage)}
  run = run_dir(workdir, task)
  digit_runs.train(task_config(plan, workdir, task), run)
  if not study_runs.evaluated(run):
    digit_runs.evaluate(
      run, data_dir, dataset=plan.dataset(task.coverage), occlusion_sizes=(0.5,)
    )
  return finished_result(run)


def clean(plan: Plan, workdir: str, coverage: str) -> dict:
  """The keep list of the students' scenes by the annotator; its counts.

  `jaxmix.apps.clean_labels` with its default rule (top_k=1: a scene is
  kept when its label is the annotator's prediction) on the students'
  training split; written once, then only read.
  """
  path = keep_list_path(workdir, coverage)
  if not os.path.exists(path):
    from jaxmix.apps import clean_labels

    clean_labels.main(
      [
        '--workdir',
        run_dir(workdir, Task('', 'train', coverage, 'strong_annotator', 0)),
        '--data_dir',
        os.path.join(workdir, 'data'),
        '--dataset',
        plan.dataset(coverage),
        '--split',
        student_split(plan),
        '--out',
        path,
      ]
    )
  return keep_list_counts(path)


def keep_list_counts(path: str) -> dict:
  """{'examples', 'kept', 'rule', 'scorer'} of a written keep list."""
  from jaxmix.data import keep_list

  record = keep_list.read(path)
  return {
    'examples': record['num_examples'],
    'kept': record['num_kept'],
    'rule': record['rule'],
    'scorer': record['scorer'],
  }


def finished_result(run: str) -> dict:
  """What the tables need of an evaluated run."""
  from jaxmix.evaluate import report

  row = report.row_for_run(run)
  return {
    'metrics': {c: row.get(c) for c in digit_runs.COLUMNS},
    'validation_top1': validation_top1(run),
    'seconds': study_runs.logged_seconds(run),
  }


def default_jobs() -> int:
  """One run per CPU core (each single-threaded), at most 8."""
  return max(1, min(os.cpu_count() or 1, 8))


def _blocked(task: Task, done: dict) -> bool:
  """Whether a prerequisite of `task` failed or was skipped."""
  return any(
    n in done and ('error' in done[n] or 'skipped' in done[n])
    for n in task.needs
  )


def run_all(plan: Plan, workdir: str, *, jobs: int) -> dict[str, dict]:
  """Runs every task, `jobs` at a time; returns each task's result.

  A task whose prerequisite failed is skipped; an AnnotatorTooWeak is
  recorded as that task's result ('error') and skips the ReLabel runs.
  Any other failure stops the experiment after the running tasks end.
  """
  todo = tasks(plan)
  done: dict[str, dict] = {}
  cache = os.path.join(workdir, 'compilation_cache')
  if jobs <= 1:  # in this process, its JAX settings untouched
    for task in todo:  # in order: prerequisites come first
      if _blocked(task, done):
        done[task.name] = {'skipped': True}
        continue
      done[task.name] = _guarded(plan, workdir, task)
    return done
  context = multiprocessing.get_context('spawn')
  single = jobs >= (os.cpu_count() or 1)
  with concurrent.futures.ProcessPoolExecutor(
    jobs, mp_context=context, initializer=_init_worker, initargs=(cache, single)
  ) as pool:
    running = {}
    while todo or running:
      for task in list(todo):
        if _blocked(task, done):
          done[task.name] = {'skipped': True}
          todo.remove(task)
        elif all(n in done for n in task.needs) and len(running) < jobs:
          running[pool.submit(_guarded, plan, workdir, task)] = task
          todo.remove(task)
      if not running:
        continue
      finished, _ = concurrent.futures.wait(
        running, return_when=concurrent.futures.FIRST_COMPLETED
      )
      for future in finished:
        task = running.pop(future)
        done[task.name] = future.result()
        total = len(done) + len(todo) + len(running)
        print(
          f'[{len(done)}/{total}] {task.name}: {done[task.name]}', flush=True
        )
  return done


def _guarded_check(plan: Plan, workdir: str, coverage: str) -> dict:
  try:
    return {'check': check_annotator(plan, workdir, coverage)}
  except AnnotatorTooWeak as e:
    return {'error': str(e)}


def _guarded(plan: Plan, workdir: str, task: Task) -> dict:
  try:
    return run_task(plan, workdir, task)
  except AnnotatorTooWeak as e:
    return {'error': str(e)}


def schedule(plan: Plan) -> str:
  """The students' schedule in words."""
  if plan.long:
    return 'long schedule: 3,000 training scenes, width 32, 60 epochs'
  if plan.smoke:
    return 'smoke schedule (2 epochs of the small configs)'
  return f'{STUDENT_SCENES:,} training scenes for {STUDENT_EPOCHS} epochs'


def machine() -> str:
  return (
    f'{platform.machine()}, {os.cpu_count()} CPU cores, '
    f'{platform.python_implementation()} {platform.python_version()}'
  )


def label_fits(plan: Plan, workdir: str) -> dict[str, dict]:
  """`label_fit` of each coverage's test scenes."""
  from projects.digit_study import label_fit

  return {
    coverage: label_fit.dataset_label_fit(
      plan.dataset(coverage), 'test', data_dir=os.path.join(workdir, 'data')
    )
    for coverage in plan.coverages
  }


def prepare_data(plan: Plan, workdir: str) -> None:
  from jaxmix.datasets import digit_scenes

  for coverage in plan.coverages:
    digit_scenes.prepare(
      os.path.join(workdir, 'data'), plan.dataset(coverage).split('/')[1]
    )


def results_on_disk(plan: Plan, workdir: str) -> dict[str, dict]:
  """The results of the plan's finished tasks, read from their runs.

  Trains nothing: a run not yet evaluated is left out (its rows show '-'),
  so the tables can be written while the study is still under way.
  """
  results = {}
  for task in tasks(plan):
    if task.kind == 'annotate':
      store = store_dir(workdir, task.coverage)
      if os.path.exists(os.path.join(store, 'metadata.json')):
        results[task.name] = _guarded_check(plan, workdir, task.coverage)
      continue
    if task.kind == 'clean':
      path = keep_list_path(workdir, task.coverage)
      if os.path.exists(path):
        results[task.name] = {'cleaned': keep_list_counts(path)}
      continue
    run = run_dir(workdir, task)
    if paths.resolve(run).exists() and study_runs.evaluated(run):
      results[task.name] = finished_result(run)
  return results


def run_experiment(
  plan: Plan,
  workdir: str,
  *,
  jobs: int | None = None,
  tables_only: bool = False,
) -> str:
  """Prepares, trains, evaluates, tabulates; returns `WORKDIR/results.md`.

  With `tables_only`, trains nothing and writes the tables of the runs
  finished so far.
  """
  from projects.digit_study import experiment_tables

  begin = time.perf_counter()
  jobs = default_jobs() if jobs is None else jobs
  if tables_only:
    results = results_on_disk(plan, workdir)
  else:
    prepare_data(plan, workdir)
    results = run_all(plan, workdir, jobs=jobs)
  fits = label_fits(plan, workdir)
  minutes = (time.perf_counter() - begin) / 60
  record = {
    'plan': dataclasses.asdict(plan),
    'results': results,
    'label_fit': fits,
    'schedule': schedule(plan),
    'machine': machine(),
    'jobs': jobs,
    'minutes': minutes,
    'tables_only': tables_only,
    'finished': f'{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC',
  }
  paths.write_text(
    os.path.join(workdir, 'results.json'), json.dumps(record, indent=1)
  )
  text = experiment_tables.results_markdown(record, workdir)
  path = os.path.join(workdir, 'results.md')
  paths.write_text(path, text)
  print(text)
  return path
