"""Pointing game and share in box against hand-made maps; the benchmark's method table."""
import numpy as np
import pytest

from localisation import pointing_game, share_in_box

BOX = [[2, 2, 4, 4]]          # rows 2-3, cols 2-3 of a 6x6 map: 4 of 36 pixels


def map_with(*values):
    """A 6x6 map of zeros with (row, col, value) entries."""
    heat = np.zeros((1, 6, 6))
    for row, col, value in values:
        heat[0, row, col] = value
    return heat


def test_pointing_game_hit_miss_and_ties():
    assert pointing_game(map_with((3, 3, 1.0), (0, 0, 0.5)), BOX) == [1.0]
    assert pointing_game(map_with((3, 3, 0.5), (0, 0, 1.0)), BOX) == [0.0]
    assert pointing_game(map_with((3, 3, 1.0), (0, 0, 1.0)), BOX) == [0.5]
    assert pointing_game(np.ones((1, 6, 6)), BOX) == pytest.approx([4 / 36])
    # the box's bottom/right edges are exclusive
    assert pointing_game(map_with((4, 4, 1.0)), BOX) == [0.0]


def test_pointing_game_averages_channels_and_scores_each_map():
    maps = np.zeros((2, 6, 6, 2))
    maps[0, 2, 2] = [1.0, 1.0]        # mean 1 inside
    maps[0, 5, 5] = [1.8, 0.0]        # mean 0.9 outside, though one channel is larger
    maps[1, 0, 0] = [2.0, 2.0]
    np.testing.assert_array_equal(pointing_game(maps, BOX * 2), [1.0, 0.0])


def test_share_in_box_positive_part_only():
    heat = map_with((2, 2, 3.0), (0, 0, 1.0), (5, 5, -10.0), (3, 3, -4.0))
    assert share_in_box(heat, BOX) == pytest.approx([0.75])
    assert share_in_box(np.full((1, 6, 6), 2.0), BOX) == pytest.approx([4 / 36])
    assert share_in_box(-np.ones((1, 6, 6)), BOX) == [0.0]
    assert share_in_box(map_with((1, 1, 5.0)), BOX) == [0.0]


def test_the_benchmark_settings_build_every_exported_method():
    import keras

    from bench_quality import CANVAS, available_methods, method_settings
    from sobol_tf import attributions

    present, missing = available_methods(seed=0)
    names = {class_name for class_name, _ in method_settings(0).values()}
    assert {cls.__name__ for _, cls, _ in present} | set(missing) == names
    assert all(not hasattr(attributions, name) for name in missing)
    assert set(missing) <= {"ExtremalPerturbation"}
    model = keras.Sequential([keras.Input((CANVAS, CANVAS, 1)),
                              keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.GlobalMaxPooling2D(), keras.layers.Dense(10)])
    for _, explainer_class, settings in present:
        explainer_class(model, batch_size=8, **settings)
