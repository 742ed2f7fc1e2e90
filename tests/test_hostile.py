"""Hostile and malformed relation data, in both directions.

Direction A: what reaches the leader as a follower's ``csr``. Direction B:
what reaches a follower as its certificate (``<unit>_signed_certificate``,
``<unit>_csr_sha256``) or as the CA (``ca``) in the leader's bag, or forged
in another peer's bag. The test writes the data as an operator (or a
compromised peer) would, with ``model.poke``, and lets the model settle.

Every bad input must end the same way: the receiving unit logs a WARNING
naming the unit and the key, raises no state, stores nothing (unitdata,
``get_csr_map``), keeps a certificate it already had, and its hook succeeds.
Positive controls check that odd but valid PEM (CRLF, blank lines, other
line lengths, a chain) is accepted.
"""
import base64
import hashlib
import json
import textwrap
from collections import namedtuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from driver import AVAILABLE, SIGN
from e2e import pki

LEADER, FOLLOWER, THIRD = 'drv/0', 'drv/1', 'drv/2'
CERT_KEY = f'{FOLLOWER}_signed_certificate'
DIGEST_KEY = f'{FOLLOWER}_csr_sha256'

#: What a bad value is made from: ``good`` is a valid PEM of the kind the key
#: carries, ``other`` a valid PEM of another kind, ``key`` a private key PEM.
Material = namedtuple('Material', 'good other key')


# -- PEM surgery --------------------------------------------------------------

def label(pem):
    return pem.strip().splitlines()[0][len('-----BEGIN '):-len('-----')]


def body(pem):
    return pem.strip().splitlines()[1:-1]


def der(pem):
    return base64.b64decode(''.join(body(pem)))


def armor(name, data, width=64):
    text = base64.b64encode(data).decode()
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    return '\n'.join([f'-----BEGIN {name}-----'] + lines + [f'-----END {name}-----']) + '\n'


def length_overflow(data):
    """The DER with its outer length claiming 4 GiB."""
    header = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    return data[:1] + b'\x84\xff\xff\xff\xff' + data[header:]


def with_line(pem, index, text):
    lines = pem.splitlines(True)
    return ''.join(lines[:index] + [text] + lines[index:])


def public_key_pem():
    return pki.make_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def traditional_key_pem():
    return pki.make_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()


#: Bad values, each made from the valid value of the key under attack. Every
#: class applies to a CSR (direction A), a certificate and a CA (direction B).
MALFORMED = {
    'whitespace only': lambda m: ' \n\t\n',
    'plain text': lambda m: 'please sign me',
    'truncated PEM': lambda m: m.good[:len(m.good) // 2],
    'missing END line': lambda m: m.good.strip().rsplit('\n', 1)[0] + '\n',
    'missing BEGIN line': lambda m: m.good.split('\n', 1)[1],
    'BEGIN and END labels differ': lambda m: m.good.replace(
        f'END {label(m.good)}', 'END PUBLIC KEY'),
    'lowercase armor': lambda m: m.good.replace('BEGIN', 'begin').replace('END', 'end'),
    'wrong PEM type': lambda m: m.other,
    'public key PEM': lambda m: public_key_pem(),
    'DER of the other kind under this label': lambda m: armor(label(m.good), der(m.other)),
    'bad base64': lambda m: with_line(m.good, 2, '****\n'),
    'base64 of garbage': lambda m: armor(label(m.good), b'not DER at all ' * 8),
    'truncated DER': lambda m: armor(label(m.good), der(m.good)[:-20]),
    'DER with trailing bytes': lambda m: armor(label(m.good), der(m.good) + b'\x00\x00'),
    'DER length overflow': lambda m: armor(label(m.good), length_overflow(der(m.good))),
    'empty PEM block': lambda m: armor(label(m.good), b''),
    'several PEM blocks': lambda m: m.good + m.other,
    'private key': lambda m: m.key,
    'private key after the PEM': lambda m: m.good + m.key,
    'private key in traditional format': lambda m: traditional_key_pem(),
    'megabyte of padding': lambda m: m.good + ' ' * 2 ** 20,
    'megabyte PEM block': lambda m: armor(label(m.good), der(m.good) + b'\x00' * 2 ** 20),
    'non-ASCII character': lambda m: with_line(m.good, 2, '\u00e9\n'),
    'PEM headers': lambda m: with_line(m.good, 1, 'Proc-Type: 4,ENCRYPTED\n'
                                                  'DEK-Info: AES-128-CBC,00000000\n\n'),
    'a boundary inside a line': lambda m: 'here: ' + m.good,
    'an unclosed block after the PEM': lambda m: m.good + '-----BEGIN CERTIFICATE-----\n',
    'a stray END line before the PEM': lambda m: f'-----END {label(m.good)}-----\n' + m.good,
    'NUL byte': lambda m: m.good + '\x00',
    'escape sequence in the text around it': lambda m: '\x1b[31m' + m.good,
    'JSON': lambda m: json.dumps({'pem': m.good}),
    'base64 without armor': lambda m: ''.join(body(m.good)),
    'hex DER': lambda m: der(m.good).hex(),
}

#: Odd but valid spellings of a PEM value: accepted, stored in normal form.
#: RFC 7468 section 5.2: text outside the encapsulation boundaries is
#: explanatory and ignored.
ODD_BUT_VALID = {
    'text around the PEM': lambda pem: 'Here it is:\n' + pem + 'Regards\n',
    'non-ASCII text around the PEM': lambda pem: 'Zertifikat f\u00fcr \u00e9t\u00e9:\n' + pem,
    'indented in YAML': lambda pem: 'pem: |\n' + textwrap.indent(pem, '  '),
    'legacy label': lambda pem: pem.replace('BEGIN ', 'BEGIN NEW ' if 'REQUEST' in pem else 'BEGIN X509 ')
                                   .replace('END ', 'END NEW ' if 'REQUEST' in pem else 'END X509 '),
    'CRLF line breaks': lambda pem: pem.replace('\n', '\r\n'),
    'extra blank lines': lambda pem: '\n\n' + with_line(pem, 1, '\n').replace(
        '\n-----END', '\n\n-----END') + '\n\n',
    'no trailing newline': lambda pem: pem.rstrip('\n'),
    'surrounding spaces': lambda pem: '  ' + pem + '  \t',
    'one-line base64': lambda pem: armor(label(pem), der(pem), width=10 ** 6),
    '76-column base64': lambda pem: armor(label(pem), der(pem), width=76),
}


def csr_digest(csr_pem):
    return hashlib.sha256(der(csr_pem)).hexdigest()


def public_key(cert_pem):
    return pki.public_der(x509.load_pem_x509_certificate(cert_pem.encode()).public_key())


# -- what every bad input must end with -----------------------------------------

def snapshot(drv, unit):
    return {'kv': drv.kv(unit), 'flags': drv.flags(unit), 'bag': drv.model.bag(unit)}


def warned(records, unit, key):
    """WARNING lines of ``records`` that name the unit and the key."""
    return [message for record in records for level, message in record.logs
            if level == 'WARNING' and f"'{key}'" in message and unit in message]


def assert_ignored(drv, since, victim, before, blamed=(), poked=None, nothing_spread=()):
    """The hooks since ``since`` succeeded; the victim's warned about each
    (unit, key) in ``blamed``, raised no state, changed nothing on the
    victim; no text in ``nothing_spread`` left the bag of ``poked``."""
    records = drv.records(since=since)
    assert records and all(record.ok for record in records), [r.error for r in records]
    mine = [record for record in records if record.unit == victim]
    assert mine, f'no hook ran on {victim}'
    for unit, key in blamed:
        assert warned(mine, unit, key), f'no WARNING naming {unit} and {key!r}'
    assert snapshot(drv, victim) == before
    assert not [r for r in mine if SIGN in r.flags or 'delivered' in str(r.logs)]
    assert not [r for r in mine if drv.runs(victim, 'sign', r)]
    for text in nothing_spread:
        assert text not in everywhere_else(drv, records, poked)


def everywhere_else(drv, records, poked):
    """Every place a poked value could be copied to, as one text: the bags
    of the units other than ``poked``, leader settings, all unit data, the
    driver logs, and the logs, output and writes of ``records``."""
    units = drv.model.units
    places = [drv.model.bag(unit) for unit in units if unit != poked]
    places += [drv.model.leader_settings] + [drv.model.kv(unit) for unit in units]
    places += [drv.log(unit) for unit in units]
    places += [(record.logs, record.output, record.relation_written) for record in records]
    return json.dumps(places)


def secrets(value):
    """The start of the body of a private key in ``value``: text that must
    never be republished anywhere."""
    if 'PRIVATE KEY' not in value:
        return []
    return [value.split('PRIVATE KEY-----', 1)[1].split()[0]]


# -- direction A: CSRs reaching the leader ----------------------------------------

@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_bad_csr_reaching_the_leader(make, case):
    drv = make(units=2)
    csr = drv.model.bag(FOLLOWER)['csr']
    value = MALFORMED[case](Material(csr, drv.ca.pem, pki.key_pem(pki.make_key())))
    before, follower_cert, since = snapshot(drv, LEADER), drv.cert(FOLLOWER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {'csr': value})
    drv.settle()
    assert_ignored(drv, since, LEADER, before, blamed=[(FOLLOWER, 'csr')], poked=FOLLOWER,
                   nothing_spread=secrets(value))
    assert drv.call(LEADER, 'get_csr_map') == {}
    assert drv.cert(FOLLOWER) == follower_cert
    assert drv.model.bag(LEADER)[CERT_KEY] == follower_cert


def test_forged_answer_reaching_the_leader(make):
    """A follower writes a certificate, digest and CA for the leader."""
    drv = make(units=2)
    evil = pki.make_ca('evil CA')
    leader_csr = drv.model.bag(LEADER)['csr']
    before, since = snapshot(drv, LEADER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {f'{LEADER}_signed_certificate': pki.sign(evil, leader_csr),
                              f'{LEADER}_csr_sha256': csr_digest(leader_csr), 'ca': evil.pem})
    drv.settle()
    assert_ignored(drv, since, LEADER, before, blamed=[
        (FOLLOWER, f'{LEADER}_signed_certificate'), (FOLLOWER, f'{LEADER}_csr_sha256'),
        (FOLLOWER, 'ca')])
    assert drv.call(LEADER, 'get_ca') == drv.ca.pem


def test_deleted_csr_changes_nothing_on_the_leader(make):
    """Juju deletes a key set to '': "empty" is a missing key."""
    drv = make(units=2)
    before, since = snapshot(drv, LEADER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {'csr': None})
    drv.settle()
    assert_ignored(drv, since, LEADER, before)
    assert drv.call(LEADER, 'get_csr_map') == {}


@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID))
def test_odd_but_valid_csr_is_signed(make, case):
    drv = make(units=1)
    drv.add_unit(create=False)
    drv.settle()
    key = pki.make_key()
    csr = pki.make_csr(key, FOLLOWER)
    drv.model.poke(FOLLOWER, {'csr': ODD_BUT_VALID[case](csr)})
    records = drv.settle()
    assert not [m for r in records for level, m in r.logs if level == 'WARNING']
    assert drv.model.bag(LEADER)[DIGEST_KEY] == csr_digest(csr)
    assert public_key(drv.cert(FOLLOWER)) == pki.public_der(key.public_key())
    assert drv.flags(FOLLOWER) == {AVAILABLE}
    assert drv.model.bag(FOLLOWER)['csr'] == csr


# -- direction B: certificates and CAs reaching a follower --------------------------

def follower_setup(make, holding):
    """Two units; the follower holds a certificate, or has only published its CSR."""
    drv = make(units=2, sign=holding)
    assert bool(drv.cert(FOLLOWER)) == holding
    return drv, drv.model.bag(FOLLOWER)['csr']


HOLDING = pytest.mark.parametrize('holding', [False, True], ids=['fresh', 'holding'])


@HOLDING
@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_bad_certificate_reaching_a_follower(make, case, holding):
    drv, csr = follower_setup(make, holding)
    value = MALFORMED[case](Material(pki.sign(drv.ca, csr), csr, pki.key_pem(pki.make_key())))
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(LEADER, {CERT_KEY: value, DIGEST_KEY: csr_digest(csr)})
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(LEADER, CERT_KEY)], poked=LEADER,
                   nothing_spread=secrets(value))


@HOLDING
@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_bad_ca_reaching_a_follower(make, case, holding):
    drv, csr = follower_setup(make, holding)
    value = MALFORMED[case](Material(pki.make_ca('new CA').pem, csr, pki.key_pem(pki.make_key())))
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(LEADER, {'ca': value})
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(LEADER, 'ca')], poked=LEADER,
                   nothing_spread=secrets(value))


def other_csr():
    return pki.make_csr(pki.make_key(), THIRD)


NO_DIGEST = "original layer's format (no digest)"

#: Well-formed answers that do not answer the follower's current CSR:
#: (certificate, digest) made from the test CA and the follower's CSR.
WRONG_ANSWERS = {
    "another unit's certificate": lambda ca, csr: (pki.sign(ca, other_csr()), csr_digest(csr)),
    "certificate for another key, digest matches": lambda ca, csr: (
        pki.sign(ca, csr, public_key=pki.make_key().public_key()), csr_digest(csr)),
    'digest of another CSR': lambda ca, csr: (pki.sign(ca, csr), csr_digest(other_csr())),
    'digest not hex': lambda ca, csr: (pki.sign(ca, csr), 'sha256:please-trust-me'),
    NO_DIGEST: lambda ca, csr: (pki.sign(ca, csr), None),
    'digest without certificate': lambda ca, csr: (None, csr_digest(csr)),
}
# The key each WRONG_ANSWERS case must be blamed on: the digest when it is the
# digest that does not fit, else the certificate.
BLAMED_ON_DIGEST = {'digest of another CSR', 'digest not hex', 'digest without certificate'}

@HOLDING
@pytest.mark.parametrize('case', sorted(WRONG_ANSWERS))
def test_wrong_answer_reaching_a_follower(make, case, holding):
    drv, csr = follower_setup(make, holding)
    cert, digest = WRONG_ANSWERS[case](drv.ca, csr)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(LEADER, {CERT_KEY: cert, DIGEST_KEY: digest})
    drv.settle()
    blamed = DIGEST_KEY if case in BLAMED_ON_DIGEST else CERT_KEY
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(LEADER, blamed)])


@HOLDING
def test_forged_answer_from_a_non_leader_reaching_a_follower(make, holding):
    drv = make(units=3, sign=holding)
    csr = drv.model.bag(FOLLOWER)['csr']
    evil = pki.make_ca('evil CA')
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(THIRD, {CERT_KEY: pki.sign(evil, csr), DIGEST_KEY: csr_digest(csr),
                           'ca': evil.pem})
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before,
                   blamed=[(THIRD, CERT_KEY), (THIRD, DIGEST_KEY), (THIRD, 'ca')])


UNEXPECTED_NAMES = ['drv/99_signed_certificate', f'../{CERT_KEY}', f'{FOLLOWER}/../{CERT_KEY}',
                    f'{CERT_KEY}.bak', f' {CERT_KEY}', CERT_KEY.upper(), 'signed_certificate']


@pytest.mark.parametrize('key', UNEXPECTED_NAMES)
def test_keys_with_unexpected_unit_names_are_ignored(make, key):
    """No unit reads a key that is not its own, so there is nothing to warn
    about; the leader drops such a key from its bag when it looks like one
    of the layer's."""
    drv, csr = follower_setup(make, holding=False)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(LEADER, {key: pki.sign(drv.ca, csr), 'drv/99_csr_sha256': csr_digest(csr)})
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before)
    drv.run(LEADER, 'update-status')
    assert 'drv/99_csr_sha256' not in drv.model.bag(LEADER)
    assert (key in drv.model.bag(LEADER)) == (not key.endswith('_signed_certificate'))


@pytest.mark.parametrize('key', [CERT_KEY, DIGEST_KEY, 'ca'])
def test_deleted_answer_changes_nothing_on_a_follower(make, key):
    """Juju deletes a key set to '': "empty" is a missing key."""
    drv, _ = follower_setup(make, holding=True)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(LEADER, {key: None})
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before)


@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID) + ['chain'])
def test_odd_but_valid_certificate_and_ca_are_accepted(make, case):
    drv, csr = follower_setup(make, holding=False)
    cert = pki.sign(drv.ca, csr)
    if case == 'chain':
        sent_cert, sent_ca, cert = cert + drv.ca.pem, drv.ca.pem, cert + drv.ca.pem
    else:
        sent_cert, sent_ca = ODD_BUT_VALID[case](cert), ODD_BUT_VALID[case](drv.ca.pem)
    drv.model.poke(LEADER, {CERT_KEY: sent_cert, DIGEST_KEY: csr_digest(csr), 'ca': sent_ca})
    records = drv.settle()
    assert not [m for r in records for level, m in r.logs if level == 'WARNING']
    assert drv.cert(FOLLOWER) == cert
    assert drv.call(FOLLOWER, 'get_ca') == drv.ca.pem
    assert drv.flags(FOLLOWER) == {AVAILABLE}
