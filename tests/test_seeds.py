"""``seed``: one rule for every random component (explainers, metrics, samplers)."""
import numpy as np
import pytest
import tensorflow as tf

from sobol_tf.attributions import (
    ExtremalPerturbation,
    HsicAttributionMethod,
    Rise,
    SmoothGrad,
    SobolAttributionMethod,
)
from sobol_tf.attributions import samplers
from sobol_tf.errors import InvalidArgumentError, InvalidTypeError
from sobol_tf.metrics import MuFidelity

X = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)


def model(x):
    return tf.reshape(tf.reduce_mean(x, axis=[1, 2]), (-1, 1)) * tf.constant([[1.0, -1.0]])


COMPONENTS = {
    "sobol": lambda seed: SobolAttributionMethod(model, grid_size=2, nb_design=8, seed=seed),
    "hsic": lambda seed: HsicAttributionMethod(model, grid_size=2, nb_design=8, seed=seed),
    "rise": lambda seed: Rise(model, nb_samples=8, grid_size=2, seed=seed),
    "smoothgrad": lambda seed: SmoothGrad(model, nb_samples=2, seed=seed),
    "extremal": lambda seed: ExtremalPerturbation(model, jitter=True, seed=seed),
    "mufidelity": lambda seed: MuFidelity(model, X, [0, 0], grid_size=2, nb_samples=4,
                                          seed=seed),
    "SobolSequence": lambda seed: samplers.SobolSequence(scramble=True, seed=seed),
    "HaltonSequence": lambda seed: samplers.HaltonSequence(seed=seed),
    "LatinHypercube": lambda seed: samplers.LatinHypercube(seed=seed),
    "MonteCarlo": lambda seed: samplers.MonteCarlo(seed=seed),
    "get": lambda seed: samplers.get("lhs", seed=seed),
}


@pytest.mark.parametrize("name", sorted(COMPONENTS))
@pytest.mark.parametrize("seed, exception, shown", [
    (-5, InvalidArgumentError, "-5"),
    (2.5, InvalidTypeError, "2.5"),
    ("0", InvalidTypeError, "'0'"),
    (True, InvalidTypeError, "True"),
    (np.random.SeedSequence(0), InvalidTypeError, "SeedSequence"),
])
def test_a_bad_seed_is_refused_at_construction_naming_it(name, seed, exception, shown):
    with pytest.raises(exception, match="seed") as info:
        COMPONENTS[name](seed)
    assert shown in str(info.value)


@pytest.mark.parametrize("name", sorted(COMPONENTS))
@pytest.mark.parametrize("seed", [None, 0, np.int64(7), 2**40])
def test_good_seeds_are_accepted(name, seed):
    COMPONENTS[name](seed)


def test_a_generator_seeds_through_one_integer_drawn_from_it():
    """A numpy Generator (scipy's samplers accept one) is read once, at construction: the
    component then behaves as if given that integer, so its results are reproducible."""
    seed = int(np.random.default_rng(3).integers(2**63))
    drawn = samplers.MonteCarlo(seed=np.random.default_rng(3))
    assert drawn.seed == seed
    np.testing.assert_array_equal(drawn(4, 8), samplers.MonteCarlo(seed=seed)(4, 8))
    np.testing.assert_array_equal(drawn(4, 8), drawn(4, 8))
    rise = Rise(model, nb_samples=8, grid_size=2, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(
        rise(X, [0, 0]), Rise(model, nb_samples=8, grid_size=2, seed=seed)(X, [0, 0]))


@pytest.mark.parametrize("explainer", [SobolAttributionMethod, HsicAttributionMethod])
def test_a_seed_with_a_sampler_object_is_refused(explainer):
    """The seed would be silently ignored: it belongs to the sampler object."""
    sampler = samplers.SobolSequence(scramble=True, seed=1)
    with pytest.raises(InvalidArgumentError, match=r"(?s)seed=5.*SobolSequence.*sampler"):
        explainer(model, grid_size=2, nb_design=8, sampler=sampler, seed=5)
    explainer(model, grid_size=2, nb_design=8, sampler=sampler)  # without a seed: fine
    explainer(model, grid_size=2, nb_design=8, sampler="sobol", seed=5)  # a name: fine
