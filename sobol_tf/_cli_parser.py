"""The former home of the command line's argparse parser: an alias of
:mod:`sobol_tf.cli.parser` (importing it does not import TensorFlow, so ``--help`` pages
can be generated without it)."""
from sobol_tf.cli.parser import (  # noqa: F401 (the names of the former module)
    ESTIMATOR_NAMES,
    PERTURBATION_NAMES,
    PROGRAM,
    SAMPLER_NAMES,
    SCALES,
    build_parser,
    device_count,
    int_at_least,
    open_fraction,
)
