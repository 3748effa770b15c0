"""tests/integration/multifront.py — one SM, two fronts (the round-robin DNS picture): users on
different fronts subscribe to each other, see each other's presence and exchange messages; a user
with a resource on each front gets a message to her bare JID on the one with the highest priority;
jabshardctl sessions says which front each session is on; then front B is stopped cleanly (its
users go unavailable for the others, a message to one of them is stored) and that user logs in
again through front A and finds it.

Run by multifront.sh with /usr/bin/python3 (Debian's python3-slixmpp). Environment: XMPP_CAFILE
and XMPP_PASSWORDS as for lib/xmpptest.py, FRONT_A and FRONT_B ("IP:PORT" of each front's
STARTTLS port), FRONT_B_PID (the shell's child, stopped here with SIGTERM at the right moment),
CTL (jabshardctl) and SM_CONFIG. Prints ok / not ok lines and ends with "multifront scenarios:
N passed, N failed"."""

import asyncio
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))

from xmpptest import (WAIT, NS_CLIENT, NS_DELAY, Client, Failure, is_, main, q,  # noqa: E402
                      show, xml_escape)

PW = dict(pair.split('=', 1) for pair in os.environ.get('XMPP_PASSWORDS', '').split())


def front_address(var):
    host, port = os.environ[var].rsplit(':', 1)
    return host, int(port)


FRONT_A, FRONT_B = front_address('FRONT_A'), front_address('FRONT_B')


def need(cond, why):
    if not cond:
        raise Failure(why)


class FrontClient(Client):
    """xmpptest's client, logging in through the given front (its STARTTLS address)."""

    def __init__(self, jid, front):
        super().__init__(jid, PW[jid.split('@')[0]])
        self.front = front

    def connect(self, address=None, **kwargs):
        return super().connect(self.front, **kwargs)

    async def online(self, priority=None):
        """Logs in and sends initial presence (with priority, if given)."""
        await self.login()
        self.send_raw('<presence>%s</presence>' % (
            '' if priority is None else '<priority>%d</priority>' % priority))
        return self


def presence_from(jid, type_=None):
    return lambda e: (e.tag == q(NS_CLIENT, 'presence') and e.get('from') == jid and
                      (e.get('type') or None) == type_)


def message(to, body, mid, type_='chat'):
    return "<message to='%s' id='%s' type='%s'><body>%s</body></message>" % (
        xml_escape(to), mid, type_, xml_escape(body))


def sessions():
    """jabshardctl sessions: {full JID: the front's service id}."""
    out = subprocess.run([os.environ['CTL'], '-c', os.environ['SM_CONFIG'], 'sessions'],
                         capture_output=True, text=True, timeout=WAIT)
    need(out.returncode == 0, 'jabshardctl sessions: status %d: %s' % (out.returncode,
                                                                      out.stdout + out.stderr))
    return {f[0]: f[1] for f in (line.split('\t') for line in out.stdout.splitlines())
            if len(f) == 5}


async def subscribe(r, a, b):
    """a asks for b's presence, b approves; a then has b's presence (RFC 6121 §3.1)."""
    abare, bbare = a.boundjid.bare, b.boundjid.bare
    a.send_raw("<presence to='%s' type='subscribe'/>" % bbare)
    await b.expect(presence_from(abare, 'subscribe'), 'the subscription request of %s' % abare)
    b.send_raw("<presence to='%s' type='subscribed'/>" % abare)
    await a.expect(presence_from(bbare, 'subscribed'), 'the approval of %s' % bbare)
    await a.expect(presence_from(str(b.boundjid)), 'the presence of %s' % b.boundjid)
    r.ok('%s (front %s) subscribes to %s (front %s): request, approval and then the '
         "contact's presence cross the fronts" % (abare, a.front[0], bbare, b.front[0]))


async def only(r, name, sender, to, target, others, mid):
    """sender's chat message to the bare JID to reaches target, and none of others: each of those
    gets a marker sent after it on its own front, without the message before it."""
    sender.send_raw(message(to, 'for the most available resource', mid))
    el = await target.expect(lambda e: e.get('id') == mid, 'the message %s' % mid)
    for n, o in enumerate(others):
        marker = '%s-marker%d' % (mid, n)
        sender.send_raw(message(str(o.boundjid), 'marker', marker))
        await o.expect(lambda e: e.get('id') == marker, 'the marker after %s' % mid)
        need(not any(e.get('id') == mid for e in o.received),
             '%s got the message %s too' % (o.boundjid, mid))
    r.check(name, is_(el, 'message', 'chat', from_=str(sender.boundjid)), show(el))


async def scenarios(r):
    alice = await FrontClient('alice@localhost/a', FRONT_A).online()
    bob = await FrontClient('bob@localhost/b', FRONT_B).online()
    r.ok('alice logs in through front A (%s), bob through front B (%s)' % (FRONT_A[0], FRONT_B[0]))

    await subscribe(r, alice, bob)
    await subscribe(r, bob, alice)

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

    carol_a = await FrontClient('carol@localhost/a', FRONT_A).online(priority=1)
    carol_b = await FrontClient('carol@localhost/b', FRONT_B).online(priority=5)
    # Her resources see each other's presence: once carol/a has carol/b's, the SM has it too,
    # whichever front's link it came by.
    await carol_a.expect(lambda e: presence_from('carol@localhost/b')(e) and
                         e.findtext(q(NS_CLIENT, 'priority')) == '5', "carol/b's presence")
    await only(r, 'a message to a bare JID with a resource on each front goes to the one with the '
               'highest priority (front B, 5 against 1), not the other (RFC 6121 §8.5.2.1.1)',
               alice, 'carol@localhost', carol_b, [carol_a], 'p1')
    carol_a.send_raw('<presence><priority>10</priority></presence>')
    await carol_b.expect(lambda e: presence_from('carol@localhost/a')(e) and
                         e.findtext(q(NS_CLIENT, 'priority')) == '10', "carol/a's new priority")
    await only(r, '...and to front A once that resource raises its priority to 10',
               alice, 'carol@localhost', carol_a, [carol_b], 'p2')

    table = await asyncio.to_thread(sessions)
    want = {'alice@localhost/a': 'front-a', 'bob@localhost/b': 'front-b',
            'carol@localhost/a': 'front-a', 'carol@localhost/b': 'front-b'}
    r.check('jabshardctl sessions shows each session on its front (%s)' %
            ', '.join('%s %s' % kv for kv in sorted(want.items())), table == want,
            'sessions %s' % table)

    await bob.logout()
    await alice.expect(presence_from('bob@localhost/b', 'unavailable'),
                       "bob's unavailable presence")
    r.ok('a user who logs out of front B is seen unavailable on front A')
    bob = await FrontClient('bob@localhost/b', FRONT_B).online()
    await alice.expect(presence_from('bob@localhost/b'), "bob's presence again")

    await front_b_stops(r, alice, bob, carol_a, carol_b)


async def front_b_stops(r, alice, bob, carol_a, carol_b):
    pid = int(os.environ['FRONT_B_PID'])
    os.kill(pid, signal.SIGTERM)
    print('front B: SIGTERM sent', flush=True)
    await alice.expect(presence_from('bob@localhost/b', 'unavailable'),
                       "bob's unavailable presence after front B stopped")
    r.ok('front B stopped cleanly: its user is seen unavailable on front A')
    await carol_a.expect(presence_from('carol@localhost/b', 'unavailable'),
                         "her other resource's unavailable presence after front B stopped")
    r.ok("...and a user's resource on front A sees her resource on front B go unavailable")
    deadline = asyncio.get_running_loop().time() + WAIT
    while bob.transport and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    r.check("...and front B's clients were told <system-shutdown/>",
            'system-shutdown' in bob.stream_errors and not bob.transport,
            'stream errors %s, still connected %s' % (bob.stream_errors, bool(bob.transport)))
    table = await asyncio.to_thread(sessions)
    r.check("...and jabshardctl sessions lists only front A's sessions",
            table == {'alice@localhost/a': 'front-a', 'carol@localhost/a': 'front-a'},
            'sessions %s' % table)

    alice.send_raw(message('bob@localhost', 'while your front was down', 'off'))
    alice.send_raw(message('carol@localhost', 'carol, still there?', 'c1'))
    el = await carol_a.expect(lambda e: e.get('id') == 'c1', 'a message after front B stopped')
    r.check("a user with a resource left on front A gets her messages there",
            is_(el, 'message', 'chat'), show(el))
    need(not any(e.get('id') == 'off' and e.get('type') == 'error' for e in alice.received),
         'the message for bob bounced: %s' % [show(e) for e in alice.received
                                             if e.get('id') == 'off'])
    bob = await FrontClient('bob@localhost/again', FRONT_A).online()
    el = await bob.expect(lambda e: e.get('id') == 'off', 'the message stored while he was away')
    r.check('a message to a user of the stopped front is stored offline and delivered when he '
            'logs in again through front A, with <delay/>',
            is_(el, 'message', 'chat', from_='alice@localhost/a') and
            el.find(q(NS_DELAY, 'delay')) is not None, show(el))
    await alice.expect(presence_from('bob@localhost/again'), "bob's presence from front A")
    r.ok('...and his contact on front A sees him available again, now on the same front')
    for c in (alice, bob, carol_a, carol_b):
        await c.logout()


async def run(r):
    await r.scenario('multifront', lambda: scenarios(r), timeout=45)


if __name__ == '__main__':
    main(run, 'multifront scenarios')
