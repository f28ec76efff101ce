"""``python -m sobol_tf``: the ``sobol-tf`` command line (see :mod:`sobol_tf.cli`)."""
import sys

from sobol_tf.cli import main

if __name__ == "__main__":
    sys.exit(main())
