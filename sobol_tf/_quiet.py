"""Import TensorFlow without its start-up log lines (private; used by the CLI and demo).

TensorFlow's C++ side prints lines such as "WARNING: All log messages before
absl::InitializeLog() ...", "I0000 ... oneDNN custom operations are on", "cudart_stub",
"cpu_feature_guard" and "E0000 ... failed call to cuInit" straight to the process's
stderr while it is imported and when it first looks for devices; some of them ignore
``TF_CPP_MIN_LOG_LEVEL``. This module sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set
it, and points the stderr file descriptor at the null device only while TensorFlow is
imported and lists its devices, then restores it. It lives outside ``sobol_tf._utils``
because importing that package imports TensorFlow.
"""
from __future__ import annotations

import os
import sys
from typing import Any

#: TF_CPP_MIN_LOG_LEVEL set when the user has not chosen one: errors and below hidden
QUIET_LOG_LEVEL = "3"


def import_tensorflow_quietly() -> Any:
    """Import and return ``tensorflow`` with its start-up log lines silenced.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` to 3 unless already set (so a user can still ask for
    the logs), then silences the process's stderr (file descriptor 2) only during the
    import and the device discovery, which print lines that the level does not stop.
    Python exceptions raised by the import are re-raised after stderr is restored, so
    their tracebacks stay visible; what the C++ side printed in that window is lost.
    Does nothing but return the module when TensorFlow is already imported.

    Returns:
        The ``tensorflow`` module.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded, closed)
        import tensorflow as tf  # this function's job: TensorFlow imported on demand
        return tf
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow as tf  # this function's job: imported with stderr silenced
        tf.config.list_physical_devices()  # the cuInit line comes from device discovery
    finally:
        sys.stderr.flush()  # Python-level writes of the import go to the null device too
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return tf
