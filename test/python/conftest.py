"""test/python needs palettize.torch installed in this interpreter's environment: a clear failure,
not a skip, when it is not (scripts/setup-torch installs it into .venv-torch)."""

import importlib.util

import pytest


def pytest_sessionstart(session):
    if importlib.util.find_spec("palettize") is None:
        raise pytest.UsageError("palettize.torch is not installed in this Python: run scripts/setup-torch "
                                "(it runs `pip install ./python` into .venv-torch)")
