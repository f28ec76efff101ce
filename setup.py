"""Install sobol_tf; metadata lives in setup.cfg."""
from setuptools import setup

setup()
