"""The subprocess executor: every hook is a real process, as under Juju.

It runs ``<unit charm dir>/hooks/<hook>`` with the charm directory as working
directory and the environment the model built, plus:

* ``$JUJUSIM_CONTEXT``: the context file the hook tools answer from and
  append their events to (see ``tools.py``);
* ``$PYTHONPATH``: ``site/``, whose ``sitecustomize`` patches charmhelpers'
  platform check, runs ``time.time()`` ahead by ``$JUJUSIM_CLOCK_OFFSET``
  once the model's clock runs ahead and, with ``$JUJUSIM_FAIL``, makes the
  hook fail at its end.

This is the reference for the in-process executor: slower (a Python start-up
per hook and per hook tool call) but with nothing shared between hooks
except what Juju and the unit's files share.
"""
import marshal
import os
import sqlite3
import subprocess

import support

from . import tools
from .model import HookResult, kv_rows

SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'site')
ENV_FAIL = support.site.ENV_FAIL  # read by site/sitecustomize.py
HOOK_TIMEOUT = 600  # seconds


class SubprocessExecutor:
    """Runs each hook as a process; see the module docstring."""

    def add_unit(self, unit):
        """Nothing to prepare: the hook process opens the unit's database itself."""

    def close(self):
        """Nothing to release."""

    def run(self, spec):
        """Run one hook process and collect what its hook tools did."""
        context_path = os.path.join(os.path.dirname(spec.unit.charm_dir), 'hook-context')
        with open(context_path, 'wb') as handle:
            handle.write(marshal.dumps(spec.context))
        env = dict(spec.env)
        env[tools.ENV_CONTEXT] = context_path
        env['PYTHONPATH'] = SITE_DIR
        if spec.fail:
            env[ENV_FAIL] = '1'
        proc = subprocess.run([spec.hook_path], cwd=spec.unit.charm_dir, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=HOOK_TIMEOUT)
        output = proc.stdout.decode('utf-8', 'replace')
        _, events = tools.read_context(context_path)
        error = ''
        if proc.returncode != 0:
            start = output.rfind('Traceback (most recent call last)')
            error = f'exit status {proc.returncode}\n{output[start:] if start >= 0 else output}'
        return HookResult(proc.returncode == 0, error, output, events)

    def read_kv(self, unit, prefix):
        """Committed unit data whose keys start with ``prefix`` (prefix stripped)."""
        if not os.path.exists(unit.state_db):
            return {}
        conn = sqlite3.connect(unit.state_db)
        try:
            return kv_rows(conn, prefix)
        except sqlite3.OperationalError:  # the file exists, but no hook made the table yet
            return {}
        finally:
            conn.close()
