"""plot_attributions given no map: a clear error, not a ZeroDivisionError (issue 27)."""
import numpy as np
import pytest

from sobol_tf.errors import InvalidArgumentError
from sobol_tf.plots import plot_attributions


@pytest.mark.parametrize("shape", [(0, 6, 6), (0, 6, 6, 1)])
def test_no_map_is_refused_with_a_clear_error(shape):
    maps = np.zeros(shape, np.float32)
    with pytest.raises(InvalidArgumentError, match="no map"):
        plot_attributions(maps)
    images = np.zeros((0, 6, 6, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="no map"):
        plot_attributions(maps, images)
