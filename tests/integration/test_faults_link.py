"""tests/integration/test_faults_link.py — the link between the fronts and the SM under faults,
with a steady message load (tests/bench/loadgen) between clients spread over two fronts:
  - presence and rosters across an SM restart (slixmpp: contacts on both fronts);
  - the SM killed (SIGKILL) and restarted under load;
  - the link cut from outside (ss -K closes the fronts' sockets to the SM) under load;
  - a front killed (SIGKILL) under load, then restarted with the same id;
  - the same three faults under clients with XEP-0198 stream management (the load generator's
    --sm, as Conversations): sent = delivered, lost 0, duplicated 0, and the killed front's
    clients resume on the other front.
For each: clients connected before and after, messages sent / delivered / lost / duplicated /
errored (from the load generator, which matches every message by sender and sequence), and the
time to recover. Without stream management, loss is refused except for messages to or from
clients whose own front was killed (they were in that process's memory), which are counted apart;
with it, loss and duplicates are refused (docs/smproto.md §3 and §6).

Usage: test_faults_link.py BUILD_DIR. Ends with "faults_link: N passed, N failed"."""

import asyncio
import os
import subprocess
import time

from jabtest.suite import main, require_slixmpp

require_slixmpp('faults_link')

from jabtest.client import Client  # noqa: E402
from jabtest.proc import wait_until  # noqa: E402
from jabtest.report import Failure  # noqa: E402
from jabtest.system import System, sanitized, sanitizer_reports  # noqa: E402
from jabtest.xmpp import NS_CLIENT, Server, is_, q, show  # noqa: E402


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


def presence_across_restart(rep, system, a_user, b_user):
    """Two contacts on different fronts, subscribed both ways, available; the SM is killed and
    restarted; afterwards their sessions are back, available, with rosters and routing intact."""
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
        system.sm.kill()
        killed = time.monotonic()
        # Sent while the SM is down: its front holds it and sends it to the new SM.
        a.send_raw("<message to='%s/rb' type='chat' id='m0'><body>during the outage</body>"
                   "</message>" % bj)
        if not system.start_sm():
            raise Failure('the SM did not start again')
        for f, before in zip(('jadc2s', 'front2'), links_before):
            if not await asyncio.to_thread(
                    wait_until, lambda f=f, n=before: system.program_log(f).count(
                        'SM link: resync done') > n, 30):
                raise Failure('front %s did not resync' % f)
        recovered = time.monotonic() - killed
        counts = await asyncio.to_thread(sessions, system)
        rep.check('presence: both sessions restored and available after the SM restart',
                  counts.get('jadc2s', (0, 0))[1] >= 1 and counts.get('front2', (0, 0))[1] >= 1,
                  'sessions %s; kill to resync done %.2f s' % (counts, recovered), figures=True)
        # Contacts learn the restored presence again (it is re-broadcast).
        await b.expect(lambda el: is_(el, 'presence', '') and el.get('from') == aj + '/ra',
                       "a's presence again after the restart")
        # The message sent during the outage is delivered as a message, not from offline storage
        # (sm/restart_wait.c: it waited for b's front to re-announce b's session).
        m0 = await b.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'm0',
                            'the message sent while the SM was down')
        rep.check('presence: a message sent during the outage arrives directly (no <delay/>)',
                  m0.find(q('urn:xmpp:delay', 'delay')) is None, show(m0))
        # Neither saw the other go unavailable: probes waited for the other front's resync.
        flaps = [show(el) for c, j in ((a, bj), (b, aj)) for el in c.received
                 if is_(el, 'presence', 'unavailable') and (el.get('from') or '').startswith(j)]
        rep.check('presence: no contact seen unavailable across the SM restart', not flaps, flaps)
        # Presence changes and messages route as before: the roster was reloaded.
        b.send_raw("<presence><status>after</status></presence>")
        el = await a.expect(lambda el: is_(el, 'presence', '') and el.get('from') == bj + '/rb'
                            and el.findtext(q(NS_CLIENT, 'status')) == 'after',
                            "b's new presence after the restart")
        a.send_raw("<message to='%s' type='chat' id='m1'><body>after restart</body></message>" % bj)
        await b.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'm1',
                       'the message after the restart')
        roster = await a.iq('get', "<query xmlns='jabber:iq:roster'/>")
        items = roster.findall('.//{jabber:iq:roster}item')
        sub = [i.get('subscription') for i in items if i.get('jid') == bj]
        rep.check('presence: rosters, presence and routing as before the SM restart',
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
        rep.not_ok('presence across an SM restart', '%s: %s' % (type(e).__name__, e))


def sm_killed(rep, system, users, rate, seconds):
    sc = Scenario(rep, system, 'SM killed', users, rate, seconds)
    if not sc.logged_in():
        sc.lg.stop()
        return
    time.sleep(seconds / 3)
    before = [system.program_log(f).count('SM link: resync done') for f in ('jadc2s', 'front2')]
    system.sm.kill()
    killed = time.monotonic()
    time.sleep(1)  # an operator's (or systemd's) restart delay
    started = system.start_sm()
    resynced = all(wait_until(lambda f=f, n=n: system.program_log(f).count('SM link: resync done')
                              > n, 30) for f, n in zip(('jadc2s', 'front2'), before))
    recovery = time.monotonic() - killed
    rep.check('SM killed: it restarts and both fronts resync', bool(started) and resynced,
              'SIGKILL to both fronts resynced: %.2f s (1 s of it the restart delay)' % recovery,
              figures=True)
    ok = wait_until(lambda: all_available(system, users), 10)
    rep.check('SM killed: every session restored and available, while the load runs', ok,
              sessions(system), figures=True)
    r = sc.round()
    if r is None:
        return
    rep.check('SM killed: no client disconnected', r.get('connected') == users, summary(r),
              figures=True)
    rep.check('SM killed: no message lost, none errored', r.get('lost') == 0 and
              r.get('errored') == 0 and r.get('delivered', 0) + r.get('dup', 0) >= r.get('sent', 1),
              summary(r), figures=True)
    rep.check('SM killed: no message delivered twice (the fronts drop what the new SM sends again)',
              r.get('dup') == 0, summary(r), figures=True)


def link_cut(rep, system, users, rate, seconds, sm=False):
    """Both links cut under load (with sm, clients with XEP-0198: then also nothing twice)."""
    what = 'link cut, XEP-0198' if sm else 'link cut'
    sc = Scenario(rep, system, what, users, rate, seconds, sm=sm)
    if not sc.logged_in():
        sc.lg.stop()
        return
    time.sleep(seconds / 3)
    before = [system.program_log(f).count('SM link: resync done') for f in ('jadc2s', 'front2')]
    cut = subprocess.run(['ss', '-K', 'dst', '127.0.0.1', 'dport', '=', ':%d' % system.sm_port],
                         capture_output=True, text=True)
    t = time.monotonic()
    resynced = all(wait_until(lambda f=f, n=n: system.program_log(f).count('SM link: resync done')
                              > n, 30) for f, n in zip(('jadc2s', 'front2'), before))
    recovery = time.monotonic() - t
    rep.check('%s: ss -K closes the links; both fronts reconnect and resync' % what,
              resynced and system.sm.alive(),
              'cut to both resynced: %.2f s (%s)' % (recovery, cut.stdout.count('ESTAB')
                                                      and '%d sockets closed' %
                                                      cut.stdout.count('ESTAB')), figures=True)
    ok = wait_until(lambda: all_available(system, users), 10)
    rep.check('%s: every session restored and available, while the load runs' % what, ok,
              sessions(system), figures=True)
    if sm:
        r, _ = sm_round(rep, sc, what)
    else:
        r = sc.round()
    if r is None:
        return
    rep.check('%s: no client disconnected' % what, r.get('connected') == users, summary(r),
              figures=True)
    rep.check('%s: no message lost, none errored' % what, r.get('lost') == 0 and
              r.get('errored') == 0, summary(r), figures=True)


def front_killed(rep, system, users, rate, seconds):
    sc = Scenario(rep, system, 'front killed', users, rate, seconds, reconnect=True)
    if not sc.logged_in():
        sc.lg.stop()
        return
    time.sleep(seconds / 3)
    system.front('front2').kill()
    killed = time.monotonic()
    ended = wait_until(lambda: 'front2' not in sessions(system), 30)
    noticed = time.monotonic() - killed
    rep.check("front killed: the SM ends that front's sessions", bool(ended),
              'noticed in %.2f s; sessions now %s' % (noticed, sessions(system)), figures=True)
    time.sleep(2)
    restarted = system.start_front('front2')
    back = wait_until(lambda: all_available(system, users), 60)
    rep.check('front killed: restarted with the same id, it is accepted and its clients are back',
              bool(restarted) and bool(back),
              'kill to all %d sessions back: %.2f s' % (users, time.monotonic() - killed),
              figures=True)
    r = sc.round()
    if r is None:
        return
    rep.check('front killed: no message lost between clients of the surviving front '
              'and of the restarted one after they came back', r.get('lost_stable') == 0,
              summary(r), figures=True)
    rep.note('front killed: %d messages were in the killed process or sent to its clients before '
             'they were back (lost_dropped); messages for them after the kill were stored offline '
             'and delivered at their next login' % r.get('lost_dropped', -1))


def sm_summary(r, smr):
    return '%s; stream management: %s' % (summary(r), ', '.join(
        '%s %s' % (k, smr.get(k)) for k in ('enabled', 'resumed', 'resume_failed', 'resent',
                                            'resume_p99_ms') if k in smr))


def sm_round(rep, sc, what):
    """The round of a stream-management scenario: sent = delivered, nothing lost, nothing twice."""
    r = sc.round()
    if r is None:
        return None, {}
    smr = sc.lg.records('sm')
    smr = smr[-1] if smr else {}
    rep.check('%s: every client enabled stream management' % what,
              smr.get('enabled') == sc.users and smr.get('unsupported') == 0, sm_summary(r, smr),
              figures=True)
    rep.check('%s: sent = delivered, lost 0, duplicated 0' % what,
              r.get('lost') == 0 and r.get('dup') == 0 and r.get('errored') == 0 and
              r.get('delivered') == r.get('sent'), sm_summary(r, smr), figures=True)
    return r, smr


def front_killed_sm(rep, system, users, rate, seconds):
    """A front killed under clients with stream management: they reconnect to the other front and
    resume there (the SM kept what they had not acknowledged); nothing is lost or doubled."""
    what = 'front killed, XEP-0198'
    sc = Scenario(rep, system, what, users, rate, seconds, reconnect=True, sm=True)
    if not sc.logged_in():
        sc.lg.stop()
        return
    time.sleep(seconds / 3)
    system.front('front2').kill()
    r, smr = sm_round(rep, sc, what)
    if r is not None:
        rep.check('%s: the killed front\'s clients resumed on the other front' % what,
                  smr.get('resumed', 0) >= users // 2 - 5 and smr.get('resume_failed') == 0,
                  sm_summary(r, smr), figures=True)
    system.start_front('front2')


def sm_killed_sm(rep, system, users, rate, seconds):
    """The SM killed under clients with stream management: no client disconnected, nothing lost or
    doubled."""
    what = 'SM killed, XEP-0198'
    sc = Scenario(rep, system, what, users, rate, seconds, sm=True)
    if not sc.logged_in():
        sc.lg.stop()
        return
    time.sleep(seconds / 3)
    system.sm.kill()
    time.sleep(1)
    system.start_sm()
    r, smr = sm_round(rep, sc, what)
    if r is not None:
        rep.check('%s: no client disconnected' % what, r.get('connected') == users,
                  sm_summary(r, smr), figures=True)


def suite(rep, build):
    loadgen = os.path.join(build, 'bench', 'loadgen')
    if not os.access(loadgen, os.X_OK):
        rep.not_ok('the load generator is built (%s)' % loadgen)
        return
    users, rate, seconds = (200, 100, 24) if sanitized(build) else (1000, 400, 30)
    with System(build, 'faults-link', rep) as system:
        system.prepare()
        system.add_front('front2')
        ok, out = system.make_users(users + 2)
        rep.check('%d accounts imported' % (users + 2), ok, out, figures=True)
        ok = bool(system.start_sm()) and bool(system.start_front()) and \
            bool(system.start_front('front2'))
        rep.check('the SM and two fronts are up', ok, system.dir, figures=True)
        if not ok:
            return
        presence_across_restart(rep, system, 'user%d' % (users + 1), 'user%d' % (users + 2))
        sm_killed(rep, system, users, rate, seconds)
        link_cut(rep, system, users, rate, seconds)
        front_killed(rep, system, users, rate, seconds)
        front_killed_sm(rep, system, users, rate, seconds)
        sm_killed_sm(rep, system, users, rate, seconds)
        link_cut(rep, system, users, rate, seconds, sm=True)
        for p in system.programs:
            if p.alive() and sanitizer_reports(p.text()):
                rep.not_ok('no sanitizer reports in %s' % p.log_path, p.text()[-3000:])


if __name__ == '__main__':
    main('faults_link', suite)
