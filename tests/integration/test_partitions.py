"""tests/integration/test_partitions.py — two SMs sharing the users by <partitions> (experimental;
docs/scaling.md, "Past one SM"), each with its own SQLite database holding its partition's
accounts, and a hand-made front (jabtest.link.fake_front) on each, since real fronts link to one
SM only:
  1. the SM with the higher index connects to the lower one (both log the peer link up);
  2. a message from a user of partition 0 to one of partition 1 crosses, and back;
  3. a presence subscription crosses both ways (subscribe, subscribed), then the contact's
     presence;
  4. SM 0 refuses AUTH_QUERY and BIND for a user of partition 1 (no second home for a user);
  5. a peer link (a hand-made one with SM 1's id and secret) that sends from a user who is not of
     its partitions is refused and logged; from one of its users, delivered;
  6. SM 0 killed: a message to its user bounces with <remote-server-timeout/>; started again,
     SM 1's link comes back by itself and messages cross again.

Usage: test_partitions.py BUILD_DIR. Ends with "partitions: N passed, N failed"."""

import re
import struct
import time

from jabtest.link import component, fake_front, frame
from jabtest.partition import users_of
from jabtest.suite import main
from jabtest.system import System, free_ports, secret, service, sm_xml

F_STANZA, F_AUTH_QUERY, F_AUTH_ANSWER, F_BIND, F_BOUND, F_RESYNC = 1, 2, 3, 4, 5, 10
WAIT = 10.0


class Front:
    """A hand-made front on one SM: binds sessions and reads the frames the SM sends them."""

    def __init__(self, port, secret_):
        self.link, _ = fake_front(port, 'f', secret_, wait=WAIT)
        self.pos = len(self.link.data)
        m = re.search(rb"<smproto\b[^>]*/>", self.link.data)
        self.pos = m.end()
        self.frames = []
        self.next_sid = 1
        self.link.send(frame(F_RESYNC))

    def _parse(self):
        d = self.link.data
        while len(d) - self.pos >= 16:
            n, t, _, _, sid = struct.unpack('>IBBHQ', d[self.pos:self.pos + 16])
            if len(d) - self.pos < 16 + n:
                break
            self.frames.append((t, sid, d[self.pos + 16:self.pos + 16 + n]))
            self.pos += 16 + n

    def wait(self, pred, what, seconds=WAIT):
        """The first frame (type, sid, payload) pred accepts, taken off the list."""
        deadline = time.monotonic() + seconds
        while True:
            self._parse()
            for f in self.frames:
                if pred(f):
                    self.frames.remove(f)
                    return f
            if not self.link._read(deadline):
                if self.link.closed or time.monotonic() >= deadline:
                    raise AssertionError('no %s (%s)' % (what, [f[:2] for f in self.frames]))

    def auth(self, bare):
        user, host = bare.split('@')
        sid = self.next_sid
        self.next_sid += 1
        self.link.send(frame(F_AUTH_QUERY, sid, b'%s\0%s\0' % (host.encode(), user.encode())))
        return self.wait(lambda f: f[0] == F_AUTH_ANSWER and f[1] == sid, 'AUTH_ANSWER')[2][0]

    def bind(self, bare, resource='r'):
        """(status, sid) of a BIND for bare."""
        user, host = bare.split('@')
        sid = self.next_sid
        self.next_sid += 1
        self.link.send(frame(F_BIND, sid, b'%s\0%s\0%s\0\0' % (host.encode(), user.encode(),
                                                               resource.encode())))
        return self.wait(lambda f: f[0] == F_BOUND and f[1] == sid, 'BOUND')[2][0], sid

    def send(self, sid, xml):
        self.link.send(frame(F_STANZA, sid, xml.encode()))

    def stanza(self, sid, pattern, what, seconds=WAIT):
        """The text of the first stanza for sid matching pattern."""
        f = self.wait(lambda f: f[0] == F_STANZA and f[1] == sid and
                      re.search(pattern, f[2].decode('utf-8', 'replace'), re.S), what, seconds)
        return f[2].decode()

    def close(self):
        self.link.close()


def message(to, body, frm=''):
    return "<message xmlns='jabber:client' type='chat' to='%s'%s><body>%s</body></message>" % (
        to, " from='%s'" % frm if frm else '', body)


def check(r, what, fn):
    try:
        detail = fn()
        r.ok(what, detail or '')
    except (AssertionError, OSError) as e:
        r.not_ok(what, str(e))


def body(r, build):
    with System(build, 'partitions', r) as system:
        if not system.ready(r):
            return
        sec, peer_secret = secret(), secret()
        p0, p1, peer_port = free_ports(3)
        a, a2 = users_of(0, 2, 2)           # partition 0: SM 0
        b, = users_of(1, 2, 1)              # partition 1: SM 1
        extra = "\n  <limits><resync_wait>0</resync_wait></limits>"
        confs = [
            system.write('sm0.xml', sm_xml(system.path('sm0.db'), [service('f', p0, sec, 'front')],
                         extra=extra + "\n  <admin><socket>%s</socket></admin>"
                         "\n  <partitions index='0' id='sm0' ip='127.0.0.1' port='%d'>"
                         "<peer index='1' id='sm1' secret='%s'/></partitions>" % (
                             system.path('sm0.sock'), peer_port, peer_secret))),
            system.write('sm1.xml', sm_xml(system.path('sm1.db'), [service('f', p1, sec, 'front')],
                         extra=extra + "\n  <admin><socket>%s</socket></admin>"
                         "\n  <partitions index='1' id='sm1'><peer index='0' id='sm0' "
                         "host='127.0.0.1' port='%d' secret='%s'/></partitions>" % (
                             system.path('sm1.sock'), peer_port, peer_secret))),
        ]
        for conf, users in ((confs[0], (a, a2)), (confs[1], (b,))):
            path = system.path('users-%s.txt' % conf[-7:-4])
            with open(path, 'w') as f:
                f.write(''.join('%s pw\n' % u for u in users))
            c = system.ctl('import', path, config=conf)
            if c.returncode != 0:
                r.not_ok('accounts imported', c.stdout + c.stderr)
                return
        sms = [None, None]

        def start(i):
            sms[i] = system.start([system.binary('jabshard-sm'), '-c', confs[i]], 'sm%d.log' % i)
            return sms[i].wait_log('sm: started', 20, sms[i].text().count('sm: started'))

        if not r.check('two SMs start with <partitions>', start(0) and start(1),
                       sms[0].text()[-800:] + sms[1].text()[-800:]):
            return
        up = 'is the link to peer SM'
        r.check('1. SM 1 connects to SM 0: both log the peer link up',
                sms[0].wait_log(up + ' 1', WAIT) and sms[1].wait_log(up + ' 0', WAIT),
                sms[0].text()[-600:] + sms[1].text()[-600:])

        fronts = [Front(p0, sec), Front(p1, sec)]
        sa = sb = None
        try:
            (st_a, sa), (st_a2, _) = fronts[0].bind(a), fronts[0].bind(a2)
            st_b, sb = fronts[1].bind(b)
            if not r.check('each user binds on its own SM', (st_a, st_a2, st_b) == (0, 0, 0),
                           'BOUND status %s %s %s' % (st_a, st_a2, st_b)):
                return

            def messages():
                # Available (initial presence): a message to a bare JID goes to such sessions.
                fronts[1].send(sb, "<presence xmlns='jabber:client'/>")
                fronts[0].send(sa, "<presence xmlns='jabber:client'/>")
                fronts[0].send(sa, message(b, 'hello-b'))
                fronts[1].stanza(sb, r'hello-b', 'the message on SM 1')
                fronts[1].send(sb, message(a, 'hello-a'))
                got = fronts[0].stanza(sa, r'hello-a', 'the answer on SM 0')
                assert "from='%s/r'" % b in got or 'from="%s/r"' % b in got, got
                return '%s (SM 0) -> %s (SM 1) and back' % (a, b)
            check(r, '2. a message crosses partitions both ways', messages)

            def subscription():
                fronts[0].send(sa, "<presence xmlns='jabber:client' type='subscribe' to='%s'/>" % b)
                fronts[1].stanza(sb, r"type=.subscribe.", 'the subscription request on SM 1')
                fronts[1].send(sb, "<presence xmlns='jabber:client' type='subscribed' to='%s'/>" % a)
                fronts[0].stanza(sa, r"type=.subscribed.", 'the approval on SM 0')
                fronts[0].stanza(sa, r"<presence\b(?![^>]*type=)[^>]*from=.%s/r" % re.escape(b),
                                 "the contact's presence on SM 0")
                return "subscribe, subscribed, then %s's available presence at %s" % (b, a)
            check(r, '3. a presence subscription crosses partitions', subscription)

            def refused():
                auth = fronts[0].auth(b)
                bound, _ = fronts[0].bind(b, 'x')
                assert auth == 1 and bound == 2, 'AUTH_ANSWER %s, BOUND %s' % (auth, bound)
                return 'AUTH_ANSWER no-such-user, BOUND not-allowed for %s on SM 0' % b
            check(r, '4. SM 0 refuses auth and bind for a user of partition 1', refused)

            def foreign_from():
                n = sms[0].count('refused (from must be a user of its partitions')
                fake = component(peer_port, 'sm1', peer_secret, wait=WAIT)
                try:
                    fake.send(message(a, 'forged', frm=a2 + '/x'))
                    assert sms[0].wait_log('refused (from must be a user of its partitions',
                                           WAIT, n + 1), 'no refusal logged'
                    fake.send(message(a, 'genuine', frm=b + '/x'))
                    got = fronts[0].stanza(sa, r'genuine|forged', 'the genuine message')
                    assert 'genuine' in got, 'the forged message was delivered: ' + got
                finally:
                    fake.close()
                assert sms[1].wait_log(up + ' 0', WAIT, 2), "SM 1's link did not come back"
                return 'from %s (partition 0) refused and logged; from %s delivered; SM 1 back' % (
                    a2, b)
            check(r, '5. a peer link sending from outside its partitions is refused', foreign_from)

            def restart():
                ups = sms[1].count(up + ' 0')
                sms[0].kill()
                fronts[0].close()
                fronts[1].send(sb, message(a, 'while-down'))
                err = fronts[1].stanza(sb, r"type=.error.", 'the bounce on SM 1')
                assert 'remote-server-timeout' in err, err
                t = time.monotonic()
                assert start(0), 'SM 0 did not start again'
                assert sms[1].wait_log(up + ' 0', 40, ups + 1), 'no peer link again'
                back = time.monotonic() - t
                fronts[0] = Front(p0, sec)
                st, sid = fronts[0].bind(a)
                assert st == 0, 'BOUND %s' % st
                fronts[0].send(sid, "<presence xmlns='jabber:client'/>")
                fronts[1].send(sb, message(a, 'after-restart'))
                fronts[0].stanza(sid, r'after-restart', 'the message after the restart')
                return 'bounced while down; link back %.1f s after the start' % back
            check(r, '6. SM 0 restarted: bounce while down, the peer link comes back', restart)
        finally:
            for f in fronts:
                f.close()
        for p in sms:
            p.stop()
        system.check_sanitizers(r)


if __name__ == '__main__':
    main('partitions', body)
