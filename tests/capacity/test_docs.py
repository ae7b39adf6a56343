"""The examples in the capacity modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tollhouse.capacity

MODULES = sorted(m.name for m in pkgutil.iter_modules(tollhouse.capacity.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"tollhouse.capacity.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
