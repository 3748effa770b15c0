"""tests/integration/test_faults_misc.py — faults that are neither a lost link nor a dead process:

1. a front with the wrong secret for a real service id: the SM refuses it with <not-authorized/>
   and says why, the front says what to check and retries on its schedule, both stay up, and the
   front with the right secret keeps serving;
2. malformed frames towards the SM, from a raw Python "front" that opens the link by the book
   (docs/smproto.md §1) and then sends an unknown frame type, a length over 1 MiB, a malformed
   AUTH_QUERY: the SM closes that link each time, says why, stays up, and the real front keeps
   serving. Then the raw front takes the real front's id: the newest link wins, and the real
   front comes back by itself and serves again;
3. malformed frames towards a front, from a fake SM in Python (an unknown frame type, a length
   over 1 MiB, an ACK of frames never sent): the front closes the link, says why, reconnects
   under the same instance id and stays up;
4. PostgreSQL stopped for a few seconds and started again under message load between online
   users: the load does not notice; a login during the outage fails with
   <temporary-auth-failure/> (how long that took is reported); a message for an offline user
   comes back to its sender as an error (it was not stored, so it must not be silently
   dropped); the SM logs the outage; once the database is back, logins work, offline messages
   are stored and delivered again, and those stored before the outage are still there.

At the end every program, stopped with SIGTERM, exits with status 0.

One system (SM on PostgreSQL from tests/storage/postgres.sh, the front of tools/run.sh) serves
every scenario; jabtest.system starts and stops each program by PID. Figures (times, counts) are
reported in the ok lines; nothing asserts on time. Sanitizer builds get a smaller load.

Usage: test_faults_misc.py BUILD_DIR. Ends with "faults_misc: N passed, N failed"."""

import os
import re
import struct
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET

from jabtest.link import F_ACK, F_AUTH_QUERY, F_STANZA, MAX_PAYLOAD, FakeSM, fake_front, frame
from jabtest.proc import wait_until
from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import ROOT, System, sanitized
from jabtest.xmpp import DOMAIN, NS_CLIENT, q, stanza_error

BUILD = sys.argv[1] if len(sys.argv) > 1 else 'build/default'
SANITIZED = sanitized(BUILD)
# The message load of scenario 4: users, messages per second, seconds.
LOAD_USERS, LOAD_RATE, LOAD_SECONDS = (50, 50, 20) if SANITIZED else (200, 200, 25)
OUTAGE_SECONDS = 5
WAIT = 30 if SANITIZED else 10        # bound on any single expected event
PG = os.path.join(ROOT, 'tests', 'storage', 'postgres.sh')

# (what, the bytes, what the receiver logs when it closes the link)
BAD_FRAMES_TO_SM = [
    ('an unknown frame type', frame(99), 'protocol error: bad frame header'),
    ('a length over 1 MiB', frame(F_STANZA, sid=1, length=MAX_PAYLOAD + 1),
     'protocol error: bad frame header'),
    ('an AUTH_QUERY with a malformed payload', frame(F_AUTH_QUERY, sid=1, payload=b'localhost'),
     'protocol error: bad AUTH_QUERY frame'),
]
BAD_FRAMES_TO_FRONT = [
    ('an unknown frame type', frame(99), 'protocol error: a malformed frame from the SM'),
    ('a length over 1 MiB', frame(F_STANZA, sid=1, length=MAX_PAYLOAD + 1),
     'protocol error: a malformed frame from the SM'),
    ('an ACK beyond what the front sent', frame(F_ACK, payload=struct.pack('>Q', 1 << 40)),
     'protocol error: a bad ACK from the SM'),
]


def since(t):
    return time.monotonic() - t


# ---- clients over direct TLS ---------------------------------------------------------------------

def client(system):
    """A stream over direct TLS to the front, its header sent."""
    return Raw.connect(system.tls_port, tls=True, wait=WAIT, header=True)


def message(c, to, mid, body):
    c.send("<message to='%s' id='%s' type='chat'><body>%s</body></message>" % (to, mid, body))


def wait_message(c, mid, seconds=WAIT):
    return c.expect(lambda e: e.tag == q(NS_CLIENT, 'message') and e.get('id') == mid,
                    'message %s' % mid, seconds)


def error_condition(el):
    """'type/condition' of an error stanza's <error/> (None without one)."""
    err = stanza_error(el)
    if err is None or el.find(q(NS_CLIENT, 'error')) is None:
        return None
    return '%s/%s' % err if err[1] else err[0]


def user(n):
    return 'user%d' % n, 'pass%d' % n


def jid(n):
    return 'user%d@%s' % (n, DOMAIN)


def login(system, n):
    """user n logged in on a new stream, with initial presence."""
    c = client(system)
    c.login(*user(n), resource='r', presence=True)
    return c


def exchange(system, a, b, tag):
    """a logs in, b logs in, a sends b a message that must arrive. Returns the seconds it took."""
    t = time.monotonic()
    ca, cb = login(system, a), login(system, b)
    try:
        message(ca, jid(b), tag, tag)
        wait_message(cb, tag)
    finally:
        ca.end()
        cb.end()
    return since(t)


# ---- the scenarios -------------------------------------------------------------------------------

def scenario_wrong_secret(r, system, bad_front, n):
    front = system.start_front(bad_front, wait_link=False)
    refused = 'SM link: the SM refused us: <not-authorized/>'
    advice = "(check <sm><id> and <secret> against the SM's <service>)"
    t = time.monotonic()
    seen = []                   # when each refusal appeared in the front's log
    while since(t) < 2 * WAIT and len(seen) < 3 and front.alive():
        c = front.count(refused)
        while len(seen) < c:
            seen.append(since(t))
        time.sleep(0.05)
    attempts = ', '.join('%.1f' % s for s in seen)
    r.check('wrong secret: the front says the SM refused it and what to check, and retries',
            len(seen) >= 2 and advice in front.text(),
            '%d refusals at %s s after start' % (len(seen), attempts) if len(seen) >= 2 else
            'refusals: %d; front log:\n%s' % (len(seen), front.text()[-1500:]), figures=True)
    sm_refusals = len(re.findall(r'link %s \([^)]*\): handshake refused: wrong secret' %
                                 re.escape(bad_front), system.sm.text()))
    r.check('wrong secret: the SM logs "handshake refused: wrong secret" for each attempt',
            sm_refusals >= 2, '%d lines' % sm_refusals if sm_refusals >= 2 else
            'SM log:\n' + system.sm.text()[-1500:], figures=True)
    took = exchange(system, n, n + 1, 'after-wrong-secret')
    r.check('wrong secret: both programs stay up and the right front keeps serving',
            front.alive() and system.sm.alive(),
            'login, bind and a message in %.2f s' % took, figures=True)
    front.stop()


def scenario_bad_frames_to_sm(r, system, real, fake_id, n):
    ups = real.count('SM link: up')
    for what, data, expected in BAD_FRAMES_TO_SM:
        name = 'malformed frame to the SM (%s): the SM closes that link, says why, stays up' % what
        try:
            before = system.sm.count(expected)
            link, _ = fake_front(system.sm_port, fake_id, system.secret, wait=WAIT)
            t = time.monotonic()
            link.send(data)
            closed = link.read_to_close()
            took = since(t)
            link.close()
            logged = system.sm.wait_log(expected, WAIT, before + 1)
            served = exchange(system, n, n + 1, 'after-bad-frame')
            r.check(name, closed and logged and system.sm.alive() and
                    real.count('SM link: up') == ups,
                    'closed in %.3f s; the real front kept its link and served a login and a '
                    'message in %.2f s' % (took, served) if closed and logged else
                    'closed: %s, logged "%s": %s, SM up: %s; SM log:\n%s' % (
                        closed, expected, logged, system.sm.alive(), system.sm.text()[-1500:]),
                    figures=True)
        except Failure as e:
            r.not_ok(name, str(e))

    # The real front's own id: the newest link wins, then the real front wins it back.
    name = 'a link with the real front\'s id replaces it; the front comes back by itself'
    try:
        replaced = system.sm.count('replaced by a new link with the same id')
        link, _ = fake_front(system.sm_port, 'jadc2s', system.secret, wait=WAIT)
        t = time.monotonic()
        ok_replaced = system.sm.wait_log('replaced by a new link with the same id', WAIT,
                                         replaced + 1)
        back = real.wait_log('SM link: up', 4 * WAIT, ups + 1)
        back_in = since(t)
        fake_dropped = link.read_to_close()
        link.close()
        served = exchange(system, n, n + 1, 'after-takeover') if back else 0
        r.check(name, ok_replaced and back and fake_dropped and real.alive() and
                system.sm.alive(),
                'front reconnected in %.1f s and replaced the fake; login and a message in %.2f s'
                % (back_in, served) if back else
                'replaced: %s, front back: %s, fake dropped: %s; front log:\n%s' % (
                    ok_replaced, back, fake_dropped, real.text()[-1500:]), figures=True)
    except Failure as e:
        r.not_ok(name, str(e))


def scenario_bad_frames_to_front(r, system, fake_sm, front_id):
    front = system.start_front(front_id, wait_link=False)
    try:
        link, instance = fake_sm.accept(system.secret)
    except Failure as e:
        r.not_ok('malformed frame to a front: the fake SM is accepted', str(e))
        front.stop()
        return
    accepted = 1
    for what, data, expected in BAD_FRAMES_TO_FRONT:
        name = ('malformed frame to a front (%s): it closes the link, says why, reconnects as '
                'the same instance' % what)
        try:
            # The front speaks frames once it logs the link up (it has read our <smproto/>).
            if not front.wait_log('SM link: up', WAIT, accepted):
                raise Failure('the front did not say "SM link: up" to the fake SM')
            before = front.count(expected)
            t = time.monotonic()
            link.send(data)
            closed = link.read_to_close()
            link.close()
            logged = front.wait_log(expected, WAIT, before + 1)
            link, again = fake_sm.accept(system.secret, 4 * WAIT)
            accepted += 1
            back_in = since(t)
            r.check(name, closed and logged and again == instance and front.alive(),
                    'instance %s reconnected in %.1f s' % (instance, back_in)
                    if closed and logged and again == instance else
                    'closed: %s, logged: %s, instance %s then %s; front log:\n%s' % (
                        closed, logged, instance, again, front.text()[-1500:]), figures=True)
        except Failure as e:
            r.not_ok(name, str(e))
            break
    link.close()
    front.stop()


def log_line(program, needle):
    """The first line of program's log holding needle, from its message on (no time stamp)."""
    for ln in program.text().splitlines():
        if needle in ln:
            return ln.split(': ', 1)[-1].strip()[:240]
    return ''


class Postgres:
    """tests/storage/postgres.sh on a directory: start, down, up, stop; each timed."""

    def __init__(self, path):
        self.path = path
        self.started = False

    def run(self, action):
        t = time.monotonic()
        p = subprocess.run(['sh', PG, action, self.path], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0:
            out = p.stdout + p.stderr
            hint = ('\n(the database\'s port was taken while it was down: another PostgreSQL '
                    'started meanwhile, by a test running at the same time?)'
                    if action == 'up' and 'could not bind' in out else '')
            raise Failure('postgres.sh %s failed: %s%s' % (action, out[-1000:], hint))
        return since(t)

    def start(self):
        self.run('start')
        self.started = True
        with open(os.path.join(self.path, 'env')) as f:
            self.env = dict(line.strip().split('=', 1) for line in f if '=' in line)
        return self.env

    def rows(self, table):
        e = self.env
        p = subprocess.run(['psql', '-X', '-tA', '-c', 'SELECT count(*) FROM %s' % table,
                            'host=%s port=%s user=%s password=%s dbname=%s' % (
                                e['XDB_HOST'], e['XDB_PORT'], e['XDB_USER'], e['XDB_PASSWORD'],
                                e['XDB_DATABASE'])], capture_output=True, text=True, timeout=30)
        return int(p.stdout.strip()) if p.returncode == 0 else -1

    def offline_rows(self):
        return self.rows('offline')

    def stop(self):
        if self.started:
            subprocess.run(['sh', PG, 'stop', self.path], capture_output=True, timeout=120)
            self.started = False


def scenario_database_outage(r, system, pg, base):
    a, c, d, e, f = base, base + 1, base + 2, base + 3, base + 4
    sm = system.sm
    # Before the outage: a message for c, offline, stored.
    rows = pg.offline_rows()
    sender = login(system, a)
    message(sender, jid(c), 'before-outage', 'before the outage')
    stored = wait_until(lambda: pg.offline_rows() == rows + 1, WAIT, 0.1)
    r.check('outage: a message for an offline user is stored before the outage', stored,
            '' if stored else 'offline rows: %d, expected %d' % (pg.offline_rows(), rows + 1),
            figures=True)

    if not os.access(os.path.join(system.build, 'bench', 'loadgen'), os.X_OK):
        raise Failure('%s/bench/loadgen is not built' % system.build)
    lg = system.loadgen(['--host', '127.0.0.1', '--port', str(system.port), '--domain', DOMAIN,
                         '--users', str(LOAD_USERS), '--mech', 'SCRAM-SHA-1', '--tls', 'none',
                         '--login-concurrency', '200', '--rates', str(LOAD_RATE),
                         '--round-seconds', str(LOAD_SECONDS), '--drain-seconds', '5',
                         '--reconnect', '1'])
    try:
        logins = lg.wait_record('login', 6 * WAIT)
        if not logins or logins[0].get('ok') != LOAD_USERS:
            raise Failure('the load generator did not log its %d users in: %s (stderr: %s)' % (
                LOAD_USERS, logins, open(lg.err.name, errors='replace').read()[-800:]))
        # Let the round run a while before the outage.
        round_start = time.monotonic()
        time.sleep(LOAD_SECONDS / 4)

        down_took = pg.run('down')
        t_down = time.monotonic()

        # A login during the outage: the front asks the SM for the user's keys, the SM's storage
        # cannot answer.
        try:
            cond, took = client(system).authenticate(*user(d))
        except Failure as ex:
            cond, took = str(ex), 0
        r.check('outage: a login fails with <temporary-auth-failure/>',
                cond == 'temporary-auth-failure', 'failed in %.3f s' % took
                if cond == 'temporary-auth-failure' else 'got: %s (after %.3f s)' % (cond, took),
                figures=True)

        # A message for an offline user during the outage: it cannot be stored; the sender hears.
        t = time.monotonic()
        message(sender, jid(e), 'during-outage', 'during the outage')
        try:
            back = wait_message(sender, 'during-outage')
            cond = error_condition(back) if back.get('type') == 'error' else None
            r.check('outage: a message for an offline user comes back to its sender as an error',
                    cond is not None, '<%s/> after %.3f s' % (cond, since(t)) if cond else
                    'got instead: %s' % ET.tostring(back, encoding='unicode'), figures=True)
        except Failure as ex:
            lines = [ln for ln in sm.text().splitlines() if 'storage' in ln or 'offline' in ln]
            r.check('outage: a message for an offline user comes back to its sender as an error',
                    False, '%s\nSM log lines about storage:\n%s' % (ex, '\n'.join(lines[-10:])),
                    figures=True)

        logged = sm.wait_log('is unreachable', WAIT)
        r.check('outage: the SM logs that the database is unreachable', logged,
                log_line(sm, 'is unreachable') if logged else 'SM log:\n' + sm.text()[-1500:],
                figures=True)

        time.sleep(max(0.0, OUTAGE_SECONDS - since(t_down)))
        up_took = pg.run('up')
        t_up = time.monotonic()
        outage = t_up - t_down

        # Logins work again once the SM's storage reconnects (the breaker probes on a schedule).
        attempts, last = 0, None
        while since(t_up) < 4 * WAIT:
            attempts += 1
            cl = client(system)
            try:
                last, _ = cl.authenticate(*user(f))
            except Failure as ex:
                last = str(ex)
            cl.end()
            if last == 'success':
                break
            time.sleep(0.25)
        r.check('outage over: logins work again', last == 'success',
                'after %.1f s, %d attempts (database down %.1f s: down took %.1f s, up %.1f s)' %
                (since(t_up), attempts, outage, down_took, up_took) if last == 'success' else
                'last attempt: %s; SM log:\n%s' % (last, sm.text()[-1500:]), figures=True)

        archived_at_up = pg.rows('archive')
        # A message for an offline user is stored again, and delivered at its next login.
        message(sender, jid(e), 'after-outage', 'after the outage')
        stored = wait_until(lambda: pg.offline_rows() == rows + 2, WAIT, 0.1)
        try:
            ce = login(system, e)
            got = wait_message(ce, 'after-outage')
            ce.end()
            delayed = got.find(q('urn:xmpp:delay', 'delay')) is not None
            r.check('outage over: a message for an offline user is stored and delivered at login',
                    stored and delayed,
                    'the one refused during the outage was not stored' if stored and delayed else
                    'offline rows: %d, expected %d; delivered with <delay/>: %s' % (
                        pg.offline_rows(), rows + 2, delayed), figures=True)
        except Failure as ex:
            r.not_ok('outage over: a message for an offline user is stored and delivered at login',
                     str(ex))
        try:
            cc = login(system, c)
            wait_message(cc, 'before-outage')
            cc.end()
            r.ok('outage over: the offline message stored before the outage is delivered')
        except Failure as ex:
            r.not_ok('outage over: the offline message stored before the outage is delivered',
                     str(ex))
        sender.end()

        rounds = lg.wait_record('round', LOAD_SECONDS + 6 * WAIT)
        lg.wait(4 * WAIT)
        # Ticks count each second's messages; those that came while the database was down:
        during = [t for t in lg.records('tick') if t_down < t['at'] <= t_up]
        got = sum(t.get('received', 0) for t in during)
        rd = rounds[0] if rounds else {}
        r.check('outage: the message load between online users does not notice',
                rounds and rd.get('lost') == 0 and rd.get('errored') == 0 and
                rd.get('dup') == 0 and rd.get('delivered', 0) > 0 and
                rd.get('connected') == LOAD_USERS,
                '%d users, %d msg/s for %d s: sent %s, delivered %s, lost 0, errored 0, '
                'p99 %s ms; %d delivered in the %.1f s the database was down' % (
                    LOAD_USERS, LOAD_RATE, LOAD_SECONDS, rd.get('sent'), rd.get('delivered'),
                    rd.get('p99_ms'), got, outage) if rounds else
                'round: %s (%.0f s after the round began); last lines: %s' % (
                    rd or 'none', since(round_start), lg.lines[-5:]), figures=True)
        # Archiving (MAM) never held the messages up; what came while the database was down is
        # not archived, counted and logged; what comes after is archived again.
        r.check('outage: the SM logs the messages it could not archive',
                sm.count('could not be archived') >= 1,
                log_line(sm, 'could not be archived') or 'SM log:\n' + sm.text()[-1500:],
                figures=True)
        again = wait_until(lambda: pg.rows('archive') > archived_at_up, WAIT, 0.2)
        r.check('outage over: archiving goes on', again,
                'archive rows %d when the database came back, %d at the end' % (
                    archived_at_up, pg.rows('archive')), figures=True)
        r.check('outage: the SM logs the database back and stays up',
                sm.alive() and sm.count('is reachable again') >= 1,
                log_line(sm, 'is reachable again') or 'SM alive: %s' % sm.alive(), figures=True)
    finally:
        lg.stop()


def suite(r, build):
    with System(build, 'faults-misc', r) as system:
        system.prepare()
        pg = Postgres(system.path('pg'))
        try:
            run(r, system, pg)
        finally:
            for p in system.programs:      # before the database, which the SM uses
                if p.alive():
                    p.kill()
            pg.stop()


def run(r, system, pg):
    try:
        env = pg.start()
    except Failure as e:
        r.not_ok('PostgreSQL starts', str(e))
        return
    system.set_storage(env)
    # Services before the SM starts: front2 has the right secret on the SM, and a front is then
    # configured with a wrong one for it; fake-front is for the raw Python front.
    system.add_front('front2')
    system.add_front('front2', secret_='not-' + system.secret, service_=False)
    system.add_front('fake-front')
    fake_sm = FakeSM(WAIT)
    system.add_front('front4', sm_port=fake_sm.port, service_=False)

    check_base = LOAD_USERS + 10        # clear of the load's users and their peers
    ok, out = system.make_users(LOAD_USERS + 30)
    sm = system.start_sm() if ok else None
    front = system.start_front('jadc2s') if sm else None
    if not r.check('the SM (on PostgreSQL) and the front start', ok and sm and front,
                   out if not ok else 'SM log:\n' + system.sm.text()[-1500:] if not sm else
                   'front log:\n' + system.front('jadc2s').text()[-1500:] if not front else '',
                   figures=True):
        return

    for fn, args in ((scenario_wrong_secret, ('front2', check_base + 10)),
                     (scenario_bad_frames_to_sm, (front, 'fake-front', check_base + 12)),
                     (scenario_bad_frames_to_front, (fake_sm, 'front4')),
                     (scenario_database_outage, (pg, check_base))):
        try:
            fn(r, system, *args)
        except Failure as e:
            r.not_ok(fn.__name__, str(e))
        except Exception:
            r.not_ok(fn.__name__, 'crashed:\n' + traceback.format_exc())
    fake_sm.close()
    for name, p in (('SM', system.sm), ('front', front)):
        r.check('the %s is still running at the end' % name, p.alive(),
                '' if p.alive() else 'exit status %s' % p.proc.returncode, figures=True)
    # SIGTERM, fronts before the SM: each exits 0 (under ASan, that includes no leak).
    for p in reversed(system.programs):
        if p.alive():
            p.stop()
    statuses = {os.path.basename(p.log_path)[:-4]: p.proc.returncode for p in system.programs}
    r.check('every program stopped with SIGTERM exits with status 0',
            all(v == 0 for v in statuses.values()),
            ', '.join('%s %s' % kv for kv in sorted(statuses.items())), figures=True)


if __name__ == '__main__':
    main('faults_misc', suite)
