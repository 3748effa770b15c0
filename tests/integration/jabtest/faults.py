"""jabtest.faults — what the fault suites share (test_faults_link.py, test_standby.py): the load
generator's arguments for clients spread over the fronts 'jadc2s' and 'front2', its figures in
one line, the SM's sessions per front, a load run with one fault in its message round, and two
contacts on different fronts checked across an SM fault (presence, rosters, routing); the system
they start from."""

import asyncio
import os
import re
import time

from .client import Client
from .proc import wait_until
from .report import Failure
from .system import System
from .xmpp import NS_CLIENT, Server, is_, q, show


def prepared(rep, build, name, users):
    """The fault suites' system, nothing started yet: the SM and the fronts 'jadc2s' and 'front2'
    as tools/run.sh prepares them, accounts user1..user{users + 2} (the last two for
    presence_across_restart). A System (use it with 'with'), or None when the load generator is
    not built."""
    loadgen = os.path.join(build, 'bench', 'loadgen')
    if not os.access(loadgen, os.X_OK):
        rep.not_ok('the load generator is built (%s)' % loadgen)
        return None
    system = System(build, name, rep)
    try:
        system.prepare()
        system.add_front('front2')
        ok, out = system.make_users(users + 2)
    except BaseException:
        system.cleanup()
        raise
    rep.check('%d accounts imported' % (users + 2), ok, out, figures=True)
    return system


def load_args(system, users, rate, seconds, reconnect=False, sm=False):
    args = ['--host', '127.0.0.1',
            '--port', '%d,%d' % (system.fronts['jadc2s'][1], system.fronts['front2'][1]),
            '--domain', 'localhost', '--users', str(users), '--mech', 'SCRAM-SHA-1',
            '--tls', 'none', '--sources', '127.0.0.1-127.0.0.50', '--login-concurrency', '100',
            '--rates', str(rate), '--round-seconds', str(seconds), '--drain-seconds', '10',
            '--keepalive', '0', '--timeout', '60']
    if reconnect:
        args += ['--reconnect', '1']
    if sm:
        # XEP-0198 as Conversations: <r/> after every message; a client whose connection is lost
        # reconnects to the next front of the list and resumes there.
        args += ['--sm', '--sm-ack-every', '1']
    return args


def summary(r):
    return ('connected %d, sent %d, delivered %d, lost %d (stable %d, dropped %d), dup %d, '
            'errored %d, p99 %.1f ms' % (r.get('connected', -1), r.get('sent', -1),
                                         r.get('delivered', -1), r.get('lost', -1),
                                         r.get('lost_stable', -1), r.get('lost_dropped', -1),
                                         r.get('dup', -1), r.get('errored', -1),
                                         r.get('p99_ms', -1.0)))


def sessions(system):
    """{front id: (bound sessions, of which available)} from jabshardctl sessions."""
    counts = {}
    for f in system.sessions()[1]:
        bound, avail = counts.get(f[1], (0, 0))
        counts[f[1]] = (bound + 1, avail + (f[4] == 'available'))
    return counts


def all_available(system, users):
    s = sessions(system)
    return sum(v[0] for v in s.values()) == users and sum(v[1] for v in s.values()) == users


class Scenario:
    """One load run with one fault in the middle of its message round."""

    def __init__(self, rep, system, name, users, rate, seconds, reconnect=False, sm=False):
        self.rep, self.system, self.name = rep, system, name
        self.users, self.seconds = users, seconds
        self.lg = system.loadgen(load_args(system, users, rate, seconds, reconnect, sm), name)

    def logged_in(self):
        login = self.lg.wait_record('login', 120)
        ok = bool(login) and login[0].get('ok') == self.users
        self.rep.check('%s: %d clients logged in over two fronts' % (self.name, self.users), ok,
                       login[0] if login else 'no login line (see %s.err)' % self.name,
                       figures=True)
        return ok

    def round(self):
        r = self.lg.wait_record('round', self.seconds + 90)
        code = self.lg.wait(30)
        if not r:
            self.rep.not_ok('%s: the load generator finished its round' % self.name,
                            'exit %s; see %s/%s.err' % (code, self.system.dir, self.name))
            return None
        return r[-1]


# Seconds a client waits, after the fronts have resynced, for what the new SM sends once it has
# restored their sessions (<limits><resync_wait> is 5 s).
AFTER_FAULT_WAIT = 15


def restart_sm(system, during):
    """The fault of presence_across_restart by default: the SM killed (SIGKILL), during() called,
    the SM started again."""
    system.sm.kill()
    during()
    if not system.start_sm():
        raise Failure('the SM did not start again')


def presence_across_restart(rep, system, a_user, b_user, fault=restart_sm, what='the SM restart'):
    """Two contacts on different fronts, subscribed both ways, available; fault(system) kills the
    SM, calls during() (a message sent while it is down) and starts one (system.sm then: the one
    the fronts find); afterwards their sessions are back,
    available, with rosters and routing intact. what names the fault in the checks."""
    server = Server('127.0.0.1', system.port, system.tls_port,
                    os.path.join(system.run, 'server.pem'))

    async def scenario(a, b):
        await a.login(port=system.fronts['jadc2s'][1])
        await b.login(port=system.fronts['front2'][1])
        aj, bj = '%s@localhost' % a_user, '%s@localhost' % b_user
        # Subscription requests go to available resources (RFC 6121 §3.1.3).
        a.send_raw("<presence/>")
        b.send_raw("<presence/>")
        for x, y, xj, yj in ((a, b, aj, bj), (b, a, bj, aj)):
            x.send_raw("<presence to='%s' type='subscribe'/>" % yj)
            await y.expect(lambda el: is_(el, 'presence', 'subscribe', xj), 'the subscribe')
            y.send_raw("<presence to='%s' type='subscribed'/>" % xj)
            await x.expect(lambda el: is_(el, 'presence', 'subscribed', yj), 'the subscribed')
        a.send_raw("<presence><status>before</status></presence>")
        b.send_raw("<presence><status>before</status></presence>")
        await b.expect(lambda el: is_(el, 'presence', '') and el.get('from') == aj + '/ra',
                       "a's presence")
        await a.expect(lambda el: is_(el, 'presence', '') and el.get('from') == bj + '/rb',
                       "b's presence")
        a.received.clear()
        b.received.clear()

        links_before = [system.program_log(f).count('SM link: resync done')
                        for f in ('jadc2s', 'front2')]
        killed = time.monotonic()
        # Sent while the SM is down: its front holds it and sends it to the new SM.
        fault(system, lambda: a.send_raw("<message to='%s/rb' type='chat' id='m0'>"
                                         "<body>during the outage</body></message>" % bj))
        for f, before in zip(('jadc2s', 'front2'), links_before):
            if not await asyncio.to_thread(
                    wait_until, lambda f=f, n=before: system.program_log(f).count(
                        'SM link: resync done') > n, 30):
                raise Failure('front %s did not resync' % f)
        recovered = time.monotonic() - killed
        counts = await asyncio.to_thread(sessions, system)
        rep.check('presence: both sessions restored and available after %s' % what,
                  counts.get('jadc2s', (0, 0))[1] >= 1 and counts.get('front2', (0, 0))[1] >= 1,
                  'sessions %s; kill to resync done %.2f s' % (counts, recovered), figures=True)
        # The new SM keeps each restored session's presence without sending it again (both
        # sessions outlived the old SM: docs/smproto.md §2, "Presence in a resync"), and answers
        # probes with it. A presence the old SM had not acknowledged when it died is sent again
        # by its front (at least once, §3), so the other may see it once more. What must hold:
        # the new SM kept the restored presences (its log), neither turns unavailable for the
        # other (below), and a's next change reaches b (after the message). The message sent
        # during the outage is delivered as a message, not from offline storage
        # (sm/restart_wait.c: it waited for b's front to re-announce b's session).
        m0 = await b.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'm0',
                            'the message sent while the SM was down', timeout=AFTER_FAULT_WAIT)
        rep.check('presence: a message sent during the outage arrives directly (no <delay/>)',
                  m0.find(q('urn:xmpp:delay', 'delay')) is None, show(m0))
        # Neither saw the other go unavailable: probes waited for the other front's resync.
        flaps = [show(el) for c, j in ((a, bj), (b, aj)) for el in c.received
                 if is_(el, 'presence', 'unavailable') and (el.get('from') or '').startswith(j)]
        rep.check('presence: no contact seen unavailable across %s' % what, not flaps, flaps)
        # The SM logs it when its start's wait is over, which may be after the fronts' resyncs:
        # a slow (sanitized) SM takes longer.
        pattern = r'(\d+) sessions came back with their presence kept'
        await asyncio.to_thread(wait_until, lambda: re.search(pattern, system.sm.text()),
                                AFTER_FAULT_WAIT)
        kept = re.findall(pattern, system.sm.text())
        rep.check('presence: the new SM kept the restored sessions\' presence (not broadcast '
                  'again) across %s' % what, bool(kept) and int(kept[-1]) >= 2,
                  'its log: %s sessions came back with their presence kept' % (kept or ['no']))
        # Presence changes and messages route as before: the roster was reloaded. a's change
        # comes first: it may come only once the new SM has restored every re-announced session
        # (its start's wait), on a busy machine later than the clients' usual wait.
        a.send_raw("<presence><status>after a</status></presence>")
        await b.expect(lambda el: is_(el, 'presence', '') and el.get('from') == aj + '/ra'
                       and el.findtext(q(NS_CLIENT, 'status')) == 'after a',
                       "a's new presence after %s" % what, timeout=AFTER_FAULT_WAIT)
        b.send_raw("<presence><status>after</status></presence>")
        el = await a.expect(lambda el: is_(el, 'presence', '') and el.get('from') == bj + '/rb'
                            and el.findtext(q(NS_CLIENT, 'status')) == 'after',
                            "b's new presence after %s" % what)
        a.send_raw("<message to='%s' type='chat' id='m1'><body>after restart</body></message>" % bj)
        await b.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'm1',
                       'the message after %s' % what)
        roster = await a.iq('get', "<query xmlns='jabber:iq:roster'/>")
        items = roster.findall('.//{jabber:iq:roster}item')
        sub = [i.get('subscription') for i in items if i.get('jid') == bj]
        rep.check('presence: rosters, presence and routing as before %s' % what,
                  el is not None and sub == ['both'], 'roster item for b: %s' % sub,
                  figures=True)

    async def run():
        a = Client('%s@localhost/ra' % a_user, 'pass' + a_user[4:], server)
        b = Client('%s@localhost/rb' % b_user, 'pass' + b_user[4:], server)
        try:
            await asyncio.wait_for(scenario(a, b), 90)
        finally:
            # Whatever happened, the two sessions go: the load scenarios count sessions.
            for c in (a, b):
                try:
                    await c.logout()
                except Exception:  # noqa: BLE001 — already gone
                    c.abort()

    try:
        asyncio.run(run())
    except Exception as e:  # noqa: BLE001 — any failure is this check's failure
        rep.not_ok('presence across %s' % what, '%s: %s' % (type(e).__name__, e))


