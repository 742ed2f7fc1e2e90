"""Start-up patches for the Python processes of a simulated hook.

The subprocess executor puts this directory on PYTHONPATH, so Python imports
this module at start-up in the hook process and in any Python it starts. (The
fake hook tools run with ``python -S`` and skip it.) The in-process executor
loads the same functions from this file so that both executors patch in the
same way.

* charmhelpers 1.2.1 raises "This module is not supported on Debian GNU/Linux"
  when ``charmhelpers.core.host`` is imported (its platform check knows only a
  lowercase 'debian'). Real charms run on Ubuntu, so Debian is reported as
  Ubuntu; any other unknown platform still raises.
* ``fail_next``: with ``$JUJUSIM_FAIL`` set, the first committing
  ``Storage.flush()`` raises. ``charms.reactive.main()`` commits unit data
  once, after all handlers and atexit callbacks ran, so the hook fails at its
  very end, its unit data is not committed and the process exits non-zero.
* ``advance_clock``: with ``$JUJUSIM_CLOCK_OFFSET`` set, ``time.time()`` runs
  that many seconds ahead. It is the only clock the layer and the example
  charm read (``datetime.now()`` and non-Python tools keep the real time).
"""
import os
import time

ENV_FAIL = 'JUJUSIM_FAIL'
ENV_CLOCK_OFFSET = 'JUJUSIM_CLOCK_OFFSET'


class InjectedFailure(RuntimeError):
    """The failure that ``Model.fail_next`` asked for."""


def patch_platform():
    """Make charmhelpers' platform check treat Debian as Ubuntu (idempotent)."""
    from charmhelpers import osplatform
    original = osplatform.get_platform
    if getattr(original, 'jujusim', False):
        return

    def get_platform():
        try:
            return original()
        except RuntimeError:
            if 'Debian' in osplatform._get_platform_from_fs():
                return 'ubuntu'
            raise
    get_platform.jujusim = True
    osplatform.get_platform = get_platform


def clock_ahead(offset, clock=time.time):
    """A ``time.time`` that runs ``offset`` seconds ahead of ``clock``."""
    def ahead():
        return clock() + offset
    return ahead


def failing_flush(flush):
    """Wrap ``Storage.flush`` so that committing raises :class:`InjectedFailure`."""
    def flush_or_fail(self, save=True):
        if save:
            raise InjectedFailure('jujusim: injected hook failure (Model.fail_next)')
        return flush(self, save)
    return flush_or_fail


if __name__ == 'sitecustomize' and os.environ.get('JUJUSIM_CONTEXT'):
    patch_platform()
    if os.environ.get(ENV_CLOCK_OFFSET):
        time.time = clock_ahead(int(os.environ[ENV_CLOCK_OFFSET]))
    if os.environ.get(ENV_FAIL):
        from charmhelpers.core import unitdata
        unitdata.Storage.flush = failing_flush(unitdata.Storage.flush)
