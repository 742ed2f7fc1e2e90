"""A driver charm for the layer's unit tests, and the test-side API to steer it.

Tests of the layer go through the real framework: a hook file calls
``charms.reactive.main()``, which loads the repository's ``peers.py`` from
``hooks/relations/tls/`` and dispatches real handlers written as
``@when('sign certificate signing request') def sign(tls)``, over real
unitdata; jujusim's in-process executor answers the hook tools from relation
data the test controls (``model.poke``, ``model.poke_leader_settings``).

The charm is assembled in a temporary directory without charm-tools (a few
files, so every test can have its own). Its handlers do what the unit's
control file ``$CHARM_DIR/driver.json`` says (jujusim gives each unit its own
copy of the charm directory):

* ``create``: on ``create certificate signing request``, make an EC key
  (kept in ``$CHARM_DIR/driver-key.pem``) and publish a CSR for it;
* ``sign``: on ``sign certificate signing request``, publish the CA of
  ``ca`` and answer every pending CSR with a certificate from it; on
  ``signed certificate available``, the leader also publishes that CA, as the
  example charm does, so that changing ``ca`` (``Driver.use_ca``) re-signs;
* ``original``: behave like the original layer's consumers (layer-tls):
  the leader never publishes a CSR of its own (it issues its certificate
  itself) and never calls ``set_ca`` (the original layer has none), and
  ``signed certificate available`` is removed once handled;
* ``clear``: remove ``signed certificate available`` once handled, as
  ``original`` does, and otherwise behave as this layer's consumers;
* ``calls``: layer methods to call once, in the hooks phase of the next hook
  of the given name (after the layer's reconciliation, before the state
  handlers); each outcome is logged.

Every handler run and every call outcome is appended to
``$CHARM_DIR/driver-log.jsonl`` (a file, so that a failed hook's runs are
seen too), which the test reads back through :class:`Driver`.
"""
import builtins
import itertools
import json
import shutil
import textwrap
from pathlib import Path

from charmhelpers.core import unitdata
from cryptography.hazmat.primitives import serialization

from peers import CERT_AVAILABLE, CREATE_CSR, KV_CA, KV_CERT, KV_SERVER_CERT, KV_STATE, SIGN_CSR
from support import pki
from support.jujusim import Model

STATES = (CREATE_CSR, SIGN_CSR, CERT_AVAILABLE)

CONTROL = 'driver.json'
LOG = 'driver-log.jsonl'
KEY_FILE = 'driver-key.pem'

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
HOOKS = ('install', 'config-changed', 'start', 'update-status', 'leader-elected',
         'leader-settings-changed', 'upgrade-charm', 'stop')
RELATION_HOOKS = ('created', 'joined', 'changed', 'departed')
CHARM_FILES = SUPPORT / 'driver_charm'  # its handlers and hook, as files the linter sees
LAYER_MODULES = ('peers.py', 'pem.py')  # what charm-build copies into hooks/relations/tls/


#: The store the driver charm declares with ``storage=True``: Juju runs its
#: storage-attached hook before install (jujusim.model).
STORAGE = 'data'


def build_charm(root, relation='tls', app='drv', storage=False):
    """Assemble the driver charm under ``root`` (named for ``app`` and
    ``relation``, with the store :data:`STORAGE` if ``storage``) from
    driver_charm/, this checkout's LAYER_MODULES and support/pki.py; return its
    directory."""
    charm = Path(root) / f'{app}-{relation}'
    (charm / 'hooks' / 'relations' / 'tls').mkdir(parents=True)
    (charm / 'reactive').mkdir()
    (charm / 'lib').mkdir()
    (charm / 'metadata.yaml').write_text(textwrap.dedent(f"""\
        name: {app}
        summary: drives interface-tls in tests
        description: drives interface-tls in tests
        peers:
          {relation}:
            interface: tls
        """))
    hooks = HOOKS + tuple(f'{relation}-relation-{kind}' for kind in RELATION_HOOKS)
    if storage:
        with (charm / 'metadata.yaml').open('a') as metadata:
            metadata.write(f'storage:\n  {STORAGE}:\n    type: filesystem\n')
        hooks += (f'{STORAGE}-storage-attached',)
    for name in hooks:
        shutil.copy(str(CHARM_FILES / 'hooks' / 'hook'), str(charm / 'hooks' / name))
    (charm / 'hooks' / 'relations' / '__init__.py').write_text('')
    (charm / 'hooks' / 'relations' / 'tls' / '__init__.py').write_text('')
    for module in LAYER_MODULES:
        shutil.copy(str(REPO / module), str(charm / 'hooks' / 'relations' / 'tls' / module))
    shutil.copy(str(SUPPORT / 'pki.py'), str(charm / 'lib' / 'pki.py'))
    shutil.copy(str(CHARM_FILES / 'reactive' / 'driver.py'), str(charm / 'reactive' / 'driver.py'))
    return str(charm)


class CallError(Exception):
    """A scripted call raised an exception that is not a builtin one."""


class Driver:
    """A jujusim model of the driver charm, and what the test does with it.

    ``Driver(tmp_path, relation='tls', units=3)`` adds ``units`` units with
    automatic key making and signing and settles the model. ``model`` is the
    jujusim model; ``ca`` the test CA (``support.pki.CA``) the leader signs with.
    Call ``close()`` when done.
    """

    def __init__(self, root, relation='tls', units=3, app='drv', create=True, sign=True,
                 original=False, settle=True, storage=False):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.ca = pki.make_ca('driver CA')
        self.model = Model(build_charm(root, relation, app, storage), relation,
                           workdir=str(root), app=app)
        self._ids = itertools.count()
        self.record = None  # the hook record of the last call()
        for _ in range(units):
            self.add_unit(create=create, sign=sign, original=original)
        if settle:
            self.settle()

    def close(self):
        self.model.close()

    # -- the units' charm directories --------------------------------------

    def charm_dir(self, unit):
        """The unit's copy of the charm: ``$CHARM_DIR`` in its hooks (jujusim
        makes it when the unit is added and offers no public accessor)."""
        return Path(self.model._unit(unit).charm_dir)

    def add_unit(self, create=True, sign=True, original=False):
        """Add a unit (hooks queued, not run) with automatic behaviour as given."""
        unit = self.model.add_unit()
        self._write_control(unit, {'create': create, 'sign': sign, 'original': original, 'calls': [],
                                   'ca': {'key': pki.key_pem(self.ca.key), 'cert': self.ca.pem}})
        return unit

    def run_original_layer(self, unit):
        """Give ``unit`` the original layer's peers.py (tests/support/original_peers.py)
        in place of this layer's, before its first hook runs."""
        shutil.copy(str(SUPPORT / 'original_peers.py'), str(self._peers_module(unit)))

    def upgrade(self, unit):
        """Put this layer's modules back on ``unit`` and queue upgrade-charm."""
        for module in LAYER_MODULES:
            shutil.copy(str(REPO / module), str(self._peers_module(unit).with_name(module)))
        self.model.queue(unit, 'upgrade-charm')

    def _peers_module(self, unit):
        return self.charm_dir(unit) / 'hooks' / 'relations' / 'tls' / 'peers.py'

    def control(self, unit, **changes):
        """Change the unit's automatic behaviour: ``create``, ``sign``, ``original``, ``clear``."""
        settings = self._read_control(unit)
        settings.update(changes)
        self._write_control(unit, settings)

    def use_ca(self, ca):
        """Make every unit's automatic signing use ``ca`` (a ``support.pki.CA``) from now on."""
        self.ca = ca
        for unit in self.model.units:
            self.control(unit, ca={'key': pki.key_pem(ca.key), 'cert': ca.pem})

    def _read_control(self, unit):
        return json.loads((self.charm_dir(unit) / CONTROL).read_text())

    def _write_control(self, unit, settings):
        (self.charm_dir(unit) / CONTROL).write_text(json.dumps(settings))

    # -- running hooks -------------------------------------------------------

    def settle(self, **kwargs):
        """Run every queued hook (``Model.settle``); return the records."""
        return self.model.settle(**kwargs)

    def run(self, unit, hook, remote=None, calls=()):
        """Queue ``hook`` on ``unit`` with scripted ``calls`` ((method, args)
        pairs), run that unit's queue up to and including it, and return its
        record. Other units run nothing."""
        for method, args in calls:
            self.schedule(unit, hook, method, args)
        return self._run_new(unit, hook, remote)

    def settle_without(self, down):
        """Run every queued hook but ``down``'s, as while its agent is
        down: its hooks wait in its queue. Return the records."""
        records = []
        while any(unit != down for unit, _, _ in self.model.pending()):
            unit = next(unit for unit, _, _ in self.model.pending() if unit != down)
            records.append(self.model.run(unit))
        return [record for record in records if record]

    def run_queued(self, unit):
        """Run ``unit``'s queued hooks in order (retrying failures); return the last record."""
        record = None
        while any(u == unit for u, _, _ in self.model.pending()):
            record = self.model.run(unit) or record
        return record

    def _run_new(self, unit, hook, remote):
        """Queue ``hook``, run ``unit``'s queue, and return the record of
        that hook's last attempt: not of a hook its writes queued after it
        (the leader's own application-bag change, where Juju notifies it)."""
        since = len(self.model.history)
        self.model.queue(unit, hook, remote)
        self.run_queued(unit)
        runs = [r for r in self.records(unit, since) if r.hook == hook]
        attempts = [runs[0]] + list(itertools.takewhile(lambda r: r.attempt > 1, runs[1:]))
        return attempts[-1]

    def call(self, unit, method, *args, hook='update-status', remote=None):
        """Call ``tls.<method>(*args)`` in a new ``hook`` on ``unit``.

        Returns what it returned, or raises what it raised (builtin types as
        themselves, others as :class:`CallError`). The hook's record is
        ``self.record`` afterwards.
        """
        call_id = self.schedule(unit, hook, method, args)
        self.record = self._run_new(unit, hook, remote)
        assert self.record.ok, self.record.error
        outcome = next(e for e in self.log(unit, 'call') if e['id'] == call_id)
        if 'error' in outcome:
            kind, message = outcome['error']
            error = getattr(builtins, kind, None)
            if isinstance(error, type) and issubclass(error, Exception):
                raise error(message)
            raise CallError(f'{kind}: {message}')
        return outcome['value']

    def schedule(self, unit, hook, method, args):
        """Script ``tls.<method>(*args)`` for the next ``hook`` on ``unit``; return its call id."""
        call_id = next(self._ids)
        settings = self._read_control(unit)
        settings['calls'].append({'id': call_id, 'hook': hook, 'method': method,
                                  'args': list(args)})
        self._write_control(unit, settings)
        return call_id

    # -- reading what happened -------------------------------------------------

    def log(self, unit, kind=None, record=None):
        """The unit's driver log entries (of ``kind``, of the hook of ``record``)."""
        path = self.charm_dir(unit) / LOG
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        if record is not None:
            context = f'{record.unit}-{record.hook}-{record.seq}'
            entries = [e for e in entries if e['context'] == context]
        return [e for e in entries if kind is None or e['kind'] == kind]

    def runs(self, unit, handler, record=None):
        """The logged runs of one of the driver's state handlers."""
        return [e for e in self.log(unit, 'handler', record) if e['handler'] == handler]

    def results(self, record):
        """Outcomes of the scripted calls made in the hook of ``record``."""
        return self.log(record.unit, 'call', record)

    def records(self, unit=None, since=0):
        """Hook records from ``history[since:]`` (of ``unit``)."""
        return [r for r in self.model.history[since:] if unit is None or r.unit == unit]

    def kv(self, unit):
        """The unit's unitdata that belongs to the layer (flags and framework keys left out)."""
        ours = {KV_CERT.format(unit), KV_STATE.format(self.model.relation)}
        return {key: value for key, value in self.model.kv(unit).items()
                if key in ours or key.startswith((KV_SERVER_CERT, KV_CA))}

    def cert(self, unit):
        """The unit's certificate as the layer stored it, or None."""
        return self.model.kv(unit).get(KV_CERT.format(unit))

    def flags(self, unit):
        """Which of the layer's three states are raised on ``unit``."""
        return self.model.flags(unit) & set(STATES)

    def key(self, unit):
        """The private key the unit's ``create`` handler (or ``rekey``) made last."""
        return serialization.load_pem_private_key(
            (self.charm_dir(unit) / KEY_FILE).read_bytes(), password=None)

    # -- changing a unit from the test -------------------------------------------

    def rekey(self, unit, hook='config-changed'):
        """Give ``unit`` a new key and publish a CSR for it from ``hook``; return the CSR."""
        key = pki.make_key()
        csr = pki.make_csr(key, unit)
        self.call(unit, 'set_csr', csr, hook=hook)
        (self.charm_dir(unit) / KEY_FILE).write_text(pki.key_pem(key))
        return csr

    def write_kv(self, unit, values):
        """Write the unit's unitdata between hooks (None deletes), as an
        earlier charm version (say, the original layer) left it, through
        charmhelpers' own ``unitdata.Storage``."""
        storage = unitdata.Storage(str(self.charm_dir(unit) / '.unit-state.db'))
        try:
            for key, value in values.items():
                if value is None:
                    storage.unset(key)
                else:
                    storage.set(key, value)
            storage.flush()
        finally:
            storage.close()
