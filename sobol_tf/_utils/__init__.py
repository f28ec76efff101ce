"""Private helpers shared by explainers and metrics (not part of the public API)."""
from sobol_tf._utils.validation import (
    check_positive_int,
    check_power_of_two,
    check_probability,
    check_real,
    check_choice,
    check_grid_fits,
    check_seed,
    lookup,
)
from sobol_tf._utils.batching import CompiledStep, progbar, run_batches
from sobol_tf._utils.data import (
    PreparedData,
    model_batch_rank,
    model_input_shape,
    prepare_inputs_targets,
    to_numpy,
)

__all__ = [
    "check_positive_int",
    "check_power_of_two",
    "check_probability",
    "check_real",
    "check_choice",
    "check_grid_fits",
    "check_seed",
    "lookup",
    "PreparedData",
    "model_batch_rank",
    "model_input_shape",
    "prepare_inputs_targets",
    "to_numpy",
    "CompiledStep",
    "progbar",
    "run_batches",
]
