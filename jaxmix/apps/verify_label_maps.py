"""Verifies a label-map store: sizes, shapes, digests and every value.

  python -m jaxmix.apps.verify_label_maps --store STORE

Recomputes the SHA-256 of each array file against the digest recorded when
the store was written, and checks that every score is finite, every class
id is below the store's class count and the name index is a sorted
permutation (`jaxmix.data.label_maps.store.verify`). Prints one line and
exits 0 when the store is whole; otherwise prints what is wrong (store, file, row,
image) and exits 1.
"""

import sys

from absl import flags

from jaxmix.data.label_maps import store as store_lib
from jaxmix.io import command_line

_FLAGS = flags.FlagValues()
_STORE = flags.DEFINE_string(
  'store', None, 'label-map store', required=True, flag_values=_FLAGS
)


def main(argv: list[str] | None = None) -> None:
  command_line.parse(_FLAGS, argv, __doc__)
  try:
    report = store_lib.verify(_STORE.value)
  except ValueError as error:
    sys.exit(f'{error}')
  digests = (
    'digests match'
    if report['digests_checked']
    else 'no digests recorded (written before they were)'
  )
  print(
    f'label-map store {_STORE.value}: {report["num_rows"]} maps whole '
    f'({digests}; every value checked).'
  )


if __name__ == '__main__':
  main()
