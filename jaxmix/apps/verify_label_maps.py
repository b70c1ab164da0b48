"""Verifies a label-map store: sizes, shapes, digests and every value.

  python -m jaxmix.apps.verify_label_maps --store STORE

Recomputes the SHA-256 of each array file against the digest recorded when
the store was written, and checks that every score is finite, every class
id is below the store's class count and the name index is a sorted
permutation (`jaxmix.relabel.store.verify`). Prints one line and exits 0
when the store is whole; otherwise prints what is wrong (store, file, row,
image) and exits 1.
"""

import argparse
import sys

from jaxmix.relabel import store as store_lib


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    prog='python -m jaxmix.apps.verify_label_maps',
    description=__doc__.splitlines()[0],
  )
  parser.add_argument('--store', required=True, help='label-map store')
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    report = store_lib.verify(args.store)
  except ValueError as error:
    sys.exit(f'{error}')
  digests = (
    'digests match'
    if report['digests_checked']
    else 'no digests recorded (written before they were)'
  )
  print(
    f'label-map store {args.store}: {report["num_rows"]} maps whole '
    f'({digests}; every value checked).'
  )


if __name__ == '__main__':
  main()
