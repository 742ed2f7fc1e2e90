"""A corpus of what real PKI tools write, generated with the tools at test time.

The layer is fed PEM by charm authors who made it with easy-rsa, the
``openssl`` command line, Java's ``keytool`` or Python's ``cryptography``,
and each tool has habits: easy-rsa and ``openssl ca`` put a text dump of the
certificate before its PEM block, ``openssl pkcs12 -nokeys`` puts ``Bag
Attributes`` lines before each block, keytool and ``openssl req -newhdr``
write the legacy ``NEW CERTIFICATE REQUEST`` label. Hand-typed samples of
these drift from what the tools really write, so every item here is written
by the tool itself, in a scratch directory, and read back byte for byte.

Items are declared in :data:`SPECS`, in the order their commands run: later
commands use the files of earlier ones (one PKI per tool). The names, kinds
and expected outcomes are known without running anything, so tests can be
parametrized at collection time; :func:`build` runs the tools and returns
the texts.

What a test needs besides the text: the DER of each object the item carries
(``ders``), taken by ``openssl`` from the file each object was first written
to, so the expected result does not depend on the layer's own PEM reader;
for a certificate, the CSR item it answers (``set_cert`` checks that the
certificate's public key is the CSR's) and the CA item it was issued under.
"""
import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from support import pki

CSR, CERT, CA = 'csr', 'cert', 'ca'

EASYRSA = Path('/usr/share/easy-rsa/easyrsa')

#: Tool -> the Debian package that provides it: a missing tool fails the
#: corpus with this name rather than skipping tests.
PACKAGES = {'easyrsa': 'easy-rsa', 'openssl': 'openssl', 'keytool': 'default-jre-headless',
            'sed': 'sed'}

#: The JVM starts in a third of the time without its optimizing compiler,
#: which nothing that runs for a second needs.
JAVA_OPTIONS = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'

KEYTOOL_STORE = '-keystore keytool/unit-8.p12 -storetype PKCS12 -storepass corpus-pass'

#: ``openssl req`` and ``openssl ca`` read this, not the system's
#: openssl.cnf, so the corpus is the same on every machine. Paths are
#: relative to the corpus directory, where every command runs.
OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ca]
default_ca = corpus
[corpus]
database = openssl/index.txt
new_certs_dir = openssl/issued
certificate = openssl/root.crt
private_key = openssl/root.key
rand_serial = yes
default_md = sha256
default_days = 30
default_crl_days = 30
policy = names
unique_subject = no
x509_extensions = leaf
[names]
commonName = supplied
organizationName = optional
[leaf]
basicConstraints = critical, CA:false
extendedKeyUsage = serverAuth, clientAuth
authorityKeyIdentifier = keyid
[intermediate]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_SPEC_FIELDS = 'name tool kind run output refused answers ca parts by'


class Spec(namedtuple('Spec', _SPEC_FIELDS, defaults=(None,) * 6)):
    """One corpus item, before the tools run.

    ``run``: the commands (shell text run in the corpus directory, or a
    function of that directory) that write ``output``; empty when the file
    is a by-product of item ``by``'s commands. ``refused``: None when the
    layer must accept the item, else words that the layer's refusal must
    contain (case-insensitively), which name what is wrong. ``answers``,
    ``ca``: for a certificate, the CSR item it answers and the CA item it was
    issued under. ``parts``: the files each object of the item was first
    written to, when not just ``output``.
    """


class Item(namedtuple('Item', 'name tool kind command text refused answers ca ders')):
    """One corpus item as the tool wrote it.

    ``command``: what wrote it, as run; ``text``: the file's exact text (CRLF
    and non-ASCII kept); ``ders``: the DER of each object it carries, in
    order (empty for a refused item).
    """

    @property
    def accepted(self):
        return self.refused is None


Corpus = namedtuple('Corpus', 'items versions')


def _cryptography_files(directory):
    """cryptography: pki.make_ca, pki.make_csr, pki.sign (x509 builders, EC P-256), PEM-encoded;
    pkcs7.serialize_certificates; private_bytes(PEM, TraditionalOpenSSL)"""
    out = Path(directory) / 'cryptography'
    out.mkdir()
    ca = pki.make_ca('corpus cryptography CA')
    key = pki.make_key()
    csr = pki.make_csr(key, 'unit-9')
    (out / 'ca.crt').write_text(ca.pem)
    (out / 'unit-9.csr').write_text(csr)
    (out / 'unit-9.crt').write_text(pki.sign(ca, csr))
    (out / 'ca.p7b').write_bytes(pkcs7.serialize_certificates([ca.cert], serialization.Encoding.PEM))
    (out / 'unit-9.key').write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))


def _crlf(source, target):
    """The command that writes ``source`` with CRLF line ends to ``target``."""
    return f"sed 's/$/\\r/' {source} > {target}"


PRIVATE = 'private key'

SPECS = (
    # easy-rsa: one PKI in pki/, EC keys (EASYRSA_ALGO in the environment).
    Spec('easyrsa-build-ca', 'easy-rsa', CA,
         ('easyrsa init-pki', "EASYRSA_REQ_CN='corpus easy-rsa CA' easyrsa build-ca nopass"),
         'pki/ca.crt'),
    Spec('easyrsa-ca-key', 'easy-rsa', CA, (), 'pki/private/ca.key', refused=PRIVATE,
         by='easyrsa-build-ca'),
    Spec('easyrsa-gen-req', 'easy-rsa', CSR, ('easyrsa gen-req unit-1 nopass',),
         'pki/reqs/unit-1.req'),
    Spec('easyrsa-gen-req-key', 'easy-rsa', CSR, (), 'pki/private/unit-1.key', refused=PRIVATE,
         by='easyrsa-gen-req'),
    Spec('easyrsa-sign-req-server', 'easy-rsa', CERT, ('easyrsa sign-req server unit-1',),
         'pki/issued/unit-1.crt', answers='easyrsa-gen-req', ca='easyrsa-build-ca'),
    Spec('easyrsa-sign-req-server-crlf', 'easy-rsa, sed', CERT,
         ('mkdir crlf', _crlf('pki/issued/unit-1.crt', 'crlf/unit-1.crt')), 'crlf/unit-1.crt',
         answers='easyrsa-gen-req', ca='easyrsa-build-ca'),
    Spec('easyrsa-build-server-full', 'easy-rsa', CERT, ('easyrsa build-server-full unit-2 nopass',),
         'pki/issued/unit-2.crt', answers='easyrsa-build-server-full-req', ca='easyrsa-build-ca'),
    Spec('easyrsa-build-server-full-req', 'easy-rsa', CSR, (), 'pki/reqs/unit-2.req',
         by='easyrsa-build-server-full'),
    Spec('cat-easyrsa-key-cert', 'easy-rsa, cat', CERT,
         ('cat pki/private/unit-1.key pki/issued/unit-1.crt > pki/unit-1-key-and-cert.pem',),
         'pki/unit-1-key-and-cert.pem', refused=PRIVATE, answers='easyrsa-gen-req',
         ca='easyrsa-build-ca'),
    Spec('cat-easyrsa-req-cert', 'easy-rsa, cat', CSR,
         ('cat pki/reqs/unit-1.req pki/issued/unit-1.crt > pki/unit-1-req-and-cert.pem',),
         'pki/unit-1-req-and-cert.pem', refused='block'),
    Spec('cat-easyrsa-two-reqs', 'easy-rsa, cat', CSR,
         ('cat pki/reqs/unit-1.req pki/reqs/unit-2.req > pki/two-reqs.pem',),
         'pki/two-reqs.pem', refused='exactly one'),

    # keytool: a PKCS#12 keystore with an EC key; its CSR is signed by easy-rsa below.
    Spec('keytool-certreq', 'keytool', CSR,
         ('mkdir keytool',
          f'keytool -genkeypair -keyalg EC -groupname secp256r1 -alias unit -dname CN=unit-8 '
          f'{KEYTOOL_STORE}',
          f'keytool -certreq -alias unit -file keytool/unit-8.csr {KEYTOOL_STORE}'),
         'keytool/unit-8.csr'),
    Spec('keytool-certreq-crlf', 'keytool, sed', CSR,
         (_crlf('keytool/unit-8.csr', 'crlf/unit-8.csr'),), 'crlf/unit-8.csr'),
    Spec('easyrsa-import-req-sign-req-serverClient', 'easy-rsa', CERT,
         ('easyrsa import-req keytool/unit-8.csr unit-8', 'easyrsa sign-req serverClient unit-8'),
         'pki/issued/unit-8.crt', answers='keytool-certreq', ca='easyrsa-build-ca'),
    Spec('keytool-list-rfc', 'keytool', CERT,
         (f'keytool -importcert -noprompt -alias ca -file pki/ca.crt {KEYTOOL_STORE}',
          f'keytool -importcert -alias unit -file pki/issued/unit-8.crt {KEYTOOL_STORE}',
          f'keytool -list -rfc -alias unit {KEYTOOL_STORE} > keytool/unit-8-list.txt'),
         'keytool/unit-8-list.txt', answers='keytool-certreq', ca='easyrsa-build-ca',
         parts=('pki/issued/unit-8.crt', 'pki/ca.crt')),

    # openssl: an RSA-2048 root, an EC intermediate, EC leaves; openssl ca with OPENSSL_CNF.
    Spec('openssl-req-x509', 'openssl', CA,
         ('mkdir -p openssl/issued', 'touch openssl/index.txt',
          'openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out openssl/root.key',
          "openssl req -x509 -new -config openssl/openssl.cnf -extensions root -key openssl/root.key"
          " -subj '/CN=corpus openssl root' -days 30 -out openssl/root.crt"),
         'openssl/root.crt'),
    Spec('openssl-genpkey', 'openssl', CA, (), 'openssl/root.key', refused=PRIVATE,
         by='openssl-req-x509'),
    Spec('openssl-x509-text-ca', 'openssl', CA,
         ('openssl x509 -in openssl/root.crt -text -out openssl/root-text.crt',),
         'openssl/root-text.crt'),
    Spec('openssl-x509-text-ca-crlf', 'openssl, sed', CA,
         (_crlf('openssl/root-text.crt', 'crlf/root-text.crt'),), 'crlf/root-text.crt'),
    Spec('openssl-x509-trustout', 'openssl', CA,
         ('openssl x509 -in openssl/root.crt -trustout -addtrust serverAuth -out openssl/root-trusted.crt',),
         'openssl/root-trusted.crt', refused='TRUSTED CERTIFICATE'),
    Spec('openssl-ca-gencrl', 'openssl, cat', CA,
         ('openssl ca -gencrl -config openssl/openssl.cnf -out openssl/root.crl',
          'cat openssl/root.crt openssl/root.crl > openssl/root-and-crl.pem'),
         'openssl/root-and-crl.pem', refused='X509 CRL'),
    Spec('openssl-crl2pkcs7', 'openssl', CA,
         ('openssl crl2pkcs7 -nocrl -certfile openssl/root.crt -out openssl/root.p7b',),
         'openssl/root.p7b', refused='PKCS7'),
    Spec('openssl-ecparam-genkey', 'openssl', CSR,
         ('openssl ecparam -name prime256v1 -genkey -out openssl/ecparam.key',),
         'openssl/ecparam.key', refused=PRIVATE),
    Spec('openssl-req', 'openssl', CSR,
         ('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl/unit-3.key',
          'openssl req -new -config openssl/openssl.cnf -key openssl/unit-3.key -subj /CN=unit-3'
          ' -out openssl/unit-3.csr'),
         'openssl/unit-3.csr'),
    Spec('openssl-req-text', 'openssl', CSR,
         ('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl/unit-4.key',
          'openssl req -new -text -config openssl/openssl.cnf -key openssl/unit-4.key -subj /CN=unit-4'
          ' -out openssl/unit-4.csr'),
         'openssl/unit-4.csr'),
    Spec('openssl-req-text-crlf', 'openssl, sed', CSR,
         (_crlf('openssl/unit-4.csr', 'crlf/unit-4.csr'),), 'crlf/unit-4.csr'),
    Spec('openssl-req-newhdr', 'openssl', CSR,
         ('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl/unit-5.key',
          'openssl req -new -newhdr -config openssl/openssl.cnf -key openssl/unit-5.key -subj /CN=unit-5'
          ' -out openssl/unit-5.csr'),
         'openssl/unit-5.csr'),
    Spec('openssl-req-text-utf8', 'openssl', CSR,
         ('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl/unit-6.key',
          'openssl req -new -text -utf8 -nameopt utf8 -config openssl/openssl.cnf -key openssl/unit-6.key'
          " -subj '/CN=unit-6/O=Zürich Ångström' -out openssl/unit-6.csr"),
         'openssl/unit-6.csr'),
    Spec('openssl-req-newhdr-text', 'openssl', CSR,
         ('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl/unit-7.key',
          'openssl req -new -newhdr -text -config openssl/openssl.cnf -key openssl/unit-7.key'
          ' -subj /CN=unit-7 -out openssl/unit-7.csr'),
         'openssl/unit-7.csr'),
    Spec('openssl-x509-req', 'openssl', CERT,
         ('openssl x509 -req -in openssl/unit-3.csr -CA openssl/root.crt -CAkey openssl/root.key'
          ' -days 30 -out openssl/unit-3.crt',),
         'openssl/unit-3.crt', answers='openssl-req', ca='openssl-req-x509'),
    Spec('openssl-x509-text', 'openssl', CERT,
         ('openssl x509 -in openssl/unit-3.crt -text -out openssl/unit-3-text.crt',),
         'openssl/unit-3-text.crt', answers='openssl-req', ca='openssl-req-x509'),
    Spec('openssl-x509-pubkey', 'openssl', CERT,
         ('openssl x509 -in openssl/unit-3.crt -pubkey -out openssl/unit-3-pubkey.crt',),
         'openssl/unit-3-pubkey.crt', refused='PUBLIC KEY', answers='openssl-req',
         ca='openssl-req-x509'),
    Spec('openssl-ca', 'openssl', CERT,
         ('openssl ca -batch -config openssl/openssl.cnf -in openssl/unit-5.csr -out openssl/unit-5.crt',),
         'openssl/unit-5.crt', answers='openssl-req-newhdr', ca='openssl-req-x509'),
    Spec('openssl-x509-text-utf8', 'openssl', CERT,
         ('openssl ca -batch -utf8 -notext -config openssl/openssl.cnf -in openssl/unit-6.csr'
          ' -out openssl/unit-6.crt',
          'openssl x509 -in openssl/unit-6.crt -text -nameopt utf8 -out openssl/unit-6-text.crt'),
         'openssl/unit-6-text.crt', answers='openssl-req-text-utf8', ca='openssl-req-x509'),
    Spec('openssl-pkcs12-nokeys', 'openssl', CERT,
         ('openssl pkcs12 -export -inkey openssl/unit-3.key -in openssl/unit-3.crt'
          ' -certfile openssl/root.crt -passout pass: -out openssl/unit-3.p12',
          'openssl pkcs12 -in openssl/unit-3.p12 -nokeys -passin pass: -out openssl/unit-3-nokeys.pem'),
         'openssl/unit-3-nokeys.pem', answers='openssl-req', ca='openssl-req-x509',
         parts=('openssl/unit-3.crt', 'openssl/root.crt')),
    Spec('openssl-pkcs12-nokeys-crlf', 'openssl, sed', CERT,
         (_crlf('openssl/unit-3-nokeys.pem', 'crlf/unit-3-nokeys.pem'),), 'crlf/unit-3-nokeys.pem',
         answers='openssl-req', ca='openssl-req-x509', parts=('openssl/unit-3.crt', 'openssl/root.crt')),
    Spec('openssl-pkcs12-cacerts-nokeys', 'openssl', CA,
         ('openssl pkcs12 -in openssl/unit-3.p12 -cacerts -nokeys -passin pass:'
          ' -out openssl/unit-3-cacerts.pem',),
         'openssl/unit-3-cacerts.pem', parts=('openssl/root.crt',)),
    Spec('openssl-pkcs12', 'openssl', CERT,
         ('openssl pkcs12 -in openssl/unit-3.p12 -passin pass: -passout pass: -out openssl/unit-3-all.pem',),
         'openssl/unit-3-all.pem', refused=PRIVATE, answers='openssl-req', ca='openssl-req-x509'),
    Spec('openssl-pkcs12-noenc', 'openssl', CERT,
         ('openssl pkcs12 -in openssl/unit-3.p12 -passin pass: -noenc -out openssl/unit-3-noenc.pem',),
         'openssl/unit-3-noenc.pem', refused=PRIVATE, answers='openssl-req', ca='openssl-req-x509'),
    Spec('openssl-ca-chain', 'openssl, cat', CERT,
         ('openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out openssl/inter.key',
          "openssl req -new -config openssl/openssl.cnf -key openssl/inter.key"
          " -subj '/CN=corpus openssl intermediate' -out openssl/inter.csr",
          'openssl ca -batch -config openssl/openssl.cnf -extensions intermediate -in openssl/inter.csr'
          ' -out openssl/inter.crt',
          'openssl ca -batch -config openssl/openssl.cnf -cert openssl/inter.crt -keyfile openssl/inter.key'
          ' -in openssl/unit-7.csr -out openssl/unit-7.crt',
          'cat openssl/unit-7.crt openssl/inter.crt openssl/root.crt > openssl/unit-7-chain.pem'),
         'openssl/unit-7-chain.pem', answers='openssl-req-newhdr-text', ca='openssl-req-x509',
         parts=('openssl/unit-7.crt', 'openssl/inter.crt', 'openssl/root.crt')),
    Spec('openssl-ca-chain-crlf', 'openssl, sed', CERT,
         (_crlf('openssl/unit-7-chain.pem', 'crlf/unit-7-chain.pem'),), 'crlf/unit-7-chain.pem',
         answers='openssl-req-newhdr-text', ca='openssl-req-x509',
         parts=('openssl/unit-7.crt', 'openssl/inter.crt', 'openssl/root.crt')),
    Spec('openssl-ca-chain-ca', 'openssl, cat', CA,
         ('cat openssl/inter.crt openssl/root.crt > openssl/inter-and-root.pem',),
         'openssl/inter-and-root.pem', parts=('openssl/inter.crt', 'openssl/root.crt')),
    Spec('openssl-ca-chain-root-first', 'openssl, cat', CERT,
         ('cat openssl/root.crt openssl/inter.crt openssl/unit-7.crt > openssl/unit-7-root-first.pem',),
         'openssl/unit-7-root-first.pem', refused='public key', answers='openssl-req-newhdr-text',
         ca='openssl-req-x509'),

    # cryptography, in this process.
    Spec('cryptography-ca', 'cryptography', CA, (_cryptography_files,), 'cryptography/ca.crt'),
    Spec('cryptography-csr', 'cryptography', CSR, (), 'cryptography/unit-9.csr', by='cryptography-ca'),
    Spec('cryptography-cert', 'cryptography', CERT, (), 'cryptography/unit-9.crt',
         answers='cryptography-csr', ca='cryptography-ca', by='cryptography-ca'),
    Spec('cryptography-pkcs7', 'cryptography', CA, (), 'cryptography/ca.p7b', refused='PKCS7',
         by='cryptography-ca'),
    Spec('cryptography-traditional-key', 'cryptography', CSR, (), 'cryptography/unit-9.key',
         refused=PRIVATE, by='cryptography-ca'),
)

BY_NAME = {spec.name: spec for spec in SPECS}


def names(kind):
    """The names of the items of ``kind``, for parametrizing tests."""
    return [spec.name for spec in SPECS if spec.kind == kind]


def build(directory):
    """Run the tools in ``directory`` (which must be empty) and return the Corpus."""
    directory = Path(directory)
    _require_tools()
    (directory / 'openssl').mkdir()
    (directory / 'openssl' / 'openssl.cnf').write_text(OPENSSL_CNF)
    env = _environment(directory)
    items = {}
    for spec in SPECS:
        for step in spec.run:
            if callable(step):
                step(directory)
            else:
                _sh(step, directory, env)
        text = (directory / spec.output).read_bytes().decode()
        parts = () if spec.refused else spec.parts or (spec.output,)
        ders = tuple(_der(directory, part, spec.kind, env) for part in parts)
        items[spec.name] = Item(spec.name, spec.tool, spec.kind, _command(spec), text, spec.refused,
                                spec.answers, spec.ca, ders)
    return Corpus(items, _versions(env))


def _command(spec):
    run = spec.run or BY_NAME[spec.by].run
    return ' && '.join(step if isinstance(step, str) else ' '.join(step.__doc__.split()) for step in run)


def _der(directory, part, kind, env):
    """The DER of the one object in file ``part``, as openssl reads it."""
    command = 'req' if kind == CSR else 'x509'
    return _run(['openssl', command, '-in', part, '-outform', 'DER'], directory, env).stdout


def _require_tools():
    missing = [tool for tool, path in (('easyrsa', EASYRSA), ('openssl', shutil.which('openssl')),
                                       ('keytool', shutil.which('keytool')), ('sed', shutil.which('sed')))
               if not path or not os.access(str(path), os.X_OK)]
    if missing:
        raise RuntimeError('the PEM corpus needs {}: apt-get install {}'.format(
            ', '.join(missing), ' '.join(PACKAGES[tool] for tool in missing)))


def _environment(directory):
    """A clean environment: nothing of the caller's (OPENSSL_CONF, EASYRSA_*,
    JAVA_TOOL_OPTIONS) changes what the tools write."""
    return {'PATH': f'{EASYRSA.parent}:{os.environ.get("PATH", "/usr/bin:/bin")}',
            'HOME': str(directory), 'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8',
            'EASYRSA_BATCH': '1', 'EASYRSA_PKI': str(directory / 'pki'),
            'EASYRSA_ALGO': 'ec', 'EASYRSA_CURVE': 'prime256v1',
            'JAVA_TOOL_OPTIONS': JAVA_OPTIONS}


def _sh(command, directory, env):
    return _run(['sh', '-c', command], directory, env)


def _run(argv, directory, env):
    result = subprocess.run(argv, cwd=str(directory), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if result.returncode:
        raise RuntimeError('{} exited {}:\n{}\n{}'.format(
            argv, result.returncode, result.stdout.decode(errors='replace'),
            result.stderr.decode(errors='replace')))
    return result


def _versions(env):
    """{tool: version} of what wrote the corpus, for test reports."""
    def out(command):
        result = _run(['sh', '-c', command], '/', env)
        return (result.stdout + result.stderr).decode().strip()

    easyrsa = [line.split(':', 1)[1].strip() for line in out('easyrsa --version').splitlines()
               if line.startswith('Version:')]
    java = Path(os.path.realpath(shutil.which('keytool'))).parent / 'java'
    java_version = [line for line in out(f'{java} -version').splitlines()
                    if 'version' in line and 'JAVA_TOOL_OPTIONS' not in line]
    return {'easy-rsa': easyrsa[0], 'openssl': out('openssl version'),
            'java (keytool)': java_version[0], 'cryptography': cryptography.__version__}
