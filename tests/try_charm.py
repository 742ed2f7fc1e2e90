"""Try a built charm that uses interface:tls on jujusim (``tox -e try -- CHARM --units 3``).

Deploys the charm on jujusim (the project's Juju simulator, with its default
rules: Juju 3, a process per hook, the settings cache, self-notification),
settles, and prints per unit the certificate the layer delivered to it (its
subject, SANs, issuer and validity), whether it chains to the CA the unit
trusts, whether a private key in the unit's files is the certificate's key,
and a mutual-TLS handshake between every two units, both ways.

What it reads, for any charm: the certificate and the CA from the unit's
unitdata, where the layer keeps them (``get_signed_cert()``, ``get_ca()``);
the private key from the unit's files (the layer never sees it): its charm
directory, and the directories of the config options whose default is an
absolute path, which the tool points into its work directory because every
unit runs on this one machine (a charm that writes to a fixed path would
write there on this machine, every unit to the same file). A charm that
never calls ``set_ca`` leaves ``get_ca()`` empty; then the unit trusts the CA
certificates in its files. A leader the layer delivered no certificate to
(easyrsa-example's issues its own) holds the newest certificate in its files
for a key in its files. The hooks run with the ``python3`` next to the
tool's (tox's env): it must have what the charm's wheelhouse.txt lists.

Options, each followed by the same checks:

* ``--rekey``: delete the private key file of one follower (the one holding
  the key of its certificate, as an operator would after a compromise), run
  update-status on it and settle: the unit must end with a new key and a
  certificate for it. A charm that does not notice its key is gone fails.
  ``--rekey KEY=VALUE`` sets a config option the charm re-keys every unit on
  instead (tls-example and easyrsa-example: ``key-generation=1``); every
  unit must end certified for a new key. (Put the charm's path first.)
* ``--rotate-ca KEY=VALUE``: set a config option the charm makes a new CA
  from (tls-example: ``ca-generation=1``) and run the hooks that follow one
  at a time, with mTLS between every two units after each: none may fail
  (the layer keeps both CAs trusted through a routine rotation), and every
  certificate must end issued by a CA other than the one before.
* ``--advance-days N``: move the hooks' clock N days ahead, run update-status
  on every unit and settle: every certificate must be valid then (renewed if
  it was due).

Exits 0 when every check passed, 1 with a last line ``FAIL: <reason>`` when
one did not, 2 when the charm cannot be tried here. ``--keep DIR`` runs in
DIR and keeps it: the units' charm directories and files, and the files the
handshakes used.
"""
import argparse
import contextlib
import datetime
import itertools
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

# Run as a script, without pytest's conftest.py: tests/ and the checkout on
# sys.path as conftest.py puts them, ``support`` first (it patches charmhelpers).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
warnings.filterwarnings('ignore', message='pkg_resources is deprecated')

import yaml  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from support import pki  # noqa: E402
from support.jujusim import Model  # noqa: E402
from support.jujusim.model import JujuSimError  # noqa: E402

from peers import KV_CA, KV_CERT  # noqa: E402

# Never a unit's own files: the charm's code and the unit's database.
NOT_FILES = {'hooks', 'lib', 'reactive', 'wheelhouse', '.unit-state.db', '__pycache__'}
MAX_FILE = 1 << 20  # bytes; bigger files are not PEM a charm writes
LOUD = ('WARNING', 'ERROR', 'CRITICAL')
MAX_HOOKS = 10000  # a phase that runs more does not settle


class Unusable(Exception):
    """The charm cannot be tried here (exit 2)."""


def main(argv=None):
    args = parse(argv)
    try:
        charm, relation = inspect(args.charm, args.relation)
    except Unusable as error:
        print(f'FAIL: {error}')
        return 2
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep.resolve()
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='try-charm-')))
        model = stack.enter_context(Model(str(charm), relation, executor='subprocess',
                                          workdir=str(workdir)))
        trial = Trial(model, Path(model.workdir))
        try:
            later = [s for s in (args.rotate_ca, args.rekey) if isinstance(s, str)]
            trial.configure(args.config, later=later)
            failures = trial.play(args)
        except Unusable as error:
            print(f'FAIL: {error}')
            return 2
        if args.keep:
            print(f'\nKept in {model.workdir}: unit-*/charm (the units), files/ (the path '
                  'options), handshake/ (the files the handshakes used)')
    if failures:
        more = f' (and {len(failures) - 1} more, above)' if len(failures) > 1 else ''
        print(f'FAIL: {failures[0]}{more}')
        return 1
    units = len(model.units)
    print(f'OK: {units} unit{"s" if units != 1 else ""}, every check passed')
    return 0


def parse(argv):
    parser = argparse.ArgumentParser(prog='tox -e try --', description=__doc__.split('\n\n')[0])
    parser.add_argument('charm', type=Path, help='a built charm directory (charm-build output)')
    parser.add_argument('--units', type=int, default=3, help='units to deploy (default 3)')
    parser.add_argument('--relation', help='the peer relation of interface tls, if several')
    parser.add_argument('--config', action='append', default=[], metavar='KEY=VALUE',
                        help='set a config option before deploying (repeatable)')
    parser.add_argument('--rekey', nargs='?', const=True, metavar='KEY=VALUE',
                        help="delete a follower's key file, or set the config option the charm "
                        're-keys every unit on; each must get a new key certified')
    parser.add_argument('--rotate-ca', metavar='KEY=VALUE',
                        help='set the config option the charm makes a new CA from')
    parser.add_argument('--advance-days', type=float, metavar='N',
                        help='move the clock N days ahead and run update-status')
    parser.add_argument('--keep', type=Path, metavar='DIR', help='work in DIR and keep it')
    args = parser.parse_args(argv)
    if args.units < 1:
        parser.error('--units must be at least 1')
    return args


def inspect(charm, relation):
    """(charm dir, peer relation name), or Unusable saying why not."""
    charm = charm.resolve()
    metadata = charm / 'metadata.yaml'
    if not metadata.is_file():
        raise Unusable(f'{charm} is not a built charm: it has no metadata.yaml')
    if not (charm / 'hooks' / 'install').is_file():
        raise Unusable(f'{charm} has no hooks/install: build the layer with charm-build first')
    peers = {name: spec for name, spec in (yaml.safe_load(metadata.read_text()).get('peers')
                                          or {}).items() if (spec or {}).get('interface') == 'tls'}
    if relation is None and len(peers) != 1:
        raise Unusable(f'{charm}/metadata.yaml has {len(peers)} peer relations of interface tls '
                       f'({", ".join(sorted(peers)) or "none"}); name one with --relation')
    relation = relation or next(iter(peers))
    if relation not in peers:
        raise Unusable(f'{relation} is no peer relation of interface tls in {metadata}')
    if (charm / 'lib' / 'charms' / 'layer' / 'basic.py').is_file():
        raise Unusable('the charm is built with layer:basic, whose hooks install packages with '
                       'apt and pip on the machine they run on: build it with a '
                       'hooks/hook.template instead, as examples/minimal is')
    shebang = (charm / 'hooks' / 'install').read_text(errors='replace').split('\n', 1)[0]
    if 'python' in shebang and 'env python' not in shebang:
        print(f'note: the hooks start with {shebang!r}, not /usr/bin/env python3: they run with '
              f'that Python, not {sys.executable}')
    missing = missing_requirements(charm / 'wheelhouse.txt')
    if missing:
        raise Unusable(f'the hooks run with {sys.executable}, which lacks {", ".join(missing)} '
                       "from the charm's wheelhouse.txt: pip install it there")
    return charm, relation


def missing_requirements(wheelhouse):
    """The distributions ``wheelhouse`` names that this Python does not have."""
    from importlib.metadata import PackageNotFoundError, version
    missing = []
    lines = wheelhouse.read_text().splitlines() if wheelhouse.is_file() else []
    for line in lines:
        spec = line.split('#')[0].strip()
        if not spec or spec.startswith('-'):
            continue
        name = re.split(r'[\s<>=!~;\[@]', spec)[0]
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    return missing


class Trial:
    """A model of the charm, and what the tool checks and prints about it."""

    def __init__(self, model, workdir):
        self.model = model
        self.workdir = workdir
        self.path_options = {}  # option -> the directory it points to here
        self.failures = []
        self.seen = 0  # hook records already reported
        self.loud = 0  # distinct lines logged at WARNING or above

    def configure(self, settings, later=()):
        """Point the path options into the work directory, then set
        ``settings``; check the ``later`` ones now, before any hook runs."""
        m = self.model
        for setting in later:
            self.typed(setting)
        for option, spec in sorted(m._options.items()):
            default = (spec or {}).get('default')
            if (spec or {}).get('type', 'string') == 'string' and isinstance(default, str) \
                    and default.startswith('/'):
                self.path_options[option] = self.workdir / 'files' / option
                print(f'config {option} = {self.path_options[option]} (default {default}: '
                      'every unit runs on this machine)')
        m.set_config(**{option: str(path) for option, path in self.path_options.items()})
        for setting in settings:
            self.set_config(setting)

    def set_config(self, setting):
        key, typed = self.typed(setting)
        if key in self.path_options:
            self.path_options[key] = Path(typed)
        self.model.set_config(**{key: typed})
        print(f'config {key} = {typed!r}')

    def typed(self, setting):
        """(option, value of its type) from KEY=VALUE; Unusable if it is none."""
        key, value = parse_setting(setting)
        options = self.model._options
        if key not in options:
            raise Unusable(f'{key} is not a config option of the charm '
                           f'(it has {", ".join(sorted(options)) or "none"})')
        kind = (options[key] or {}).get('type', 'string')
        try:
            typed = {'int': int, 'float': float, 'boolean': parse_bool}.get(kind, str)(value)
        except ValueError:
            raise Unusable(f'{key} is an option of type {kind}, not {value!r}') from None
        return key, typed

    def play(self, args):
        m = self.model
        print(f'Deploying {args.units} units of {m.app} on jujusim (Juju {m.juju}), '
              f'relation {m.relation}, in {self.workdir} ...')
        for _ in range(args.units):
            m.add_unit()
        if not self.settle('deploy'):
            return self.failures
        certs = self.check('deployed')
        if args.rekey and not self.failures:
            self.rekey(certs, args.rekey)
        if args.rotate_ca and not self.failures:
            self.rotate(args.rotate_ca)
        if args.advance_days and not self.failures:
            self.advance(args.advance_days)
        return self.failures

    # -- phases ---------------------------------------------------------------

    def settle(self, phase, after_each=None):
        """Settle, calling ``after_each(record)`` after every hook if given;
        report the hooks that failed or logged loudly. False if it could not."""
        m = self.model
        started = time.monotonic()
        try:
            if after_each is None:
                m.settle()
            for _ in range(MAX_HOOKS if after_each else 0):
                if not m.pending():
                    break
                record = m.run(m.pending()[0][0])
                if record is not None:
                    after_each(record)
            if m.pending():
                raise JujuSimError(f'{MAX_HOOKS} hooks ran and hooks are still queued')
        except JujuSimError as error:
            self.fail(f'{phase}: {str(error).splitlines()[0]}')
            record = getattr(error, 'record', None)
            if record is not None:
                print(record.error or record.output)
            return False
        records = m.history[self.seen:]
        self.seen = len(m.history)
        print(f'{phase}: {len(records)} hooks in {time.monotonic() - started:.1f} s, leader '
              f'{m.leader}')
        loud = {}  # (unit, level, message) -> hooks that logged it
        for record in records:
            if not record.ok:
                lines = record.error.strip().splitlines()
                self.fail(f'{record.unit} {record.hook} failed (attempt {record.attempt}): '
                          f'{lines[-1] if lines else "?"}')
            for level, message in record.logs:
                if level in LOUD:
                    loud.setdefault((record.unit, level, message), []).append(record.hook)
        for (unit, level, message), hooks in loud.items():
            times = f' in {len(hooks)} hooks' if len(hooks) > 1 else f' in {hooks[0]}'
            print(f'  {unit} logged {level}{times}: {message}')
        self.loud += len(loud)
        return True

    def rekey(self, before, setting):
        """Without ``setting``, delete a follower's key file and run
        update-status on it; with one (KEY=VALUE), set that config option.
        Either way the units re-keyed must end certified for a new key."""
        m = self.model
        if setting is True:
            unit = next((u for u in m.units if u != m.leader), m.leader)
            key_path = unit in before and self.key_file(unit, before[unit])
            if not key_path:
                return self.fail(f'--rekey: no key file of {unit} to delete')
            print(f'\n--rekey: deleting {self.show(key_path)}, then update-status on {unit}')
            key_path.unlink()
            m.queue(unit, 'update-status')
            rekeyed, how = [unit], f'after its key file {self.show(key_path)} was deleted'
        else:
            print(f'\n--rekey {setting}')
            self.set_config(setting)
            rekeyed, how = list(before), f'after {setting}'
        if self.settle('rekey'):
            after = self.check('after --rekey')
            for unit in rekeyed:
                if unit in after and same_key(after[unit], before[unit]):
                    self.fail(f'--rekey: {unit} is still certified for its old key {how}: '
                              'the charm did not make a new key and ask for it')

    def rotate(self, setting):
        before = {unit: self.trusted(unit)[0] for unit in self.model.units}
        print(f'\n--rotate-ca {setting}: the hooks one at a time, mTLS between every two '
              'units after each')
        self.set_config(setting)
        handshakes, broken = [0], []

        def shake(record):
            now = self.now()
            ready = [unit for unit in self.model.units if self.prepare(unit)]
            for server, client in itertools.permutations(ready, 2):
                handshakes[0] += 1
                try:
                    pki.mtls_handshake(self.workdir / 'handshake', server, client,
                                       server_hostname=server_name(self.held_cert(server), server),
                                       at=now)
                except (pki.HandshakeError, OSError, ValueError) as error:
                    broken.append(f'after hook {record.seq} ({record.unit} {record.hook}): '
                                  f'{str(error).splitlines()[0]}')
        if not self.settle('rotate', after_each=shake):
            return
        print(f'  {handshakes[0]} handshakes during the rotation, {len(broken)} failed')
        if broken:
            self.fail(f'--rotate-ca broke {len(broken)} handshakes, first {broken[0]}')
        after = self.check('after --rotate-ca')
        for unit, cert in after.items():
            old = [ca for ca in before.get(unit) or [] if issued(cert, ca)]
            if old:
                self.fail(f'--rotate-ca: the certificate of {unit} is still issued by '
                          f'{describe(old[0])}, a CA it trusted before the rotation')

    def advance(self, days):
        m = self.model
        m.advance_clock(days=days)
        print(f'\n--advance-days {days:g}: the hooks now live at {self.now():%Y-%m-%d %H:%M} UTC; '
              'update-status on every unit')
        held = self.certificates()
        for unit in m.units:
            m.queue(unit, 'update-status')
        if self.settle('advance'):
            after = self.check(f'{days:g} days later')
            renewed = [u for u in after if held.get(u) != after[u]]
            print(f'renewed: {", ".join(renewed) or "none"}')

    # -- checks ---------------------------------------------------------------

    def check(self, phase):
        """Print and check every unit, then every handshake; return {unit: certificate}."""
        m = self.model
        now = self.now()
        print(f'\n{phase} (checked at {now:%Y-%m-%d %H:%M} UTC)')
        certs, ready = {}, []
        for unit in m.units:
            print(f'  {unit}{" (leader)" if unit == m.leader else ""}')
            if self.check_unit(unit, now, certs):
                ready.append(unit)
        # A lone unit shakes hands with itself, as a service talking to itself would.
        pairs = list(itertools.permutations(ready, 2)) or [(unit, unit) for unit in ready]
        for server, client in pairs:
            try:
                hostname = server_name(certs[server], server)
                result = pki.mtls_handshake(self.workdir / 'handshake', server, client,
                                            server_hostname=hostname, at=now)
                print(f'  mTLS {server} (as {hostname}) <- {client}: ok, {result["version"]}')
            except (pki.HandshakeError, OSError, ValueError) as error:
                self.fail(str(error).splitlines()[0])
        if not pairs:
            print('  mTLS: no unit to try it with')
        return certs

    def check_unit(self, unit, now, certs):
        """Print and check one unit; write its handshake files. True if it has them."""
        pem, source = self.held(unit)
        if not pem:
            state, message = self.model.status(unit)
            logged = f'; {self.loud} lines logged at WARNING or above' if self.loud else ''
            return self.fail(f'{unit} has no certificate (its status: {state} {message!r}{logged})')
        chain = x509.load_pem_x509_certificates(pem.encode())
        cert = certs[unit] = chain[0]
        before, after = pki.validity(cert)
        names = ', '.join(str(n) for n in pki.sans(cert)) or 'none'
        print(f'    held     {source}')
        print(f'    subject  {cert.subject.rfc4514_string()}   SANs: {names}')
        print(f'    issuer   {cert.issuer.rfc4514_string()}')
        print(f'    valid    {before:%Y-%m-%d %H:%M} .. {after:%Y-%m-%d %H:%M} UTC')
        ok = True
        if not before <= now <= after:
            ok = self.fail(f'{unit}: its certificate is not valid at {now:%Y-%m-%d %H:%M} UTC')
        cas, source = self.trusted(unit)
        anchor = chains_to(chain, cas)
        print(f'    trusts   {source}: ' + ('; '.join(describe(ca) for ca in cas) or 'nothing'))
        if anchor is None:
            ok = self.fail(f'{unit}: its certificate does not chain to the CA it trusts ({source})')
        else:
            print(f'    chains   to {describe(anchor)}: yes')
        key_path = self.key_file(unit, cert)
        if key_path is None:
            return self.fail(f"{unit}: no private key in its files is its certificate's key "
                             f'(looked in {", ".join(self.show(p) for p in self.roots(unit))})')
        print(f'    key      {self.show(key_path)}: matches the certificate')
        installed = [self.show(p) for p, _, found in self.pem_files(unit)
                     if any(c == cert for c in found)]
        if len(installed) > 2:
            installed[2:] = [f'{len(installed) - 2} more']
        print(f'    files    certificate in {", ".join(installed) or "no file of the unit"}; '
              f'{"names" if names_unit(cert, unit) else "does NOT name"} the unit')
        if ok and cas:
            pki.write_unit(self.workdir / 'handshake', unit, load_key(key_path), pem,
                           ''.join(text(ca) for ca in cas))
        return ok and bool(cas)

    def prepare(self, unit):
        """Write ``unit``'s handshake files quietly, from what it holds now;
        False if it lacks a certificate, its key or a CA."""
        pem = self.held(unit)[0]
        cert = pem and x509.load_pem_x509_certificate(pem.encode())
        key_path = cert and self.key_file(unit, cert)
        cas = self.trusted(unit)[0]
        if not (key_path and cas):
            return False
        pki.write_unit(self.workdir / 'handshake', unit, load_key(key_path), pem,
                       ''.join(text(ca) for ca in cas))
        return True

    def held_cert(self, unit):
        return x509.load_pem_x509_certificate(self.held(unit)[0].encode())

    def held(self, unit):
        """(PEM of the certificate ``unit`` holds, where it comes from): the
        layer's (get_signed_cert()); on a leader the layer delivered none to
        (easyrsa-example's issues its own without the relation), the newest
        certificate in its files for a key in its files; else (None, None)."""
        pem = self.model.kv(unit).get(KV_CERT.format(unit))
        if pem:
            return pem, 'from the layer (get_signed_cert())'
        if unit != self.model.leader:
            return None, None
        keys = {pki.public_der(k.public_key()) for _, found, _ in self.pem_files(unit)
                for k in found}
        own = [c for _, _, found in self.pem_files(unit) for c in found
               if not is_ca(c) and pki.public_der(c.public_key()) in keys]
        if not own:
            return None, None
        newest = max(own, key=lambda c: pki.validity(c)[0])
        return text(newest), ('from its files: the layer delivered none to this leader, '
                              'which issued its own')

    def trusted(self, unit):
        """(the CA certificates ``unit`` trusts, where they come from)."""
        ca_pem = self.model.kv(unit).get(KV_CA)
        if ca_pem:
            return x509.load_pem_x509_certificates(ca_pem.encode()), 'get_ca()'
        cas = []
        for _, _, found in self.pem_files(unit):
            cas += [c for c in found if is_ca(c) and c not in cas]
        return cas, 'get_ca() is None (no set_ca); the CA certificates in its files'

    def key_file(self, unit, cert):
        """The file in ``unit``'s files holding the private key of ``cert``, or None."""
        want = pki.public_der(cert.public_key())
        for path, keys, _ in self.pem_files(unit):
            if any(pki.public_der(key.public_key()) == want for key in keys):
                return path
        return None

    def roots(self, unit):
        """Where ``unit``'s files are: its charm directory, and in each path
        option's directory its own subdirectory (<app>-<n>) if there is one."""
        roots = [Path(self.model._unit(unit).charm_dir)]
        for path in self.path_options.values():
            own = path / unit.replace('/', '-')
            roots.append(own if own.is_dir() else path)
        return roots

    def pem_files(self, unit):
        """(path, private keys, certificates) of each PEM file among ``unit``'s files."""
        for root in self.roots(unit):
            for directory, dirs, files in os.walk(str(root)):
                if Path(directory) == root:
                    dirs[:] = [d for d in dirs if d not in NOT_FILES]
                for name in sorted(files):
                    path = Path(directory) / name
                    if name in NOT_FILES or not path.is_file() or path.stat().st_size > MAX_FILE:
                        continue
                    data = path.read_bytes()
                    if b'-----BEGIN' in data:
                        yield path, private_keys(data), certificates(data)

    def certificates(self):
        held = {unit: self.held(unit)[0] for unit in self.model.units}
        return {unit: x509.load_pem_x509_certificate(pem.encode())
                for unit, pem in held.items() if pem}

    def show(self, path):
        """``path`` relative to the model's directory, where it is under it."""
        with contextlib.suppress(ValueError):
            return str(Path(path).relative_to(self.workdir))
        return str(path)

    def now(self):
        return pki.utc_now() + datetime.timedelta(seconds=self.model.clock_offset)

    def fail(self, reason):
        print(f'  FAIL {reason}')
        self.failures.append(reason)
        return False


# -- helpers ---------------------------------------------------------------------

def parse_setting(setting):
    key, sep, value = setting.partition('=')
    if not sep or not key:
        raise Unusable(f'{setting!r} is not KEY=VALUE')
    return key, value


def parse_bool(value):
    if value.lower() in ('true', 'yes', '1'):
        return True
    if value.lower() in ('false', 'no', '0'):
        return False
    raise ValueError(value)


BLOCK = re.compile(rb'-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----', re.S)


def private_keys(data):
    keys = []
    for block in BLOCK.finditer(data):
        if block.group(1).endswith(b'PRIVATE KEY'):
            with contextlib.suppress(ValueError, TypeError):
                keys.append(serialization.load_pem_private_key(block.group(0), None))
    return keys


def certificates(data):
    found = []
    for block in BLOCK.finditer(data):
        if block.group(1) == b'CERTIFICATE':
            with contextlib.suppress(ValueError):
                found.append(x509.load_pem_x509_certificate(block.group(0)))
    return found


def load_key(path):
    return private_keys(path.read_bytes())[0]


def is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def issued(cert, ca):
    return cert.issuer == ca.subject and pki.verify_signature(ca, cert)


def chains_to(chain, cas):
    """The CA of ``cas`` that the leaf of ``chain`` chains to (through the
    rest of ``chain``), or None."""
    current = chain[0]
    for _ in range(len(chain)):
        anchor = next((ca for ca in cas if issued(current, ca)), None)
        if anchor is not None:
            return anchor
        current = next((c for c in chain[1:] if issued(current, c)), None)
        if current is None:
            return None
    return None


def same_key(cert, other):
    return pki.public_der(cert.public_key()) == pki.public_der(other.public_key())


def names_unit(cert, unit):
    names = [a.value for a in cert.subject] + [str(n) for n in pki.sans(cert)]
    return unit in names or unit.replace('/', '-') in names


def server_name(cert, unit):
    """The name the handshake's client checks: the unit's <app>-<n> if the
    certificate has it, else its first DNS or IP SAN."""
    dns, ips = pki.sans(cert, x509.DNSName), pki.sans(cert, x509.IPAddress)
    if unit.replace('/', '-') in dns:
        return unit.replace('/', '-')
    if dns or ips:
        return str((dns or ips)[0])
    raise ValueError(f'mTLS with {unit} as server: its certificate has no DNS or IP SAN')


def describe(ca):
    """A CA's subject and the start of its SHA-256 fingerprint: a new CA
    often has the subject of the old one."""
    return f'{ca.subject.rfc4514_string()} [{ca.fingerprint(hashes.SHA256()).hex()[:12]}]'


def text(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


if __name__ == '__main__':
    sys.exit(main())
