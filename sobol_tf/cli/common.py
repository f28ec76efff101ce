"""What both commands share: exit statuses, reporting, the model and images they read,
the devices they run on, and running a batch or each image alone when the batch fails.
TensorFlow is imported by the functions that need it, never at import.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from sobol_tf._quiet import import_tensorflow_quietly
from sobol_tf.cli import files
from sobol_tf.cli.parser import PROGRAM

METRIC_NAMES = ("deletion", "insertion", "mufidelity")
EXIT_FILE_ERROR = 1
EXIT_USAGE = 2
#: the shell's status for a run stopped by Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130


class UsageProblem(Exception):
    """An option that cannot work, found while running: exit with EXIT_USAGE."""



def grid_fits(flag: str, grid_size: int, spec: files.ModelInput) -> bool:
    """False (after reporting) when ``grid_size`` exceeds the model's input size."""
    smallest = min(spec.height or grid_size, spec.width or grid_size)
    if grid_size > smallest:
        report(f"{flag} {grid_size} exceeds the model's input size "
                f"{spec.height}x{spec.width}; use at most {smallest}")
        return False
    return True


def report(message: object) -> None:
    """One line on stderr; undecodable bytes of file names shown as escapes."""
    line = f"{PROGRAM}: error: {message}"
    print(line.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)


def load_images(paths: Sequence[str], spec: files.ModelInput,
                scale: float) -> Tuple[List[Tuple[str, np.ndarray, np.ndarray]], int]:
    """Load every image; report and skip the ones that fail.

    Returns:
        (loaded, nb_failed): loaded is a list of (path, display image, model input).
    """
    loaded, failed = [], 0
    for path in paths:
        try:
            loaded.append((path,) + files.load_image(path, spec, scale))
        except files.FileProblem as problem:
            report(problem)
            failed += 1
    return loaded, failed


def target_problem(target: Optional[int], nb_outputs: Optional[int]) -> Optional[str]:
    """The error line when ``--target`` is not a class id of the model, else None."""
    if target is None or nb_outputs is None or 0 <= target < nb_outputs:
        return None
    return (f"--target {target} is out of range: the model has {nb_outputs} outputs, "
            f"so use 0 to {nb_outputs - 1}")


def predicted_classes(model: Any, inputs: np.ndarray,
                      batch_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Class ids of the highest output, and the outputs, on a batch of inputs."""
    outputs = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
    outputs = outputs.reshape(len(outputs), -1)
    return outputs.argmax(axis=1), outputs


def failure_reason(model: Any, spec: files.ModelInput, inputs: np.ndarray,
                   exc: BaseException) -> str:
    """One line saying why an image failed: for a model of free input size that cannot
    take the image's size, "the image (H x W) is too small for the model: <Keras' shape
    check>" (found by Keras' shape inference, which runs nothing); else the most
    informative line of ``exc`` and its causes."""
    import keras  # TensorFlow: only when an image failed

    if (spec.height is None or spec.width is None) and isinstance(model, keras.Model):
        try:
            model.compute_output_spec(keras.KerasTensor((1,) + tuple(inputs.shape)))
        except Exception as shape_exc:  # the model's layers refuse this size
            why = files.one_line(shape_exc).replace("`", "")
            size = f"{inputs.shape[0]} x {inputs.shape[1]}"
            if "negative" in why.lower() or "too small" in why.lower():
                return f"the image ({size}) is too small for the model: {why}"
            return f"the model cannot take an image of {size}: {why}"
    return files.one_line(exc)


def in_batches_or_alone(indices: List[int], work: Callable[[List[int]], Any],
                        failed: Callable[[int, BaseException], None]
                        ) -> List[Tuple[List[int], Any]]:
    """Run ``work(indices)``; if it raises, run ``work([i])`` for each index alone, so
    that one image the model cannot take loses only itself.

    Args:
        indices: a group of images (one batch).
        work: function of a list of indices, returning a result.
        failed: called as ``failed(index, exception)`` for each image that fails alone.

    Returns:
        a list of (indices, result) for the work that succeeded.

    Raises:
        UsageProblem: raised by ``work``, at once (an option, not an image, is wrong).
    """
    try:
        return [(indices, work(indices))]
    except UsageProblem:
        raise
    except Exception as exc:  # any error of the model or the method on this batch
        if len(indices) == 1:
            failed(indices[0], exc)
            return []
    done = []
    for index in indices:
        try:
            done.append(([index], work([index])))
        except UsageProblem:
            raise
        except Exception as exc:
            failed(index, exc)
    return done


def device_strategy(devices: Union[int, str]) -> Any:
    """The ``tf.distribute.MirroredStrategy`` of ``--devices``, or None for one device.

    Over the first ``devices`` GPUs (all of them for ``"all"``), or, on a machine without
    GPUs, over the logical CPU devices (``tf.config.set_logical_device_configuration``,
    made before TensorFlow initialises). One device (``1``, or ``"all"`` of one): None,
    TensorFlow's default placement, as without the option.

    Raises:
        UsageProblem: more devices asked for than found (the message names those found).
    """
    if devices == 1:
        return None
    import tensorflow as tf  # noqa: PLC0415 (heavy: not for --help)

    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    wanted = len(found) if devices == "all" else int(devices)
    if wanted > len(found):
        names = ", ".join(d.name.split("device:")[-1] for d in found)
        raise UsageProblem(f"--devices {devices}: this machine has {len(found)} device(s) "
                           f"to use ({names}); use 1 to {len(found)} or 'all' (several "
                           "CPU devices exist only when set up as logical devices before "
                           "TensorFlow starts)")
    if wanted == 1:
        return None
    return tf.distribute.MirroredStrategy([d.name for d in found[:wanted]])


def prepare(args: argparse.Namespace, overlay_suffix: Optional[str] = None,
            strategy: Any = None) -> Tuple[Optional[int], Any, Any, Any]:
    """Import TensorFlow quietly, list the images, check the output folder and the model
    (loaded under ``strategy.scope()`` when given: its weights mirrored on each device).

    Returns:
        (status, paths, model, spec): status is None when all is well, else the exit
        status (the problem was reported).
    """
    import_tensorflow_quietly()
    out = getattr(args, "out", None)
    try:
        paths = files.check_names(files.list_images(args.images, exclude=out),
                                  overlay_suffix)
        if out is not None:
            files.check_output_folder(out)
    except files.FileProblem as problem:
        report(problem)
        return EXIT_USAGE, None, None, None
    try:
        if strategy is None:
            model, spec = files.load_model(args.model)
        else:
            with strategy.scope():
                model, spec = files.load_model(args.model)
    except files.FileProblem as problem:
        report(problem)
        return EXIT_FILE_ERROR, None, None, None
    wrong_target = target_problem(args.target, spec.nb_outputs)
    if wrong_target:
        report(wrong_target)
        return EXIT_USAGE, None, None, None
    return None, paths, model, spec


def with_channel_axis(model: Any, spec: files.ModelInput) -> Any:
    """The model as the library calls it: a model of grayscale images without channel
    axis (N, H, W) takes them as (N, H, W, 1) (rank 3 is a time series for the library)."""
    if not spec.squeeze:
        return model
    return lambda x: model(x[..., 0])
