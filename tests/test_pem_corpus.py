"""What real PKI tools write, through the layer's real hooks.

Charm authors hand the layer whatever their tool wrote: easy-rsa's issued
certificates open with a text dump, ``openssl pkcs12 -nokeys`` puts ``Bag
Attributes`` before each block, keytool writes ``NEW CERTIFICATE REQUEST``.
The corpus (tests/support/corpus.py) is written by the tools themselves, once a
session; every item goes both ways through the driver charm:

* through the API: ``set_csr`` on a follower, ``set_ca`` and ``set_cert`` on
  the leader, with the file's text as the tool wrote it;
* over the relation: the text as an old or foreign unit would write it in
  its bag, read by the leader (a CSR), or as an operator would write it in
  the application bag, read by a follower (a certificate, a CA).

An accepted item ends in normal form (the blocks alone, canonical label,
64-column base64) with the DER the tool wrote; a refused one raises
ValueError (API) or is logged at WARNING and ignored (relation), changing
nothing and spreading no private key. Test ids are the item names, which
name the tool and the format.
"""

import pytest
from cryptography import x509
from support import pki
from support.corpus import BY_NAME, CA, CERT, CSR, build, names
from support.hostile import (
    APP_BAG,
    CERT_KEY,
    DIGEST_KEY,
    FOLLOWER,
    LEADER,
    armor,
    assert_ignored,
    everywhere_else,
    poke_app,
    secrets,
    snapshot,
)
from support.pki import public_key

import peers
from peers import CERT_AVAILABLE

LABELS = {CSR: 'CERTIFICATE REQUEST', CERT: 'CERTIFICATE', CA: 'CERTIFICATE'}


@pytest.fixture(scope='session')
def corpus(tmp_path_factory, record_testsuite_property):
    """{name: Item}, written once a session; the tools' versions go into
    the JUnit report, next to the results they explain."""
    built = build(tmp_path_factory.mktemp('pem-corpus'))
    for tool, version in sorted(built.versions.items()):
        record_testsuite_property(f'pem corpus: {tool}', version)
    return built.items


def normal_form(item):
    """The item as the layer must store and publish it: its DER, re-armored."""
    return ''.join(armor(LABELS[item.kind], der) for der in item.ders)


def digest(csr_item):
    """The ``<unit>_csr_sha256`` of the item, from its normal form."""
    return pki.csr_digest(normal_form(csr_item))


def csr_public_key(csr_item):
    return pki.public_der(x509.load_der_x509_csr(csr_item.ders[0]).public_key())


def warnings(records):
    return [message for record in records for level, message in record.logs if level == 'WARNING']


def assert_refusal(error, item):
    """A refusal says what is wrong: it names the offending part."""
    assert item.refused.lower() in str(error.value).lower(), str(error.value)


def assert_no_secret_spread(drv, since, item):
    records = drv.records(since=since)
    spread = everywhere_else(drv, records, poked=None)
    assert not [secret for secret in secrets(item.text) if secret in spread]


def follower_without_csr(make, sign):
    """A leader with its own CSR (answered by the driver's CA when ``sign``),
    and a follower that publishes no CSR until the test gives it one."""
    drv = make(units=1, sign=sign)
    drv.add_unit(create=False, sign=sign)
    drv.settle()
    return drv


def follower_with_csr(make, csr_item):
    """``follower_without_csr`` (no automatic signing) whose follower has
    published ``csr_item`` in normal form, so that what follows tests the
    certificate, not the CSR."""
    drv = follower_without_csr(make, sign=False)
    drv.call(FOLLOWER, 'set_csr', normal_form(csr_item), hook='config-changed')
    drv.settle()
    return drv


# -- through the API ---------------------------------------------------------------

@pytest.mark.parametrize('name', names(CSR))
def test_set_csr_with_tool_output(make, corpus, name):
    item = corpus[name]
    drv = follower_without_csr(make, sign=True)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    if item.accepted:
        drv.call(FOLLOWER, 'set_csr', item.text, hook='config-changed')
        drv.settle()
        assert drv.model.bag(FOLLOWER)[peers.CSR_KEY] == normal_form(item)
        assert drv.model.app_bag()[DIGEST_KEY] == digest(item)
        assert public_key(drv.cert(FOLLOWER)) == csr_public_key(item)
        assert CERT_AVAILABLE in drv.flags(FOLLOWER)
    else:
        with pytest.raises(ValueError) as error:
            drv.call(FOLLOWER, 'set_csr', item.text, hook='config-changed')
        assert_refusal(error, item)
        assert snapshot(drv, FOLLOWER) == before
        drv.settle()
        assert drv.call(LEADER, 'get_csr_map') == {}
        assert_no_secret_spread(drv, since, item)


@pytest.mark.parametrize('name', names(CERT))
def test_set_cert_with_tool_output(make, corpus, name):
    item = corpus[name]
    ca = corpus[item.ca]
    drv = follower_with_csr(make, corpus[item.answers])
    since = len(drv.model.history)
    drv.call(LEADER, 'set_ca', ca.text)
    if item.accepted:
        drv.call(LEADER, 'set_cert', FOLLOWER, item.text)
        drv.settle()
        assert drv.cert(FOLLOWER) == normal_form(item)
        assert drv.call(FOLLOWER, 'get_ca') == normal_form(ca)
        assert CERT_AVAILABLE in drv.flags(FOLLOWER)
    else:
        with pytest.raises(ValueError) as error:
            drv.call(LEADER, 'set_cert', FOLLOWER, item.text)
        assert_refusal(error, item)
        drv.settle()
        assert CERT_KEY not in drv.model.app_bag()
        assert drv.cert(FOLLOWER) is None
        assert_no_secret_spread(drv, since, item)


@pytest.mark.parametrize('name', names(CA))
def test_set_ca_with_tool_output(make, corpus, name):
    item = corpus[name]
    drv = make(units=2, sign=False)
    since = len(drv.model.history)
    if item.accepted:
        drv.call(LEADER, 'set_ca', item.text)
        drv.settle()
        assert drv.model.app_bag()[peers.CA_KEY] == normal_form(item)
        assert drv.call(FOLLOWER, 'get_ca') == normal_form(item)
    else:
        with pytest.raises(ValueError) as error:
            drv.call(LEADER, 'set_ca', item.text)
        assert_refusal(error, item)
        drv.settle()
        assert peers.CA_KEY not in drv.model.app_bag()
        assert drv.call(FOLLOWER, 'get_ca') is None
        assert_no_secret_spread(drv, since, item)


# -- over the relation, as an old or foreign unit writes it ----------------------------

@pytest.mark.parametrize('name', names(CSR))
def test_tool_csr_reaching_the_leader(make, corpus, name):
    item = corpus[name]
    drv = follower_without_csr(make, sign=True)
    before, since = snapshot(drv, LEADER), len(drv.model.history)
    drv.model.poke(FOLLOWER, {peers.CSR_KEY: item.text})
    records = drv.settle()
    if item.accepted:
        assert not warnings(records)
        assert drv.model.app_bag()[DIGEST_KEY] == digest(item)
        assert public_key(drv.cert(FOLLOWER)) == csr_public_key(item)
    else:
        assert_ignored(drv, since, LEADER, before, blamed=[(FOLLOWER, peers.CSR_KEY)], poked=FOLLOWER,
                       nothing_spread=secrets(item.text))


@pytest.mark.parametrize('name', [name for name in names(CSR) if BY_NAME[name].refused is None])
def test_a_tool_csr_found_in_its_bag_is_republished_in_normal_form(make, corpus, name):
    """The follower adopts the CSR it finds in its bag and, as with every
    value the layer publishes, publishes it in normal form."""
    item = corpus[name]
    drv = follower_without_csr(make, sign=True)
    drv.model.poke(FOLLOWER, {peers.CSR_KEY: item.text})
    drv.settle()
    assert drv.model.bag(FOLLOWER)[peers.CSR_KEY] == normal_form(item)


@pytest.mark.parametrize('name', names(CERT))
def test_tool_certificate_reaching_a_follower(make, corpus, name):
    item = corpus[name]
    ca = corpus[item.ca]
    csr = corpus[item.answers]
    drv = follower_with_csr(make, csr)
    values = {CERT_KEY: item.text, DIGEST_KEY: digest(csr)}
    if item.accepted:
        values[peers.CA_KEY] = ca.text
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    records = poke_app(drv, values)
    if item.accepted:
        assert not warnings(records)
        assert drv.cert(FOLLOWER) == normal_form(item)
        assert drv.call(FOLLOWER, 'get_ca') == normal_form(ca)
        assert CERT_AVAILABLE in drv.flags(FOLLOWER)
    else:
        assert_ignored(drv, since, FOLLOWER, before, blamed=[(APP_BAG, CERT_KEY)], poked=APP_BAG,
                       nothing_spread=secrets(item.text))


@pytest.mark.parametrize('name', names(CA))
def test_tool_ca_reaching_a_follower(make, corpus, name):
    item = corpus[name]
    drv = make(units=2, sign=False)
    before, since = snapshot(drv, FOLLOWER), len(drv.model.history)
    records = poke_app(drv, {peers.CA_KEY: item.text})
    if item.accepted:
        assert not warnings(records)
        assert drv.call(FOLLOWER, 'get_ca') == normal_form(item)
    else:
        assert_ignored(drv, since, FOLLOWER, before, blamed=[(APP_BAG, peers.CA_KEY)], poked=APP_BAG,
                       nothing_spread=secrets(item.text))


# -- the corpus is what the tools really write -------------------------------------------

def crlf_only(text):
    return '\r\n' in text and text.count('\n') == text.count('\r\n')


def text_between_blocks(text):
    """Whether text other than blanks sits between two of the PEM blocks."""
    chunks = text.split('-----BEGIN ')[1:-1]
    return any(chunk.split('-----END ', 1)[1].split('\n', 1)[1].strip() for chunk in chunks)


DUMP = 'Certificate:\n    Data:\n'
DUMP_CRLF = DUMP.replace('\n', '\r\n')

#: What makes an item worth having, checked so that a tool that changed its
#: habits cannot turn the corpus into plain PEM unnoticed.
FEATURES = {
    'easyrsa-sign-req-server': lambda text: text.startswith(DUMP),
    'easyrsa-sign-req-server-crlf': lambda text: text.startswith(DUMP_CRLF) and crlf_only(text),
    'easyrsa-build-server-full': lambda text: text.startswith(DUMP),
    'easyrsa-import-req-sign-req-serverClient': lambda text: text.startswith(DUMP),
    'cat-easyrsa-key-cert': lambda text: text.startswith('-----BEGIN PRIVATE KEY-----') and DUMP in text,
    'cat-easyrsa-req-cert': lambda text: DUMP in text and 'BEGIN CERTIFICATE REQUEST' in text,
    'keytool-certreq': lambda text: text.startswith('-----BEGIN NEW CERTIFICATE REQUEST-----'),
    'keytool-certreq-crlf': lambda text: 'NEW CERTIFICATE REQUEST-----\r\n' in text and crlf_only(text),
    'keytool-list-rfc': lambda text: text.startswith('Alias name:') and 'Certificate[2]:' in text,
    'openssl-x509-text-ca': lambda text: text.startswith(DUMP),
    'openssl-x509-text-ca-crlf': lambda text: text.startswith(DUMP_CRLF) and crlf_only(text),
    'openssl-x509-trustout': lambda text: '-----BEGIN TRUSTED CERTIFICATE-----' in text,
    'openssl-ca-gencrl': lambda text: '-----BEGIN X509 CRL-----' in text and 'BEGIN CERTIFICATE-' in text,
    'openssl-crl2pkcs7': lambda text: '-----BEGIN PKCS7-----' in text,
    'openssl-ecparam-genkey': lambda text: '-----BEGIN EC PRIVATE KEY-----' in text,
    'openssl-req-text': lambda text: text.startswith('Certificate Request:\n'),
    'openssl-req-text-crlf': lambda text: text.startswith('Certificate Request:\r\n') and crlf_only(text),
    'openssl-req-newhdr': lambda text: text.startswith('-----BEGIN NEW CERTIFICATE REQUEST-----'),
    'openssl-req-text-utf8': lambda text: text.startswith('Certificate Request:') and not text.isascii(),
    'openssl-req-newhdr-text': lambda text: (text.startswith('Certificate Request:')
                                             and '-----BEGIN NEW CERTIFICATE REQUEST-----' in text),
    'openssl-x509-text': lambda text: text.startswith(DUMP),
    'openssl-x509-text-utf8': lambda text: text.startswith(DUMP) and not text.isascii(),
    'openssl-x509-pubkey': lambda text: text.startswith('-----BEGIN PUBLIC KEY-----'),
    'openssl-ca': lambda text: text.startswith(DUMP),
    'openssl-pkcs12-nokeys': lambda text: (text.startswith('Bag Attributes') and text.count('subject=') == 2
                                           and text_between_blocks(text)),
    'openssl-pkcs12-nokeys-crlf': lambda text: text.startswith('Bag Attributes') and crlf_only(text),
    'openssl-pkcs12-cacerts-nokeys': lambda text: text.startswith('Bag Attributes'),
    'openssl-pkcs12': lambda text: '-----BEGIN ENCRYPTED PRIVATE KEY-----' in text,
    'openssl-pkcs12-noenc': lambda text: '-----BEGIN PRIVATE KEY-----' in text,
    'openssl-ca-chain': lambda text: (text.startswith(DUMP) and text.count(DUMP) == 2
                                      and text.count('-----BEGIN CERTIFICATE-----') == 3
                                      and text_between_blocks(text)),
    'openssl-ca-chain-crlf': lambda text: text.startswith(DUMP_CRLF) and crlf_only(text),
    'openssl-ca-chain-ca': lambda text: text.startswith(DUMP) and text.count('-----BEGIN CERTIFICATE') == 2,
    'cryptography-pkcs7': lambda text: '-----BEGIN PKCS7-----' in text,
    'cryptography-traditional-key': lambda text: '-----BEGIN EC PRIVATE KEY-----' in text,
}


@pytest.mark.parametrize('name', sorted(FEATURES))
def test_corpus_item_is_what_the_tool_writes(corpus, name):
    text = corpus[name].text
    assert FEATURES[name](text), text[:400]
