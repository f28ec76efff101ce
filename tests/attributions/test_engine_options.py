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


def test_replacing_the_model_of_an_explainer_is_refused_not_silently_ignored():
    """Steps and model views are built from the first model: swapping ``model`` (as
    Xplique's randomization metric does) would keep explaining it; it is refused."""
    import numpy as np
    import tensorflow as tf
    from sobol_tf.attributions import Occlusion, Saliency
    from sobol_tf.errors import InvalidArgumentError

    first = lambda x: tf.reduce_sum(x, axis=[1, 2, 3])[:, None]
    for explainer in (Saliency(first), Occlusion(first, patch_size=2, patch_stride=2)):
        explainer(np.ones((1, 4, 4, 1), np.float32), [0])
        with pytest.raises(InvalidArgumentError, match="cannot be replaced.*new explainer"):
            explainer.model = lambda x: -first(x)
        assert explainer.model is not None
