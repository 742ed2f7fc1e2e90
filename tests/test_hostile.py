"""Hostile and malformed relation data, in both directions.

Direction A: what reaches the leader as a follower's ``csr``. Direction B:
what reaches a follower as its certificate (``<unit>_signed_certificate``,
``<unit>_csr_sha256``) or as the CA (``ca``) in the application bag, where
only the leader writes them; and the same keys forged in a unit's own bag
(another peer's, a follower's copy of the application bag, the original
layer's leader's), which no unit ever takes answers from. The test writes
the data as an operator (or a compromised peer) would, with ``model.poke``
and ``model.poke_app``, and runs the hooks that queues on the units.

Every bad input must end the same way: the receiving unit logs a WARNING
naming the writer (a unit, or ``the application bag``) and the key, raises
no state, stores nothing (unitdata, ``get_csr_map``), keeps a certificate it
already had, and its hook succeeds. Positive controls check that odd but
valid PEM (CRLF, blank lines, other line lengths, a chain) is accepted.
"""
import base64
import json
import textwrap
from collections import namedtuple

import pytest
from cryptography.hazmat.primitives import serialization
from support import pki
from support.hostile import (
    APP_BAG,
    CERT_KEY,
    DIGEST_KEY,
    FOLLOWER,
    LEADER,
    THIRD,
    armor,
    assert_ignored,
    poke_app,
    secrets,
    snapshot,
    warned,
)
from support.pki import csr_digest, public_key

import peers
from peers import CERT_AVAILABLE, SIGN_CSR

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


# -- direction A: CSRs reaching the leader ----------------------------------------

@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_bad_csr_reaching_the_leader(make, case):
    drv = make(units=2)
    csr = drv.model.bag(FOLLOWER)[peers.CSR_KEY]
    value = MALFORMED[case](Material(csr, drv.ca.pem, pki.key_pem(pki.make_key())))
    before, follower_cert, since = snapshot(drv, LEADER), drv.cert(FOLLOWER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {peers.CSR_KEY: value})
    drv.settle()
    assert_ignored(drv, since, LEADER, before, blamed=[(FOLLOWER, peers.CSR_KEY)], poked=FOLLOWER,
                   nothing_spread=secrets(value))
    assert drv.call(LEADER, 'get_csr_map') == {}
    assert drv.cert(FOLLOWER) == follower_cert
    assert drv.model.app_bag()[CERT_KEY] == follower_cert


def test_forged_answer_reaching_the_leader(make):
    """A follower writes a certificate, digest and CA for the leader in its own bag."""
    drv = make(units=2)
    evil = pki.make_ca('evil CA')
    leader_csr = drv.model.bag(LEADER)[peers.CSR_KEY]
    forged = {peers.CERT_KEY.format(LEADER): pki.sign(evil, leader_csr),
              peers.CSR_DIGEST_KEY.format(LEADER): csr_digest(leader_csr), peers.CA_KEY: evil.pem}
    before, since = snapshot(drv, LEADER), len(drv.model.history)
    drv.model.poke(FOLLOWER, forged)
    drv.settle()
    assert_ignored(drv, since, LEADER, before, blamed=[(FOLLOWER, key) for key in forged])
    assert drv.call(LEADER, 'get_ca') == drv.ca.pem


def test_deleted_csr_changes_nothing_on_the_leader(make):
    """Juju deletes a key set to '': "empty" is a missing key."""
    drv = make(units=2)
    before, since = snapshot(drv, LEADER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {peers.CSR_KEY: None})
    drv.settle()
    assert_ignored(drv, since, LEADER, before)
    assert drv.call(LEADER, 'get_csr_map') == {}


def poke_odd_csr(make, case):
    """Two units; the follower makes no CSR of its own and an operator
    writes one in its bag, spelt as ODD_BUT_VALID[case]. Returns the driver,
    the CSR's key, the CSR in normal form and the records of the hooks that
    follow."""
    drv = make(units=1)
    drv.add_unit(create=False)
    drv.settle()
    key = pki.make_key()
    csr = pki.make_csr(key, FOLLOWER)
    drv.model.poke(FOLLOWER, {peers.CSR_KEY: ODD_BUT_VALID[case](csr)})
    return drv, key, csr, drv.settle()


@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID))
def test_odd_but_valid_csr_is_signed(make, case):
    drv, key, csr, records = poke_odd_csr(make, case)
    assert not [m for r in records for level, m in r.logs if level == 'WARNING']
    assert drv.model.app_bag()[DIGEST_KEY] == csr_digest(csr)
    assert public_key(drv.cert(FOLLOWER)) == pki.public_der(key.public_key())
    assert drv.flags(FOLLOWER) == {CERT_AVAILABLE}


@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID))
def test_an_adopted_odd_csr_is_republished_in_normal_form(make, case):
    """The follower adopts the CSR it finds in its bag and, as with every
    value the layer publishes, publishes it in normal form."""
    drv, _, csr, _ = poke_odd_csr(make, case)
    assert drv.model.bag(FOLLOWER)[peers.CSR_KEY] == csr


# -- direction B: certificates and CAs reaching a follower --------------------------

def follower_setup(make, holding):
    """Two units; the follower holds a certificate, or has only published its CSR."""
    drv = make(units=2, sign=holding)
    assert bool(drv.cert(FOLLOWER)) == holding
    return drv, drv.model.bag(FOLLOWER)[peers.CSR_KEY]


HOLDING = pytest.mark.parametrize('holding', [False, True], ids=['fresh', 'holding'])


@HOLDING
@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_bad_certificate_reaching_a_follower(make, case, holding):
    drv, csr = follower_setup(make, holding)
    value = MALFORMED[case](Material(pki.sign(drv.ca, csr), csr, pki.key_pem(pki.make_key())))
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    poke_app(drv, {CERT_KEY: value, DIGEST_KEY: csr_digest(csr)})
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(APP_BAG, CERT_KEY)], poked=APP_BAG,
                   nothing_spread=secrets(value))


@HOLDING
@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_bad_ca_reaching_a_follower(make, case, holding):
    drv, csr = follower_setup(make, holding)
    value = MALFORMED[case](Material(pki.make_ca('new CA').pem, csr, pki.key_pem(pki.make_key())))
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    poke_app(drv, {peers.CA_KEY: value})
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(APP_BAG, peers.CA_KEY)], poked=APP_BAG,
                   nothing_spread=secrets(value))


def other_csr():
    return pki.make_csr(pki.make_key(), THIRD)


#: Well-formed answers that do not answer the follower's current CSR:
#: (certificate, digest) made from the test CA and the follower's CSR.
WRONG_ANSWERS = {
    "another unit's certificate": lambda ca, csr: (pki.sign(ca, other_csr()), csr_digest(csr)),
    "certificate for another key, digest matches": lambda ca, csr: (
        pki.sign(ca, csr, public_key=pki.make_key().public_key()), csr_digest(csr)),
    'digest of another CSR': lambda ca, csr: (pki.sign(ca, csr), csr_digest(other_csr())),
    'digest not hex': lambda ca, csr: (pki.sign(ca, csr), 'sha256:please-trust-me'),
    'certificate without digest': lambda ca, csr: (pki.sign(ca, csr), None),
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
    poke_app(drv, {CERT_KEY: cert, DIGEST_KEY: digest})
    blamed = DIGEST_KEY if case in BLAMED_ON_DIGEST else CERT_KEY
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(APP_BAG, blamed)])


@HOLDING
@pytest.mark.parametrize('name', ['lost CA', 'driver CA'], ids=['another name', 'the same name'])
def test_an_answer_issued_by_none_of_the_published_cas_is_ignored(make, name, holding):
    """A leader whose charm lost its CA key signs with a new CA and never
    calls set_ca(): its answer fits the CSR, but no unit trusts its issuer.
    A CA of the same name is told apart by its key identifier."""
    drv, csr = follower_setup(make, holding)
    if not holding:
        drv.call(LEADER, 'set_ca', drv.ca.pem)
        drv.settle()
    assert drv.ca.cert.subject.rfc4514_string() == 'CN=driver CA'
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    poke_app(drv, {CERT_KEY: pki.sign(pki.make_ca(name), csr), DIGEST_KEY: csr_digest(csr)})
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(APP_BAG, CERT_KEY)])


# -- direction B: answers forged in a unit's own bag ---------------------------------

@HOLDING
def test_forged_answer_from_a_non_leader_reaching_a_follower(make, holding):
    drv = make(units=3, sign=holding)
    csr = drv.model.bag(FOLLOWER)[peers.CSR_KEY]
    evil = pki.make_ca('evil CA')
    forged = {CERT_KEY: pki.sign(evil, csr), DIGEST_KEY: csr_digest(csr), peers.CA_KEY: evil.pem}
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(THIRD, forged)
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(THIRD, key) for key in forged])


@HOLDING
def test_answers_in_the_leaders_own_bag_are_ignored(make, holding):
    """The original layer's format: the leader's answer in its own unit bag,
    with no digest (and no CA). It fits the follower's CSR, and the follower
    still takes only what the application bag holds, warning that the
    leader's bag has it."""
    drv, csr = follower_setup(make, holding)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    drv.model.poke(LEADER, {CERT_KEY: pki.sign(drv.ca, csr)})
    drv.settle()
    assert_ignored(drv, since, FOLLOWER, before, blamed=[(LEADER, CERT_KEY)])


def test_a_followers_copy_of_the_application_bag_is_ignored(make):
    """A follower that copies everything the leader published into its own
    bag is warned about, by name, by every unit it holds answers for, and
    no unit takes an answer or the CA from it, the follower itself included.

    The copy is of answers no follower has taken yet, which the leader then
    withdraws by changing CA: each still fits its unit's CSR, so taking it
    would show."""
    drv = make(units=3, sign=False)
    old, new = drv.ca, pki.make_ca('new CA')
    answers = [('set_cert', [unit, pki.sign(old, drv.model.bag(unit)[peers.CSR_KEY])])
               for unit in drv.model.units]
    drv.run(LEADER, 'update-status', calls=[('set_ca', [old.pem])] + answers)
    published = drv.model.app_bag()
    assert len(published) == 2 + 2 * len(drv.model.units)  # ca and its round, and two keys a unit
    drv.run(LEADER, 'update-status', calls=[('set_ca', [new.pem, True])])  # emergency: withdraws them all
    assert drv.model.app_bag() == {peers.CA_KEY: new.pem, peers.CA_ROUND_KEY: '2'}  # a change of the roles
    drv.settle()
    before, since = snapshot(drv, THIRD), len(drv.model.history)
    drv.model.poke(FOLLOWER, published)
    drv.settle()
    copied = [peers.CERT_KEY.format(THIRD), peers.CSR_DIGEST_KEY.format(THIRD), peers.CA_KEY]
    assert_ignored(drv, since, THIRD, before, blamed=[(FOLLOWER, key) for key in copied],
                   poked=FOLLOWER,
                   nothing_spread=[published[peers.CERT_KEY.format(unit)] for unit in (FOLLOWER, THIRD)])
    leader_records = drv.records(LEADER, since)
    for key in (peers.CERT_KEY.format(LEADER), peers.CSR_DIGEST_KEY.format(LEADER), peers.CA_KEY):
        assert warned(leader_records, FOLLOWER, key), f'the leader did not warn about {key!r}'
    assert drv.model.app_bag() == {peers.CA_KEY: new.pem, peers.CA_ROUND_KEY: '2'}
    assert drv.call(FOLLOWER, 'get_signed_cert') is None
    assert drv.call(FOLLOWER, 'get_ca') == new.pem


# -- direction B: keys that answer no unit, and deleted answers ------------------------

UNEXPECTED_NAMES = [peers.CERT_KEY.format('drv/99'), peers.CERT_KEY.format(''), f'../{CERT_KEY}',
                    f'{FOLLOWER}/../{CERT_KEY}', f'{CERT_KEY}.bak', f' {CERT_KEY}', CERT_KEY.upper(),
                    'signed_certificate']


@pytest.mark.parametrize('key', UNEXPECTED_NAMES)
def test_keys_with_unexpected_unit_names_are_ignored(make, key):
    """No unit reads a key that is not its own, so there is nothing to warn
    about; the leader drops from the application bag every key that is
    neither the CA nor an answer for a live unit (for drv/99, goal-state
    says there is none), and keeps those."""
    drv, csr = follower_setup(make, holding=True)
    published = drv.model.app_bag()
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    poked = {key: pki.sign(drv.ca, csr), peers.CSR_DIGEST_KEY.format('drv/99'): csr_digest(csr)}
    records = poke_app(drv, poked)
    assert not [m for r in records for level, m in r.logs if level == 'WARNING']
    assert_ignored(drv, since, FOLLOWER, before)
    drv.run(LEADER, 'update-status')
    assert drv.model.app_bag() == published


@pytest.mark.parametrize('key', [CERT_KEY, DIGEST_KEY, peers.CA_KEY])
def test_deleted_answer_changes_nothing_on_a_follower(make, key):
    """Juju deletes a key set to '': "empty" is a missing key."""
    drv, _ = follower_setup(make, holding=True)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    poke_app(drv, {key: None})
    assert_ignored(drv, since, FOLLOWER, before)


@pytest.mark.parametrize('case', sorted(ODD_BUT_VALID) + ['chain'])
def test_odd_but_valid_certificate_and_ca_are_accepted(make, case):
    drv, csr = follower_setup(make, holding=False)
    cert = pki.sign(drv.ca, csr)
    if case == 'chain':
        sent_cert, sent_ca, cert = cert + drv.ca.pem, drv.ca.pem, cert + drv.ca.pem
    else:
        sent_cert, sent_ca = ODD_BUT_VALID[case](cert), ODD_BUT_VALID[case](drv.ca.pem)
    records = poke_app(drv, {CERT_KEY: sent_cert, DIGEST_KEY: csr_digest(csr), peers.CA_KEY: sent_ca})
    assert not [m for r in records for level, m in r.logs if level == 'WARNING']
    assert drv.cert(FOLLOWER) == cert
    assert drv.call(FOLLOWER, 'get_ca') == drv.ca.pem
    assert drv.flags(FOLLOWER) == {CERT_AVAILABLE}


def test_junk_over_the_published_ca_is_repaired_and_nothing_is_reissued(make):
    """An operator writes junk over the application bag's ``ca``: the
    followers warn and keep what they trust; the leader's next hook
    publishes its CA again, and every answer still holds."""
    drv = make(units=3)
    app, certs = drv.model.app_bag(), {unit: drv.cert(unit) for unit in drv.model.units}
    since = len(drv.model.history)
    poke_app(drv, {peers.CA_KEY: 'junk, not a CA'})  # the follower's hook runs first
    assert warned(drv.records(FOLLOWER, since), APP_BAG, peers.CA_KEY)
    drv.model.queue(LEADER, 'update-status')
    drv.settle()
    assert drv.model.app_bag() == app
    assert {unit: drv.cert(unit) for unit in drv.model.units} == certs
    assert not [r for r in drv.records(LEADER, since) if SIGN_CSR in r.flags]


def test_junk_over_the_issuing_ca_changes_no_units_trust_whoever_leads(make, clock):
    """After a rotation ``ca_previous`` stays while a unit (drv/2, its
    agent down) presents a certificate from it. Junk over ``ca``: a
    follower keeps trusting the CA it recorded for ``ca`` (not the other
    one left valid), and when it comes to lead it publishes that CA again,
    which every certificate held was issued under: nothing is re-issued."""
    drv = make(units=3)
    old = drv.ca
    drv.use_ca(pki.make_ca('new CA'))
    drv.run(LEADER, 'update-status')
    clock(seconds=peers.ROTATION_WAIT)
    drv.run(LEADER, 'update-status')
    drv.settle_without('drv/2')
    app, units = drv.model.app_bag(), drv.model.units
    assert app[peers.CA_PREVIOUS_KEY] == old.pem
    certs, trust = {u: drv.cert(u) for u in units}, {u: drv.model.kv(u)[peers.KV_CA] for u in units}
    since = len(drv.model.history)
    poke_app(drv, {peers.CA_KEY: 'junk, not a CA'})
    assert warned(drv.records(FOLLOWER, since), APP_BAG, peers.CA_KEY)
    assert drv.model.kv(FOLLOWER)[peers.KV_CA] == trust[FOLLOWER]
    drv.model.move_leader(FOLLOWER)
    drv.settle_without('drv/2')
    assert all(record.ok for record in drv.records(since=since))
    assert drv.model.app_bag() == app
    assert {u: drv.cert(u) for u in units} == certs
    assert {u: drv.model.kv(u)[peers.KV_CA] for u in units} == trust
    assert not [r for r in drv.records(since=since) if SIGN_CSR in r.flags]


def test_junk_over_a_ca_of_two_certificates_reissues_nothing(make):
    """The leader's record of the issuing CA is the whole bundle its charm
    gave, not the first certificate of it."""
    drv = make(units=3)
    new = pki.make_ca('new CA')
    drv.use_ca(pki.CA(new.key, new.cert, new.pem + pki.make_ca('root CA').pem))
    drv.run(LEADER, 'update-status')
    drv.settle()
    app, certs = drv.model.app_bag(), {unit: drv.cert(unit) for unit in drv.model.units}
    assert app[peers.CA_KEY] == drv.ca.pem
    since = len(drv.model.history)
    poke_app(drv, {peers.CA_KEY: 'junk, not a CA'})
    drv.model.queue(LEADER, 'update-status')
    drv.settle()
    assert all(record.ok for record in drv.records(since=since))
    assert drv.model.app_bag() == app
    assert {unit: drv.cert(unit) for unit in drv.model.units} == certs
    assert not [r for r in drv.records(since=since) if SIGN_CSR in r.flags]


@pytest.mark.parametrize('encoding', ['compressed', 'explicit'])
def test_a_csr_whose_key_a_ca_does_not_echo_back_fails_no_leader_hook(make, encoding):
    """openssl writes the CSR's EC key as its key file has it; a CA writes
    it uncompressed and named in the certificate, which then does not carry
    the CSR's key byte for byte. The leader refuses the CSR, warning, rather
    than list it and have its charm's set_cert() fail every hook."""
    drv = make(units=2)
    before, since = snapshot(drv, LEADER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {peers.CSR_KEY: pki.openssl_ec_csr(FOLLOWER, encoding)})
    drv.settle()
    assert_ignored(drv, since, LEADER, before, blamed=[(FOLLOWER, peers.CSR_KEY)], poked=FOLLOWER)
    assert drv.call(LEADER, 'get_csr_map') == {}


def test_junk_over_a_published_certificate_fails_no_leader_hook(make):
    """Junk over ``<unit>_signed_certificate``, its digest left in place:
    the follower warns and keeps its certificate; the leader, which checks
    what it reads before it compares expiries, answers that unit again."""
    drv = make(units=2)
    held, since = drv.cert(FOLLOWER), len(drv.model.history)
    poke_app(drv, {CERT_KEY: 'junk, not a certificate'})
    assert warned(drv.records(FOLLOWER, since), APP_BAG, CERT_KEY) and drv.cert(FOLLOWER) == held
    drv.model.queue(LEADER, 'update-status')
    drv.settle()
    assert all(record.ok for record in drv.records(since=since))
    answer = drv.model.app_bag()[CERT_KEY]
    assert drv.cert(FOLLOWER) == answer and public_key(answer) == public_key(held)
