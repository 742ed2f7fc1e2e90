"""interface:tls, peers role: the units of one application get TLS
certificates signed by their leader.

The layer carries CSRs, certificates and the CA certificate between units.
It never makes keys and never signs: the charm layer does both, with
whatever PKI tool it likes. README.md documents the states, the methods and
the wire format; the constants below are the single place each name lives.

Design: each unit publishes its CSR in its own bag; the leader publishes
the CA and its answers in the application bag, which only the leader can
write and which outlives any one leader. ``_hook_start`` takes this unit's
certificate from there and sets the states before any handler runs; the
charm's calls change local state only; ``_hook_end`` writes what changed.
"""
import hashlib
import re
import time

from charmhelpers.core import hookenv, unitdata
from charms.reactive import RelationBase, scopes
from charms.reactive.flags import clear_flag, is_flag_set, set_flag
from charms.reactive.relations import Conversation

try:  # in a charm, hooks/relations/tls/ is a package: relations.tls.peers
    from .pem import (
        CERT_LABEL,
        CSR_LABEL,
        _issued_by,
        _names,
        _normalize,
        _pem,
        _pem_ders,
        _public_key,
        _validity,
    )
except ImportError:  # the module alone, as the tests import it
    from pem import (
        CERT_LABEL,
        CSR_LABEL,
        _issued_by,
        _names,
        _normalize,
        _pem,
        _pem_ders,
        _public_key,
        _validity,
    )

INTERFACE = 'tls'

# States, named as in the original layer.
CREATE_CSR = 'create certificate signing request'
SIGN_CSR = 'sign certificate signing request'
CERT_AVAILABLE = 'signed certificate available'

# Relation keys. Every unit writes CSR_KEY in its own bag, and CA_ACK_KEY
# there during a CA rotation; the leader writes the others in the
# application bag: the CA answers are issued under, during a rotation the
# next one, after it the one it replaced (until that expires).
CSR_KEY = 'csr'
CA_ACK_KEY = 'ca_ack'
CA_KEY = 'ca'
CA_NEXT_KEY = 'ca_next'
CA_PREVIOUS_KEY = 'ca_previous'
CA_KEYS = (CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY)
CERT_KEY = '{}_signed_certificate'
CSR_DIGEST_KEY = '{}_csr_sha256'

# unitdata keys that charms read; the expiries are notAfter in ISO 8601 UTC.
KV_CERT = '{}_signed_certificate'
KV_SERVER_CERT = 'tls.server.certificate'
KV_SERVER_CERT_EXPIRY = 'tls.server.certificate.expiry'
KV_CA = 'tls.ca.certificate'
KV_CA_EXPIRY = 'tls.ca.certificate.expiry'
# This layer's own bookkeeping, per relation name.
KV_STATE = 'interface-tls.{}'

# Of a certificate's lifetime: the leader renews it from RENEW_AT on (as
# cert-manager does), the unit holding it warns from WARN_AT on.
RENEW_AT = 2 / 3
WARN_AT = 0.9

# Digests a unit remembers of the CSRs it replaced and of the CAs its charm
# gave as leader, each (see TlsPeers._state).
MAX_DIGESTS = 32

_ANSWER_KEY = re.compile('(.+)({}|{})'.format(*(re.escape(key.format(''))
                                                for key in (CERT_KEY, CSR_DIGEST_KEY))))

# Answers set_cert() made in this hook, {relation name: {unit: (certificate,
# CSR digest)}}, and the CA set_ca() gave, {relation name: (CA, emergency)},
# until _hook_end publishes them. A hook is one process: a failed hook loses
# them, as Juju loses its relation writes.
_unpublished = {}
_requested_ca = {}


class TlsPeers(RelationBase):
    """The peer relation of ``interface: tls``.

    The states describe this unit, not one peer, so they are bound to one
    relation-wide conversation (``scopes.GLOBAL``) that exists in every hook:
    ``endpoint_from_flag`` can hand this object to ``def sign(tls)`` handlers
    anywhere, and the inherited ``is_state()``, ``get_remote()`` ... work
    outside relation hooks too."""

    scope = scopes.GLOBAL

    def __init__(self, relation_name, conversations=None):
        super().__init__(relation_name, conversations or [_conversation(relation_name)])

    # Charm-facing API -----------------------------------------------------

    def set_csr(self, csr):
        """Publish this unit's CSR (PEM). A different CSR is a re-key: the
        certificate for the old key is withdrawn until the leader answers.
        ValueError unless ``csr`` holds exactly one CSR with a key a CA will
        echo back; a private key is refused before anything is stored."""
        try:
            pem = _normalize(csr, CSR_LABEL)
        except ValueError as error:
            raise ValueError(f'set_csr: {error}') from None
        state = self._state()
        if pem != state['csr']:
            replaced = state['replaced'] + ([_digest(state['csr'])] if state['csr'] else [])
            # A CSR made again (the same key and names, signed deterministically) is current.
            state['replaced'] = [digest for digest in replaced if digest != _digest(pem)][-MAX_DIGESTS:]
            state['csr'] = pem
            for key in (KV_CERT.format(hookenv.local_unit()), KV_SERVER_CERT, KV_SERVER_CERT_EXPIRY):
                unitdata.kv().unset(key)
            self._save(state)
        self._update_states()

    def get_csr_map(self):
        """On the leader, ``{unit_name: csr_pem}`` of the CSRs still waiting
        for a certificate (the leader's own included); ``{}`` elsewhere and
        where the relation cannot be used."""
        if not _is_leader() or self._relation_id() is None:
            return {}
        return self._pending()

    def set_cert(self, unit_name, certificate):
        """On the leader, answer ``unit_name``'s current CSR with
        ``certificate`` (PEM, leaf first). The leader's own is delivered at
        once; all answers of a hook are published when it ends. ValueError
        on a non-leader, where the relation cannot be used, for a unit with
        no valid CSR, for anything but certificates for the CSR's key, and
        for one issued by none of the CAs (_cas) once there is one."""
        _require_leader('set_cert')
        if self._relation_id() is None:
            raise ValueError(f'set_cert: relation {self.relation_name} is not available in this hook')
        csrs = self._csrs()
        csr = csrs.get(unit_name)
        if csr is None:  # name the candidates: a typo is the likeliest cause
            raise ValueError(f'set_cert: {unit_name!r} has no valid CSR on relation {self.relation_name}; '
                             f"units with one: {', '.join(sorted(csrs)) or 'none'} (unit names are "
                             '<application>/<number>)')
        try:
            pem = _checked_cert(certificate, csr, self._cas().values())
        except ValueError as error:
            raise ValueError(f'set_cert: certificate for {unit_name}: {error}') from None
        self._warn_if_it_outlives_its_ca(unit_name, pem)
        self._note_stalled_renewal(unit_name, csr, pem)
        _unpublished.setdefault(self.relation_name, {})[unit_name] = (pem, _digest(csr))
        if unit_name == hookenv.local_unit():
            self._deliver(pem)
        self._update_states()

    def get_signed_cert(self):
        """This unit's certificate for its current CSR, or None."""
        return unitdata.kv().get(KV_CERT.format(hookenv.local_unit()))

    def get_signed_cert_expiry(self):
        """When this unit's certificate expires (its notAfter, ISO 8601 in
        UTC, as ``2027-03-01T12:00:00Z``), or None without a certificate."""
        return unitdata.kv().get(KV_SERVER_CERT_EXPIRY)

    def set_ca(self, ca, emergency=False):
        """On the leader, the CA certificate(s) to issue under. A different
        one is rotated to: every unit trusts both first, then every CSR is
        answered again under it, and the old one stays trusted until it
        expires. ``emergency=True`` (the old CA's key is compromised) drops
        the old one at once and answers every CSR again, breaking handshakes
        between units until each has its new certificate. ValueError on a
        non-leader and for anything but certificates."""
        _require_leader('set_ca')
        try:
            pem = _normalize(ca, CERT_LABEL, many=True)
        except ValueError as error:
            raise ValueError(f'set_ca: {error}') from None
        self._warn_if_the_ca_was_lost(pem)
        _requested_ca[self.relation_name] = (pem, emergency)
        self._take_ca()
        self._update_states()

    def get_ca(self):
        """The CA certificate(s) this unit trusts, as the leader published
        them (during and after a rotation, the old and the new), or None."""
        return unitdata.kv().get(KV_CA)

    def get_ca_expiry(self):
        """When the first of those CA certificates expires (ISO 8601 in
        UTC), or None."""
        return unitdata.kv().get(KV_CA_EXPIRY)

    # Every hook, before the charm's handlers ------------------------------

    def _reconcile(self):
        """Bring this unit up to date with the relation; set the states."""
        if self._relation_id() is not None:
            self._adopt_published_csr()
            self._warn_about_answers_in_the_remote_bag()
            self._take_ca(warn=True)
            self._take_certificate()
            self._warn_if_expiring()
        self._update_states()

    def _adopt_published_csr(self):
        """Take over a CSR published before this layer kept state (by the
        original layer), so the charm is not asked to re-key for nothing."""
        state = self._state()
        if state['csr']:
            return
        found = self._unit_bag().get(CSR_KEY)
        try:
            state['csr'] = _normalize(found, CSR_LABEL)
        except ValueError:
            return
        self._save(state)  # _publish puts it back in normal form if it is not

    def _warn_about_answers_in_the_remote_bag(self):
        """Log answers for this unit in the bag of the unit this hook is
        about: a forgery, or the original layer's leader. Answers are only
        ever taken from the application bag."""
        remote, me = hookenv.remote_unit(), hookenv.local_unit()
        if not remote or hookenv.relation_type() != self.relation_name:
            return
        for key in (CERT_KEY.format(me), CSR_DIGEST_KEY.format(me)) + CA_KEYS:
            if self._unit_bag(remote).get(key):
                _warn(remote, key, 'certificates are taken only from the application bag, '
                      'which only the leader writes')

    def _take_ca(self, warn=False):
        """Trust every CA of _cas(). A change of trust raises ``signed
        certificate available`` anew while this unit holds a certificate: a
        charm that cleared it must still write its new ca.pem."""
        cas = self._cas(warn)
        bundle = _pem(CERT_LABEL, list(dict.fromkeys(der for key in CA_KEYS if cas[key]
                                                     for der in _pem_ders(cas[key], CERT_LABEL, True))))
        if bundle and bundle != unitdata.kv().get(KV_CA):
            _store_ca(bundle)
            if self.get_signed_cert():
                self._raise_available()

    def _take_certificate(self):
        """Deliver this unit's certificate from the application bag if it
        answers its current CSR with the CSR's key; say why not otherwise."""
        me = hookenv.local_unit()
        key, digest_key = CERT_KEY.format(me), CSR_DIGEST_KEY.format(me)
        published = self._published()
        certificate, digest = published.get(key), published.get(digest_key)
        if not (certificate or digest):
            return
        state = self._state()
        if not state['csr']:
            _warn(_APP_BAG, key, 'this unit has published no CSR')
        elif digest is None:
            _warn(_APP_BAG, key, f'no {digest_key} binds it to a CSR')
        elif certificate is None:
            _warn(_APP_BAG, digest_key, f'there is no {key} next to it')
        elif digest in state['replaced']:
            hookenv.log(f'interface-tls: {key} answers an earlier CSR; waiting for the current one',
                        hookenv.DEBUG)
        elif digest != _digest(state['csr']):
            _warn(_APP_BAG, digest_key, "it is not the digest of this unit's CSR")
        else:
            try:
                pem = _checked_cert(certificate, state['csr'], self._cas().values())
            except ValueError as error:
                _warn(_APP_BAG, key, error)
                return
            if pem != self.get_signed_cert():
                self._deliver(pem)

    def _deliver(self, pem):
        """Store this unit's new certificate and raise ``signed certificate
        available`` anew, so its handlers run again even if it was raised."""
        me = hookenv.local_unit()
        unitdata.kv().set(KV_CERT.format(me), pem)
        unitdata.kv().set(KV_SERVER_CERT, pem)
        unitdata.kv().set(KV_SERVER_CERT_EXPIRY, _iso(_expiry(pem)))
        hookenv.log(f'interface-tls: certificate for {me} delivered', hookenv.INFO)
        self._raise_available()

    def _raise_available(self):
        self._toggle(CERT_AVAILABLE, False)
        self._toggle(CERT_AVAILABLE, True)

    def _warn_if_expiring(self):
        """Say so while this unit's certificate is in the last tenth of its
        lifetime: the leader renews from two thirds on, so none is coming
        (the leader is down, or its charm does not sign what is listed)."""
        pem = self.get_signed_cert()
        if pem and _lifetime_passed(pem) >= WARN_AT:
            hookenv.log(f'interface-tls: the certificate of {hookenv.local_unit()} expires at '
                        f'{self.get_signed_cert_expiry()} and no renewal has come', hookenv.WARNING)

    def _update_states(self):
        if _relation_refused():
            return  # nothing is known here; the states stay as the last hook left them
        in_relation = self._relation_id() is not None
        self._toggle(CREATE_CSR, in_relation and not self._state()['csr'])
        self._toggle(SIGN_CSR, in_relation and _is_leader() and bool(self._pending()))
        # Raised by _deliver. A charm that clears it (as the original's
        # consumers do) runs its copy and restart handlers once per
        # certificate, not once per hook.
        held = in_relation and bool(self.get_signed_cert())
        self._toggle(CERT_AVAILABLE, held and is_flag_set(CERT_AVAILABLE))

    def _toggle(self, flag, active):
        """Set ``flag`` bound to this relation's conversation, or clear it;
        written whole, so flags the original layer bound to per-unit
        conversations are replaced."""
        if active:
            set_flag(flag, {'relation': self.relation_name,
                            'conversations': [self._conversations[0].key]})
        elif is_flag_set(flag):
            clear_flag(flag)

    # On the leader ---------------------------------------------------------

    def _pending(self):
        """The CSRs (``{unit: csr}``) with no answer that still holds: made
        in this hook, or published for the same CSR, with the CSR's key,
        under the CA this leader publishes."""
        if self._cas()[CA_NEXT_KEY]:
            return {}  # nothing is issued while a unit may not trust the CA it would be issued under
        made = {unit: digest for unit, (_, digest) in _unpublished.get(self.relation_name, {}).items()}
        new_ca = self._ca_changes()
        return {unit: csr for unit, csr in self._csrs().items()
                if made.get(unit) != _digest(csr) and (new_ca or not self._answered(unit, csr))}

    def _answered(self, unit, csr):
        """Whether the application bag answers ``unit``'s ``csr`` under the
        issuing CA with a certificate not yet due."""
        answer = self._answer(unit, csr, [self._cas()[CA_KEY]])
        return bool(answer) and not self._due(unit, answer)

    def _answer(self, unit, csr, cas):
        """The certificate the application bag holds for ``unit`` if it
        answers ``csr`` (digest, public key) under one of ``cas``, else None."""
        published = self._published()
        if published.get(CSR_DIGEST_KEY.format(unit)) != _digest(csr):
            return None
        try:
            return _checked_cert(published.get(CERT_KEY.format(unit)), csr, cas)
        except ValueError:
            return None

    def _due(self, unit, certificate):
        """Whether ``certificate`` is to be renewed: past RENEW_AT of its
        lifetime (or expired), unless a renewal gave no later notAfter."""
        stalled = self._state()['stalled'].get(unit)
        return _lifetime_passed(certificate) >= RENEW_AT and stalled != _expiry(certificate)

    def _warn_if_it_outlives_its_ca(self, unit, pem):
        issuer, cas = _names(_leaf(pem))[0], unitdata.kv().get(KV_CA)
        for ca in _pem_ders(cas, CERT_LABEL, True) if cas else []:
            if _names(ca)[1] == issuer and _validity(ca)[1] < _expiry(pem):
                hookenv.log(f'interface-tls: the certificate for {unit} expires at {_iso(_expiry(pem))}, '
                            f'after the CA that signed it ({_iso(_validity(ca)[1])})', hookenv.WARNING)

    def _note_stalled_renewal(self, unit, csr, pem):
        """Warn, once, about a renewal that does not move notAfter on (a
        cached certificate, a CA that caps validity), and stop listing
        ``unit`` until its certificate changes rather than ask in every hook."""
        renewed = self._answer(unit, csr, ())
        stalls = bool(renewed and _lifetime_passed(renewed) >= RENEW_AT and _expiry(pem) <= _expiry(renewed))
        state = self._state()
        stalled = dict(state['stalled'])
        if stalls:
            hookenv.log(f'interface-tls: the renewal of the certificate for {unit} does not expire after '
                        f'the one it renews ({_iso(_expiry(pem))}); not listing {unit} again until its '
                        'certificate changes', hookenv.WARNING)
            stalled[unit] = _expiry(pem)
        else:
            stalled.pop(unit, None)
        if stalled != state['stalled']:
            self._save(dict(state, stalled=stalled))

    def _ca_changes(self):
        """Whether answers are issued under another CA when this hook ends,
        so that none published holds."""
        planned = self._cas()[CA_KEY]
        return bool(planned and planned != self._cas_at_start()[CA_KEY])

    def _cas(self, warn=False):
        """The CA roles, ``{CA key: CA or None}``, as they stand when this
        hook ends: the issuing CA (``ca``), the one being rotated to
        (``ca_next``), the one a rotation replaced (``ca_previous``). On a
        follower, those of the application bag (_cas_at_start); on the
        leader, what it publishes, from those and this hook's set_ca(): the
        rotation's steps (README, "CA rotation")."""
        plan = self._cas_at_start(warn)
        if not _is_leader():
            return plan
        requested, emergency = _requested_ca.get(self.relation_name, (None, False))
        if requested and (emergency or not plan[CA_KEY]):
            plan = {CA_KEY: requested, CA_NEXT_KEY: None, CA_PREVIOUS_KEY: None}
        elif requested:
            plan[CA_NEXT_KEY] = None if requested == plan[CA_KEY] else requested
        if plan[CA_NEXT_KEY] and self._trusted_everywhere(_transition(plan)):
            plan = {CA_KEY: plan[CA_NEXT_KEY], CA_NEXT_KEY: None, CA_PREVIOUS_KEY: plan[CA_KEY]}
        if plan[CA_PREVIOUS_KEY] and _ca_expiry(plan[CA_PREVIOUS_KEY]) <= time.time():
            plan[CA_PREVIOUS_KEY] = None
        return plan

    def _cas_at_start(self, warn=False):
        """The CA roles the application bag holds; for a key that holds junk
        (or ``ca`` deleted) the CA this unit recorded for it when its last
        hook ended (``state['cas']``, see _publish): an operator's write
        changes no unit's trust, and a leader republishes its record."""
        published, recorded, cas = self._published(), self._state()['cas'], {}
        for key in CA_KEYS:
            cas[key] = _valid_ca(published.get(key), key if warn else None)
            if not cas[key] and (published.get(key) or key == CA_KEY):
                cas[key] = recorded.get(key)
        return cas

    def _trusted_everywhere(self, transition):
        """Whether every peer acknowledges ``transition`` (took its CAs into
        its trust, and said so in its bag): each in relation-list, and
        goal-state, asked only then, lists no live unit this leader has yet
        to meet (a new leader may lead before its -relation-joined hooks)."""
        peers = hookenv.related_units(self._relation_id())
        if any(self._unit_bag(unit).get(CA_ACK_KEY) != transition for unit in peers):
            return False
        return _live_in_goal_state() <= set(peers) | {hookenv.local_unit()}

    def _warn_if_the_ca_was_lost(self, pem):
        """A leader whose charm gives a CA other than the published one,
        which it never gave itself, has most likely lost the previous
        leader's CA key (charmed-kubernetes/bundle#564): say so, naming
        both. The rotation keeps the units talking meanwhile."""
        published, state = self._cas_at_start(), self._state()
        if (published[CA_KEY] and pem not in (published[CA_KEY], published[CA_NEXT_KEY])
                and _ca_digest(published[CA_KEY]) not in state['cas_given']
                and state['cas_given'][-1:] != [_ca_digest(pem)]):
            hookenv.log(f'interface-tls: the CA this leader gives (SHA-256 {_ca_digest(pem)}) is not the '
                        f'published one (SHA-256 {_ca_digest(published[CA_KEY])}), which this unit never '
                        'gave: was the previous CA lost? Rotating to it; units trust both meanwhile',
                        hookenv.WARNING)
        if state['cas_given'][-1:] != [_ca_digest(pem)]:
            given = [digest for digest in state['cas_given'] if digest != _ca_digest(pem)]
            self._save(dict(state, cas_given=(given + [_ca_digest(pem)])[-MAX_DIGESTS:]))

    def _csrs(self):
        """Valid CSRs of this unit and of every peer in relation-list."""
        csrs = {}
        own = self._state()['csr']
        if own:
            csrs[hookenv.local_unit()] = own
        for unit in hookenv.related_units(self._relation_id()):
            csr = _peer_csr(self._relation_id(), unit)
            if csr:
                csrs[unit] = csr
        return csrs

    def _publish_answers(self):
        """Write the application bag's changes: the CA, this hook's answers,
        and removals (earlier answers once the CA changes, units gone)."""
        published = self._published()
        wanted = {key: ca for key, ca in self._cas().items() if ca}
        if not self._ca_changes():
            live = self._live_units(published)
            wanted.update((key, value) for key, value in published.items() if _answer_unit(key) in live)
        for unit, (certificate, digest) in _unpublished.get(self.relation_name, {}).items():
            wanted[CERT_KEY.format(unit)] = certificate
            wanted[CSR_DIGEST_KEY.format(unit)] = digest
        changes = {key: value for key, value in wanted.items() if published.get(key) != value}
        changes.update((key, None) for key in published if key not in wanted)
        if changes:
            hookenv.relation_set(self._relation_id(), changes, app=True)

    def _live_units(self, published):
        """This unit, its peers, and the units ``published`` answers that
        this leader has not met yet: relation-list names neither those nor
        units that left, so goal-state, asked only then, tells them apart
        (a unit that leaves is dying, then gone)."""
        live = set(hookenv.related_units(self._relation_id())) | {hookenv.local_unit()}
        unmet = {_answer_unit(key) for key in published} - live - {None}
        if unmet:
            live |= unmet & _live_in_goal_state()
        return live

    # When the hook ends ------------------------------------------------------

    def _publish(self):
        """Record the CA roles (_cas_at_start); write this unit's CSR if it
        is not yet in its bag, and on the leader the application bag's
        changes; one relation-set each, or none."""
        if self._relation_id() is None:
            return
        state, cas, bag = self._state(), self._cas(), self._unit_bag()
        if cas != state['cas']:
            self._save(dict(state, cas=cas))
        changes = {}
        if state['csr'] and state['csr'] != bag.get(CSR_KEY):
            changes[CSR_KEY] = state['csr']  # new, or overwritten by an operator
        # _take_ca trusts the next CA: say so, so that a leader (this one too,
        # should leadership move) knows when every unit does; withdraw an
        # acknowledgement once this unit no longer trusts the CA it names.
        ack = _transition(cas) or bag.get(CA_ACK_KEY)
        if ack and ack.rpartition(':')[2] not in {_ca_digest(ca) for ca in cas.values() if ca}:
            ack = None
        if ack != bag.get(CA_ACK_KEY):
            changes[CA_ACK_KEY] = ack
        if hookenv.hook_name() == 'upgrade-charm':
            # The original layer's leader answered in its own bag, where
            # every follower now warns about the answers it finds.
            changes.update((key, None) for key in bag if _answer_unit(key) or key == CA_KEY)
        if changes:
            hookenv.relation_set(self._relation_id(), changes)
        if _is_leader():
            self._publish_answers()

    # Reading the relation ----------------------------------------------------

    def _relation_id(self):
        """The relation's id, or None while this unit cannot use it: before
        it exists, and where Juju may refuse it (_relation_refused). A hook
        of this relation has the id in its environment, which saves a
        relation-ids call."""
        if _relation_refused():
            return None
        if hookenv.relation_type() == self.relation_name:
            return hookenv.relation_id()
        ids = hookenv.relation_ids(self.relation_name)
        return ids[0] if ids else None

    def _published(self):
        """The application bag, which only the leader writes."""
        rid = self._relation_id()
        return rid and hookenv.relation_get(rid=rid, app=hookenv.application_name()) or {}

    def _unit_bag(self, unit=None):
        rid = self._relation_id()
        return rid and hookenv.relation_get(rid=rid, unit=unit or hookenv.local_unit()) or {}

    def _state(self):
        """This unit's bookkeeping: the ``csr`` the charm gave, the digests
        of the ones it ``replaced`` (to tell a lagging answer from a wrong
        one), on the leader the notAfter of renewals that did not move it
        on, by unit (``stalled``), and the digests of the CAs its charm gave
        (``cas_given``, the last last), and the CA roles as it last saw or
        published them (``cas``, see _cas_at_start).

        Each list keeps more than the last one (earlier versions kept one
        digest of each, folded in here). Every replaced CSR counts: Juju's
        agent serves a peer's bag from its cache until a hook about that
        peer refreshes it (worker/uniter/runner/context/cache.go), so a
        leader, one new to leading above all, may answer a CSR several
        re-keys old; that answer is lagging, not wrong, and is no reason for
        a warning. Every CA given counts: Juju commits a hook's relation
        settings after the hook exits, and may lose them after its unit data
        is saved (worker/uniter/runner/context/context.go), so a leader's
        hook that gave a new CA may be retried with the old one still
        published, which this unit did give."""
        state = {'csr': None, 'replaced': [], 'stalled': {}, 'cas_given': [], 'cas': {}}
        state.update(unitdata.kv().get(KV_STATE.format(self.relation_name), {}))
        for old, new in (('previous', 'replaced'), ('ca_given', 'cas_given')):
            digest = state.pop(old, None)
            if digest and digest not in state[new]:
                state[new] = [digest] + state[new]
        return state

    def _save(self, state):
        unitdata.kv().set(KV_STATE.format(self.relation_name), state)


# Where the leader's answers are, as warnings name it.
_APP_BAG = 'the application bag'


def _conversation(relation_name):
    """The relation-wide conversation this layer's states are bound to,
    stored so that ``Conversation.load`` finds it in any later hook. Its
    units are the peers heard from (as charms.reactive keeps them for any
    global conversation), whose bags the inherited ``get_remote()`` reads."""
    key = Conversation._key(relation_name, scopes.GLOBAL)
    conversation = Conversation.deserialize(unitdata.kv().get(
        key, {'namespace': relation_name, 'scope': scopes.GLOBAL, 'units': []}))
    remote = hookenv.remote_unit()
    if remote and hookenv.relation_type() == relation_name:
        if hookenv.hook_name().endswith('-relation-departed'):
            conversation.units.discard(remote)
        else:
            conversation.units.add(remote)
    unitdata.kv().set(key, Conversation.serialize(conversation))
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


hookenv.atstart(_hook_start)


# Hook tool answers that do not change during a hook, memoized in
# charmhelpers' per-hook cache like relation-get and relation-list.
@hookenv.cached
def _is_leader():
    return hookenv.is_leader()


@hookenv.cached
def _peer_csr(rid, unit):
    """A peer's CSR in normal form, or None, warning once per hook about
    junk. Reads the whole bag (cached), as the forgery check does."""
    value = (hookenv.relation_get(rid=rid, unit=unit) or {}).get(CSR_KEY)
    if not value:
        return None
    try:
        return _normalize(value, CSR_LABEL)
    except ValueError as error:
        _warn(unit, CSR_KEY, error)
        return None


def _relation_refused():
    """Whether this hook may run before the unit has entered the relation:
    ``install``, and the storage-attached hooks Juju runs before it
    (worker/uniter/storage/resolver.go), where Juju 3 lists the peer
    relation but refuses relation-get and relation-set on it and Juju 2
    does not list it. A storage-attached hook can also come later (juju
    add-storage), when the unit could use the relation; it cannot tell
    which, so it keeps off the relation and leaves the states alone: the
    next hook reconciles."""
    hook = hookenv.hook_name()
    return hook == 'install' or hook.endswith('-storage-attached')


def _live_in_goal_state():
    """The units of this application that goal-state lists and that are
    not dying: those a leader may not have met yet, and none that left."""
    units = hookenv.goal_state().get('units') or {}
    return {unit for unit, about in units.items() if about.get('status') != 'dying'}


def _require_leader(method):
    if not _is_leader():
        raise ValueError(f'{method}: only the leader may call it; {hookenv.local_unit()} is not the leader')


def _warn(writer, key, reason):
    hookenv.log(f'interface-tls: ignored {key!r} from {writer}: {reason}', hookenv.WARNING)


def _answer_unit(key):
    """The unit an answer key (``CERT_KEY``, ``CSR_DIGEST_KEY``) is for, or None."""
    match = _ANSWER_KEY.fullmatch(key)
    return match.group(1) if match else None


def _checked_cert(certificate, csr, cas):
    """``certificate`` (leaf first, then any chain) in normal form, if its
    leaf carries the public key of ``csr`` and, if any of ``cas`` (CA PEM
    or None) is given, was issued by one, or by a certificate of the chain
    that one issued; ValueError otherwise."""
    ders = _pem_ders(certificate, CERT_LABEL, many=True)
    if _public_key(ders[0], CERT_LABEL) != _public_key(_pem_ders(csr, CSR_LABEL)[0], CSR_LABEL):
        raise ValueError("its public key is not the one in the CSR it answers")
    issuers, issued = [der for ca in cas if ca for der in _pem_ders(ca, CERT_LABEL, True)], ders[0]
    for _ in ders:  # up the chain that follows the leaf, to one of the CAs
        if not issuers or any(_issued_by(issued, der) for der in issuers):
            return _pem(CERT_LABEL, ders)
        issued = next((der for der in ders[1:] if _issued_by(issued, der)), ders[0])
    raise ValueError('its issuer is none of the CAs published or being rotated to')


def _transition(cas):
    """What a unit acknowledges a rotation with (``ca_ack``): the SHA-256 of
    the issuing CA and of the next, so that it means nothing for another."""
    if cas[CA_KEY] and cas[CA_NEXT_KEY]:
        return f'{_ca_digest(cas[CA_KEY])}:{_ca_digest(cas[CA_NEXT_KEY])}'


def _store_ca(pem):
    """Keep the CA certificate(s) to trust, and when the first expires."""
    unitdata.kv().set(KV_CA, pem)  # the same again writes nothing
    unitdata.kv().set(KV_CA_EXPIRY, _iso(_ca_expiry(pem)))


def _valid_ca(text, key=None):
    """``text`` as CA certificate(s) in normal form, or None; warns about
    junk under ``key`` of the application bag if given."""
    if not text:
        return None
    try:
        return _normalize(text, CERT_LABEL, many=True)
    except ValueError as error:
        if key:
            _warn(_APP_BAG, key, error)
        return None


def _ca_digest(pem):
    """SHA-256 of the DER of CA certificate(s): what a unit acknowledges."""
    return hashlib.sha256(b''.join(_pem_ders(pem, CERT_LABEL, True))).hexdigest()


def _ca_expiry(pem):
    return min(_validity(der)[1] for der in _pem_ders(pem, CERT_LABEL, True))


def _leaf(pem):
    return _pem_ders(pem, CERT_LABEL, many=True)[0]


def _expiry(pem):
    """notAfter of a certificate's leaf, in POSIX seconds."""
    return _validity(_leaf(pem))[1]


def _lifetime_passed(pem):
    """How much of its leaf's lifetime has passed: 0 at notBefore, 1 at
    notAfter. The clock is time.time(), which tests set."""
    not_before, not_after = _validity(_leaf(pem))
    return (time.time() - not_before) / max(not_after - not_before, 1)


def _iso(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))


def _digest(csr_pem):
    """SHA-256 of a CSR's DER: immune to PEM line breaks and trailing
    newlines, so re-encoding a CSR is not a re-key."""
    return hashlib.sha256(_pem_ders(csr_pem, CSR_LABEL)[0]).hexdigest()
