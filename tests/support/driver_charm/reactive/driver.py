"""The driver charm's handlers: behaviour from driver.json, runs logged.

This is a consumer charm, so it names the layer's states as a charm author
writes them, literally (tests/support/driver.py says what it does)."""
import json
import os

import pki
from charmhelpers.core import hookenv
from charms.reactive import hook, remove_state, when
from charms.reactive.flags import get_flags
from charms.reactive.relations import endpoint_from_name
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def path(name):
    return os.path.join(hookenv.charm_dir(), name)


def control():
    with open(path('driver.json')) as handle:
        return json.load(handle)


def note(kind, **fields):
    fields.update(kind=kind, hook=hookenv.hook_name(), context=os.environ['JUJU_CONTEXT_ID'],
                  flags=sorted(get_flags()))
    with open(path('driver-log.jsonl'), 'a') as handle:
        handle.write(json.dumps(fields) + '\n')


def note_handler(name, tls):
    note('handler', handler=name, arg=type(tls).__name__, cert=tls.get_signed_cert(),
         ca=getattr(tls, 'get_ca', lambda: None)())  # the original layer has no get_ca


def test_ca():
    ca = control()['ca']
    key = serialization.load_pem_private_key(ca['key'].encode(), password=None)
    cert = x509.load_pem_x509_certificate(ca['cert'].encode())
    return pki.CA(key, cert, ca['cert'])


@hook('data-storage-attached',  # the store support/driver.py's storage=True declares
      'install', 'config-changed', 'start', 'update-status', 'leader-elected',
      'leader-settings-changed', 'upgrade-charm', 'stop',
      '{peers:tls}-relation-{created,joined,changed,departed}')
def scripted_calls(*relation):
    """Run the calls the test scripted for this hook, once. (charms.reactive
    passes relation hooks' handlers the relation object; it is fetched below
    for every hook alike.)"""
    settings = control()
    now = [c for c in settings['calls'] if c['hook'] == hookenv.hook_name()]
    if not now:
        return
    settings['calls'] = [c for c in settings['calls'] if c not in now]
    with open(path('driver.json'), 'w') as handle:
        json.dump(settings, handle)
    relation = hookenv.role_and_interface_to_relations('peers', 'tls')[0]
    tls = endpoint_from_name(relation)
    for call in now:
        try:
            value = getattr(tls, call['method'])(*call['args'])
        except Exception as error:
            note('call', id=call['id'], error=[type(error).__name__, str(error)])
        else:
            note('call', id=call['id'], value=value)


@when('create certificate signing request')
def create(tls):
    note_handler('create', tls)
    if control()['create'] and not (control()['original'] and hookenv.is_leader()):
        key = pki.make_key()
        with open(path('driver-key.pem'), 'w') as handle:
            handle.write(pki.key_pem(key))
        tls.set_csr(pki.make_csr(key, hookenv.local_unit()))


@when('sign certificate signing request')
def sign(tls):
    note_handler('sign', tls)
    if control()['sign']:
        ca = test_ca()
        if not control()['original']:
            tls.set_ca(ca.pem)
        pending = tls.get_csr_map()
        for unit, csr in sorted(pending.items()):
            tls.set_cert(unit, pki.sign(ca, csr))
        note('signed', units=sorted(pending))


@when('signed certificate available')
def available(tls):
    note_handler('available', tls)
    if control()['original'] or control().get('clear'):
        remove_state('signed certificate available')
    elif control()['sign'] and hookenv.is_leader():
        tls.set_ca(test_ca().pem)


@when('ca certificate available')
def ca_available(tls):
    note_handler('ca available', tls)
    if control().get('clear'):
        remove_state('ca certificate available')
