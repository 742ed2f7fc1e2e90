"""Test set-up shared by every test module.

charmhelpers 1.2.1 refuses to import on Debian (its platform check knows
only lowercase 'debian'); our machines are Debian while charms run on
Ubuntu. Patch the check before anything imports charms.reactive. The hook
processes of the end-to-end tests get the same patch from
tests/jujusim/site/sitecustomize.py.
"""
import datetime
import os
import sys
import time

import charmhelpers.osplatform
import pytest

charmhelpers.osplatform.get_platform = lambda: 'ubuntu'

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.dirname(TESTS))


@pytest.fixture
def make(tmp_path):
    """A factory of tests/driver.py drivers, each closed after the test."""
    from driver import Driver

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
    """The clock of the layer and of tests/e2e/pki.py (both read
    time.time()), for hooks run in process: ``clock(days=61)`` moves it
    that far ahead of the real one. Tests never sleep."""
    real = time.time

    def advance(**delta):
        offset = datetime.timedelta(**delta).total_seconds()
        monkeypatch.setattr(time, 'time', lambda: real() + offset)
    return advance
