"""tests/integration/test_multifront.py — several fronts on one SM, the round-robin DNS picture of
docs/deployment.md: front A on 127.0.0.1 and front B on 127.0.0.2 (two boxes, as far as one
machine can show it), each with its own <service> id and secret on the SM. Users on both
subscribe to each other, see each other's presence and exchange messages; a user with a resource
on each front gets a message to her bare JID on the one with the highest priority; jabshardctl
sessions says which front each session is on. Then front B is stopped cleanly (SIGTERM): its
exit status, the SM noticing it, what its users' contacts see, its users' messages waiting for
them until they log in again through front A; and a clean stop of the rest.

Usage: test_multifront.py BUILD_DIR. Prints ok / not ok lines and ends
"multifront: N passed, N failed"."""

import asyncio

from jabtest.suite import main, require_slixmpp

require_slixmpp('multifront')

from jabtest.client import Client  # noqa: E402
from jabtest.report import Failure  # noqa: E402
from jabtest.system import System, free_ports, front_xml, secret, service, sm_xml  # noqa: E402
from jabtest.xmpp import NS_CLIENT, NS_DELAY, Server, is_, q, show, xml_escape  # noqa: E402

PW = {'alice': 'alice-secret', 'bob': 'bob-secret', 'carol': 'carol-secret'}


def need(cond, why):
    if not cond:
        raise Failure(why)


def client(jid, front):
    """A client logging in through front (a Server: that front's address)."""
    return Client(jid, PW[jid.split('@')[0]], front)


def presence_from(jid, type_=None):
    return lambda e: (e.tag == q(NS_CLIENT, 'presence') and e.get('from') == jid and
                      (e.get('type') or None) == type_)


def message(to, body, mid, type_='chat'):
    return "<message to='%s' id='%s' type='%s'><body>%s</body></message>" % (
        xml_escape(to), mid, type_, xml_escape(body))


class Scenarios:
    def __init__(self, r, system, front_a, front_b, front_b_program):
        self.r, self.system = r, system
        self.a, self.b = front_a, front_b
        self.front_b_program = front_b_program
        self.sigterm_sent = False

    def sessions(self):
        """jabshardctl sessions: {full JID: the front's service id}."""
        out, rows = self.system.sessions(timeout=self.a.wait)
        need(out.returncode == 0, 'jabshardctl sessions: status %d: %s' % (
            out.returncode, out.stdout + out.stderr))
        return {f[0]: f[1] for f in rows}

    async def subscribe(self, a, b):
        """a asks for b's presence, b approves; a then has b's presence (RFC 6121 §3.1)."""
        abare, bbare = a.boundjid.bare, b.boundjid.bare
        a.send_raw("<presence to='%s' type='subscribe'/>" % bbare)
        await b.expect(presence_from(abare, 'subscribe'), 'the subscription request of %s' % abare)
        b.send_raw("<presence to='%s' type='subscribed'/>" % abare)
        await a.expect(presence_from(bbare, 'subscribed'), 'the approval of %s' % bbare)
        await a.expect(presence_from(str(b.boundjid)), 'the presence of %s' % b.boundjid)
        self.r.ok('%s (front %s) subscribes to %s (front %s): request, approval and then the '
                  "contact's presence cross the fronts" % (abare, a.target.host, bbare,
                                                           b.target.host))

    async def only(self, name, sender, to, target, others, mid):
        """sender's chat message to the bare JID to reaches target, and none of others: each of
        those gets a marker sent after it on its own front, without the message before it."""
        sender.send_raw(message(to, 'for the most available resource', mid))
        el = await target.expect(lambda e: e.get('id') == mid, 'the message %s' % mid)
        for n, o in enumerate(others):
            marker = '%s-marker%d' % (mid, n)
            sender.send_raw(message(str(o.boundjid), 'marker', marker))
            await o.expect(lambda e: e.get('id') == marker, 'the marker after %s' % mid)
            need(not any(e.get('id') == mid for e in o.received),
                 '%s got the message %s too' % (o.boundjid, mid))
        self.r.check(name, is_(el, 'message', 'chat', from_=str(sender.boundjid)), show(el))

    async def run(self):
        r = self.r
        alice = await client('alice@localhost/a', self.a).online()
        bob = await client('bob@localhost/b', self.b).online()
        r.ok('alice logs in through front A (%s), bob through front B (%s)' % (self.a.host,
                                                                               self.b.host))

        await self.subscribe(alice, bob)
        await self.subscribe(bob, alice)

        alice.send_raw("<presence><show>away</show><status>lunch</status></presence>")
        el = await bob.expect(lambda e: presence_from('alice@localhost/a')(e) and
                              e.findtext(q(NS_CLIENT, 'show')) == 'away', "alice's new presence")
        r.check("a presence broadcast on front A reaches the contact on front B",
                el.findtext(q(NS_CLIENT, 'status')) == 'lunch', show(el))

        alice.send_raw(message('bob@localhost', 'A to B', 'ab'))
        el = await bob.expect(lambda e: e.get('id') == 'ab', "alice's message")
        r.check('a message from front A to a bare JID on front B arrives',
                is_(el, 'message', 'chat', from_='alice@localhost/a') and
                el.findtext(q(NS_CLIENT, 'body')) == 'A to B', show(el))
        bob.send_raw(message('alice@localhost/a', 'B to A', 'ba'))
        el = await alice.expect(lambda e: e.get('id') == 'ba', "bob's message")
        r.check('a message from front B to a full JID on front A arrives',
                is_(el, 'message', 'chat', from_='bob@localhost/b') and
                el.findtext(q(NS_CLIENT, 'body')) == 'B to A', show(el))

        carol_a = await client('carol@localhost/a', self.a).online(priority=1)
        carol_b = await client('carol@localhost/b', self.b).online(priority=5)
        # Her resources see each other's presence: once carol/a has carol/b's, the SM has it
        # too, whichever front's link it came by.
        await carol_a.expect(lambda e: presence_from('carol@localhost/b')(e) and
                             e.findtext(q(NS_CLIENT, 'priority')) == '5', "carol/b's presence")
        await self.only('a message to a bare JID with a resource on each front goes to the one '
                        'with the highest priority (front B, 5 against 1), not the other '
                        '(RFC 6121 §8.5.2.1.1)', alice, 'carol@localhost', carol_b, [carol_a],
                        'p1')
        carol_a.send_raw('<presence><priority>10</priority></presence>')
        await carol_b.expect(lambda e: presence_from('carol@localhost/a')(e) and
                             e.findtext(q(NS_CLIENT, 'priority')) == '10',
                             "carol/a's new priority")
        await self.only('...and to front A once that resource raises its priority to 10',
                        alice, 'carol@localhost', carol_a, [carol_b], 'p2')

        table = await asyncio.to_thread(self.sessions)
        want = {'alice@localhost/a': 'front-a', 'bob@localhost/b': 'front-b',
                'carol@localhost/a': 'front-a', 'carol@localhost/b': 'front-b'}
        r.check('jabshardctl sessions shows each session on its front (%s)' %
                ', '.join('%s %s' % kv for kv in sorted(want.items())), table == want,
                'sessions %s' % table)

        await bob.logout()
        await alice.expect(presence_from('bob@localhost/b', 'unavailable'),
                           "bob's unavailable presence")
        r.ok('a user who logs out of front B is seen unavailable on front A')
        bob = await client('bob@localhost/b', self.b).online()
        await alice.expect(presence_from('bob@localhost/b'), "bob's presence again")

        await self.front_b_stops(alice, bob, carol_a, carol_b)

    async def front_b_stops(self, alice, bob, carol_a, carol_b):
        r = self.r
        self.front_b_program.proc.terminate()
        self.sigterm_sent = True
        r.note('front B: SIGTERM sent')
        await alice.expect(presence_from('bob@localhost/b', 'unavailable'),
                           "bob's unavailable presence after front B stopped")
        r.ok('front B stopped cleanly: its user is seen unavailable on front A')
        await carol_a.expect(presence_from('carol@localhost/b', 'unavailable'),
                             "her other resource's unavailable presence after front B stopped")
        r.ok("...and a user's resource on front A sees her resource on front B go unavailable")
        deadline = asyncio.get_running_loop().time() + bob.wait
        while bob.transport and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        r.check("...and front B's clients were told <system-shutdown/>",
                'system-shutdown' in bob.stream_errors and not bob.transport,
                'stream errors %s, still connected %s' % (bob.stream_errors,
                                                           bool(bob.transport)))
        table = await asyncio.to_thread(self.sessions)
        r.check("...and jabshardctl sessions lists only front A's sessions",
                table == {'alice@localhost/a': 'front-a', 'carol@localhost/a': 'front-a'},
                'sessions %s' % table)

        alice.send_raw(message('bob@localhost', 'while your front was down', 'off'))
        alice.send_raw(message('carol@localhost', 'carol, still there?', 'c1'))
        el = await carol_a.expect(lambda e: e.get('id') == 'c1',
                                  'a message after front B stopped')
        r.check("a user with a resource left on front A gets her messages there",
                is_(el, 'message', 'chat'), show(el))
        need(not any(e.get('id') == 'off' and e.get('type') == 'error' for e in alice.received),
             'the message for bob bounced: %s' % [show(e) for e in alice.received
                                                 if e.get('id') == 'off'])
        bob = await client('bob@localhost/again', self.a).online()
        el = await bob.expect(lambda e: e.get('id') == 'off',
                              'the message stored while he was away')
        r.check('a message to a user of the stopped front is stored offline and delivered when '
                'he logs in again through front A, with <delay/>',
                is_(el, 'message', 'chat', from_='alice@localhost/a') and
                el.find(q(NS_DELAY, 'delay')) is not None, show(el))
        await alice.expect(presence_from('bob@localhost/again'), "bob's presence from front A")
        r.ok('...and his contact on front A sees him available again, now on the same front')
        for c in (alice, bob, carol_a, carol_b):
            await c.logout()


def body(report, build):
    with System(build, 'multifront', report) as system:
        if not system.ready(report, certificate=True):
            return
        a_port, a_tls, b_port, b_tls, sm_port = free_ports(5)
        a_secret, b_secret = secret(), secret()
        pem = system.path('server.pem')
        # Front B's box is 127.0.0.2: its ports were found free on 127.0.0.1, and nothing else
        # binds that address here.
        system.use_sm(sm_xml(system.path('jabshard.db'),
                             [service('front-a', sm_port, a_secret, 'front'),
                              service('front-b', sm_port, b_secret, 'front')]))
        system.use_front('front-a', front_xml('front-a', a_secret, sm_port, '127.0.0.1', a_port,
                                              a_tls, pem), a_port)
        system.use_front('front-b', front_xml('front-b', b_secret, sm_port, '127.0.0.2', b_port,
                                              b_tls, pem), b_port)
        sm = system.start_sm(seconds=10)
        if not sm:
            report.not_ok('the SM starts', system.sm.text())
            return
        front_a = system.start_front('front-a', seconds=10)
        if not front_a:
            report.not_ok('the front front-a links to the SM', system.front('front-a').text())
            return
        front_b = system.start_front('front-b', seconds=10)
        if not front_b:
            report.not_ok('the front front-b links to the SM', system.front('front-b').text())
            return
        if "front 'front-a' is up" in sm.text() and "front 'front-b' is up" in sm.text() and \
                'listening on 127.0.0.2 port %d' % b_port in front_b.text():
            report.ok('two fronts (127.0.0.1 and 127.0.0.2) link to one SM, each with its own id '
                      'and secret')
        else:
            report.not_ok('two fronts link to one SM', sm.text())

        ok, out, _ = system.import_accounts(('%s@localhost' % u, p) for u, p in PW.items())
        if not ok:
            report.not_ok('jabshardctl creates the accounts', out)
            return

        part = report.part('multifront scenarios')
        scenarios = Scenarios(part, system, Server('127.0.0.1', a_port, a_tls, pem),
                              Server('127.0.0.2', b_port, b_tls, pem), front_b)
        asyncio.run(part.scenario('multifront', scenarios.run, timeout=45))
        report.merge(part)

        if scenarios.sigterm_sent:
            status = front_b.wait(10)
            if status == 0 and sm.wait_log("front 'front-b' is down", 5) and \
                    "front 'front-a' is down" not in sm.text():
                report.ok('front B exited 0 on SIGTERM; the SM saw it go and kept front A')
            else:
                report.not_ok('front B exits 0 on SIGTERM and the SM sees it go (status %s)' %
                              status, front_b.text())
        else:
            report.not_ok('the scenarios got as far as stopping front B')
            front_b.stop()
        a_status = front_a.stop()
        sm_status = sm.stop()
        report.check('front A and the SM stop cleanly on SIGTERM (status 0)',
                     a_status == 0 and sm_status == 0,
                     'front A %s, SM %s\n%s' % (a_status, sm_status, sm.text()))
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('multifront', body)
