"""The in-process executor: hooks run inside the test process, for speed.

A hook still runs for real: the unit's hook file is executed as ``__main__``
(for a reactive charm it calls ``charms.reactive.main()``, which imports the
charm's handlers and dispatches them through charmhelpers and unitdata). What
differs from a hook process is only that the Python process is reused, so
before each hook everything a fresh process would start without is reset
(``_ProcessState.enter_hook``):

* ``charmhelpers.core.hookenv``: the ``@cached`` memo, the cached config and
  the ``atstart``/``atexit`` lists. The lists are reset to the callbacks
  charms.reactive registers when imported (tracer, automatic flags,
  ``RelationBase._startup``, ``Endpoint._startup``, trigger clean-up), with
  fresh copies of their arguments, as a new process would have them.
* charms.reactive: registered handlers (so no ``Handler`` keeps the
  ``_args_evaled`` of an earlier hook), consumed flags, flag trigger
  callbacks, the ``RelationBase`` and ``Endpoint`` class caches, the tracer.
* The charm's own modules: ``reactive.*``, ``relations.*`` and anything else
  imported from the unit's charm directory leave ``sys.modules`` after every
  hook, so the next hook imports them afresh and their import-time
  registrations (``hookenv.atstart`` in an interface module) happen again.
* ``sys.argv``, ``sys.path`` (the hook's directory, then the path of a fresh
  hook process: not the test process's), ``sys.dont_write_bytecode``, the
  working directory (the charm directory)
  and the ``charms`` namespace path. ``os.environ`` is the hook's, except
  that the test process's own variables (other than ``JUJU*``) stay visible.

After the hook all of it is put back as it was (``_ProcessState.restore``),
so in-process hooks do not disturb other tests in the same process.

Re-importing charms.reactive and charmhelpers instead would be simpler but
costs about 7 ms per hook; this costs well under one. For speed, hookenv's
``yaml.safe_load`` also returns a copy of an earlier parse of the same text
(see ``_ParsedYaml``).

Hook tools are answered by the same ``tools.HookTools`` as in the subprocess
executor: ``subprocess.call``, ``check_call``, ``check_output`` and ``run``
are replaced during the hook, and a command named like a hook tool goes to
``HookTools.call``; every other command runs for real. Each unit keeps one
``unitdata.Storage`` for the model's life, installed as ``unitdata._KV`` for
its hooks; after every hook whatever it did not commit is rolled back, as
when a hook process ends. The database is the same file the subprocess
executor uses, opened with ``synchronous=off`` (no fsync per commit).
"""
import ast
import builtins
import contextlib
import copy
import io
import os
import subprocess
import sys
import time
import traceback

# This module's parent package, support, ran first and patched charmhelpers'
# platform check, so charms.reactive imports; support.site holds the patches
# that hook processes get from site/sitecustomize.py.
import charmhelpers
import charms
import charms.reactive  # noqa: F401
import yaml
from charmhelpers.core import hookenv, unitdata
from charms.reactive import bus, endpoints, flags, relations, trace

import support

from . import tools
from .model import ENV_CLOCK_OFFSET, HookResult, JujuSimError, kv_rows


def _library_registrations(registrations):
    """The (callback, args, kwargs) that charms.reactive/charmhelpers made at import."""
    return [r for r in registrations
            if getattr(r[0], '__module__', '').startswith(('charms.reactive', 'charmhelpers'))]


_ATSTART = _library_registrations(hookenv._atstart)
_ATEXIT = _library_registrations(hookenv._atexit)
if relations.RelationBase._startup not in [r[0] for r in _ATSTART]:
    raise ImportError('charms.reactive was imported and its atstart callbacks were already run '
                      'before jujusim.inprocess was imported; import it first')


def _hook_process_path():
    """``sys.path`` of a hook process without its script's directory.

    Asked once of a fresh interpreter started as the subprocess executor
    starts hooks. Without the test process's own additions (the repository,
    tests/ ...) a charm cannot import what a deployed unit could not, and
    imports scan fewer directories.
    """
    from .subproc import SITE_DIR
    script = 'import sys; print(repr(sys.path[1:]))'
    output = subprocess.check_output([sys.executable, '-c', script], cwd='/',
                                     env={'PYTHONPATH': SITE_DIR, 'PATH': os.defpath},
                                     universal_newlines=True)
    return ast.literal_eval(output)


_HOOK_PATH = _hook_process_path()
_DEPRECATED = vars(charmhelpers)['__deprecated_functions']  # warned-once memo
_TOOLS = frozenset(tools.TOOL_NAMES)
_PATCHED = ('call', 'check_call', 'check_output', 'run')
_CHARM_PACKAGES = ('reactive', 'relations')


class InProcessExecutor:
    """Runs hooks in this process; see the module docstring."""

    def __init__(self):
        self._storages = {}
        self._code = {}  # hook path -> ((mtime, size), code object)

    def add_unit(self, unit):
        """Open the unit's database, kept for the model's life."""
        storage = unitdata.Storage(unit.state_db)
        storage.conn.execute('pragma synchronous=off')
        self._storages[unit.name] = storage

    def close(self):
        """Close every unit's database."""
        for storage in self._storages.values():
            storage.close()
        self._storages.clear()

    def read_kv(self, unit, prefix):
        """Committed unit data whose keys start with ``prefix`` (prefix stripped)."""
        return kv_rows(self._storages[unit.name].conn, prefix)

    def run(self, spec):
        """Run one hook in this process and collect what its hook tools did."""
        storage = self._storages[spec.unit.name]
        code = self._compile(spec.hook_path)
        hook_tools = tools.HookTools(spec.context)
        output = io.StringIO()
        process = _ProcessState()
        ok, error = True, ''
        real_time, offset = time.time, int(spec.env.get(ENV_CLOCK_OFFSET, 0))
        try:
            process.enter_hook(spec, storage, _ToolRouter(hook_tools, output))
            if offset:
                time.time = support.site.clock_ahead(offset, real_time)
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                try:
                    exec(code, {'__name__': '__main__', '__file__': spec.hook_path,
                                '__builtins__': builtins})
                except SystemExit as exc:
                    if exc.code not in (None, 0):
                        ok, error = False, f'SystemExit: {exc.code}'
                except Exception:
                    ok, error = False, traceback.format_exc()
        finally:
            time.time = real_time
            storage.flush(save=False)  # what the hook did not commit is lost, as on exit
            process.restore(spec.unit.charm_dir)
        return HookResult(ok, error, output.getvalue(), hook_tools.events)

    def _compile(self, path):
        """The hook file's code, compiled once per version of the file."""
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._code.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        with open(path, 'rb') as handle:
            source = handle.read()
        if not (source.startswith(b'#!') and b'python' in source.split(b'\n', 1)[0]):
            raise JujuSimError(f'{path} is not a Python hook; use the subprocess executor')
        code = compile(source, path, 'exec', dont_inherit=True)
        self._code[path] = (version, code)
        return code


def _set_environ(env, current):
    """Turn ``os.environ`` from ``current`` into ``env``, touching only what differs."""
    for name in current:
        if name not in env:
            del os.environ[name]
    for name, value in env.items():
        if current.get(name) != value:
            os.environ[name] = value


class _ParsedYaml:
    """The ``yaml`` module as hookenv sees it during in-process hooks.

    ``hookenv.metadata()`` parses metadata.yaml in every hook with PyYAML's
    pure-Python loader, about a millisecond. ``safe_load`` of a text parsed
    before returns a deep copy of that parse: the same value, much faster.
    Everything else is PyYAML's.
    """

    def __init__(self):
        self._parsed = {}

    def safe_load(self, stream):
        text = stream.read() if hasattr(stream, 'read') else stream
        if text not in self._parsed:
            self._parsed[text] = yaml.safe_load(text)
        return copy.deepcopy(self._parsed[text])

    def __getattr__(self, name):
        return getattr(yaml, name)


_PARSED_YAML = _ParsedYaml()


class _ProcessState:
    """The state of this process that a hook sees or changes.

    Created before a hook, it saves that state; ``enter_hook`` sets it up as a
    fresh hook process would have it (see the module docstring), and
    ``restore`` puts everything back, so that in-process hooks are invisible
    to the rest of the test process (e.g. to unit tests that imported the
    interface layer and rely on its registered handlers).
    """

    def __init__(self):
        self.environ = dict(os.environ)
        self.argv = sys.argv
        self.dont_write_bytecode = sys.dont_write_bytecode
        self.path = list(sys.path)
        self.cwd = os.getcwd()
        self.charms_path = list(charms.__path__)
        self.subprocess = {name: getattr(subprocess, name) for name in _PATCHED}
        self.cache = dict(hookenv.cache)
        self.cache_config = hookenv._cache_config
        self.atstart = hookenv._atstart
        self.atexit = hookenv._atexit
        self.deprecated = dict(_DEPRECATED)
        self.handlers = bus.Handler._HANDLERS
        self.consumed = set(bus.Handler._CONSUMED_FLAGS)
        self.triggers = dict(flags.TRIGGER_CALLBACKS)
        self.relation_classes = dict(relations.RelationBase._cache)
        self.endpoints = dict(endpoints.Endpoint._endpoints)
        self.tracer = trace._tracer
        self.kv = unitdata._KV
        self.flush = unitdata.Storage.flush
        self.yaml = hookenv.yaml
        # Modules named like a charm's, imported outside jujusim (say, by a unit
        # test): set aside so that they cannot stand in for this charm's.
        self.set_aside = {}
        if any(package in sys.modules for package in _CHARM_PACKAGES):
            self.set_aside = {name: sys.modules.pop(name) for name in list(sys.modules)
                              if name.split('.')[0] in _CHARM_PACKAGES}
        self.modules = set(sys.modules)

    def enter_hook(self, spec, storage, router):
        """Make this process look like a new hook process for ``spec``."""
        hookenv.cache.clear()
        hookenv._cache_config = None
        hookenv._atstart = [(cb, copy.deepcopy(args), copy.deepcopy(kwargs))
                            for cb, args, kwargs in _ATSTART]
        hookenv._atexit = [(cb, copy.deepcopy(args), copy.deepcopy(kwargs))
                           for cb, args, kwargs in _ATEXIT]
        _DEPRECATED.clear()
        bus.Handler.clear()
        bus.Handler._CONSUMED_FLAGS.clear()
        flags.TRIGGER_CALLBACKS.clear()
        relations.RelationBase._cache.clear()
        endpoints.Endpoint._endpoints.clear()
        trace._tracer = trace.NullTracer()
        unitdata._KV = storage
        if spec.fail:
            unitdata.Storage.flush = support.site.failing_flush(self.flush)
        hookenv.yaml = _PARSED_YAML
        env = {name: value for name, value in self.environ.items()
               if not name.startswith('JUJU')}
        env.update(spec.env)
        env[tools.ENV_CONTEXT] = tools.INPROCESS
        _set_environ(env, self.environ)
        os.chdir(spec.unit.charm_dir)
        sys.argv = [spec.hook_path]
        sys.dont_write_bytecode = False  # as in a hook process: compile charm code once
        sys.path[:] = [os.path.dirname(os.path.realpath(spec.hook_path))] + _HOOK_PATH
        lib_charms = os.path.join(spec.unit.charm_dir, 'lib', 'charms')
        if os.path.isdir(lib_charms):  # what pkgutil.extend_path would find
            charms.__path__.append(lib_charms)
        for name in _PATCHED:
            setattr(subprocess, name, getattr(router, name))

    def restore(self, charm_dir):
        """Put back everything saved; forget the modules imported from ``charm_dir``."""
        for name, function in self.subprocess.items():
            setattr(subprocess, name, function)
        _replace(hookenv.cache, self.cache)
        hookenv._cache_config = self.cache_config
        hookenv._atstart = self.atstart
        hookenv._atexit = self.atexit
        _replace(_DEPRECATED, self.deprecated)
        bus.Handler._HANDLERS = self.handlers
        bus.Handler._CONSUMED_FLAGS.clear()
        bus.Handler._CONSUMED_FLAGS.update(self.consumed)
        _replace(flags.TRIGGER_CALLBACKS, self.triggers)
        _replace(relations.RelationBase._cache, self.relation_classes)
        _replace(endpoints.Endpoint._endpoints, self.endpoints)
        trace._tracer = self.tracer
        unitdata._KV = self.kv
        unitdata.Storage.flush = self.flush
        hookenv.yaml = self.yaml
        charms.__path__[:] = self.charms_path
        os.chdir(self.cwd)
        sys.path[:] = self.path
        sys.argv = self.argv
        sys.dont_write_bytecode = self.dont_write_bytecode
        _set_environ(self.environ, dict(os.environ))
        root = os.path.join(os.path.realpath(charm_dir), '')
        _forget_modules([name for name in set(sys.modules) - self.modules
                         if name.split('.')[0] in _CHARM_PACKAGES
                         or _loaded_from(sys.modules[name], root)])
        sys.modules.update(self.set_aside)


def _replace(mapping, saved):
    mapping.clear()
    mapping.update(saved)


def _loaded_from(module, root):
    files = [getattr(module, '__file__', None) or '']
    files.extend(getattr(module, '__path__', None) or ())  # namespace packages
    return any(os.path.realpath(f).startswith(root) for f in files if f)


def _forget_modules(names):
    """Remove modules from sys.modules and from their parent package."""
    for name in names:
        module = sys.modules.pop(name, None)
        parent, _, child = name.rpartition('.')
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is module:
            delattr(sys.modules[parent], child)


class _ToolRouter:
    """Stand-ins for subprocess functions that answer hook tools from ``HookTools``.

    Output a real tool would write to the hook's stdout/stderr goes to
    ``output``; commands that are not hook tools run for real.
    """

    def __init__(self, hook_tools, output):
        self.hook_tools = hook_tools
        self.output = output
        self.real = {name: getattr(subprocess, name) for name in _PATCHED}

    def _answer(self, args):
        """(rc, stdout, stderr) if ``args`` runs a hook tool, else None."""
        if isinstance(args, (list, tuple)) and args:
            if os.path.basename(str(args[0])) in _TOOLS:
                return self.hook_tools.call([str(arg) for arg in args])
        return None

    def _inherit(self, text, target):
        """Write ``text`` where a child's stream would go unless redirected."""
        if target not in (subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT):
            self.output.write(text)

    def call(self, args, *more, **kwargs):
        answer = self._answer(args)
        if answer is None:
            return self.real['call'](args, *more, **kwargs)
        rc, out, err = answer
        self._inherit(out, kwargs.get('stdout'))
        self._inherit(err, kwargs.get('stderr'))
        return rc

    def check_call(self, args, *more, **kwargs):
        answer = self._answer(args)
        if answer is None:
            return self.real['check_call'](args, *more, **kwargs)
        rc, out, err = answer
        self._inherit(out, kwargs.get('stdout'))
        self._inherit(err, kwargs.get('stderr'))
        if rc:
            raise subprocess.CalledProcessError(rc, args)
        return 0

    def check_output(self, args, *more, **kwargs):
        answer = self._answer(args)
        if answer is None:
            return self.real['check_output'](args, *more, **kwargs)
        rc, out, err = answer
        if kwargs.get('stderr') == subprocess.STDOUT:
            out += err
        else:
            self._inherit(err, kwargs.get('stderr'))
        out = _as_output(out, kwargs)
        if rc:
            raise subprocess.CalledProcessError(rc, args, output=out)
        return out

    def run(self, args, *more, **kwargs):
        answer = self._answer(args)
        if answer is None:
            return self.real['run'](args, *more, **kwargs)
        rc, out, err = answer
        capture = kwargs.get('capture_output')
        stdout_to = subprocess.PIPE if capture else kwargs.get('stdout')
        stderr_to = subprocess.PIPE if capture else kwargs.get('stderr')
        if stderr_to == subprocess.STDOUT and stdout_to == subprocess.PIPE:
            out, err = out + err, ''
        self._inherit(out, stdout_to)
        self._inherit(err, stderr_to)
        stdout = _as_output(out, kwargs) if stdout_to == subprocess.PIPE else None
        stderr = _as_output(err, kwargs) if stderr_to == subprocess.PIPE else None
        if kwargs.get('check') and rc:
            raise subprocess.CalledProcessError(rc, args, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(args, rc, stdout, stderr)


def _as_output(text, kwargs):
    """``text`` as subprocess would return it: str in text mode, else bytes."""
    if kwargs.get('text') or kwargs.get('universal_newlines') or kwargs.get('encoding') \
            or kwargs.get('errors'):
        return text
    return text.encode('utf-8')
