"""Engine options: XLA compilation and mixed precision keep the maps (within rounding)."""
import numpy as np
import pytest

from sobol_tf.attributions import SobolAttributionMethod
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

from tests.conftest import CellModel


def test_jit_compile_gives_the_same_maps(convnet, images):
    plain = SobolAttributionMethod(convnet, grid_size=2, nb_design=8, batch_size=16)
    xla = SobolAttributionMethod(convnet, grid_size=2, nb_design=8, batch_size=16,
                                 jit_compile=True)
    np.testing.assert_allclose(xla(images, [0, 1, 2]), plain(images, [0, 1, 2]), atol=1e-4)


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
def test_mixed_precision_is_close_and_leaves_the_model_alone(convnet, images, policy):
    plain = SobolAttributionMethod(convnet, grid_size=2, nb_design=8)(images, [0, 1, 2])
    mixed = SobolAttributionMethod(convnet, grid_size=2, nb_design=8, mixed_precision=policy)
    maps = mixed(images, [0, 1, 2]).numpy()
    assert maps.dtype == np.float32
    # half precision rounds the scores, and indices are ratios of their variances
    assert np.corrcoef(maps.ravel(), np.asarray(plain).ravel())[0, 1] > 0.9
    assert convnet.layers[0].compute_dtype == "float32"


def test_option_errors(convnet):
    with pytest.raises(InvalidArgumentError, match="mixed_precision must be one of"):
        SobolAttributionMethod(convnet, mixed_precision="float8")
    with pytest.raises(InvalidTypeError, match="needs a Keras model"):
        SobolAttributionMethod(CellModel([1.0], 1), mixed_precision="float16")
