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
    assert samplers.get(None).scramble == "auto"
    custom = samplers.MonteCarlo(seed=3)
    assert samplers.get(custom) is custom
    with pytest.raises(InvalidArgumentError, match="'qmc'"):
        samplers.get("qmc")
    with pytest.raises(InvalidTypeError):
        samplers.get(3)


def tied_columns(design, n, d):
    return np.flatnonzero(np.all(design[:n] == design[n:2 * n], axis=0))


@pytest.mark.parametrize("name", [None, "sobol"])
@pytest.mark.parametrize("nb_design", [2, 4, 8, 16])
def test_default_sobol_never_ties_a_column_of_a_to_b(name, nb_design):
    d = 16
    design = samplers.get(name)(d, nb_design)
    assert tied_columns(design, nb_design, d).size == 0
    np.testing.assert_array_equal(design, samplers.get(name)(d, nb_design))  # deterministic
    assert design.min() >= 0 and design.max() < 1


@pytest.mark.parametrize("d, nb_design", [(16, 16), (16, 32), (64, 32), (64, 256)])
def test_default_sobol_is_the_reference_design_when_no_column_ties(d, nb_design):
    expected = qmc.Sobol(2 * d, scramble=False).random_base2(int(np.log2(nb_design)))
    design = samplers.get(None)(d, nb_design)
    np.testing.assert_array_equal(design[:nb_design], expected[:, :d].astype(np.float32))
    np.testing.assert_array_equal(design[nb_design:2 * nb_design],
                                  expected[:, d:].astype(np.float32))


def test_default_sobol_falls_back_to_a_fixed_scrambled_design_when_columns_tie():
    d, n = 16, 8
    unscrambled = qmc.Sobol(2 * d, scramble=False).random_base2(3)
    assert np.all(unscrambled[:, :d] == unscrambled[:, d:], axis=0).any()  # ties today
    expected = qmc.Sobol(2 * d, scramble=True, seed=samplers.FALLBACK_SEED).random_base2(3)
    np.testing.assert_array_equal(samplers.get(None)(d, n)[:n], expected[:, :d].astype(np.float32))


def test_explicit_sampler_with_tied_columns_is_refused():
    with pytest.raises(InvalidArgumentError,
                       match=r"nb_design=8.*dimension\(s\) \[.*nb_design=16 has no tie.*scramble"):
        samplers.SobolSequence()(16, 8)
    samplers.SobolSequence(scramble=True, seed=0)(16, 8)  # scrambled: no tie


def test_sobol_dimension_limit_is_a_clear_error():
    with pytest.raises(InvalidArgumentError, match="21201"):
        samplers.SobolSequence().sample(21202, 2)
    assert samplers.SobolSequence().max_dimension == 21201
    assert samplers.HaltonSequence().max_dimension is None
