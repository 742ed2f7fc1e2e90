"""interface:tls, peers role: the units of one application get TLS
certificates signed by their leader.

The layer carries CSRs, certificates and the CA certificate between units.
It never makes keys and never signs: the charm layer does both, with
whatever PKI tool it likes. README.md documents the states and the methods,
docs/design.md the wire format; the constants below are the single place
each name lives.

Each unit publishes its CSR in its own bag; the leader publishes the CA and
its answers in the application bag, which only the leader can write and
which outlives any one leader. Each hook reads the relation once (_read),
decides with a plain function of what it read (decide), and acts: delivers
and sets the states before the charm's handlers (_Hook.start), writes the
bags' differences when it ends (_Hook.write). docs/design.md, "How a hook
runs", says more.
"""
import re
import time
from typing import NamedTuple, Optional

from charmhelpers.core import hookenv, unitdata
from charms.reactive import RelationBase, scopes
from charms.reactive.flags import clear_flag, is_flag_set, set_flag
from charms.reactive.relations import Conversation

try:  # in a charm, hooks/relations/tls/ is a package: relations.tls.peers
    from . import pem
except ImportError:  # the module alone, as the tests import it
    import pem

INTERFACE = 'tls'

# States, named as in the original layer; and the CAs to trust, raised anew
# on each change, which the original layer did not tell.
CREATE_CSR = 'create certificate signing request'
SIGN_CSR = 'sign certificate signing request'
CERT_AVAILABLE = 'signed certificate available'
CA_AVAILABLE = 'ca certificate available'
CSR_REFUSED = 'certificate signing request refused'

# Relation keys. Every unit writes CSR_KEY in its own bag, and CA_ACK_KEY
# there during a CA rotation; the leader writes the others in the
# application bag: the CA answers are issued under, during a rotation the
# next one, after it the one it replaced (until every unit holds a
# certificate from the new one), the number of rotations started, which an
# acknowledgement names, and when the rotation began (POSIX seconds).
CSR_KEY = 'csr'
CA_ACK_KEY = 'ca_ack'
CA_KEY = 'ca'
CA_NEXT_KEY = 'ca_next'
CA_PREVIOUS_KEY = 'ca_previous'
CA_KEYS = (CA_KEY, CA_NEXT_KEY, CA_PREVIOUS_KEY)
CA_ROUND_KEY = 'ca_round'
CA_SINCE_KEY = 'ca_since'
ROTATION_KEYS = (CA_ROUND_KEY, CA_SINCE_KEY)
CERT_KEY = '{}_signed_certificate'
CSR_DIGEST_KEY = '{}_csr_sha256'
REFUSAL_KEY = '{}_csr_refused'  # '<CSR digest> <reason>'
MAX_REASON = 200  # characters of a refusal's reason kept
NO_REASON = 'no reason given'  # what a refusal with no printable reason reads as

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

# Seconds into a rotation after which the leader names, at WARNING
# in every hook, the units it waits for; and after which a rotation goes on
# to issue under the new CA without the units that have not acknowledged it
# (sooner if a certificate would expire meanwhile).
SILENT_AFTER = 15 * 60
ROTATION_WAIT = 60 * 60

# Digests a unit remembers of the CSRs it replaced and of the CAs its charm
# gave as leader, each (see _load_state).
MAX_DIGESTS = 32

_ANSWER_KEY = re.compile('(.+)({}|{})'.format(*(re.escape(key.format(''))
                                                for key in (CERT_KEY, CSR_DIGEST_KEY))))
_ROUND = re.compile('[0-9]{1,18}')
MAX_ROUND = 10 ** 15  # a round (or time) the leader would write past 18 digits is junk
_REFUSAL = re.compile('(.+){}'.format(re.escape(REFUSAL_KEY.format(''))))
_DIGEST = re.compile('[0-9a-f]{64}')
# Where the leader's answers are, as warnings name it.
_APP_BAG = 'the application bag'


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
        new = _parsed('set_csr', _request, csr)
        hook = _hook(self.relation_name)
        old, state = hook.inputs.csr, dict(hook.inputs.state)
        if old is None or new.pem != old.pem:
            replaced = state['replaced'] + ([old.digest] if old else [])
            # A CSR made again (the same key and names, signed deterministically) is current.
            state['replaced'] = [digest for digest in replaced if digest != new.digest][-MAX_DIGESTS:]
            state['csr'] = new.pem
            for key in (KV_CERT.format(hookenv.local_unit()), KV_SERVER_CERT, KV_SERVER_CERT_EXPIRY):
                unitdata.kv().unset(key)
            hook.change(csr=new, state=state, held=None)
        hook.update_states()

    def get_csr_map(self):
        """On the leader, ``{unit_name: csr_pem}`` of the CSRs waiting for a
        certificate (the leader's own included): new, re-keyed, due for
        renewal, or to be answered under a new CA. ``{}`` elsewhere and
        where the relation cannot be used."""
        hook = _hook(self.relation_name)
        return {unit: csr.pem for unit, csr in hook.decision.pending.items()}

    def set_cert(self, unit_name, certificate):
        """On the leader, answer ``unit_name``'s current CSR with
        ``certificate`` (PEM, leaf first). The leader's own is delivered at
        once; all answers of a hook are published when it ends. ValueError
        on a non-leader, where the relation cannot be used, for a unit with
        no valid CSR, for anything but certificates for the CSR's key, and
        for one the issuing CA (``ca``, once there is one) did not issue."""
        hook, csr = self._csr_of('set_cert', unit_name)
        try:
            answer = _checked(_certificates(certificate), csr, hook.decision.cas[CA_KEY])
        except ValueError as error:
            raise ValueError(f'set_cert: certificate for {unit_name}: {error}') from None
        _warn_if_it_outlives_its_ca(unit_name, answer, hook.decision.cas)
        made = dict(hook.inputs.made, **{unit_name: (answer, csr.digest)})
        refused = {unit: refusal for unit, refusal in hook.inputs.refused.items() if unit != unit_name}
        own = unit_name == hookenv.local_unit()
        hook.change(made=made, refused=refused, state=_stalled(hook, unit_name, csr, answer),
                    held=answer if own else hook.inputs.held)
        if own:
            _deliver(answer)
            _raise(self.relation_name, CERT_AVAILABLE)
        hook.update_states()

    def refuse_csr(self, unit_name, reason):
        """On the leader, refuse ``unit_name``'s current CSR: it leaves
        get_csr_map() until that unit publishes another, and the unit gets
        ``reason`` (text, shown escaped, cut to MAX_REASON characters) and
        ``certificate signing request refused``. A set_cert() for it
        afterwards answers it after all. ValueError as from set_cert(), and
        for a CSR set_cert() answered in this hook (the leader's own
        certificate is delivered at once, and stays)."""
        hook, csr = self._csr_of('refuse_csr', unit_name)
        if unit_name in hook.inputs.made:
            raise ValueError(f'refuse_csr: the CSR of {unit_name} was answered in this hook (set_cert)')
        hook.change(refused=dict(hook.inputs.refused, **{unit_name: (csr.digest, _plain(reason))}))
        hook.update_states()

    def get_refusal(self):
        """Why the leader refused this unit's current CSR, or None."""
        return _hook(self.relation_name).decision.refusal

    def _csr_of(self, method, unit_name):
        """This hook and ``unit_name``'s current CSR, for a leader's
        ``method``; ValueError naming it where there is none."""
        _require_leader(method)
        hook = _hook(self.relation_name)
        if not hook.usable:
            raise ValueError(f'{method}: relation {self.relation_name} is not available in this hook')
        csrs = _csrs(hook.snapshot, hook.inputs)
        if unit_name not in csrs:  # name the candidates: a typo is the likeliest cause
            raise ValueError(f'{method}: {unit_name!r} has no valid CSR on relation {self.relation_name}; '
                             f"units with one: {', '.join(sorted(csrs)) or 'none'} (unit names are "
                             '<application>/<number>)')
        return hook, csrs[unit_name]

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
        answered again under it, and the old one stays trusted until every
        unit holds a certificate from the new one. ``emergency=True`` (the old CA's key is compromised) drops
        the old one at once and answers every CSR again, breaking handshakes
        between units until each has its new certificate. ValueError on a
        non-leader and for anything but CA certificates. Where the relation
        cannot be used (install), the CA is given in the next hook where it
        can, if this unit still leads."""
        _require_leader('set_ca')
        given = _parsed('set_ca', _authorities, ca)
        hook = _hook(self.relation_name)
        if not hook.usable:  # kept for the next hook where the relation can be used (_read)
            hook.change(state=dict(_given(hook, given), ca_requested=[given.pem, emergency]))
            return
        hook.change(requested=(given, emergency), state=_given(hook, given))
        hook.update_states()

    def get_ca(self):
        """The CA certificate(s) this unit trusts, as the leader published
        them (during and after a rotation, the old and the new), or None."""
        return unitdata.kv().get(KV_CA)

    def get_ca_expiry(self):
        """When the first of those CA certificates expires (ISO 8601 in
        UTC), or None."""
        return unitdata.kv().get(KV_CA_EXPIRY)


# Read ---------------------------------------------------------------------

class Snapshot(NamedTuple):
    """What a hook reads of one relation, once, at its start."""
    unit: str
    leader: bool
    now: float  # the clock, read once
    hook: str
    app: dict  # the application bag as read
    bag: dict  # this unit's bag as read
    cas: dict  # CA roles of the application bag (_read_cas), and CA_ROUND_KEY
    answers: dict  # {unit: (Certificates or None, CSR digest or None)} of the application bag
    csrs: dict  # on the leader, {peer: Request} of the valid CSRs of the peers in relation-list
    acks: dict  # on the leader, {peer: its ca_ack or None}
    refusals: dict  # {unit: (CSR digest, reason)} of the application bag (on a follower, its own)
    live: object  # () -> the units goal-state lists alive, asked only when needed
    issuing: object = None  # the application bag's own ca (Certificates), if it holds a valid one


class Inputs(NamedTuple):
    """What this unit knows besides the relation, and the charm's calls
    change: its CSR, its bookkeeping (_load_state), the answers set_cert
    made in this hook ({unit: (Certificates, CSR digest)}), the CA set_ca
    gave ((Certificates, emergency) or None), the certificate it holds, and
    the CSRs refuse_csr refused in this hook ({unit: (CSR digest, reason)})."""
    csr: Optional[pem.Request]
    state: dict
    made: dict
    requested: Optional[tuple]
    held: Optional[pem.Certificates]
    refused: dict


def _read(relation_name):
    """The Snapshot and the Inputs of this hook on ``relation_name``;
    WARNINGs about whatever in the bags is not taken, once per hook."""
    state, unit = _load_state(relation_name), hookenv.local_unit()
    held = _valid(unitdata.kv().get(KV_CERT.format(unit)), _certificates)
    csr = _valid(state['csr'], _request)
    rid = _relation_id(relation_name)
    if rid is None:
        return (Snapshot(unit, False, time.time(), hookenv.hook_name(), {}, {}, _read_cas({}, state, False),
                         {}, {}, {}, {}, set), Inputs(csr, state, {}, None, held, {}))
    leader, app = _is_leader(), hookenv.relation_get(rid=rid, app=hookenv.application_name()) or {}
    given, emergency = state.pop('ca_requested', None) or (None, False)  # by set_ca where it could not be
    requested = (_valid(given, _authorities), emergency) if given and leader else None
    bag = hookenv.relation_get(rid=rid, unit=unit) or {}
    if csr is None:  # published before this layer kept state (by the original layer)
        csr = _valid(bag.get(CSR_KEY), _request)
        state = dict(state, csr=csr and csr.pem)
    _warn_about_answers_in_the_remote_bag(relation_name, rid, unit)
    answers = {}
    for key in app:
        owner = _answer_unit(key)
        if owner in answers or owner is None or not (leader or owner == unit):
            continue
        answer, digest = app.get(CERT_KEY.format(owner)), app.get(CSR_DIGEST_KEY.format(owner))
        answers[owner] = (_valid(answer, _certificates, CERT_KEY.format(owner)), digest)
    refusals = {}
    for key, value in app.items():
        owner = _REFUSAL.fullmatch(key)
        if owner and (leader or owner.group(1) == unit):
            digest, _, reason = str(value).partition(' ')
            if _DIGEST.fullmatch(digest):
                refusals[owner.group(1)] = (digest, _plain(reason))
            else:
                _warn(_APP_BAG, key, 'it does not begin with the digest of a CSR')
    csrs, acks = {}, {}
    for peer in hookenv.related_units(rid) if leader else ():
        their = hookenv.relation_get(rid=rid, unit=peer) or {}
        csrs[peer] = _valid(their.get(CSR_KEY), _request, CSR_KEY, peer)
        acks[peer] = their.get(CA_ACK_KEY)
    cas, valid = _read_cas(app, state, True, leader), {peer: csr for peer, csr in csrs.items() if csr}
    return (Snapshot(unit, leader, time.time(), hookenv.hook_name(), app, bag, cas, answers, valid, acks,
                     refusals, _live_in_goal_state, _issuing(app, state, leader)),
            Inputs(csr, state, {}, requested if requested and requested[0] else None, held, {}))


def _read_cas(app, state, warn, leader=False):
    """The CA roles the application bag holds, ``{CA key: Certificates or
    None}``, and the rotation's numbers, ``{ROTATION_KEYS: int}`` (0 for
    none); for a key that holds junk, or ``ca`` missing, what this unit
    recorded when its last hook ended (``state['cas']``): an operator's
    write changes no unit's trust. (A leader, which publishes it, only from
    a record in the bag's round: one from before, of a unit whose agent
    was down, may hold a CA an emergency dropped.) A leader takes more of
    its record: all of it, made as leader, while the bag is the one its
    last hook read (_as_read: Juju lost that hook's commit,
    worker/uniter/runner/context/context.go); the roles missing from a bag
    of the rotation it recorded, the same ``ca_round`` and ``ca_since`` as
    written, whose other roles are as recorded (an operator deleted them:
    any other leader's change of the roles moved the round on, and one
    that dropped a role changed the issuing CA or ``ca_since``, so its
    decision in the same round as this one's lost commit is told apart);
    and never a round behind its record, at WARNING. Any other bag was
    written since, by another leader or an operator, and its roles are
    taken as they read."""
    recorded, cas, read = state['cas'], {}, _decided_from(state) if leader else None
    record = {key: _valid(recorded.get(key), _authorities) for key in CA_KEYS}
    if _as_read(app, read):
        return dict(record, **{key: recorded.get(key, 0) for key in ROTATION_KEYS})
    numbers = {key: str(recorded[key]) for key in ROTATION_KEYS if recorded.get(key)}
    current = not leader or _written(app, (CA_ROUND_KEY,)) == _written(numbers, (CA_ROUND_KEY,))
    for key in ROTATION_KEYS:
        value = str(app.get(key) or '')
        number = int(value) if _ROUND.fullmatch(value) and int(value) < MAX_ROUND else None
        if value and number is None and warn:
            _warn(_APP_BAG, key, 'it is not a number')
        cas[key] = (recorded.get(key, 0) if value else 0) if number is None else number
    for key in CA_KEYS:
        cas[key] = _valid(app.get(key), _authorities, key if warn else None)
        if cas[key] is None and (app.get(key) or key == CA_KEY) and current:
            cas[key] = record[key]
    if read is not None and numbers == _written(app, ROTATION_KEYS) and all(
            cas[key] in (None, record[key]) for key in CA_KEYS):
        cas.update(record)
    if leader and cas[CA_ROUND_KEY] < recorded.get(CA_ROUND_KEY, 0):  # it would count stale acks
        cas[CA_ROUND_KEY] = recorded[CA_ROUND_KEY]
        if warn:
            _warn(_APP_BAG, CA_ROUND_KEY, f"it is behind this leader's round, {cas[CA_ROUND_KEY]}")
    return cas


def _written(app, keys):
    """``{key: value}`` of the ``keys`` the application bag holds, as written."""
    return {key: str(app[key]) for key in keys if app.get(key)}


def _as_read(app, read):
    """Whether the application bag's CA keys are the ones a leader's last
    hook read (``read``, _written), but for roles an operator deleted, or
    wrote junk over, since: that hook's commit was lost. Every leader's
    change of the roles moves the round on, and the first CA has one, so
    no later bag is that one again, but one an operator wrote back whole
    (or, where an earlier version published a CA with no round, one with
    the round deleted).
    Roles deleted count only from a bag with a round; a round or start
    changed does not (another leader's emergency and a round deleted would
    look so)."""
    if read is None:
        return False
    bag = _written(app, CA_KEYS + ROTATION_KEYS)
    return bag == read or CA_ROUND_KEY in read and all(
        bag.get(key) == read.get(key) or (key in CA_KEYS and not _valid(bag.get(key), _authorities))
        for key in set(bag) | set(read))


def _decided_from(state):
    """The application bag's CA keys this unit's last hook read as leader
    (_Hook.write), or None: it did not lead, or an earlier version kept no
    such record."""
    read = state['cas'].get('from')
    return read if isinstance(read, dict) else None


def _issuing(app, state, leader):
    """The issuing CA the application bag's answers and refusals were made
    under: its own valid ``ca``; where it holds none, on a leader, the one
    its last hook read (an operator may delete ``ca`` before the retry of a
    lost commit); else None (Snapshot.issuing)."""
    read = _decided_from(state) if leader else None
    return _valid(app.get(CA_KEY) or (read or {}).get(CA_KEY), _authorities)


def _warn_about_answers_in_the_remote_bag(relation_name, rid, unit):
    """Log answers for this unit in the bag of the unit this hook is
    about: a forgery, or the original layer's leader. Answers are only
    ever taken from the application bag."""
    remote = hookenv.remote_unit()
    if not remote or hookenv.relation_type() != relation_name:
        return
    theirs = hookenv.relation_get(rid=rid, unit=remote) or {}
    for key in (CERT_KEY.format(unit), CSR_DIGEST_KEY.format(unit), REFUSAL_KEY.format(unit)) + CA_KEYS:
        if theirs.get(key):
            _warn(remote, key, 'certificates are taken only from the application bag, '
                  'which only the leader writes')


def _load_state(relation_name):
    """This unit's bookkeeping: the ``csr`` the charm gave; the digests of
    the CSRs it ``replaced``, to tell a lagging answer from a wrong one (a
    leader may answer a CSR several re-keys old from its agent's settings
    cache, worker/uniter/runner/context/cache.go); on the leader, the
    notAfter of renewals that did not move it on (``stalled``) and the
    digests of the CAs its charm gave (``cas_given``, the last last: Juju
    may lose a hook's relation commit after saving its unit data,
    worker/uniter/runner/context/context.go, so a hook that gave a new CA
    may run again with the old one still published); the CA roles as it
    last saw or published them (``cas``, see _read_cas). Earlier versions
    kept one digest of each list, folded in here."""
    state = {'csr': None, 'replaced': [], 'stalled': {}, 'cas_given': [], 'cas': {}}
    state.update(unitdata.kv().get(KV_STATE.format(relation_name), {}))
    for old, new in (('previous', 'replaced'), ('ca_given', 'cas_given')):
        digest = state.pop(old, None)
        if digest and digest not in state[new]:
            state[new] = [digest] + state[new]
    return state


# Decide -------------------------------------------------------------------

class Decision(NamedTuple):
    """What a hook does, from its Snapshot and Inputs (decide)."""
    cas: dict  # the CA roles when the hook ends, as in Snapshot.cas
    trust: Optional[str]  # the CA certificates to trust, PEM
    take: Optional[pem.Certificates]  # a certificate to deliver from the application bag
    refusal: Optional[str]  # why the leader refused this unit's current CSR
    notes: tuple  # (level, message) to log, once per hook
    pending: dict  # on the leader, {unit: Request} of the CSRs waiting for the charm
    bag: dict  # changes to this unit's bag
    app: dict  # on the leader, changes to the application bag


def decide(snapshot, inputs):
    """What this unit trusts and takes, what waits on the leader, and what
    the bags should hold when the hook ends: a function of its arguments
    alone."""
    cas = _plan(snapshot, inputs) if snapshot.leader else snapshot.cas
    take, notes = _own_answer(snapshot, inputs)
    pending, app = {}, {}
    if snapshot.leader:
        pending, app = _pending(snapshot, inputs, cas), _app_changes(snapshot, inputs, cas)
        notes += _waiting(snapshot, cas)
        if cas[CA_SINCE_KEY] and snapshot.cas[CA_SINCE_KEY] > snapshot.now:
            notes += _ignored(CA_SINCE_KEY, f'{_iso(snapshot.cas[CA_SINCE_KEY])} is later than now; '
                              'the rotation counts from now')
    if inputs.held and inputs.held.lifetime_passed(snapshot.now) >= WARN_AT:
        notes += ((hookenv.WARNING, f'the certificate of {snapshot.unit} expires at '
                   f'{_iso(inputs.held.expiry())} and no renewal has come'),)
    refusal = _refusals(snapshot, inputs, cas).get(snapshot.unit)
    if refusal and refusal != inputs.state.get('refused'):
        notes += ((hookenv.WARNING, f'the leader refused the CSR of {snapshot.unit}: {refusal!r}'),)
    return Decision(cas, _trust(cas), take, refusal, notes, pending, _bag_changes(snapshot, inputs, cas), app)


def _plan(snapshot, inputs):
    """The CA roles the leader publishes, from the application bag's and
    this hook's set_ca(): the rotation's phases (docs/design.md, "CA
    rotation"). A rotation started, or abandoned, records when. The first
    CA has a round, and every change of the roles moves it on: an
    acknowledgement names the rotation it is for, and a leader tells its
    own decision, which Juju may have lost, from another leader's
    (_read_cas)."""
    plan, now = dict(snapshot.cas), int(snapshot.now)
    plan[CA_SINCE_KEY] = min(plan[CA_SINCE_KEY], now)  # a later one would hold phase 1 for ever
    if inputs.requested:
        given, emergency = inputs.requested
        if emergency or not plan[CA_KEY]:
            plan.update({CA_KEY: given, CA_NEXT_KEY: None, CA_PREVIOUS_KEY: None})
        elif given == plan[CA_KEY]:  # a rotation abandoned: what stays (a previous) is one anew
            plan.update({CA_NEXT_KEY: None, CA_SINCE_KEY: now} if plan[CA_NEXT_KEY] else {})
        elif given != plan[CA_NEXT_KEY]:
            plan.update({CA_NEXT_KEY: given, CA_SINCE_KEY: now})
    if (plan[CA_NEXT_KEY] or plan[CA_PREVIOUS_KEY]) and not plan[CA_SINCE_KEY]:
        plan[CA_SINCE_KEY] = now  # published by a version that did not record it
    if plan[CA_NEXT_KEY] and (_acknowledged(snapshot, _transition(plan))
                              or _waited_out(snapshot, inputs, plan)):
        plan.update({CA_KEY: plan[CA_NEXT_KEY], CA_NEXT_KEY: None, CA_PREVIOUS_KEY: plan[CA_KEY]})
    elif plan[CA_PREVIOUS_KEY] and not plan[CA_NEXT_KEY] and _presents_the_new_ca(inputs, plan) \
            and _acknowledged(snapshot, _held(plan)):
        plan[CA_PREVIOUS_KEY] = None  # retired: every unit presents a certificate from the new CA
    if plan[CA_PREVIOUS_KEY] and plan[CA_PREVIOUS_KEY].earliest_expiry() <= snapshot.now:
        plan[CA_PREVIOUS_KEY] = None
    if not (plan[CA_NEXT_KEY] or plan[CA_PREVIOUS_KEY]):
        plan[CA_SINCE_KEY] = 0
    if plan[CA_KEY] and (_roles(plan) != _roles(snapshot.cas) or not plan[CA_ROUND_KEY]):
        plan[CA_ROUND_KEY] = _next_round(snapshot, inputs)
    return plan


def _next_round(snapshot, inputs):
    """One past every round this leader has seen: the application bag's,
    its own record's and every acknowledgement's, so that none left from an
    earlier rotation (its withdrawal lost, or the round written back by an
    operator) counts for the new one. An acknowledgement's number no run of
    rotations reaches (half of MAX_ROUND) is a peer's junk, which leaves
    room for every round after it; past MAX_ROUND (an operator's), the
    count starts again past the acknowledgements."""
    acks = [snapshot.bag.get(CA_ACK_KEY)] + list(snapshot.acks.values())
    acked = [int(number) for number in (str(ack).partition(':')[0] for ack in acks)
             if _ROUND.fullmatch(number) and int(number) < MAX_ROUND // 2]
    number = max([snapshot.cas[CA_ROUND_KEY], inputs.state['cas'].get(CA_ROUND_KEY, 0)] + acked) + 1
    return number if number < MAX_ROUND else max(acked + [0]) + 1


def _acknowledged(snapshot, ack):
    """Whether every peer's ``ca_ack`` is ``ack``: each in relation-list,
    and goal-state, asked only then, lists no live unit this leader has yet
    to meet (a new leader may lead before its -relation-joined hooks)."""
    if any(theirs != ack for theirs in snapshot.acks.values()):
        return False
    return snapshot.live() <= set(snapshot.acks) | {snapshot.unit}


def _waited_out(snapshot, inputs, plan):
    """Whether phase 1 has waited long enough for units that do not
    acknowledge (their agents are down, say): ROTATION_WAIT, or less if a
    certificate under the current CA would expire before then, as nothing
    renews it while the phase lasts. The rotation then goes on without
    them. (Not as soon as one is due for renewal: the units that have not
    acknowledged yet are most often live ones whose hooks have not run.)"""
    end = plan[CA_SINCE_KEY] + ROTATION_WAIT
    answers = (_published_answer(snapshot, unit, csr, plan[CA_KEY])
               for unit, csr in _csrs(snapshot, inputs).items())
    return snapshot.now >= end or any(answer and snapshot.now < answer.expiry() <= end for answer in answers)


def _waiting(snapshot, cas):
    """A WARNING naming the peers a rotation waits for, once it has lasted
    SILENT_AFTER: their acknowledgement of the next CA (phase 1), or
    of holding a certificate from the new one (until then every unit
    trusts the old CA too)."""
    ack = _transition(cas) or (cas[CA_PREVIOUS_KEY] and _held(cas))
    if not ack or snapshot.now - cas[CA_SINCE_KEY] < SILENT_AFTER:
        return ()
    unmet = snapshot.live() - set(snapshot.acks) - {snapshot.unit}
    units = sorted({unit for unit, theirs in snapshot.acks.items() if theirs != ack} | unmet)
    if not units:
        return ()
    what = 'trust the next CA' if cas[CA_NEXT_KEY] else 'hold a certificate from the new CA'
    return ((hookenv.WARNING, f"the CA rotation waits for {', '.join(units)} to {what} (their ca_ack), "
             f'since {_iso(cas[CA_SINCE_KEY])}'),)


def _own_answer(snapshot, inputs):
    """The certificate the application bag holds for this unit, if it
    answers its current CSR with the CSR's key under the bag's issuing CA
    and is not the one it holds; and why not, as notes."""
    key, digest_key = CERT_KEY.format(snapshot.unit), CSR_DIGEST_KEY.format(snapshot.unit)
    answer, digest = snapshot.answers.get(snapshot.unit, (None, None))
    if not (snapshot.app.get(key) or digest):
        return None, ()
    if not inputs.csr:
        return None, _ignored(key, 'this unit has published no CSR')
    if digest is None:
        return None, _ignored(key, f'no {digest_key} binds it to a CSR')
    if answer is None:  # junk was warned about as it was read
        return None, () if snapshot.app.get(key) else _ignored(digest_key, f'there is no {key} next to it')
    if digest in inputs.state['replaced']:
        return None, ((hookenv.DEBUG, f'{key} answers an earlier CSR; waiting for the current one'),)
    if digest != inputs.csr.digest:
        return None, _ignored(digest_key, "it is not the digest of this unit's CSR")
    try:
        answer = _checked(answer, inputs.csr, snapshot.issuing or snapshot.cas[CA_KEY])  # the bag's
    except ValueError as error:
        return None, _ignored(key, error)
    return (answer if not inputs.held or answer.pem != inputs.held.pem else None), ()


def _pending(snapshot, inputs, cas):
    """The CSRs (``{unit: Request}``) with no answer that holds: made in
    this hook, or published for the same CSR, with the CSR's key, under
    the CA this leader publishes, and not yet due. None while a unit may
    not trust the CA they would be issued under."""
    if cas[CA_NEXT_KEY]:
        return {}
    made = {unit: digest for unit, (_, digest) in inputs.made.items()}
    refused = _refusals(snapshot, inputs, cas)
    return {unit: csr for unit, csr in _csrs(snapshot, inputs).items()
            if made.get(unit) != csr.digest and unit not in refused
            and (_new_ca(snapshot, cas) or not _answered(snapshot, inputs, unit, csr, cas))}


def _new_ca(snapshot, cas):
    """Whether this hook changes the issuing CA: every answer and refusal
    made under the one before is void, and every CSR is pending again. The
    one before is the application bag's own ``ca`` (a leader that retries
    a lost commit has another in its record), or where it holds none that
    is valid, the one recorded."""
    return bool(cas[CA_KEY]) and cas[CA_KEY] != (snapshot.issuing or snapshot.cas[CA_KEY])


def _refusals(snapshot, inputs, cas):
    """{unit: reason} of the refusals of units' current CSRs: made in this
    hook, or published for the same CSR, under the same issuing CA, and
    not answered since."""
    csrs = _csrs(snapshot, inputs)
    refusals = dict({} if _new_ca(snapshot, cas) else snapshot.refusals, **inputs.refused)
    return {unit: reason for unit, (digest, reason) in refusals.items()
            if unit in csrs and csrs[unit].digest == digest and unit not in inputs.made}


def _answered(snapshot, inputs, unit, csr, cas):
    """Whether the application bag answers ``unit``'s ``csr`` under the
    issuing CA with a certificate not yet due: past RENEW_AT of its
    lifetime (or expired), unless a renewal gave no later notAfter."""
    answer = _published_answer(snapshot, unit, csr, cas[CA_KEY])
    due = answer and answer.lifetime_passed(snapshot.now) >= RENEW_AT
    return bool(answer) and not (due and inputs.state['stalled'].get(unit) != answer.expiry())


def _published_answer(snapshot, unit, csr, ca):
    """The certificate the application bag holds for ``unit`` if it
    answers ``csr`` (digest, public key) under ``ca`` (_checked), else None."""
    answer, digest = snapshot.answers.get(unit, (None, None))
    if answer is None or digest != csr.digest:
        return None
    try:
        return _checked(answer, csr, ca)
    except ValueError:
        return None


def _csrs(snapshot, inputs):
    """The valid CSRs of this unit and of every peer in relation-list."""
    return dict(snapshot.csrs, **({snapshot.unit: inputs.csr} if inputs.csr else {}))


def _bag_changes(snapshot, inputs, cas):
    """This unit's CSR if its bag does not hold it (new, or overwritten by
    an operator); during a rotation the acknowledgement that this unit
    trusts the next CA, then that it holds a certificate from it, so that a
    leader (this one too, should leadership move) knows when every unit
    does, withdrawn once this unit no longer trusts the CA it names; after
    an upgrade, the original layer's answers in this unit's bag, where
    every follower warns about them."""
    changes = {}
    if inputs.csr and inputs.csr.pem != snapshot.bag.get(CSR_KEY):
        changes[CSR_KEY] = inputs.csr.pem
    held = _presents_the_new_ca(inputs, cas) and _held(cas)
    ack = _transition(cas) or held or snapshot.bag.get(CA_ACK_KEY)
    if ack and ack.rpartition(':')[2] not in {ca.digest for ca in _roles(cas) if ca}:
        ack = None
    if ack != snapshot.bag.get(CA_ACK_KEY):
        changes[CA_ACK_KEY] = ack
    if snapshot.hook == 'upgrade-charm':
        changes.update((key, None) for key in snapshot.bag if _answer_unit(key) or key == CA_KEY)
    return changes


def _app_changes(snapshot, inputs, cas):
    """The application bag's changes: the CA roles, this hook's answers
    and refusals, and removals (earlier answers once the CA changes, units
    gone). The answers and refusals of units this leader has not met yet
    stay as they are: it cannot see their CSRs."""
    wanted = {key: cas[key].pem for key in CA_KEYS if cas[key]}
    wanted.update((key, str(cas[key])) for key in ROTATION_KEYS if cas[key])
    if not _new_ca(snapshot, cas):
        live = _live_units(snapshot)
        unmet = live - set(snapshot.acks) - {snapshot.unit}
        wanted.update((key, value) for key, value in snapshot.app.items() if _answer_unit(key) in live)
        wanted.update((REFUSAL_KEY.format(unit), f'{digest} {reason}')
                      for unit, (digest, reason) in snapshot.refusals.items() if unit in unmet)
    for unit, (answer, digest) in inputs.made.items():
        wanted.update({CERT_KEY.format(unit): answer.pem, CSR_DIGEST_KEY.format(unit): digest})
    csrs = _csrs(snapshot, inputs)
    wanted.update((REFUSAL_KEY.format(unit), f'{csrs[unit].digest} {reason}')
                  for unit, reason in _refusals(snapshot, inputs, cas).items())
    changes = {key: value for key, value in wanted.items() if snapshot.app.get(key) != value}
    changes.update((key, None) for key in snapshot.app if key not in wanted)
    return changes


def _live_units(snapshot):
    """This unit, its peers, and the units the application bag answers or
    refuses that this leader has not met yet: relation-list names neither
    those nor units that left, so goal-state, asked only then, tells them
    apart (a unit that leaves is dying, then gone)."""
    live = set(snapshot.acks) | {snapshot.unit}
    unmet = ({_answer_unit(key) for key in snapshot.app} | set(snapshot.refusals)) - live - {None}
    return live | (unmet & snapshot.live()) if unmet else live


def _transition(cas):
    """What a unit acknowledges phase 1 of a rotation with (``ca_ack``):
    its round and the SHA-256 of the issuing CA and of the next, so that it
    means nothing for another rotation, nor for the same one started again."""
    if cas[CA_KEY] and cas[CA_NEXT_KEY]:
        return f'{cas[CA_ROUND_KEY]}:{cas[CA_KEY].digest}:{cas[CA_NEXT_KEY].digest}'


def _held(cas):
    """What a unit acknowledges, after a rotation, that it holds a
    certificate from the new CA with: the round and the new CA's SHA-256."""
    return f'{cas[CA_ROUND_KEY]}:{cas[CA_KEY].digest}'


def _presents_the_new_ca(inputs, cas):
    """Whether, while a rotation's previous CA is still trusted, this unit
    presents no certificate but from the issuing CA: it holds one from it
    (one that the previous CA, of the same name, might have issued too, is
    not told apart: the layer checks no signatures), or it has never held
    one (no certificate, and no re-key, whose old certificate its
    consumer may still present)."""
    held, previous = inputs.held, cas[CA_PREVIOUS_KEY]
    if not (cas[CA_KEY] and previous and not cas[CA_NEXT_KEY]):
        return False
    if not held:
        return not inputs.state['replaced']
    current = {cert.der for cert in cas[CA_KEY].certs}
    previous = previous._replace(certs=[cert for cert in previous.certs if cert.der not in current])
    return held.issued_under(cas[CA_KEY]) and not (previous.certs and held.issued_under(previous))


def _trust(cas):
    """The CA certificates of every role, each once, as one PEM bundle."""
    ders = [cert.der for ca in _roles(cas) if ca for cert in ca.certs]
    return pem._pem(pem.CERT_LABEL, list(dict.fromkeys(ders))) or None


def _roles(cas):
    """The CAs of ``cas`` (CA_KEYS, each Certificates or None), in order."""
    return [cas[key] for key in CA_KEYS]


def _checked(answer, csr, ca):
    """``answer`` (Certificates, leaf first, then any chain) if its leaf
    carries the public key of ``csr`` and, where ``ca`` (the issuing CA's
    Certificates) is given, was issued by it, or by a certificate of the
    chain that it issued; ValueError otherwise. Not by the next CA, which
    a unit may not trust yet, nor by one a rotation replaced: the leader's
    charm issues under ``ca`` alone."""
    if answer.certs[0].key != csr.key:
        raise ValueError('its public key is not the one in the CSR it answers')
    if ca and not answer.issued_under(ca):
        raise ValueError('its issuer is none of the CAs answers are issued under (ca)')
    return answer


def _plain(text):
    """``text`` as one line of printable characters, cut to MAX_REASON;
    never empty, so that a refusal reads as one (``if tls.get_refusal():``)."""
    line = ' '.join(''.join(c if c.isprintable() else ' ' for c in str(text)).split()) or NO_REASON
    return line[:MAX_REASON - 1] + '…' if len(line) > MAX_REASON else line


def _ignored(key, reason, writer=_APP_BAG):
    """A note that ``key`` from ``writer`` is not taken, and why."""
    return ((hookenv.WARNING, f'ignored {key!r} from {writer}: {reason}'),)


# Act ----------------------------------------------------------------------

class _Hook:
    """One hook on one relation: its Snapshot, the Inputs the charm's
    calls change, and the Decision from both, decided again on each."""

    def __init__(self, relation_name):
        self.relation_name = relation_name
        self.usable = _relation_id(relation_name) is not None
        self.snapshot, self.inputs = _read(relation_name)
        self.decision = decide(self.snapshot, self.inputs)

    def change(self, **inputs):
        """Decide again on changed inputs; the trust follows at once (a
        later call in the hook may decide otherwise than an earlier one)."""
        self.inputs = self.inputs._replace(**inputs)
        self.decision = decide(self.snapshot, self.inputs)
        if self.usable:
            self.take_trust()

    def start(self):
        """Before the charm's handlers: log the notes, take the trust and
        this unit's certificate, set the states."""
        for level, message in self.decision.notes:
            hookenv.log(f'interface-tls: {message}', level)
        if self.decision.refusal != self.inputs.state.get('refused'):  # warned about once
            self.change(state=dict(self.inputs.state, refused=self.decision.refusal))
        if self.usable:
            self.take_trust()
            if self.decision.take:
                _deliver(self.decision.take)
                self.change(held=self.decision.take)
                _raise(self.relation_name, CERT_AVAILABLE)
        self.update_states()

    def take_trust(self):
        """Trust the decided CAs. A change of trust raises ``ca certificate
        available`` anew, and ``signed certificate available`` while this
        unit holds a certificate: a charm that cleared either, or a unit
        between re-key and answer, must still write its new ca.pem before a
        peer presents a certificate from the new CA."""
        trust, changed = self.decision.trust, self.decision.trust != unitdata.kv().get(KV_CA)
        if trust and (changed or not self.inputs.state.get('ca_told')):  # told once after an upgrade
            unitdata.kv().set(KV_CA, trust)
            cas = self.decision.cas
            unitdata.kv().set(KV_CA_EXPIRY, _iso(min(ca.earliest_expiry() for ca in _roles(cas) if ca)))
            _raise(self.relation_name, CA_AVAILABLE)
            self.inputs = self.inputs._replace(state=dict(self.inputs.state, ca_told=True))
            if changed and self.inputs.held:
                _raise(self.relation_name, CERT_AVAILABLE)

    def update_states(self):
        if _relation_refused():
            return  # nothing is known here; the states stay as the last hook left them
        held = self.usable and bool(self.inputs.held)
        _toggle(self.relation_name, CREATE_CSR, self.usable and not self.inputs.csr)
        _toggle(self.relation_name, SIGN_CSR, self.usable and bool(self.decision.pending))
        # Raised on delivery and on a change of trust (_raise). A charm that
        # clears them (as the original's consumers do) runs its copy and
        # restart handlers once per certificate or trust, not once per hook.
        _toggle(self.relation_name, CERT_AVAILABLE, held and is_flag_set(CERT_AVAILABLE))
        trusts = self.usable and bool(unitdata.kv().get(KV_CA))
        _toggle(self.relation_name, CA_AVAILABLE, trusts and is_flag_set(CA_AVAILABLE))
        _toggle(self.relation_name, CSR_REFUSED, self.usable and self.decision.refusal is not None)

    def write(self):
        """When the hook ends: this unit's bookkeeping, and one relation-set
        for each bag that changes, or none."""
        state = self.inputs.state
        if self.usable:
            cas = self.decision.cas
            read = _written(self.snapshot.app, CA_KEYS + ROTATION_KEYS) if self.snapshot.leader else None
            record = dict({key: cas[key] and cas[key].pem for key in CA_KEYS}, **{"from": read})
            state = dict(state, cas=dict(record, **{key: cas[key] for key in ROTATION_KEYS}))
        unitdata.kv().set(KV_STATE.format(self.relation_name), state)  # the same again writes nothing
        if not self.usable:
            return
        rid = _relation_id(self.relation_name)
        if self.decision.bag:
            hookenv.relation_set(rid, self.decision.bag)
        if self.decision.app:
            hookenv.relation_set(rid, self.decision.app, app=True)


@hookenv.cached
def _hook(relation_name):
    """This hook's _Hook for ``relation_name``: read on first use, kept in
    charmhelpers' per-hook cache, so that every TlsPeers object a handler
    is given shares it and none outlives the hook."""
    return _Hook(relation_name)


def _stalled(hook, unit, csr, answer):
    """The bookkeeping after ``answer`` for ``unit``: a renewal that does
    not move notAfter on (a cached certificate, a CA that caps validity)
    is warned about, once, and ``unit`` not listed again until its
    certificate changes, rather than asked for in every hook."""
    renewed = _published_answer(hook.snapshot, unit, csr, None)
    stalls = bool(renewed and renewed.lifetime_passed(hook.snapshot.now) >= RENEW_AT
                  and answer.expiry() <= renewed.expiry())
    stalled = dict(hook.inputs.state['stalled'])
    if stalls:
        hookenv.log(f'interface-tls: the renewal of the certificate for {unit} does not expire after '
                    f'the one it renews ({_iso(answer.expiry())}); not listing {unit} again until its '
                    'certificate changes', hookenv.WARNING)
        stalled[unit] = answer.expiry()
    else:
        stalled.pop(unit, None)
    return dict(hook.inputs.state, stalled=stalled)


def _given(hook, given):
    """The bookkeeping after the charm gave ``given`` as the CA. A leader
    whose charm gives a CA other than the published one, which it never
    gave itself, has most likely lost the previous leader's CA key
    (charmed-kubernetes/bundle#564): say so, naming both. The rotation
    keeps the units talking meanwhile."""
    published, state = hook.snapshot.cas, hook.inputs.state
    last = state['cas_given'][-1:]
    if (published[CA_KEY] and given not in (published[CA_KEY], published[CA_NEXT_KEY])
            and published[CA_KEY].digest not in state['cas_given'] and last != [given.digest]):
        hookenv.log(f'interface-tls: the CA this leader gives (SHA-256 {given.digest}) is not the '
                    f'published one (SHA-256 {published[CA_KEY].digest}), which this unit never '
                    'gave: was the previous CA lost? Rotating to it; units trust both meanwhile',
                    hookenv.WARNING)
    if last == [given.digest]:
        return state
    kept = [digest for digest in state['cas_given'] if digest != given.digest]
    return dict(state, cas_given=(kept + [given.digest])[-MAX_DIGESTS:])


def _warn_if_it_outlives_its_ca(unit, answer, cas):
    leaf = answer.certs[0]
    for ca in (cert for role in _roles(cas) if role for cert in role.certs):
        if ca.subject == leaf.issuer and ca.not_after < leaf.not_after:
            hookenv.log(f'interface-tls: the certificate for {unit} expires at {_iso(leaf.not_after)}, '
                        f'after the CA that signed it ({_iso(ca.not_after)})', hookenv.WARNING)


def _deliver(answer):
    """Store this unit's new certificate."""
    me = hookenv.local_unit()
    unitdata.kv().set(KV_CERT.format(me), answer.pem)
    unitdata.kv().set(KV_SERVER_CERT, answer.pem)
    unitdata.kv().set(KV_SERVER_CERT_EXPIRY, _iso(answer.expiry()))
    hookenv.log(f'interface-tls: certificate for {me} delivered', hookenv.INFO)


def _raise(relation_name, flag):
    """Raise ``flag`` anew, so its handlers run again even if it was
    raised (or the charm cleared it)."""
    _toggle(relation_name, flag, False)
    _toggle(relation_name, flag, True)


def _toggle(relation_name, flag, active):
    """Set ``flag`` bound to the relation's conversation, or clear it;
    written whole, so flags the original layer bound to per-unit
    conversations are replaced."""
    if active:
        key = Conversation._key(relation_name, scopes.GLOBAL)
        set_flag(flag, {'relation': relation_name, 'conversations': [key]})
    elif is_flag_set(flag):
        clear_flag(flag)


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


def _relation_names():
    return hookenv.role_and_interface_to_relations('peers', INTERFACE)


def _hook_start():
    for name in _relation_names():
        TlsPeers(name)  # stores the conversation the states are bound to
        _hook(name).start()
    hookenv.atexit(_hook_end)


def _hook_end():
    for name in _relation_names():
        _hook(name).write()


hookenv.atstart(_hook_start)


# Hook tools and their answers ---------------------------------------------

@hookenv.cached
def _is_leader():
    """is-leader, asked once per hook."""
    return hookenv.is_leader()


def _relation_id(relation_name):
    """The relation's id, or None while this unit cannot use it: before
    it exists, and where Juju may refuse it (_relation_refused). A hook
    of this relation has the id in its environment, which saves a
    relation-ids call."""
    if _relation_refused():
        return None
    if hookenv.relation_type() == relation_name:
        return hookenv.relation_id()
    ids = hookenv.relation_ids(relation_name)
    return ids[0] if ids else None


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


# PEM, parsed once per hook ------------------------------------------------

# pem.py's readers, memoized in charmhelpers' per-hook cache.
_certificates, _authorities, _request = map(hookenv.cached, (pem.certificates, pem.authorities, pem.request))


def _valid(text, parse, key=None, writer=_APP_BAG):
    """``parse(text)``, or None for nothing or junk; junk under ``key`` is
    warned about, naming its ``writer``."""
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as error:
        if key:
            _warn(writer, key, error)
        return None


def _parsed(method, parse, text):
    """``parse(text)`` for a charm's call; a ValueError names ``method``."""
    try:
        return parse(text)
    except ValueError as error:
        raise ValueError(f'{method}: {error}') from None


def _warn(writer, key, reason):
    (level, message), = _ignored(key, reason, writer)
    hookenv.log(f'interface-tls: {message}', level)


def _answer_unit(key):
    """The unit an answer key (``CERT_KEY``, ``CSR_DIGEST_KEY``) is for, or None."""
    match = _ANSWER_KEY.fullmatch(key)
    return match.group(1) if match else None


def _iso(seconds):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seconds))
