"""A consumer of the tls interface in the original layer's style, signing with easy-rsa.

The original interface:tls was written for a charm layer that drives easy-rsa,
and this one works the same way, with the original API only: the states
``create certificate signing request``, ``sign certificate signing request``
and ``signed certificate available``, and ``set_csr``, ``get_csr_map``,
``set_cert`` and ``get_signed_cert`` (never ``set_ca`` or ``get_ca``).

* The leader keeps an easy-rsa CA. Its certificate and key are in leader
  settings, so that followers trust it and a new leader can sign with it.
* The leader issues its own certificate with easy-rsa, never over the relation.
* Followers make a key and a request with ``easyrsa gen-req`` and publish the
  request file as easy-rsa wrote it.
* The leader imports every request the layer lists and signs it in its
  easy-rsa PKI, naming the unit the layer says the request is from (the
  request's own subject and names are not used), and hands the layer the
  certificate file as it is written there: a text dump, then the PEM.
* Each unit writes key.pem, cert.pem and ca.pem into
  ``<tls-dir>/<unit name with / replaced by ->/``; its easy-rsa PKIs are in
  ``easy-rsa/`` there.

State that must roll back with a failed hook (which request is current, what
the leader's own certificate was issued for) is in unitdata, which commits
with the hook; easy-rsa's files stay behind, so every easy-rsa name is used
once (see unique_name).
"""

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

from charmhelpers.core import hookenv, unitdata
from charms.reactive import endpoint_from_name, hook, remove_state, when

EASYRSA = '/usr/share/easy-rsa/easyrsa'
# EC keys, because easy-rsa's default RSA keys take longer to make, in hooks.
KEY_OPTIONS = ('--use-algo=ec', '--curve=prime256v1')
# The extensions easy-rsa's sign-req gives a serverClient certificate.
EXTENSIONS = ('COMMON', 'serverClient')
CERT_DAYS = 825  # easy-rsa's default
# `openssl ca` settings for signing in an easy-rsa CA PKI: its database,
# random serial numbers as easy-rsa makes, and no field of the request's
# subject kept (the subject is given with -subj).
SIGNING_CONF = '''\
[ ca ]
default_ca = unit_ca

[ unit_ca ]
dir = $ENV::EASYRSA_PKI
database = $dir/index.txt
new_certs_dir = $dir/certs_by_serial
certificate = $dir/ca.crt
private_key = $dir/private/ca.key
rand_serial = yes
default_md = sha256
unique_subject = no
policy = unit_name

[ unit_name ]
commonName = supplied
'''

# Leader settings.
CA_CERT = 'ca-cert'
CA_KEY = 'ca-key'
CA_GENERATION = 'ca-generation'

# unitdata: this unit's current request ({name, key-generation, ca}), and on
# the leader what its own certificate was issued for ({ca, key-generation}).
KV_REQUEST = 'easyrsa-example.request'
KV_OWN = 'easyrsa-example.own-certificate'


# --- handlers ---------------------------------------------------------------

@when('create certificate signing request')
def request_certificate(tls):
    """Follower: make a key and a request, and publish the request.

    The layer raises this state on every unit that has not published a CSR,
    the leader included. The leader issues its own certificate instead, so
    on the leader the state stays raised and this handler does nothing.
    """
    if hookenv.is_leader():
        return
    publish_request(tls)


@hook('leader-elected', 'config-changed', 'leader-settings-changed')
def follow_generations():
    """React to key-generation, ca-generation, a new CA and new leadership.

    A leader makes sure its CA and its own certificate are current; a new
    leader has no certificate of its own yet and issues one. A follower
    makes a new request when its current one is of an older key-generation
    or was made under another CA: without set_ca, a new request is how a
    follower gets re-signed.

    This is a hook handler because on a settled unit no state of the
    relation is raised in these hooks (this charm clears ``signed certificate
    available`` once it copied the certificate), so charms.reactive has no
    relation to pass; it is looked up by name instead.
    """
    if hookenv.is_leader():
        leader_upkeep()
        return
    request = unitdata.kv().get(KV_REQUEST)
    if not request:
        return  # the first request is request_certificate's
    ca = ca_fingerprint(hookenv.leader_get(CA_CERT))
    if request['ca'] is None:
        # Made before the leader had a CA: the first CA signs it.
        request['ca'] = ca
        unitdata.kv().set(KV_REQUEST, request)
    if (request['key-generation'], request['ca']) != (hookenv.config('key-generation'), ca):
        publish_request(peer_relation())


# Defined before install_certificate on purpose: a leader that published a
# request as a follower may find it pending after a failover and sign it here,
# and the layer delivers that certificate inside set_cert(), raising 'signed
# certificate available'. Invoked after this handler, install_certificate
# copies it in the same iteration, so once per hook.
@when('sign certificate signing request')
def sign_requests(tls):
    """Leader: sign every request the layer lists, with the current CA."""
    pki = leader_upkeep()
    for unit, csr in tls.get_csr_map().items():
        tls.set_cert(unit, sign_request(pki, unit, csr))


@when('signed certificate available')
def install_certificate(tls):
    """Copy the certificate, the key of the current request and the CA into
    place, then clear the state, so that this runs once per certificate."""
    request = unitdata.kv().get(KV_REQUEST)
    key = requests_pki() / 'private' / '{}.key'.format(request['name'])
    install(key, tls.get_signed_cert(), hookenv.leader_get(CA_CERT))
    hookenv.status_set('active', 'certificate from the leader installed')
    remove_state('signed certificate available')


# --- follower side ------------------------------------------------------------

def publish_request(tls):
    """Make a new key and request with easy-rsa; publish the request file as is."""
    pki = requests_pki()
    name = unique_name(hookenv.local_unit())
    easyrsa(pki, '--req-cn={}'.format(hookenv.local_unit()), *KEY_OPTIONS,
            'gen-req', name, 'nopass')
    tls.set_csr((pki / 'reqs' / '{}.req'.format(name)).read_text())
    unitdata.kv().set(KV_REQUEST, {
        'name': name,
        'key-generation': hookenv.config('key-generation'),
        'ca': ca_fingerprint(hookenv.leader_get(CA_CERT)),
    })
    hookenv.status_set('waiting', 'waiting for a certificate from the leader')


def requests_pki():
    """This unit's easy-rsa PKI for its own keys and requests (no CA in it)."""
    pki = easyrsa_dir() / 'requests'
    if not (pki / 'reqs').is_dir():
        easyrsa(pki, 'init-pki')
    return pki


def peer_relation():
    """The tls peer relation, for hooks in which none of its states is raised."""
    name = hookenv.role_and_interface_to_relations('peers', 'tls')[0]
    return endpoint_from_name(name)


# --- leader side --------------------------------------------------------------

def leader_upkeep():
    """Leader: return the CA's PKI, with this unit's own certificate current.

    The own certificate is issued on a unit's first hook as leader, and again
    for a new CA or key-generation. (A unit that leads again keeps the one it
    issued before if it is still current.)
    """
    pki = ca_pki()
    own = {'ca': ca_fingerprint((pki / 'ca.crt').read_text()),
           'key-generation': hookenv.config('key-generation')}
    if unitdata.kv().get(KV_OWN) != own:
        issue_own_certificate(pki)
        unitdata.kv().set(KV_OWN, own)
    return pki


def ca_pki():
    """The easy-rsa PKI of the CA in leader settings, building a CA if needed.

    A new CA is built when there is none yet or ca-generation changed; a PKI
    is rebuilt from leader settings when this unit has none for that CA (it
    just became leader). Each CA has a PKI directory of its own, named after
    its certificate, so a new CA starts from a fresh easy-rsa PKI.

    Leader settings hold the CA key, which is what lets a new leader sign.
    Every unit of the application can read leader settings, hence the key.
    """
    settings = hookenv.leader_get()
    generation = str(hookenv.config('ca-generation'))
    if not settings.get(CA_CERT) or settings.get(CA_GENERATION) != generation:
        return build_ca(generation)
    pki = ca_pki_dir(settings[CA_CERT])
    if not pki.is_dir():
        restore_ca(pki, settings[CA_CERT], settings[CA_KEY])
    return pki


def build_ca(generation):
    """Build a new CA with easy-rsa and publish it in leader settings."""
    scratch = easyrsa_dir() / unique_name('new-ca')
    easyrsa(scratch, 'init-pki')
    easyrsa(scratch, '--req-cn={} CA {}'.format(hookenv.service_name(), generation),
            *KEY_OPTIONS, 'build-ca', 'nopass')
    cert = (scratch / 'ca.crt').read_text()
    pki = ca_pki_dir(cert)
    os.rename(str(scratch), str(pki))
    hookenv.leader_set({CA_CERT: cert, CA_KEY: (pki / 'private' / 'ca.key').read_text(),
                        CA_GENERATION: generation})
    hookenv.log('easyrsa-example: built a new CA, ca-generation {}'.format(generation))
    return pki


def restore_ca(pki, cert, key):
    """Make an easy-rsa CA PKI for a CA certificate and key from leader settings.

    easy-rsa has no command to import a CA, so this lays out what build-ca
    leaves besides the CA's files: the directories and the empty database
    that sign-req expects. Serial numbers are random, so they do not clash
    with those of the certificates the previous leader issued.
    """
    scratch = easyrsa_dir() / unique_name('restored-ca')
    easyrsa(scratch, 'init-pki')
    for directory in ('issued', 'certs_by_serial'):
        (scratch / directory).mkdir()
    for name in ('index.txt', 'index.txt.attr'):
        (scratch / name).write_text('')
    (scratch / 'serial').write_text('01\n')
    (scratch / 'ca.crt').write_text(cert)
    write_private(scratch / 'private' / 'ca.key', key)
    os.rename(str(scratch), str(pki))
    hookenv.log('easyrsa-example: restored the CA from leader settings')


def issue_own_certificate(pki):
    """Leader: issue this unit's certificate from its CA and install it.

    gen-req and sign() rather than build-serverClient-full, which names the
    certificate after its file and so cannot put the unit name (with its /)
    in the subject.
    """
    unit = hookenv.local_unit()
    name = unique_name(unit)
    easyrsa(pki, '--req-cn={}'.format(unit), *KEY_OPTIONS, 'gen-req', name, 'nopass')
    install(pki / 'private' / '{}.key'.format(name), sign(pki, unit, name),
            (pki / 'ca.crt').read_text())
    hookenv.status_set('active', 'leader, signing with easy-rsa')


def sign_request(pki, unit, csr):
    """Import ``unit``'s request and sign it; return the certificate file's text."""
    name = unique_name(unit)
    incoming = easyrsa_dir() / 'incoming'
    incoming.mkdir(exist_ok=True)
    request = incoming / '{}.req'.format(name)
    request.write_text(csr)
    easyrsa(pki, 'import-req', str(request), name)
    request.unlink()
    return sign(pki, unit, name)


def sign(pki, unit, name):
    """Sign the request ``name`` of the PKI as ``unit``'s server+client
    certificate; return the certificate file's text.

    ``unit`` is the name the layer pairs the request with: Juju's name of
    the unit whose relation bag holds it. The subject (CN=<unit>) and the
    SANs (subject_alt_names) come from it; of the request only the public
    key is used. A unit can put any name in its request, and its peers would
    trust a certificate naming another unit just as they trust that unit.

    easy-rsa 3.1.0's sign-req keeps the request's subject, so this runs the
    ``openssl ca`` that sign-req runs, with the same extensions, on the same
    PKI and database, and with -subj. The file it writes is what sign-req
    would have left: a dump of the certificate, then its PEM.
    """
    conf = pki / 'sign-as-unit.cnf'
    conf.write_text(SIGNING_CONF)
    extensions = pki / '{}.ext'.format(name)
    extensions.write_text(''.join(
        (Path(EASYRSA).parent / 'x509-types' / part).read_text() + '\n' for part in EXTENSIONS)
        + 'subjectAltName = {}\n'.format(subject_alt_names(unit)))
    issued = pki / 'issued' / '{}.crt'.format(name)
    run(['openssl', 'ca', '-batch', '-utf8', '-config', str(conf), '-extfile', str(extensions),
         '-days', str(CERT_DAYS), '-subj', '/CN={}'.format(unit.replace('/', '\\/')),
         '-in', str(pki / 'reqs' / '{}.req'.format(name)), '-out', str(issued)],
        cwd=pki, env=dict(os.environ, EASYRSA_PKI=str(pki)))
    extensions.unlink()
    return issued.read_text()


def subject_alt_names(unit):
    """The names a unit's certificate is valid for, all from its name:
    <app>-<n> (the unit name with / replaced by -), localhost and 127.0.0.1."""
    return 'DNS:{},DNS:localhost,IP:127.0.0.1'.format(unit.replace('/', '-'))


# --- easy-rsa and files -------------------------------------------------------

def easyrsa(pki, *args):
    """Run easy-rsa on one PKI without prompts; raise with its output on failure.

    It runs in the PKI's parent directory because easy-rsa also reads a
    ``vars`` file and its data files from the working directory.
    """
    run([EASYRSA] + list(args), cwd=pki.parent,
        env=dict(os.environ, EASYRSA_BATCH='1', EASYRSA_PKI=str(pki)))


def run(argv, cwd, env):
    """Run a command without prompts; raise with its output on failure."""
    hookenv.log('easyrsa-example: {}'.format(' '.join([Path(argv[0]).name] + argv[1:])))
    proc = subprocess.run(argv, cwd=str(cwd), env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    if proc.returncode != 0:
        raise RuntimeError('{} exited {}:\n{}'.format(
            ' '.join(argv), proc.returncode, proc.stdout))


def unique_name(prefix):
    """A name easy-rsa has not seen in any PKI of this unit.

    easy-rsa refuses to import, generate or sign under a name it already
    has, and a re-key, a CSR signed again (a new leader, a retried hook) or
    the files of a failed hook would all reuse one. A fresh name per request
    avoids all of these; earlier files stay, like easy-rsa's own index.
    """
    return '{}-{}'.format(prefix.replace('/', '-'), uuid.uuid4().hex[:12])


def ca_fingerprint(cert):
    """A short digest of a CA certificate's PEM, or None for no CA."""
    return hashlib.sha256(cert.encode()).hexdigest()[:16] if cert else None


def ca_pki_dir(cert):
    return easyrsa_dir() / 'ca-{}'.format(ca_fingerprint(cert))


def unit_dir():
    """This unit's directory; unit names contain '/', so it becomes '-'."""
    udir = Path(hookenv.config('tls-dir')) / hookenv.local_unit().replace('/', '-')
    udir.mkdir(parents=True, exist_ok=True)
    return udir


def easyrsa_dir():
    directory = unit_dir() / 'easy-rsa'
    directory.mkdir(exist_ok=True)
    return directory


def install(key_path, cert, ca):
    """Write key.pem (owner only), cert.pem and ca.pem for services to use."""
    udir = unit_dir()
    write_private(udir / 'key.pem', key_path.read_text())
    write_file(udir / 'cert.pem', cert)
    write_file(udir / 'ca.pem', ca)
    hookenv.log('easyrsa-example: installed a certificate for the key in {}'.format(key_path))


def write_private(path, text):
    """Write a secret atomically, readable by its owner only from the start."""
    tmp = path.with_name(path.name + '.tmp')
    if tmp.exists():
        tmp.unlink()
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(str(tmp), str(path))


def write_file(path, text):
    """Write a file atomically, so a service never reads half of it."""
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(str(tmp), str(path))
