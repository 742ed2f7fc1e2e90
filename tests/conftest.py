"""Test set-up shared by every test module: tests/ and the checkout on
sys.path, so that ``support`` (which patches charmhelpers' platform check on
import, see tests/support/__init__.py) and ``peers`` import, and fixtures.
"""
import datetime
import os
import sys
import time

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.dirname(TESTS))

import support  # noqa: E402,F401  (before anything imports charms.reactive)


@pytest.fixture
def make(tmp_path):
    """A factory of tests/support/driver.py drivers, each closed after the test."""
    from support.driver import Driver

    made = []

    def factory(**kwargs):
        drv = Driver(tmp_path / str(len(made)), **kwargs)
        made.append(drv)
        return drv
    yield factory
    for drv in made:
        drv.close()


@pytest.fixture
def clock(monkeypatch):
    """The clock of the layer and of tests/support/pki.py (both read
    time.time()), for hooks run in process: ``clock(days=61)`` moves it
    that far ahead of the real one. Tests never sleep."""
    real = time.time

    def advance(**delta):
        offset = datetime.timedelta(**delta).total_seconds()
        monkeypatch.setattr(time, 'time', lambda: real() + offset)
    return advance
