"""Kept-example lists: the train examples a run reads (label cleaning).

A keep list names the examples of a split to train on, by file name (the
pipeline's `file_name`: `data.file_name_key`, or TFDS's example id for a
dataset without one). `python -m jaxmix.apps.clean_labels` writes one
(Beyer et al.'s label cleaning: the examples whose label a strong model
agrees with), and `config.data.keep_list` trains on it
(`jaxmix.data.tfds_source.Source`, `jaxmix.datasets.synthetic`).

The file is JSON, written atomically: `format`, `dataset`, `split`,
`scorer` (the model or run that scored the split), `rule`,
`num_examples` (the split's size), `kept` (the names, sorted) and `sha256`
(of the names joined by newlines). `read` checks the digest and the
names, so a truncated, edited or damaged list fails naming its file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from jaxmix.io import paths

FORMAT = 1


def _text(name: Any) -> str:
  return name.decode() if isinstance(name, bytes) else str(name)


def digest(names: Sequence[str]) -> str:
  """SHA-256 of the sorted names joined by newlines."""
  return hashlib.sha256('\n'.join(names).encode()).hexdigest()


def write(
  path: paths.PathLike,
  kept: Iterable[Any],
  *,
  dataset: str,
  split: str,
  scorer: str,
  rule: str,
  num_examples: int,
) -> dict[str, Any]:
  """Writes the keep list atomically; returns its record.

  Args:
    path: the JSON file (a URL works).
    kept: the kept examples' names (str or bytes), unique.
    dataset: the dataset they belong to.
    split: its split.
    scorer: what scored them (a run and its step, or weights and a model).
    rule: the rule that kept them, in words.
    num_examples: the size of the scored split.
  """
  names = sorted(_text(n) for n in kept)
  if len(set(names)) != len(names):
    raise ValueError(f'The kept names of {path} are not unique.')
  record = {
    'format': FORMAT,
    'dataset': dataset,
    'split': split,
    'scorer': scorer,
    'rule': rule,
    'num_examples': int(num_examples),
    'num_kept': len(names),
    'kept': names,
    'sha256': digest(names),
  }
  paths.write_bytes(paths.resolve(path), json.dumps(record).encode())
  return record


def read(path: paths.PathLike, *, field: str = 'data.keep_list') -> dict:
  """The checked record of a keep list.

  Args:
    path: the file.
    field: the config field that named it, for the errors.

  Raises:
    ValueError: naming `field` and the file when it is missing, not a
      keep list, or damaged (a digest or count that does not match).
  """
  where = paths.resolve(path)
  if not where.exists():
    raise ValueError(
      f'config.{field}={str(path)!r} does not exist (write one with python '
      '-m jaxmix.apps.clean_labels).'
    )
  try:
    record = json.loads(where.read_bytes())
    names, count = record['kept'], record['num_kept']
    stated = record['sha256']
    ok = (
      record['format'] == FORMAT
      and isinstance(names, list)
      and all(isinstance(n, str) for n in names)
    )
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(
      f'config.{field}: {where} is not a readable keep list ({e}).'
    ) from e
  if not ok or len(names) != count or digest(names) != stated:
    raise ValueError(
      f'config.{field}: {where} is damaged: its {len(names)} names do not '
      f'match its recorded count ({count}) and SHA-256; write it again.'
    )
  return record


def check_known(
  kept: Sequence[str], known: Iterable[Any], *, path: Any, where: str
) -> None:
  """Raises ValueError unless every kept name is one of `known`."""
  known = {_text(n) for n in known}
  unknown = [n for n in kept if n not in known]
  if unknown:
    raise ValueError(
      f'config.data.keep_list: {len(unknown)} of the {len(kept)} names in '
      f'{path} are not examples of {where}, e.g. {unknown[:3]}: the list '
      'was written for another dataset or split.'
    )
