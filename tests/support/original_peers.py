"""A stand-in for the original interface:tls layer's peers.py, for upgrade
and mixed-version tests.

It speaks the original layer's wire format and keeps its habits, which is
all that matters to units running this layer next to it: every unit writes
its CSR under ``csr`` in its own bag; the leader writes each unit's
certificate under ``<unit>_signed_certificate`` in its *own* bag, with no
digest binding it to a CSR; states are bound to per-unit conversations
(``scopes.UNIT``), so ``set_csr()`` works only in relation hooks; nothing
reaches unitdata. Written for these tests from the original layer's
documented behaviour, not copied from it. Its keys and state names are
written out, not imported from peers.py: they are the original's, and must
not follow a change to this layer's.
"""
from charmhelpers.core import hookenv
from charms.reactive import RelationBase, hook, scopes

CERT_KEY = '{}_signed_certificate'


class TlsPeers(RelationBase):
    scope = scopes.UNIT

    @hook('{peers:tls}-relation-joined')
    def joined(self):
        self.conversation().set_state('create certificate signing request')

    @hook('{peers:tls}-relation-changed')
    def changed(self):
        conversation = self.conversation()
        if hookenv.is_leader():
            if conversation.get_remote('csr'):
                conversation.set_state('sign certificate signing request')
        elif conversation.get_remote(CERT_KEY.format(hookenv.local_unit())):
            conversation.set_state('signed certificate available')

    def set_csr(self, csr):
        conversation = self.conversation()
        conversation.set_remote('csr', csr)
        conversation.remove_state('create certificate signing request')

    def get_csr_map(self):
        csrs = {}
        for conversation in self.conversations():
            for unit in conversation.units:
                csr = hookenv.relation_get('csr', unit, conversation.namespace)
                if csr:
                    csrs[unit] = csr
        return csrs

    def set_cert(self, unit_name, certificate):
        for conversation in self.conversations():
            conversation.set_remote(CERT_KEY.format(unit_name), certificate)

    def get_signed_cert(self):
        for conversation in self.conversations():
            certificate = conversation.get_remote(CERT_KEY.format(hookenv.local_unit()))
            if certificate:
                return certificate
        return None
