"""jujusim: a test double of Juju for one application with one peer relation.

It runs the real hooks of a reactive charm against a simulated model: the
hook file, ``charms.reactive.main()``, charmhelpers, unitdata and the
interface layer all run for real; only the hook tools (``relation-get``,
``leader-set``, ``juju-log`` ...) are answered by the simulator.

Usage::

    from jujusim import Model

    m = Model(charm_dir, relation='tls', executor='inprocess', workdir=tmp_path)
    u0 = m.add_unit(); m.add_unit(); m.settle()
    m.remove_unit('tls-example/1'); m.move_leader('tls-example/2')
    m.set_config(foo='x'); m.fail_next(u0); m.settle(seed=7)

API (``jujusim.model.Model``):

``Model(charm_dir, relation, executor='inprocess', workdir=None, seed=None,
app=None, max_retries=5, juju=None, self_notify=None, commit_loss=0.0)``
    ``charm_dir`` is a built charm (``hooks/<name>`` files); ``relation``
    must be a peer relation in its metadata.yaml. ``executor`` is
    ``'inprocess'`` (hooks run in this process, a few ms each) or
    ``'subprocess'`` (each hook and each hook tool call is a process). The
    model gets its own directory under ``workdir`` (default: a temporary
    directory) with a copy of the charm per unit, as Juju deploys it. With
    ``seed``, ``settle`` picks units at random and a new leader is chosen at
    random. ``app`` defaults to the charm name. A hook failing more than
    ``max_retries`` times raises :class:`HookRetriesExhausted`. ``juju``
    names the Juju modelled where versions differ, ``'3'`` or ``'2.9'``
    (``model.JUJU``; today only in what ``install`` sees of the peer
    relation); without it, ``$JUJUSIM_JUJU`` decides, else ``'3'``, so one
    test run can use either. ``self_notify`` says whether the leader gets
    ``-relation-changed`` for its own application-bag writes, as Juju's
    source says it does (``model.DEFAULT_SELF_NOTIFY``); without it,
    ``$JUJUSIM_SELF_NOTIFY`` ('0' or '1') decides, else yes. ``commit_loss``
    is the chance that a hook which exited 0 loses its relation-settings
    commit (see ``lose_commit``), drawn from ``seed``. Use as a context
    manager, or call ``close()``.

Changing the model (hooks are only queued; nothing runs until ``settle`` or
``run``):

- ``add_unit() -> str``: the storage hooks, install, relation-created, leader-elected or
  leader-settings-changed, config-changed, start, then -joined/-changed both
  ways with every live unit.
- ``remove_unit(unit)``: -departed on both sides, then stop and remove; the
  unit is gone (``bag`` refuses it) once its queue is empty. Units that saw it
  depart can still ``relation-get`` its last settings, as in Juju.
  A leader that leaves keeps leading through its teardown; another unit is
  elected once it is gone.
- ``move_leader(unit, mid_hook=None)``: now, or (with a hook tool name)
  during the leader's next hook, just before its first call of that tool.
  The deposed leader runs leader-settings-changed (Juju has no
  leader-deposed hook).
- ``restart_agent(unit)``: the unit's settings cache is emptied and a
  non-leader runs leader-settings-changed.
- ``set_config(**values)`` (None resets),
  ``queue(unit, hook, remote=None)`` (e.g. ``'update-status'``),
  ``fail_next(unit, hook_name=None)`` (the hook process fails: nothing is
  kept), ``lose_commit(unit, hook_name=None)`` (it exits 0, unit data is
  kept, its relation writes are lost and it is retried),
  ``duplicate(unit, index)``.
- ``poke(unit, settings)``, ``poke_app(settings)``,
  ``poke_leader_settings(settings)``: what an operator writes with ``juju
  exec ... relation-set`` / ``relation-set --app`` / ``leader-set``,
  committed at once and fanned out like a hook's writes.

Running hooks:

- ``settle(max_hooks=10000, seed=None) -> [HookRecord]``: until no hook is
  queued; :class:`NotSettled` if that takes more than ``max_hooks``.
- ``pending() -> [(unit, index, Hook)]`` and ``run(unit, index=0) ->
  HookRecord or None`` for model checkers: deliver any queued hook early,
  within the orders Juju guarantees.

Reading the model: ``juju``, ``self_notify``, ``units`` (live, not being
removed), ``leader``, ``leader_settings``, ``config``, ``app_status``,
``bag(unit)`` (committed relation data), ``app_bag()`` (the committed
application bag), ``kv(unit)`` (unit data), ``flags(unit)``,
``status(unit)``, ``history`` (a :class:`HookRecord` per hook run;
``commit_lost`` marks a hook whose relation writes were lost after exit 0;
``app_change`` marks the ``-relation-changed`` of an application-bag change,
``app_written`` holds a hook's committed application-bag writes, ``causes``
the seqs of the hooks whose writes queued it) and
``skipped`` (hooks Juju would not run: no hook file, or leadership moved on).

Semantics are documented where they are implemented, each with the file of
Juju's source (github.com/juju/juju) or the document it follows: hook
queues, relation membership, the settings cache, commits and leadership in
``model.py``; hook tools in ``tools.py``; the
executors in ``inprocess.py`` and ``subproc.py``.

This module imports nothing eagerly, because every hook tool process imports
``jujusim.tools`` and must start fast.
"""

__all__ = ['Model', 'Hook', 'HookRecord', 'JujuSimError', 'HookRetriesExhausted',
           'NotSettled', 'UnsupportedToolCall']


def __getattr__(name):
    """Import the model on first use (PEP 562), not when a hook tool starts."""
    if name in __all__:
        from . import model
        return getattr(model, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
