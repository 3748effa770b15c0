"""tests/integration/test_muc_restart.py — group chat across an SM kill, at scale: 200 occupants in
10 rooms (20 each), raw XMPP streams over direct TLS (jabtest.raw: cheap enough for 200
connections, read one after the other since the kernel keeps what arrives meanwhile).

1. u0..u199 log in and are available; in each room the first joiner creates it (201) and
   configures it, persistent (rooms 0-4) or instant (rooms 5-9, the default configuration:
   temporary), then the other 19 join; each joiner's join ends with its self-presence (110) and
   the subject; once everyone has joined, each has seen the presence of all 20 occupants of its
   room;
2. the SM is killed (SIGKILL) and started again; the front keeps the client connections and
   re-announces their sessions; the SM's start-time wait ends (its log says so);
3. every occupant is still one: its self-ping (XEP-0410) to its occupant JID is answered with a
   result, not an error;
4. in each room one occupant sends a group message: every one of the 200 gets its room's message
   exactly once and no other room's; and no client received any presence from the MUC service
   (join or leave) since the kill;
5. the SM's log says it restored the 10 rooms and has no error lines.

Each read of a client waits for the stanza it expects (bounded); "exactly once" and "no presence"
are judged after a barrier: each client's self-ping answer, which the SM sends after everything it
sent that client before (one SM, one front, one link: in order).

Usage: test_muc_restart.py BUILD_DIR. Prints ok/not ok lines and "muc_restart: N passed, N
failed". SM_LEVEL=debug in the environment: the SM logs at that level (it is then slower: the
restart's races showed rarely then)."""

import os
import re
import time

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q, show, xml_escape

NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = NS_MUC + '#user'
NS_MUC_OWNER = NS_MUC + '#owner'
NS_PING = 'urn:xmpp:ping'
SERVICE = 'conference.localhost'
ROOMS = 10
PER_ROOM = 20
USERS = ROOMS * PER_ROOM
PERSISTENT = range(0, 5)        # the others are instant rooms (temporary)


def room_of(i):
    return 'room%d@%s' % (i // PER_ROOM, SERVICE)


def nick_of(i):
    return 'n%d' % i


def codes(el):
    x = el.find(q(NS_MUC_USER, 'x'))
    if x is None:
        return []
    return sorted(s.get('code') for s in x.findall(q(NS_MUC_USER, 'status')))


def from_service(el):
    """el comes from the MUC service or one of its rooms or occupants."""
    frm = el.get('from') or ''
    return frm.split('/', 1)[0].split('@')[-1] == SERVICE


def is_presence_from(jid):
    return lambda e: e.tag == q(NS_CLIENT, 'presence') and e.get('from') == jid


def is_groupchat(room, body):
    def pred(e):
        b = e.find(q(NS_CLIENT, 'body'))
        return (e.tag == q(NS_CLIENT, 'message') and e.get('type') == 'groupchat' and
                (e.get('from') or '').startswith(room + '/') and b is not None and b.text == body)
    return pred


def is_subject(room):
    return lambda e: (e.tag == q(NS_CLIENT, 'message') and e.get('from', '').startswith(room) and
                      e.find(q(NS_CLIENT, 'subject')) is not None)


class Occupant:
    """One user, its stream and its place."""

    def __init__(self, i, server):
        self.i, self.room, self.nick = i, room_of(i), nick_of(i)
        self.me = '%s/%s' % (self.room, self.nick)
        self.raw = Raw.to(server)
        self.jid = self.raw.login('u%d' % i, 'pw%d' % i, resource='r', presence=True)
        self.serial = 0

    def send(self, text):
        self.raw.send(text)

    def expect(self, pred, what, seconds=None):
        try:
            return self.raw.expect(pred, what, seconds)
        except Failure as e:
            raise Failure('u%d: %s' % (self.i, e))

    def iq(self, to, payload, what):
        """Sends an iq get/set (payload starts with the type) and returns its answer."""
        self.serial += 1
        iid = 'q%d' % self.serial
        self.send("<iq %s id='%s' to='%s'>%s</iq>" % (payload[0], iid, xml_escape(to), payload[1]))
        return self.expect(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == iid, what)

    def self_ping(self):
        return self.iq(self.me, ("type='get'", "<ping xmlns='%s'/>" % NS_PING), 'the self-ping')

    def forget(self):
        """Forgets every stanza received so far."""
        self.raw.discard()
        self.raw.elements = []

    def received(self):
        self.raw.discard()
        return list(self.raw.elements)


def configure(c, persistent):
    """The creator's configuration of its new room: a form with persistentroom, or the instant
    room's empty submission (§10.1.2)."""
    if persistent:
        form = ("<x xmlns='jabber:x:data' type='submit'>"
                "<field var='FORM_TYPE'><value>%s#roomconfig</value></field>"
                "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
                "<field var='muc#roomconfig_roomname'><value>Room %s</value></field></x>"
                % (NS_MUC, c.room.split('@')[0]))
    else:
        form = "<x xmlns='jabber:x:data' type='submit'/>"
    res = c.iq(c.room, ("type='set'", "<query xmlns='%s'>%s</query>" % (NS_MUC_OWNER, form)),
               'the configuration result')
    if res.get('type') != 'result':
        raise Failure('%s: configuring %s: %s' % (c.jid, c.room, show(res)))


def join(c, creator):
    c.send("<presence to='%s'><x xmlns='%s'/></presence>" % (xml_escape(c.me), NS_MUC))
    pres = c.expect(is_presence_from(c.me), 'its self-presence in %s' % c.room)
    # 170: rooms are archived by default (<muc><logging>).
    want = ['110', '170', '201'] if creator else ['110', '170']
    if pres.get('type') == 'error' or codes(pres) != want:
        raise Failure('u%d joining %s: expected status %s, got %s' % (c.i, c.room, want,
                                                                     show(pres)))
    c.expect(is_subject(c.room), 'the subject ending its join of %s' % c.room)
    if creator:
        configure(c, (c.i // PER_ROOM) in PERSISTENT)


def everyone_joined(r, clients):
    """Each client, after its self-ping's answer (everything the SM sent it before is in), saw
    the available presence of all its room's occupants."""
    wrong = []
    for c in clients:
        res = c.self_ping()
        if res.get('type') != 'result':
            wrong.append('u%d: self-ping %s' % (c.i, show(res)))
            continue
        base = (c.i // PER_ROOM) * PER_ROOM
        # Its own presence was join()'s.
        want = {'%s/%s' % (c.room, nick_of(j)) for j in range(base, base + PER_ROOM)} - {c.me}
        seen = {e.get('from') for e in c.received()
                if e.tag == q(NS_CLIENT, 'presence') and e.get('type') is None and
                (e.get('from') or '').startswith(c.room + '/')}
        if seen != want:
            wrong.append('u%d: missing %s, extra %s' % (c.i, sorted(want - seen),
                                                        sorted(seen - want)))
    r.check('join: all %d joined, each saw its %d occupants' % (USERS, PER_ROOM), not wrong,
            '\n'.join(wrong[:10]))


def restart(r, system):
    """SIGKILL, a new SM, the front's link back and the SM's start-time wait over."""
    sm_log = system.path('sm.log')
    front = system.front('front')
    links = front.count('SM link: up')
    waits = system.sm.count("start's wait over")
    t0 = time.monotonic()
    system.sm.kill()
    if not r.check('restart: the SM starts again after SIGKILL',
                   system.start_sm(ready_port=system.sm_port, seconds=10)):
        return False
    ok = r.check('restart: the front links again and the start-time wait ends',
                 front.wait_log('SM link: up', 20, links + 1) and
                 system.sm.wait_log("start's wait over", 20, waits + 1),
                 'see %s' % sm_log)
    r.note('the SM was back and its wait over %.1f s after the kill' % (time.monotonic() - t0))
    return ok


def room_messages_sent(clients):
    """Right after the SM's wait is over, one occupant of each room (its 11th) sends a group
    message; the bodies by room."""
    bodies = {}
    for k in range(ROOMS):
        sender = clients[k * PER_ROOM + PER_ROOM // 2]
        bodies[sender.room] = 'after the kill, in %s' % sender.room
        sender.send("<message to='%s' type='groupchat'><body>%s</body></message>" %
                    (sender.room, bodies[sender.room]))
    return bodies


def message_reaches_all(r, clients, bodies):
    deadline = time.monotonic() + 15
    missing = []
    for c in clients:
        if not c.raw.until(lambda raw, c=c: raw.find(is_groupchat(c.room, bodies[c.room]))
                           is not None, max(0.1, deadline - time.monotonic())):
            missing.append(c)
    r.check("message: each of the %d gets its room's message" % USERS, not missing,
            '%d missing: %s; what the first got since the kill: %s' % (
                len(missing), ' '.join('u%d' % c.i for c in missing[:20]),
                ' | '.join(show(e) for e in missing[0].received()[:6]) or 'nothing'
                if missing else ''))


def still_occupants(r, clients):
    """Every client's self-ping (sent all at once, answers awaited together): a result says it is
    still an occupant. The answers are also the barrier before the counts (the module's doc)."""
    iids = {}
    for c in clients:
        c.serial += 1
        iids[c] = 'ping%d' % c.serial
        c.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>" % (
            iids[c], xml_escape(c.me), NS_PING))
    deadline = time.monotonic() + 15
    errors, silent = [], []
    for c in clients:
        res = c.raw.next(lambda e, iid=iids[c]: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == iid,
                         max(0.1, deadline - time.monotonic()))
        if res is None:
            silent.append('u%d' % c.i)
        elif res.get('type') != 'result':
            errors.append('u%d: %s' % (c.i, show(res)))
    r.check('restart: all %d are still occupants (self-ping answered with a result)' % USERS,
            not errors and not silent, '%d errors (%s), %d without an answer (%s)' % (
                len(errors), ' | '.join(errors[:3]), len(silent), ' '.join(silent[:20])))


def counts(r, clients, bodies):
    twice, others, noise, errors = [], [], [], []
    for c in clients:
        got = c.received()
        n = sum(1 for e in got if is_groupchat(c.room, bodies[c.room])(e))
        if n > 1:
            twice.append('u%d: %d times' % (c.i, n))
        others += ['u%d: %s' % (c.i, show(e)) for e in got
                   if e.tag == q(NS_CLIENT, 'message') and e.get('type') == 'groupchat' and
                   not is_groupchat(c.room, bodies[c.room])(e)]
        noise += ['u%d: %s' % (c.i, show(e)) for e in got
                  if e.tag == q(NS_CLIENT, 'presence') and from_service(e)]
        errors += ['u%d: %s' % (c.i, show(e)) for e in got if e.get('type') == 'error']
    r.check('message: no one gets it twice', not twice, ' | '.join(twice[:10]))
    r.check("message: no one gets another room's (or any other group message)", not others,
            '\n'.join(others[:5]))
    r.check('restart: no client got any MUC presence (join or leave) since the kill', not noise,
            '%d presences, e.g.\n%s' % (len(noise), '\n'.join(noise[:5])))
    r.check('restart: no client got an error stanza since the kill', not errors,
            '%d errors, e.g.\n%s' % (len(errors), '\n'.join(errors[:5])))


def scenario(r, system, server):
    t0 = time.monotonic()
    clients = []
    try:
        for i in range(USERS):
            clients.append(Occupant(i, server))
        r.ok('%d clients log in (direct TLS) and are available' % USERS,
             '%.1f s' % (time.monotonic() - t0))
        t1 = time.monotonic()
        for c in clients:
            join(c, creator=c.i % PER_ROOM == 0)
        r.ok('%d rooms created and configured (%d persistent, %d instant), %d joins' %
             (ROOMS, len(PERSISTENT), ROOMS - len(PERSISTENT), USERS),
             '%.1f s' % (time.monotonic() - t1))
        everyone_joined(r, clients)
        for c in clients:
            c.forget()
        if not restart(r, system):
            return
        bodies = room_messages_sent(clients)
        message_reaches_all(r, clients, bodies)
        still_occupants(r, clients)
        counts(r, clients, bodies)
    finally:
        for c in clients:
            c.raw.end()
    r.note('the scenario took %.1f s' % (time.monotonic() - t0))


def sm_log_checks(r, system):
    text = system.sm.text()
    restored = re.findall(r'muc: (\d+) rooms of \S+ restored from storage', text)
    r.check('the SM\'s log: it restored the %d rooms after the kill' % ROOMS,
            restored and restored[-1] == str(ROOMS), restored)
    errors = [line for line in text.splitlines() if re.search(r'\] error: ', line)]
    r.check('the SM\'s log has no error lines', not errors, '\n'.join(errors[:10]))


def suite(report, build):
    with System(build, 'muc_restart', report) as system:
        if not system.ready(report):
            return
        sm_port, port, tls = free_ports(3)
        system.sm_port = sm_port
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             level=os.environ.get('SM_LEVEL', 'info')))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem')), port)
        ok, out, took = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i)
                                               for i in range(USERS))
        if not (report.check('import %d accounts (%.1f s)' % (USERS, took), ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        server = Server('127.0.0.1', port, tls, None, wait=15)
        report.run('the restart scenario ran to its end', scenario, report, system, server)
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        sm_log_checks(report, system)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('muc_restart', suite)
