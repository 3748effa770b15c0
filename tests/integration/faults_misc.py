#!/usr/bin/python3
"""tests/integration/faults_misc.py — faults that are neither a lost link nor a dead process:

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
every scenario; faultlib.py starts and stops each program by PID. Figures (times, counts) are
reported in the ok lines; nothing asserts on time. Sanitizer builds get a smaller load.

Usage: faults_misc.py BUILD_DIR. Ends with "faults_misc: N passed, N failed"."""

import base64
import hashlib
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))

from faultlib import ROOT, SMPROTO_VERSION, Report, System, sanitized, wait_until  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else 'build/default'
SANITIZED = sanitized(BUILD)
# The message load of scenario 4: users, messages per second, seconds.
LOAD_USERS, LOAD_RATE, LOAD_SECONDS = (50, 50, 20) if SANITIZED else (200, 200, 25)
OUTAGE_SECONDS = 5
WAIT = 30 if SANITIZED else 10        # bound on any single expected event
DOMAIN = 'localhost'
PG = os.path.join(ROOT, 'tests', 'storage', 'postgres.sh')

NS_CLIENT = 'jabber:client'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_ACCEPT = 'jabber:component:accept'
NS_SMPROTO = 'urn:jabshard:smproto'

# smproto frame types (docs/smproto.md §2) used here.
F_STANZA, F_AUTH_QUERY, F_ACK = 1, 2, 12
MAX_PAYLOAD = 1 << 20


class Fail(Exception):
    """An expectation that did not hold; the text says what was seen instead."""


def q(ns, name):
    return '{%s}%s' % (ns, name)


def frame(type_, sid=0, payload=b'', length=None):
    """A frame: 16-byte header (length, type, flags, reserved, session id), then the payload."""
    return struct.pack('>IBBHQ', len(payload) if length is None else length, type_, 0, 0,
                       sid) + payload


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


# ---- a client over direct TLS --------------------------------------------------------------------

class Client:
    """A blocking client stream over direct TLS with SASL PLAIN, parsing what arrives into
    top-level elements: enough to log in, send a stanza and wait for one."""

    def __init__(self, port):
        raw = socket.create_connection(('127.0.0.1', port), timeout=WAIT)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(raw, server_hostname=DOMAIN)
        self.stanzas = []
        self.closed = False
        self.jid = None
        self._open()

    def _open(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s' "
                  "version='1.0'>" % (NS_CLIENT, NS_STREAM, DOMAIN))

    def send(self, text):
        self.sock.sendall(text.encode())

    def _pump(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (OSError, ssl.SSLError):
            data = b''
        if not data:
            self.closed = True
            return False
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == 'start':
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.stanzas.append(el)
        return True

    def wait(self, pred, what, seconds=WAIT):
        """Removes and returns the first element received for which pred holds."""
        deadline = time.monotonic() + seconds
        while True:
            for i, el in enumerate(self.stanzas):
                if pred(el):
                    return self.stanzas.pop(i)
            if not self._pump(deadline):
                seen = ' | '.join(ET.tostring(e, encoding='unicode')[:200]
                                  for e in self.stanzas[-3:]) or 'nothing'
                raise Fail('%s: no %s within %s s (%s; unclaimed: %s)' % (
                    self.jid or 'client', what, seconds,
                    'connection closed' if self.closed else 'timed out', seen))

    def auth(self, user, password):
        """SASL PLAIN; returns ('success' or the failure's condition, seconds it took)."""
        self.wait(lambda el: el.tag == q(NS_STREAM, 'features'), 'stream features')
        token = ('\0%s\0%s' % (user, password)).encode()
        t = time.monotonic()
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (
            NS_SASL, base64.b64encode(token).decode()))
        el = self.wait(lambda e: e.tag in (q(NS_SASL, 'success'), q(NS_SASL, 'failure')),
                       'SASL outcome')
        took = since(t)
        if el.tag == q(NS_SASL, 'success'):
            self._open()
            self.wait(lambda e: e.tag == q(NS_STREAM, 'features'), 'features after SASL')
            return 'success', took
        conds = [c.tag.split('}')[1] for c in el if c.tag != q(NS_SASL, 'text')]
        return (conds[0] if conds else '(none)'), took

    def login(self, user, password, presence=True):
        """Authenticates, binds and (by default) sends initial presence."""
        cond, _ = self.auth(user, password)
        if cond != 'success':
            raise Fail('%s: SASL <%s/>' % (user, cond))
        self.send("<iq type='set' id='bind'><bind xmlns='%s'><resource>r</resource></bind></iq>"
                  % NS_BIND)
        res = self.wait(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == 'bind',
                        'bind result')
        jid = res.find('%s/%s' % (q(NS_BIND, 'bind'), q(NS_BIND, 'jid')))
        if res.get('type') != 'result' or jid is None:
            raise Fail('%s: bind failed: %s' % (user, ET.tostring(res, encoding='unicode')))
        self.jid = jid.text
        if presence:
            self.send('<presence/>')
        return self

    def message(self, to, mid, body):
        self.send("<message to='%s' id='%s' type='chat'><body>%s</body></message>" %
                  (to, mid, body))

    def wait_message(self, mid, seconds=WAIT):
        return self.wait(lambda e: e.tag == q(NS_CLIENT, 'message') and e.get('id') == mid,
                         'message %s' % mid, seconds)

    def close(self):
        try:
            self.send('</stream:stream>')
        except OSError:
            pass
        self.sock.close()


def error_condition(el):
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        return None
    for c in err:
        if c.tag.startswith('{%s}' % NS_STANZAS) and not c.tag.endswith('}text'):
            return '%s/%s' % (err.get('type'), c.tag.split('}')[1])
    return err.get('type')


def user(n):
    return 'user%d' % n, 'pass%d' % n


def jid(n):
    return 'user%d@%s' % (n, DOMAIN)


def login(system, n):
    return Client(system.tls_port).login(*user(n))


def exchange(system, a, b, tag):
    """a logs in, b logs in, a sends b a message that must arrive. Returns the seconds it took."""
    t = time.monotonic()
    ca, cb = login(system, a), login(system, b)
    try:
        ca.message(jid(b), tag, tag)
        cb.wait_message(tag)
    finally:
        ca.close()
        cb.close()
    return since(t)


# ---- raw link ends -------------------------------------------------------------------------------

class RawLink:
    """One raw TCP connection speaking the link's opening by hand: read until a pattern, write
    bytes, read to the end."""

    def __init__(self, sock):
        self.sock = sock
        self.data = b''
        self.closed = False

    def read_until(self, pattern, what, seconds=WAIT):
        deadline = time.monotonic() + seconds
        while True:
            m = re.search(pattern, self.data)
            if m:
                self.data = self.data[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise Fail('no %s (%s; got %r)' % (what, 'closed' if self.closed else 'timed out',
                                                  self.data[-300:]))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b''
            if not chunk:
                self.closed = True
            self.data += chunk

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def eof(self, seconds=WAIT):
        """Reads (and discards) until the peer closes: True, or False after seconds."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                chunk = b''
            self.closed = not chunk
        return True

    def close(self):
        self.sock.close()


def fake_front(sm_port, service, secret, instance='abcdef', acked=0):
    """A raw front that opens the link as docs/smproto.md §1 says and reads the SM's answer;
    returns the RawLink in frame mode and the SM's received= value."""
    link = RawLink(socket.create_connection(('127.0.0.1', sm_port), timeout=WAIT))
    link.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s'>" % (
        NS_ACCEPT, NS_STREAM, service))
    sid = link.read_until(rb"<stream:stream\b[^>]*\sid=['\"]([^'\"]+)['\"][^>]*>",
                          'stream header from the SM').group(1).decode()
    link.send('<handshake>%s</handshake>' % hashlib.sha1((sid + secret).encode()).hexdigest())
    link.read_until(rb'<handshake\s*/>|<handshake>\s*</handshake>', '<handshake/> from the SM')
    link.send("<smproto xmlns='%s' version='%d' instance='%s' acked='%d'/>" % (
        NS_SMPROTO, SMPROTO_VERSION, instance, acked))
    m = link.read_until(rb"<smproto\b[^>]*\sreceived=['\"](\d+)['\"][^>]*/>", '<smproto/> answer')
    return link, int(m.group(1))


class FakeSM:
    """A listening socket on which a front is accepted and given the SM's side of the opening."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]

    def accept(self, secret, seconds=WAIT):
        """Returns the link, in frame mode, and the front's instance id."""
        self.sock.settimeout(seconds)
        try:
            conn, _ = self.sock.accept()
        except socket.timeout:
            raise Fail('no connection from the front within %s s' % seconds)
        link = RawLink(conn)
        link.read_until(rb'<stream:stream\b[^>]*>', "the front's stream header")
        stream_id = os.urandom(12).hex()
        link.send("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' from='x' "
                  "id='%s'>" % (NS_ACCEPT, NS_STREAM, stream_id))
        digest = link.read_until(rb'<handshake>([0-9a-f]+)</handshake>', "the front's handshake")
        expected = hashlib.sha1((stream_id + secret).encode()).hexdigest()
        if digest.group(1).decode() != expected:
            raise Fail('the front sent handshake %s, expected %s' % (digest.group(1), expected))
        link.send('<handshake/>')
        m = link.read_until(rb"<smproto\b[^>]*/>", "the front's <smproto/>")
        attrs = dict(re.findall(r"(\w+)=['\"]([^'\"]*)['\"]", m.group(0).decode()))
        if attrs.get('version') != '2' or 'instance' not in attrs or 'acked' not in attrs:
            raise Fail('unexpected request from the front: %s' % m.group(0))
        link.send("<smproto xmlns='%s' version='%d' received='%s'/>" % (
            NS_SMPROTO, SMPROTO_VERSION, attrs['acked']))
        return link, attrs['instance']

    def close(self):
        self.sock.close()


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
            'refusals: %d; front log:\n%s' % (len(seen), front.text()[-1500:]))
    sm_refusals = len(re.findall(r'link %s \([^)]*\): handshake refused: wrong secret' %
                                 re.escape(bad_front), system.sm.text()))
    r.check('wrong secret: the SM logs "handshake refused: wrong secret" for each attempt',
            sm_refusals >= 2, '%d lines' % sm_refusals if sm_refusals >= 2 else
            'SM log:\n' + system.sm.text()[-1500:])
    took = exchange(system, n, n + 1, 'after-wrong-secret')
    r.check('wrong secret: both programs stay up and the right front keeps serving',
            front.alive() and system.sm.alive(),
            'login, bind and a message in %.2f s' % took)
    front.stop()


def scenario_bad_frames_to_sm(r, system, real, fake_id, n):
    ups = real.count('SM link: up')
    for what, data, expected in BAD_FRAMES_TO_SM:
        name = 'malformed frame to the SM (%s): the SM closes that link, says why, stays up' % what
        try:
            before = system.sm.count(expected)
            link, _ = fake_front(system.sm_port, fake_id, system.secret)
            t = time.monotonic()
            link.send(data)
            closed = link.eof()
            took = since(t)
            link.close()
            logged = system.sm.wait_log(expected, WAIT, before + 1)
            served = exchange(system, n, n + 1, 'after-bad-frame')
            r.check(name, closed and logged and system.sm.alive() and
                    real.count('SM link: up') == ups,
                    'closed in %.3f s; the real front kept its link and served a login and a '
                    'message in %.2f s' % (took, served) if closed and logged else
                    'closed: %s, logged "%s": %s, SM up: %s; SM log:\n%s' % (
                        closed, expected, logged, system.sm.alive(), system.sm.text()[-1500:]))
        except Fail as e:
            r.check(name, False, str(e))

    # The real front's own id: the newest link wins, then the real front wins it back.
    name = 'a link with the real front\'s id replaces it; the front comes back by itself'
    try:
        replaced = system.sm.count('replaced by a new link with the same id')
        link, _ = fake_front(system.sm_port, 'jadc2s', system.secret)
        t = time.monotonic()
        ok_replaced = system.sm.wait_log('replaced by a new link with the same id', WAIT,
                                         replaced + 1)
        back = real.wait_log('SM link: up', 4 * WAIT, ups + 1)
        back_in = since(t)
        fake_dropped = link.eof()
        link.close()
        served = exchange(system, n, n + 1, 'after-takeover') if back else 0
        r.check(name, ok_replaced and back and fake_dropped and real.alive() and
                system.sm.alive(),
                'front reconnected in %.1f s and replaced the fake; login and a message in %.2f s'
                % (back_in, served) if back else
                'replaced: %s, front back: %s, fake dropped: %s; front log:\n%s' % (
                    ok_replaced, back, fake_dropped, real.text()[-1500:]))
    except Fail as e:
        r.check(name, False, str(e))


def scenario_bad_frames_to_front(r, system, fake_sm, front_id):
    front = system.start_front(front_id, wait_link=False)
    try:
        link, instance = fake_sm.accept(system.secret)
    except Fail as e:
        r.check('malformed frame to a front: the fake SM is accepted', False, str(e))
        front.stop()
        return
    accepted = 1
    for what, data, expected in BAD_FRAMES_TO_FRONT:
        name = ('malformed frame to a front (%s): it closes the link, says why, reconnects as '
                'the same instance' % what)
        try:
            # The front speaks frames once it logs the link up (it has read our <smproto/>).
            if not front.wait_log('SM link: up', WAIT, accepted):
                raise Fail('the front did not say "SM link: up" to the fake SM')
            before = front.count(expected)
            t = time.monotonic()
            link.send(data)
            closed = link.eof()
            link.close()
            logged = front.wait_log(expected, WAIT, before + 1)
            link, again = fake_sm.accept(system.secret, 4 * WAIT)
            accepted += 1
            back_in = since(t)
            r.check(name, closed and logged and again == instance and front.alive(),
                    'instance %s reconnected in %.1f s' % (instance, back_in)
                    if closed and logged and again == instance else
                    'closed: %s, logged: %s, instance %s then %s; front log:\n%s' % (
                        closed, logged, instance, again, front.text()[-1500:]))
        except Fail as e:
            r.check(name, False, str(e))
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
            raise Fail('postgres.sh %s failed: %s%s' % (action, out[-1000:], hint))
        return since(t)

    def start(self):
        self.run('start')
        self.started = True
        with open(os.path.join(self.path, 'env')) as f:
            self.env = dict(line.strip().split('=', 1) for line in f if '=' in line)
        return self.env

    def offline_rows(self):
        e = self.env
        p = subprocess.run(['psql', '-X', '-tA', '-c', 'SELECT count(*) FROM offline',
                            'host=%s port=%s user=%s password=%s dbname=%s' % (
                                e['XDB_HOST'], e['XDB_PORT'], e['XDB_USER'], e['XDB_PASSWORD'],
                                e['XDB_DATABASE'])], capture_output=True, text=True, timeout=30)
        return int(p.stdout.strip()) if p.returncode == 0 else -1

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
    sender.message(jid(c), 'before-outage', 'before the outage')
    stored = wait_until(lambda: pg.offline_rows() == rows + 1, WAIT, 0.1)
    r.check('outage: a message for an offline user is stored before the outage', stored,
            '' if stored else 'offline rows: %d, expected %d' % (pg.offline_rows(), rows + 1))

    if not os.access(os.path.join(system.build, 'bench', 'loadgen'), os.X_OK):
        raise Fail('%s/bench/loadgen is not built' % system.build)
    lg = system.loadgen(['--host', '127.0.0.1', '--port', str(system.port), '--domain', DOMAIN,
                         '--users', str(LOAD_USERS), '--mech', 'SCRAM-SHA-1', '--tls', 'none',
                         '--login-concurrency', '200', '--rates', str(LOAD_RATE),
                         '--round-seconds', str(LOAD_SECONDS), '--drain-seconds', '5',
                         '--reconnect', '1'])
    try:
        logins = lg.wait_record('login', 6 * WAIT)
        if not logins or logins[0].get('ok') != LOAD_USERS:
            raise Fail('the load generator did not log its %d users in: %s (stderr: %s)' % (
                LOAD_USERS, logins, open(lg.err.name, errors='replace').read()[-800:]))
        # Let the round run a while before the outage.
        round_start = time.monotonic()
        time.sleep(LOAD_SECONDS / 4)

        down_took = pg.run('down')
        t_down = time.monotonic()

        # A login during the outage: the front asks the SM for the user's keys, the SM's storage
        # cannot answer.
        try:
            cond, took = Client(system.tls_port).auth(*user(d))
        except Fail as ex:
            cond, took = str(ex), 0
        r.check('outage: a login fails with <temporary-auth-failure/>',
                cond == 'temporary-auth-failure', 'failed in %.3f s' % took
                if cond == 'temporary-auth-failure' else 'got: %s (after %.3f s)' % (cond, took))

        # A message for an offline user during the outage: it cannot be stored; the sender hears.
        t = time.monotonic()
        sender.message(jid(e), 'during-outage', 'during the outage')
        try:
            back = sender.wait_message('during-outage')
            cond = error_condition(back) if back.get('type') == 'error' else None
            r.check('outage: a message for an offline user comes back to its sender as an error',
                    cond is not None, '<%s/> after %.3f s' % (cond, since(t)) if cond else
                    'got instead: %s' % ET.tostring(back, encoding='unicode'))
        except Fail as ex:
            lines = [ln for ln in sm.text().splitlines() if 'storage' in ln or 'offline' in ln]
            r.check('outage: a message for an offline user comes back to its sender as an error',
                    False, '%s\nSM log lines about storage:\n%s' % (ex, '\n'.join(lines[-10:])))

        logged = sm.wait_log('is unreachable', WAIT)
        r.check('outage: the SM logs that the database is unreachable', logged,
                log_line(sm, 'is unreachable') if logged else 'SM log:\n' + sm.text()[-1500:])

        time.sleep(max(0.0, OUTAGE_SECONDS - since(t_down)))
        up_took = pg.run('up')
        t_up = time.monotonic()
        outage = t_up - t_down

        # Logins work again once the SM's storage reconnects (the breaker probes on a schedule).
        attempts, last = 0, None
        while since(t_up) < 4 * WAIT:
            attempts += 1
            cl = Client(system.tls_port)
            try:
                last, _ = cl.auth(*user(f))
            except Fail as ex:
                last = str(ex)
            cl.close()
            if last == 'success':
                break
            time.sleep(0.25)
        r.check('outage over: logins work again', last == 'success',
                'after %.1f s, %d attempts (database down %.1f s: down took %.1f s, up %.1f s)' %
                (since(t_up), attempts, outage, down_took, up_took) if last == 'success' else
                'last attempt: %s; SM log:\n%s' % (last, sm.text()[-1500:]))

        # A message for an offline user is stored again, and delivered at its next login.
        sender.message(jid(e), 'after-outage', 'after the outage')
        stored = wait_until(lambda: pg.offline_rows() == rows + 2, WAIT, 0.1)
        try:
            ce = login(system, e)
            got = ce.wait_message('after-outage')
            ce.close()
            delayed = got.find(q('urn:xmpp:delay', 'delay')) is not None
            r.check('outage over: a message for an offline user is stored and delivered at login',
                    stored and delayed,
                    'the one refused during the outage was not stored' if stored and delayed else
                    'offline rows: %d, expected %d; delivered with <delay/>: %s' % (
                        pg.offline_rows(), rows + 2, delayed))
        except Fail as ex:
            r.check('outage over: a message for an offline user is stored and delivered at login',
                    False, str(ex))
        try:
            cc = login(system, c)
            cc.wait_message('before-outage')
            cc.close()
            r.check('outage over: the offline message stored before the outage is delivered', True)
        except Fail as ex:
            r.check('outage over: the offline message stored before the outage is delivered',
                    False, str(ex))
        sender.close()

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
                    rd or 'none', since(round_start), lg.lines[-5:]))
        r.check('outage: the SM logs the database back and stays up',
                sm.alive() and sm.count('is reachable again') >= 1,
                log_line(sm, 'is reachable again') or 'SM alive: %s' % sm.alive())
    finally:
        lg.stop()


def main():
    r = Report('faults_misc')
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    system = System(BUILD, 'faults-misc')
    pg = Postgres(os.path.join(system.dir, 'pg'))
    try:
        try:
            env = pg.start()
        except Fail as e:
            r.check('PostgreSQL starts', False, str(e))
            return r.finish()
        system.set_storage(env)
        # Services before the SM starts: front2 has the right secret on the SM, and a front is
        # then configured with a wrong one for it; fake-front is for the raw Python front.
        system.add_front('front2')
        system.add_front('front2', secret='not-' + system.secret, service=False)
        system.add_front('fake-front')
        fake_sm = FakeSM()
        system.add_front('front4', sm_port=fake_sm.port, service=False)

        check_base = LOAD_USERS + 10        # clear of the load's users and their peers
        ok, out = system.make_users(LOAD_USERS + 30)
        sm = system.start_sm() if ok else None
        front = system.start_front('jadc2s') if sm else None
        if not r.check('the SM (on PostgreSQL) and the front start', ok and sm and front,
                       out if not ok else 'SM log:\n' + system.sm.text()[-1500:] if not sm else
                       'front log:\n' + open(os.path.join(system.dir, 'jadc2s.log')).read()[-1500:]
                       if not front else ''):
            return r.finish()

        for fn, args in ((scenario_wrong_secret, ('front2', check_base + 10)),
                         (scenario_bad_frames_to_sm, (front, 'fake-front', check_base + 12)),
                         (scenario_bad_frames_to_front, (fake_sm, 'front4')),
                         (scenario_database_outage, (pg, check_base))):
            try:
                fn(r, system, *args)
            except Fail as e:
                r.check(fn.__name__, False, str(e))
            except Exception:
                r.check(fn.__name__, False, 'crashed:\n' + traceback.format_exc())
        fake_sm.close()
        for name, p in (('SM', system.sm), ('front', front)):
            r.check('the %s is still running at the end' % name, p.alive(),
                    '' if p.alive() else 'exit status %s' % p.proc.returncode)
        # SIGTERM, fronts before the SM: each exits 0 (under ASan, that includes no leak).
        for p in reversed(system.programs):
            if p.alive():
                p.stop()
        statuses = {os.path.basename(p.log_path)[:-4]: p.proc.returncode for p in system.programs}
        r.check('every program stopped with SIGTERM exits with status 0',
                all(v == 0 for v in statuses.values()),
                ', '.join('%s %s' % kv for kv in sorted(statuses.items())))
    finally:
        for p in system.programs:      # before the database, which the SM uses
            if p.alive():
                p.kill()
        pg.stop()
        system.cleanup()
    return r.finish()


if __name__ == '__main__':
    sys.exit(main())
