# Packaging lives in pyproject.toml; this shim keeps `python setup.py develop` and older tools
# working.
from setuptools import setup

setup()
