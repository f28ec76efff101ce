"""Plots are drawn headless: the Agg backend, figures closed after each test."""
import pytest


@pytest.fixture(autouse=True)
def agg_backend():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    yield
    plt.close("all")
