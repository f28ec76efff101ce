import numpy as np
import pytest
from scipy.stats import qmc

from sobol_tf.attributions import samplers
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError

ALL = [samplers.SobolSequence(), samplers.SobolSequence(scramble=True, seed=0),
       samplers.HaltonSequence(seed=0), samplers.LatinHypercube(seed=0),
       samplers.MonteCarlo(seed=0)]


@pytest.mark.parametrize("sampler", ALL, ids=repr)
def test_replicated_structure_and_range(sampler):
    d, n = 5, 16
    design = sampler(d, n)
    assert design.shape == (n * (d + 2), d)
    assert design.dtype == np.float32
    assert design.min() >= 0 and design.max() <= 1
    a, b, c = design[:n], design[n:2 * n], design[2 * n:].reshape(d, n, d)
    assert not np.allclose(a, b)
    for i in range(d):
        others = [j for j in range(d) if j != i]
        np.testing.assert_array_equal(c[i][:, i], b[:, i])
        np.testing.assert_array_equal(c[i][:, others], a[:, others])


def test_unscrambled_sobol_is_the_reference_sequence():
    d, n = 3, 8
    design = samplers.SobolSequence()(d, n)
    expected = qmc.Sobol(2 * d, scramble=False).random(n)
    np.testing.assert_allclose(design[:n], expected[:, :d], atol=1e-7)
    np.testing.assert_allclose(design[n:2 * n], expected[:, d:], atol=1e-7)
    np.testing.assert_array_equal(design, samplers.SobolSequence()(d, n))


@pytest.mark.parametrize("name", ["sobol", "halton", "lhs", "monte_carlo"])
def test_seeded_designs_are_reproducible_and_seed_dependent(name):
    first = samplers.get(name, seed=1)(4, 8)
    np.testing.assert_array_equal(first, samplers.get(name, seed=1)(4, 8))
    assert not np.allclose(first, samplers.get(name, seed=2)(4, 8))


def test_get_resolves_names_and_objects():
    assert isinstance(samplers.get(None), samplers.SobolSequence)
    assert samplers.get(None).scramble is False
    custom = samplers.MonteCarlo(seed=3)
    assert samplers.get(custom) is custom
    with pytest.raises(InvalidArgumentError, match="'qmc'"):
        samplers.get("qmc")
    with pytest.raises(InvalidTypeError):
        samplers.get(3)
