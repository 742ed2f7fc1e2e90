"""interface:tls, peers role: the units of one application get TLS
certificates signed by their leader.

The layer carries CSRs, certificates and the CA certificate between units.
It never makes keys and never signs: the charm layer does both, with
whatever PKI tool it likes. README.md documents the states, the methods and
the wire format; the constants below are the single place each name lives.

Design in one paragraph: every hook, before any charm handler runs,
``_hook_start`` reconciles this unit with the relation (a follower takes a
certificate from the leader's bag when it answers its current CSR; the leader
works out which CSRs are still unanswered) and raises or clears the three
states. The methods the charm calls change local state only. When the hook
ends, ``_hook_end`` compares what this unit should publish with what its bag
holds and writes the difference in one ``relation-set``, or nothing.
"""
import base64
import binascii
import hashlib
import re

from charmhelpers.core import hookenv, unitdata
from charms.reactive import RelationBase, scopes
from charms.reactive.flags import clear_flag, is_flag_set, set_flag
from charms.reactive.relations import Conversation

INTERFACE = 'tls'

# States, named as in the original layer.
CREATE_CSR = 'create certificate signing request'
SIGN_CSR = 'sign certificate signing request'
CERT_AVAILABLE = 'signed certificate available'

# Relation keys. Every unit writes CSR_KEY in its own bag; only the leader
# writes the others, in its bag.
CSR_KEY = 'csr'
CA_KEY = 'ca'
CERT_KEY = '{}_signed_certificate'
CSR_DIGEST_KEY = '{}_csr_sha256'

# The leadership term, '<number> <unit>': in leader settings it names the
# unit whose bag followers trust (only the leader can leader-set, so no peer
# can forge it); in that unit's bag it says the bag is its own as that leader.
LEADER_KEY = 'tls-leader'

# unitdata keys that charms read.
KV_CERT = '{}_signed_certificate'
KV_SERVER_CERT = 'tls.server.certificate'
KV_CA = 'tls.ca.certificate'
# This layer's own bookkeeping, per relation name.
KV_STATE = 'interface-tls.{}'

CSR_LABEL = 'CERTIFICATE REQUEST'
CERT_LABEL = 'CERTIFICATE'
# Far above any real CSR or certificate chain; keeps a hostile peer from
# making every unit parse megabytes in every hook.
MAX_PEM_CHARS = 64 * 1024

# PEM as RFC 7468 reads it: its line breaks, encapsulation boundaries and
# the labels that mean a CSR or a certificate (the legacy ones of section 5.1
# and 7, which keytool, certreq and older OpenSSL still write, included).
_LINE_BREAK = re.compile(r'\r\n|\r|\n')
_BOUNDARY = re.compile(r'-----(BEGIN|END) ([^\r\n]*?)-----')
_LABELS = {'CERTIFICATE REQUEST': CSR_LABEL, 'NEW CERTIFICATE REQUEST': CSR_LABEL,
           'CERTIFICATE': CERT_LABEL, 'X509 CERTIFICATE': CERT_LABEL,
           'X.509 CERTIFICATE': CERT_LABEL}
# Binary junk, never explanatory text: C0 controls but tab and line breaks.
_CONTROL = re.compile(r'[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]')
_DER_SEQUENCE = 0x30
_DER_INTEGER = 0x02
_DER_EXPLICIT_0 = 0xA0


class TlsPeers(RelationBase):
    """The peer relation of ``interface: tls``.

    ``scope`` stays ``scopes.UNIT`` as in the original layer, but this
    layer's states describe this unit, not one remote peer: they are bound
    to one relation-wide conversation that exists in every hook. That is what
    lets ``endpoint_from_flag`` hand this object to handlers written as
    ``def sign(tls)`` in any hook (config-changed, update-status, ...), where
    the default per-remote-unit conversation cannot be determined.
    """

    scope = scopes.UNIT

    def __init__(self, relation_name, conversations=None):
        super().__init__(relation_name, conversations or [_conversation(relation_name)])

    # Charm-facing API -----------------------------------------------------

    def set_csr(self, csr):
        """Publish this unit's CSR (PEM) and clear ``create certificate
        signing request``.

        A CSR different from the published one is a re-key: the delivered
        certificate no longer matches the unit's key, so it is withdrawn and
        ``signed certificate available`` clears until the leader answers.
        Raises ValueError unless ``csr`` holds exactly one PEM CERTIFICATE
        REQUEST (text around it, as tools print, is ignored); text holding a
        private key is refused before anything is stored.
        """
        pem = _normalize(csr, CSR_LABEL)
        state = self._state()
        if pem != state['csr']:
            if state['csr']:
                state['previous'] = _digest(state['csr'])
            state['csr'] = pem
            me = hookenv.local_unit()
            unitdata.kv().unset(KV_CERT.format(me))
            unitdata.kv().unset(KV_SERVER_CERT)
            self._save(state)
        self._update_states(state)

    def get_csr_map(self):
        """On the leader, ``{unit_name: csr_pem}`` of the CSRs still waiting
        for a certificate (the leader's own included); ``{}`` elsewhere."""
        if not _is_leader() or self._relation_id() is None:
            return {}
        return self._pending(self._state())

    def set_cert(self, unit_name, certificate):
        """On the leader, answer ``unit_name``'s current CSR with
        ``certificate`` (PEM, optionally followed by its chain).

        For the leader's own unit the certificate is delivered at once; for
        the others it is published when the hook ends, together with every
        other answer of this hook. Answering an already answered CSR again
        (renewal) is allowed. Raises ValueError on a non-leader, for a unit
        with no valid CSR, for PEM that is not certificates and for a
        certificate whose public key is not the CSR's.
        """
        _require_leader('set_cert')
        if self._relation_id() is None:
            raise ValueError(f'set_cert: relation {self.relation_name} is not available in this hook')
        state = self._state()
        csr = self._csrs(state).get(unit_name)
        if csr is None:
            raise ValueError(f'set_cert: {unit_name!r} has no valid CSR on relation {self.relation_name}')
        try:
            pem = _checked_cert(certificate, csr)
        except ValueError as error:
            raise ValueError(f'set_cert: certificate for {unit_name}: {error}') from None
        state['issued'][unit_name] = {'cert': pem, 'csr': _digest(csr), 'ca': _ca_digest()}
        self._save(state)
        if unit_name == hookenv.local_unit():
            self._deliver(pem)
        self._update_states(state)

    def get_signed_cert(self):
        """This unit's certificate for its current CSR, or None."""
        return unitdata.kv().get(KV_CERT.format(hookenv.local_unit()))

    def set_ca(self, ca):
        """On the leader, publish the CA certificate(s) units should trust.

        A CA different from the current one makes every certificate stale,
        so every CSR becomes pending again. Raises ValueError on a
        non-leader and for PEM that is not certificates.
        """
        _require_leader('set_ca')
        pem = _normalize(ca, CERT_LABEL, many=True)
        if pem != unitdata.kv().get(KV_CA):
            unitdata.kv().set(KV_CA, pem)
        self._update_states(self._state())

    def get_ca(self):
        """The CA certificate(s) this unit trusts, as published by the
        leader, or None."""
        return unitdata.kv().get(KV_CA)

    # Per-hook work ----------------------------------------------------------

    def _reconcile(self):
        """Bring local state up to date with the relation; runs before the
        charm's handlers in every hook."""
        rid = self._relation_id()
        if rid is None:
            return
        state = self._state()
        me = hookenv.local_unit()
        if not state['csr']:
            self._adopt_published_csr(state)
        term = _leader_get(LEADER_KEY)
        named = _term_unit(term)
        trusted = me if _is_leader() else named
        remote = hookenv.remote_unit()
        if remote and remote != trusted and hookenv.relation_id() == rid:
            _warn_forgeries(rid, remote, me, trusted)
        if _is_leader():
            if named != me:
                # A new term: catch up with the previous leader as its
                # follower would, carry over the answers it published that
                # still hold, and ask again for every other CSR.
                bag = self._leader_bag(named, term)
                if bag is not None:
                    self._receive(state, named, bag)
                state.update(issued=self._inherit(state, bag),
                             term=f'{_term_number(term) + 1} {me}')
                hookenv.leader_set({LEADER_KEY: state['term']})
            elif state['term'] != term:
                # Leader settings name this unit under a term its own state
                # does not know: the hook that began the term failed after
                # its leader-set, and what it knew of the previous leader
                # went with it.
                state.update(issued={}, term=term)
            live = set(self._peers()) | {me}
            state['issued'] = {u: r for u, r in state['issued'].items() if u in live}
        else:
            if state['term']:
                # Leadership ended: the answers are the next leader's now.
                state.update(issued={}, term=None)
            bag = self._leader_bag(named, term)
            if bag is not None:
                self._receive(state, named, bag)
        self._save(state)
        self._update_states(state)

    def _publish(self):
        """Write what differs between what this unit should publish and
        what its bag holds, in one relation-set; runs when the hook ends."""
        rid = self._relation_id()
        if rid is None:
            return
        state = self._state()
        wanted = {CSR_KEY: state['csr']}
        if _is_leader():
            wanted[LEADER_KEY] = state['term']
            wanted[CA_KEY] = unitdata.kv().get(KV_CA)
            for unit, record in state['issued'].items():
                wanted[CERT_KEY.format(unit)] = record['cert']
                wanted[CSR_DIGEST_KEY.format(unit)] = record['csr']
        bag = self._own_bag()
        changes = {key: value for key, value in wanted.items() if (bag.get(key) or None) != value}
        changes.update({key: None for key in bag if _is_layer_key(key) and key not in wanted})
        if changes:
            hookenv.relation_set(rid, changes)

    def _adopt_published_csr(self, state):
        """Take over a CSR this unit already published, e.g. with the
        original layer before an upgrade, so the charm is not asked to re-key
        for nothing."""
        try:
            state['csr'] = _normalize(self._own_bag().get(CSR_KEY), CSR_LABEL)
        except ValueError:
            pass

    def _leader_bag(self, unit, term):
        """The bag of ``unit``, named leader by leader settings, once it is
        that leader's: it carries the same term. Leader settings change the
        moment a leader writes them, its bag only when its hook succeeds, so
        until then the bag still holds what the unit wrote before (its
        answers from an earlier term, or anything a follower writes)."""
        if not unit or unit == hookenv.local_unit():
            return None
        if unit not in self._peers() and unit != hookenv.remote_unit():
            # A leader that is leaving can still be read in the -departed
            # hook for it, which may be its successor's first as leader.
            return None
        bag = hookenv.relation_get(rid=self._relation_id(), unit=unit) or {}
        if bag.get(LEADER_KEY) != term:
            hookenv.log(f'interface-tls: {unit} leads ({term}) but its bag is not yet its own',
                        hookenv.DEBUG)
            return None
        return bag

    def _inherit(self, state, bag):
        """The answers in a previous leader's ``bag`` that still hold: for
        each unit's current CSR, under the CA this unit knows. Re-using them
        spares every unit a new certificate (and a service restart) when
        leadership moves between live units."""
        if bag is None:
            return {}
        try:
            their_ca = _normalize(bag[CA_KEY], CERT_LABEL, many=True) if bag.get(CA_KEY) else None
        except ValueError:
            return {}
        if their_ca != unitdata.kv().get(KV_CA):
            return {}
        inherited = {}
        for unit, csr in self._csrs(state).items():
            digest = _digest(csr)
            try:
                if bag.get(CSR_DIGEST_KEY.format(unit)) == digest:
                    cert = _checked_cert(bag.get(CERT_KEY.format(unit)), csr)
                    inherited[unit] = {'cert': cert, 'csr': digest, 'ca': _ca_digest()}
            except ValueError:
                continue
        return inherited

    def _receive(self, state, leader, bag):
        """Take the CA and this unit's certificate from the leader's bag."""
        me = hookenv.local_unit()
        if bag.get(CA_KEY):
            try:
                unitdata.kv().set(KV_CA, _normalize(bag[CA_KEY], CERT_LABEL, many=True))
            except ValueError as error:
                _warn(leader, CA_KEY, error)
        certificate = bag.get(CERT_KEY.format(me))
        digest = bag.get(CSR_DIGEST_KEY.format(me))
        if certificate or digest:
            self._accept(state, leader, certificate, digest)

    def _accept(self, state, leader, certificate, digest):
        """Deliver the leader's certificate if it answers this unit's current
        CSR and carries the CSR's public key."""
        me = hookenv.local_unit()
        key, digest_key = CERT_KEY.format(me), CSR_DIGEST_KEY.format(me)
        if not state['csr']:
            _warn(leader, key, 'this unit has published no CSR')
            return
        if digest is None:
            _warn(leader, key, f'no {digest_key} binds it to a CSR')
            return
        if certificate is None:
            _warn(leader, digest_key, f'there is no {key} next to it')
            return
        if digest != _digest(state['csr']):
            if digest == state['previous']:
                hookenv.log(f'interface-tls: {key} from {leader} answers the previous CSR;'
                            ' waiting for the current one', hookenv.DEBUG)
            else:
                _warn(leader, digest_key, "it is not the digest of this unit's CSR")
            return
        try:
            pem = _checked_cert(certificate, state['csr'])
        except ValueError as error:
            _warn(leader, key, error)
            return
        if pem != self.get_signed_cert():
            self._deliver(pem)

    def _deliver(self, pem):
        """Store this unit's new certificate and raise ``signed certificate
        available`` anew: handlers on it run again in this hook even when it
        was already raised (renewal, new CA, a leader answering itself)."""
        me = hookenv.local_unit()
        unitdata.kv().set(KV_CERT.format(me), pem)
        unitdata.kv().set(KV_SERVER_CERT, pem)
        hookenv.log(f'interface-tls: certificate for {me} delivered', hookenv.INFO)
        self._toggle(CERT_AVAILABLE, False)
        self._toggle(CERT_AVAILABLE, True)

    def _pending(self, state):
        """The leader's CSRs not yet answered under the current CA."""
        ca = _ca_digest()
        pending = {}
        for unit, csr in self._csrs(state).items():
            record = state['issued'].get(unit, {})
            if (record.get('csr'), record.get('ca')) != (_digest(csr), ca):
                pending[unit] = csr
        return pending

    def _csrs(self, state):
        """Valid CSRs of this unit and of every peer in relation-list."""
        csrs = {}
        if state['csr']:
            csrs[hookenv.local_unit()] = state['csr']
        rid = self._relation_id()
        for unit in self._peers():
            csr = _peer_csr(rid, unit)
            if csr:
                csrs[unit] = csr
        return csrs

    def _update_states(self, state):
        in_relation = self._relation_id() is not None
        self._toggle(CREATE_CSR, in_relation and not state['csr'])
        self._toggle(SIGN_CSR, in_relation and _is_leader() and bool(self._pending(state)))
        # Raised by _deliver. A charm may clear it once it has copied the
        # certificate, as the original layer's consumers do; it then stays
        # clear until the next certificate, so their copy (and restart)
        # handlers run once per certificate, not once per hook.
        held = in_relation and bool(self.get_signed_cert())
        self._toggle(CERT_AVAILABLE, held and is_flag_set(CERT_AVAILABLE))

    def _toggle(self, flag, active):
        """Set ``flag`` bound to this relation's conversation, or clear it.

        The value is written whole (not appended to) so that flags left by
        the original layer, bound to per-unit conversations, are replaced.
        """
        if active:
            set_flag(flag, {'relation': self.relation_name,
                            'conversations': [self._conversations[0].key]})
        elif is_flag_set(flag):
            clear_flag(flag)

    def _relation_id(self):
        """The relation's id, or None while this unit cannot use it: before
        it exists, and during ``install``, where Juju 3 lists the peer
        relation but refuses relation-get and relation-set on it (Juju 2
        does not list it yet)."""
        if hookenv.hook_name() == 'install':
            return None
        ids = hookenv.relation_ids(self.relation_name)
        return ids[0] if ids else None

    def _peers(self):
        rid = self._relation_id()
        return hookenv.related_units(rid) if rid else []

    def _own_bag(self):
        return hookenv.relation_get(rid=self._relation_id(), unit=hookenv.local_unit()) or {}

    def _state(self):
        """This unit's bookkeeping for the relation: ``csr`` it published
        (and the digest of the ``previous`` one), the leadership ``term`` it
        holds, if any, and the answers it ``issued`` in it ({unit: {cert,
        csr digest, ca digest}})."""
        state = {'csr': None, 'previous': None, 'term': None, 'issued': {}}
        state.update(unitdata.kv().get(KV_STATE.format(self.relation_name), {}))
        return state

    def _save(self, state):
        unitdata.kv().set(KV_STATE.format(self.relation_name), state)


def _conversation(relation_name):
    """The relation-wide conversation this layer's states are bound to,
    stored so that ``Conversation.load`` finds it in any later hook."""
    conversation = Conversation(namespace=relation_name, units=[], scope=scopes.GLOBAL)
    unitdata.kv().set(conversation.key, Conversation.serialize(conversation))
    return conversation


def _relations():
    return [TlsPeers(name) for name in hookenv.role_and_interface_to_relations('peers', INTERFACE)]


def _hook_start():
    for relation in _relations():
        relation._reconcile()
    hookenv.atexit(_hook_end)


def _hook_end():
    for relation in _relations():
        relation._publish()


# Hook tool answers that do not change during a hook, memoized in
# charmhelpers' per-hook cache like relation-get and relation-list.
@hookenv.cached
def _is_leader():
    return hookenv.is_leader()


@hookenv.cached
def _leader_get(key):
    return hookenv.leader_get(key)


@hookenv.cached
def _peer_csr(rid, unit):
    """A peer's CSR in normal form, or None; warns once per hook about a
    value that is not a CSR."""
    value = hookenv.relation_get(CSR_KEY, unit, rid)
    if not value:
        return None
    try:
        return _normalize(value, CSR_LABEL)
    except ValueError as error:
        _warn(unit, CSR_KEY, error)
        return None


def _require_leader(method):
    if not _is_leader():
        raise ValueError(f'{method}: only the leader may call it; {hookenv.local_unit()} is not the leader')


def _warn_forgeries(rid, remote, me, leader):
    """Log every certificate-carrying key a non-leader peer wrote for this
    unit; nothing in that bag is ever used.

    A bag that carries a leadership term is a former leader's: its answers
    stay until that unit's next hook clears them, which is no news.
    """
    bag = hookenv.relation_get(rid=rid, unit=remote) or {}
    if bag.get(LEADER_KEY):
        return
    for key in (CERT_KEY.format(me), CSR_DIGEST_KEY.format(me), CA_KEY):
        if bag.get(key):
            _warn(remote, key, f'only the leader ({leader}) publishes certificates')


def _warn(unit, key, reason):
    hookenv.log(f'interface-tls: ignored {key!r} from {unit}: {reason}', hookenv.WARNING)


def _term_number(term):
    try:
        return int(term.split()[0])
    except (AttributeError, IndexError, ValueError):
        return 0


def _term_unit(term):
    """The unit a ``'<number> <unit>'`` term names, or None."""
    parts = term.split() if isinstance(term, str) else []
    return parts[1] if len(parts) == 2 else None


def _is_layer_key(key):
    return key in (CSR_KEY, CA_KEY, LEADER_KEY) or key.endswith(
        (CERT_KEY.format(''), CSR_DIGEST_KEY.format('')))


def _checked_cert(certificate, csr):
    """``certificate`` (leaf first, then any chain) in normal form, if its
    leaf carries the public key of ``csr``; ValueError otherwise."""
    ders = _pem_ders(certificate, CERT_LABEL, many=True)
    if _public_key(ders[0], CERT_LABEL) != _public_key(_pem_ders(csr, CSR_LABEL)[0], CSR_LABEL):
        raise ValueError("its public key is not the one in the CSR it answers")
    return _pem(CERT_LABEL, ders)


def _ca_digest():
    ca = unitdata.kv().get(KV_CA)
    return hashlib.sha256(ca.encode()).hexdigest() if ca else None


def _digest(csr_pem):
    """SHA-256 of a CSR's DER: immune to PEM line breaks and trailing
    newlines, so re-encoding a CSR is not a re-key."""
    return hashlib.sha256(_pem_ders(csr_pem, CSR_LABEL)[0]).hexdigest()


# PEM and DER ----------------------------------------------------------------

def _normalize(text, label, many=False):
    """Validate ``text`` as PEM of ``label`` blocks and return it in one
    canonical form (64-column base64, one trailing newline)."""
    return _pem(label, _pem_ders(text, label, many))


def _pem(label, ders):
    out = []
    for der in ders:
        body = base64.b64encode(der).decode('ascii')
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        out.append('-----BEGIN {0}-----\n{1}\n-----END {0}-----\n'.format(label, '\n'.join(lines)))
    return ''.join(out)


def _pem_ders(text, label, many=False):
    """The DER of each ``label`` block in ``text``; ValueError says what is
    wrong.

    PEM is read as RFC 7468 describes it, because that is what real tools
    write: text outside the blocks is explanatory and ignored (easy-rsa and
    ``openssl x509 -text`` put a dump of the certificate before it,
    ``openssl pkcs12 -nokeys`` puts ``Bag Attributes`` lines before each
    block), lines may end in CRLF, and legacy labels (``NEW CERTIFICATE
    REQUEST``) count as their modern one. What is refused: text holding a
    private key anywhere; a block of any other kind (it is not explanatory
    text, and guessing which block was meant is how a wrong certificate gets
    accepted); more than one block unless ``many``; a BEGIN or END line that
    does not pair up; bad base64; DER that is not what the label says.
    """
    if not isinstance(text, str):
        raise ValueError(f'expected PEM text, got {type(text).__name__}')
    if len(text) > MAX_PEM_CHARS:
        raise ValueError(f'{len(text)} characters, more than the {MAX_PEM_CHARS} allowed')
    if 'PRIVATE KEY' in text:
        raise ValueError('it contains a private key, which must never leave its unit')
    if _CONTROL.search(text):
        raise ValueError('it contains control characters')
    blocks = _pem_blocks(text)
    if not blocks:
        raise ValueError(f'no PEM {label} block')
    if len(blocks) > 1 and not many:
        raise ValueError(f'{len(blocks)} PEM blocks where exactly one {label} is expected')
    ders = []
    for found, body in blocks:
        if _LABELS.get(found) != label:
            raise ValueError(f'a PEM {found} block where {label} is expected')
        try:
            der = base64.b64decode(''.join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f'the {label} block is not valid base64') from None
        _public_key(der, label)
        ders.append(der)
    return ders


def _pem_blocks(text):
    """(label, base64 body) of each PEM block in ``text``, skipping the
    explanatory text around them.

    A boundary must be a line of its own (blanks around it allowed); a
    boundary anywhere else, or one left open, means the text is not PEM,
    not that it is explanation.
    """
    blocks, label, body = [], None, []
    for number, line in enumerate(_LINE_BREAK.split(text), 1):
        boundary = _BOUNDARY.fullmatch(line.strip(' \t'))
        if boundary is None:
            if '-----BEGIN' in line or '-----END' in line:
                raise ValueError(f'line {number}: a PEM boundary that is not a line of its own')
            if label is not None:
                body.append(line)
        elif label is None and boundary.group(1) == 'BEGIN':
            label, body = boundary.group(2), []
        elif label is not None and boundary.groups() == ('END', label):
            blocks.append((label, ''.join(body)))
            label = None
        else:
            raise ValueError(f'line {number}: -----{boundary.group(1)} {boundary.group(2)}----- '
                             f'does not pair up with the line before it')
    if label is not None:
        raise ValueError(f'the PEM {label} block has no END line')
    return blocks


def _public_key(der, label):
    """The DER SubjectPublicKeyInfo inside a CSR or certificate.

    Walking just enough ASN.1 to find it checks the structure (a truncated
    or foreign blob fails here) and is what binds a certificate to a CSR:
    both must carry the same public key.
    """
    kind = 'certificate request' if label == CSR_LABEL else 'certificate'
    tag, start, end = _der_element(der, 0, len(der))
    outer = _der_children(der, start, end) if tag == _DER_SEQUENCE and end == len(der) else []
    if len(outer) != 3 or outer[0][0] != _DER_SEQUENCE:
        raise ValueError(f'the DER is not a {kind}')
    fields = _der_children(der, outer[0][2], outer[0][3])
    if label == CSR_LABEL:
        expected = [_DER_INTEGER, _DER_SEQUENCE, _DER_SEQUENCE]
    else:
        if fields and fields[0][0] == _DER_EXPLICIT_0:
            fields = fields[1:]
        # serial, signature algorithm, issuer, validity, subject, key
        expected = [_DER_INTEGER] + [_DER_SEQUENCE] * 5
    if [field[0] for field in fields[:len(expected)]] != expected:
        raise ValueError(f'the DER is not a {kind}')
    _, head, _, tail = fields[len(expected) - 1]
    return der[head:tail]


def _der_children(der, start, end):
    """(tag, element start, value start, value end) of each DER element
    between start and end."""
    children = []
    while start < end:
        tag, value_start, value_end = _der_element(der, start, end)
        children.append((tag, start, value_start, value_end))
        start = value_end
    return children


def _der_element(der, start, end):
    if start + 2 > end:
        raise ValueError('truncated DER')
    tag, length = der[start], der[start + 1]
    start += 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 4 or start + size > end:
            raise ValueError('bad DER length')
        length = int.from_bytes(der[start:start + size], 'big')
        start += size
    if start + length > end:
        raise ValueError('truncated DER')
    return tag, start, start + length


hookenv.atstart(_hook_start)
