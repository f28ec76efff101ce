"""The tasks an explainer or a metric can explain, by name: Xplique's ``Tasks``.

``operator=Tasks.SEMANTIC_SEGMENTATION`` and ``operator="semantic segmentation"`` are the
same operator (:mod:`sobol_tf.operators` holds them). This module does not import
TensorFlow, so ``Tasks`` can be imported cheaply.

============================== ===================================================
task (``operator=``)           ``targets`` (one row per input)
============================== ===================================================
classification                 class ids (N,) or one-hot rows (N, K)
regression                     one weight per input (N,) or weight rows (N, K)
semantic segmentation          masks (N, H, W, C) shaped like the model's outputs:
                               non-zero on the zone and class explained
object detection (and the      boxes (N, 4 + 1 + K) or (N, nb_boxes, 4 + 1 + K):
three ``box ...`` variants)    (x1, y1, x2, y2, detection probability, K class
                               scores); all-zero rows are padding
============================== ===================================================
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from sobol_tf.errors import InvalidArgumentError


class Tasks(Enum):
    """The operators of Xplique's tasks, each named by its string.

    A member is callable as its operator, ``Tasks.OBJECT_DETECTION(model, inputs,
    targets)``, as in Xplique. Unlike Xplique, the members are real enum members whose
    values are the task names (``Tasks.CLASSIFICATION.value == 'classification'``), so
    ``list(Tasks)`` lists every task.
    """

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    SEMANTIC_SEGMENTATION = "semantic segmentation"
    OBJECT_DETECTION = "object detection"
    OBJECT_DETECTION_BOX_POSITION = "object detection box position"
    OBJECT_DETECTION_BOX_PROBA = "object detection box proba"
    OBJECT_DETECTION_BOX_CLASS = "object detection box class"

    @staticmethod
    def from_string(operator_name: str) -> "Tasks":
        """The task named ``operator_name`` (case-insensitive), e.g. 'object detection'.

        Raises:
            InvalidArgumentError: an unknown name; the message lists the valid ones.
        """
        for task in Tasks:
            if isinstance(operator_name, str) and operator_name.lower() == task.value:
                return task
        raise InvalidArgumentError(
            f"operator must be one of {[task.value for task in Tasks]} (or a callable "
            f"g(model, inputs, targets)), got {operator_name!r}.")

    def __call__(self, model: Any, inputs: Any, targets: Any) -> Any:
        """The task's scores ``g(model, inputs, targets)``, (batch,) float32 tensor."""
        # operators imports TensorFlow: imported when scores are asked, so that
        # ``from sobol_tf import Tasks`` stays light (operators sits below tasks and
        # does not import it)
        from sobol_tf import operators

        return operators.get(self)(model, inputs, targets)
