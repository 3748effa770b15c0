"""tests/integration/xmpp_clients.py — jabshard end to end with a real client library (slixmpp):
login over STARTTLS and direct TLS, resource binding, SASL PLAIN and what slixmpp's SCRAM meets,
in-band registration, two users subscribing, exchanging presence and messages, offline messages,
roster versioning, and the stanza errors the server owes a client.

Run by xmpp.sh with /usr/bin/python3 (Debian's python3-slixmpp); the accounts it uses were made
with jabshardctl, passwords in XMPP_PASSWORDS ("user=password ..."). Prints ok / not ok lines and
ends with "xmpp clients: N passed, N failed"."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))

from xmpptest import (DOMAIN, HOST, PORT, WAIT, NS_BIND, NS_CLIENT, NS_DELAY,  # noqa: E402
                      NS_ROSTER, NS_STANZAS, Client, Failure, is_, main, q, roster_push_for, show,
                      stanza_error, xml_escape)
from slixmpp.exceptions import IqError  # noqa: E402  (after xmpptest: it quiets slixmpp's logging)

PW = dict(pair.split('=', 1) for pair in os.environ.get('XMPP_PASSWORDS', '').split())
NS_PING = 'urn:xmpp:ping'
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'


def need(cond, why):
    if not cond:
        raise Failure(why)


async def login_starttls(r):
    c = await Client('carol@%s/desk' % DOMAIN, PW['carol']).login()
    r.check('STARTTLS (port 5222), PLAIN with a non-ASCII password, chosen resource bound',
            str(c.boundjid) == 'carol@localhost/desk', 'bound %s' % c.boundjid)
    res = await c.iq('set', "<session xmlns='%s'/>" % NS_SESSION, what='the session answer')
    r.check('legacy session iq (RFC 3921) is answered with a result',
            is_(res, 'iq', 'result'), show(res))
    res = await c.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=DOMAIN, what='the ping answer')
    r.check('the server answers a ping on the STARTTLS stream',
            is_(res, 'iq', 'result', from_=DOMAIN), show(res))
    await c.logout()
    r.check('the server answers the client\'s </stream:stream> with its own',
            not c.transport and c.end_of_stream)


async def login_direct_tls(r):
    c = await Client('carol@%s' % DOMAIN, PW['carol']).login(direct_tls=True)
    r.check('direct TLS (port 5223), server-generated resource bound',
            c.boundjid.bare == 'carol@localhost' and len(c.boundjid.resource) >= 8,
            'bound %s' % c.boundjid)
    res = await c.iq('set', "<session xmlns='%s'/>" % NS_SESSION, what='the session answer')
    r.check('legacy session iq over direct TLS', is_(res, 'iq', 'result'), show(res))
    res = await c.iq('set', "<bind xmlns='%s'><resource>again</resource></bind>" % NS_BIND,
                     what='the answer to a second bind')
    r.check('a second bind on a bound stream is refused (not-allowed)',
            stanza_error(res) == ('cancel', 'not-allowed'), show(res))
    await c.logout()


async def same_resource_conflict(r):
    first = await Client('carol@%s/same' % DOMAIN, PW['carol']).login()
    second = await Client('carol@%s/same' % DOMAIN, PW['carol']).login(direct_tls=True)
    r.check('binding a resource already in use succeeds for the new session',
            str(second.boundjid) == 'carol@localhost/same', 'bound %s' % second.boundjid)
    deadline = asyncio.get_running_loop().time() + WAIT
    while first.transport and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    r.check('...and the old session is closed with the <conflict/> stream error',
            'conflict' in first.stream_errors and not first.transport,
            'old session: stream errors %s, still connected: %s' % (first.stream_errors,
                                                                     bool(first.transport)))
    await second.logout()
    await first.logout()


async def refused(c):
    """c's login must fail; returns its SASL failure conditions."""
    try:
        await c.login()
    except Failure:
        await c.logout()
        return c.auth_failures
    await c.logout()
    raise Failure('%s logged in' % c.boundjid)


async def wrong_password(r):
    failures = await refused(Client('carol@%s' % DOMAIN, 'not the password'))
    r.check('PLAIN with a wrong password fails with <not-authorized/>',
            failures == ['not-authorized'], 'SASL failures %s' % failures)


async def scram_y_flag(r):
    # slixmpp's SCRAM-SHA-256 sends gs2 flag 'y' (it could bind but thinks we cannot), yet we
    # advertise SCRAM-SHA-256-PLUS: RFC 5802 §6 says the server must fail that exchange.
    failures = await refused(Client('carol@%s' % DOMAIN, PW['carol'], mech='SCRAM-SHA-256'))
    r.check("SCRAM with the 'y' flag is refused while -PLUS is advertised (downgrade)",
            failures == ['not-authorized'], 'SASL failures %s' % failures)


async def slixmpp_defaults(r):
    # Left to itself slixmpp tries SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with tls-unique (not
    # offered: TLS 1.3 has none), then both SCRAMs with the 'y' flag (refused, see above), then
    # PLAIN. None of the four is a password guess, so none may count toward auth_failures.
    c = await Client('carol@%s/defaults' % DOMAIN, PW['carol'], mech=None).login()
    r.check('slixmpp with its own mechanism choice gets through four refused exchanges to PLAIN '
            '(only wrong passwords count as failures)',
            len(c.auth_failures) == 4 and str(c.boundjid) == 'carol@localhost/defaults',
            'SASL failures %s, bound %s' % (c.auth_failures, c.boundjid))
    await c.logout()


class Registrant(Client):
    """Registers its JID's user name in band (XEP-0077) before authenticating as it."""

    def __init__(self, jid, password):
        super().__init__(jid, password, plugins=['xep_0077'])
        self['xep_0077'].force_registration = True
        # slixmpp 1.8 holds back every iq but bind and session until a session starts, so its
        # own XEP-0077 plugin could never register: let the registration iqs through.
        self._always_send_everything = True
        self.form = None
        self.outcome = self.loop.create_future()
        self.add_event_handler('register', self._register)

    async def _register(self, form):
        self.form = form
        iq = self.Iq()
        iq['type'] = 'set'
        iq['register']['username'] = self.boundjid.user
        iq['register']['password'] = self.password
        try:
            await iq.send(timeout=WAIT)
            self.outcome.set_result(None)
        except IqError as e:
            self.outcome.set_result(e.iq['error']['condition'])
            self.abort()   # before slixmpp goes on to authenticate with the refused password


async def registration(r):
    c = Registrant('newbie@%s' % DOMAIN, 'fresh pass')
    await c.login()
    fields = set(c.form['register']['fields']) if c.form is not None else set()
    r.check('in-band registration: the form asks for username and password',
            {'username', 'password'} <= fields, 'form fields %s' % fields)
    r.check('in-band registration succeeds, then PLAIN login with the new account',
            c.outcome.done() and c.outcome.result() is None and
            c.boundjid.bare == 'newbie@localhost', 'outcome %s, bound %s' % (
                c.outcome.result() if c.outcome.done() else 'none', c.boundjid))
    await c.logout()

    for user, why in (('newbie', 'just registered'), ('alice', 'made with jabshardctl')):
        again = Registrant('%s@%s' % (user, DOMAIN), 'other pass')
        again.connect((HOST, PORT))
        try:
            cond = await asyncio.wait_for(asyncio.shield(again.outcome), WAIT)
        except asyncio.TimeoutError:
            cond = 'no answer'
        r.check('registering an existing name (%s, %s) is a <conflict/>' % (user, why),
                cond == 'conflict', 'got %s' % cond)
        await again.logout()


async def two_users(r):
    A, B = 'alice@' + DOMAIN, 'bob@' + DOMAIN
    alice = await Client(A + '/home', PW['alice']).login()
    bob = await Client(B + '/work', PW['bob']).login(direct_tls=True)
    fa, fb = str(alice.boundjid), str(bob.boundjid)
    # Roster pushes go to interested resources only: those that asked for the roster (RFC 6121
    # §2.1.6), as every client does before its initial presence.
    for c in (alice, bob):
        res = await c.iq('get', "<query xmlns='%s'/>" % NS_ROSTER, what='the roster')
        need(is_(res, 'iq', 'result') and res.find(q(NS_ROSTER, 'query')) is not None,
             'roster get: %s' % show(res))
        c.send_raw('<presence/>')

    res = await alice.iq('set', "<query xmlns='%s'><item jid='%s' name='Bob'><group>Friends</group>"
                         "</item></query>" % (NS_ROSTER, B), what='the roster set answer')
    need(is_(res, 'iq', 'result'), 'roster set: %s' % show(res))
    push = await alice.expect(lambda el: roster_push_for(el, B) is not None, 'the roster push')
    item = roster_push_for(push, B)
    r.check('roster set: result, and a push with subscription none, the name and the group',
            item.get('subscription') == 'none' and item.get('name') == 'Bob' and
            item.findtext(q(NS_ROSTER, 'group')) == 'Friends', show(push))

    alice.send_raw("<presence to='%s' type='subscribe'/>" % B)
    req = await bob.expect(lambda el: is_(el, 'presence', 'subscribe'), 'the subscription request')
    r.check('subscribe reaches bob, from alice\'s bare JID', req.get('from') == A, show(req))
    push = await alice.expect(lambda el: (roster_push_for(el, B) is not None and
                                          roster_push_for(el, B).get('ask') == 'subscribe'),
                              "the push with ask='subscribe'")
    r.check("...and alice gets a push with ask='subscribe'", True)

    bob.send_raw("<presence to='%s' type='subscribed'/>" % A)
    ok = await alice.expect(lambda el: is_(el, 'presence', 'subscribed'), 'the approval')
    r.check('bob approves: alice gets subscribed from bob\'s bare JID', ok.get('from') == B,
            show(ok))
    await alice.expect(lambda el: (roster_push_for(el, B) is not None and
                                   roster_push_for(el, B).get('subscription') == 'to' and
                                   roster_push_for(el, B).get('ask') is None),
                       "the push with subscription='to'")
    await alice.expect(lambda el: is_(el, 'presence', '', from_=fb), "bob's presence")
    r.check("...a push with subscription 'to', then bob's current presence from his full JID",
            True)
    await bob.expect(lambda el: (roster_push_for(el, A) is not None and
                                 roster_push_for(el, A).get('subscription') == 'from'),
                     "bob's push with subscription='from'")

    bob.send_raw("<presence to='%s' type='subscribe'/>" % A)
    await alice.expect(lambda el: is_(el, 'presence', 'subscribe', from_=B), "bob's request")
    alice.send_raw("<presence to='%s' type='subscribed'/>" % B)
    await bob.expect(lambda el: is_(el, 'presence', 'subscribed', from_=A), "alice's approval")
    await bob.expect(lambda el: is_(el, 'presence', '', from_=fa), "alice's presence")
    await alice.expect(lambda el: (roster_push_for(el, B) is not None and
                                   roster_push_for(el, B).get('subscription') == 'both'),
                       "alice's push with subscription='both'")
    r.check('the other way round: both sides end with subscription both', True)

    alice.send_raw('<presence><show>away</show><status>lunch</status></presence>')
    p = await bob.expect(lambda el: (is_(el, 'presence', '', from_=fa) and
                                     el.findtext(q(NS_CLIENT, 'show')) == 'away'), 'away')
    r.check('presence broadcast alice -> bob, with show and status',
            p.findtext(q(NS_CLIENT, 'status')) == 'lunch', show(p))
    bob.send_raw('<presence><status>busy</status></presence>')
    p = await alice.expect(lambda el: (is_(el, 'presence', '', from_=fb) and
                                       el.findtext(q(NS_CLIENT, 'status')) == 'busy'), 'busy')
    r.check('presence broadcast bob -> alice', True)

    alice.send_raw("<message to='%s' type='chat' id='c1'><body>hello bob &amp; co</body></message>"
                   % B)
    m = await bob.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'c1', 'chat')
    r.check('chat alice -> bob (bare JID): delivered from alice\'s full JID, body intact',
            m.get('from') == fa and m.findtext(q(NS_CLIENT, 'body')) == 'hello bob & co', show(m))

    phone = await Client(A + '/phone', PW['alice']).login()
    phone.send_raw('<presence/>')
    await bob.expect(lambda el: is_(el, 'presence', '', from_=str(phone.boundjid)),
                     "presence of alice's second resource")
    bob.send_raw("<message to='%s' type='chat' id='c2'><body>to home</body></message>" % fa)
    bob.send_raw("<message to='%s' type='chat' id='c3'><body>to phone</body></message>"
                 % phone.boundjid)
    m = await alice.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'c2', 'c2')
    r.check('chat bob -> alice/home (full JID): from bob\'s full JID', m.get('from') == fb, show(m))
    m = await phone.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'c3', 'c3')
    r.check('...and the one to alice/phone reaches only that resource',
            m.get('from') == fb and not any(el.get('id') == 'c2' for el in phone.received) and
            not any(el.get('id') == 'c3' for el in alice.received), show(m))
    await phone.logout()

    alice.send_raw("<message to='%s' from='mallory@%s/evil' type='chat' id='c4'><body>spoof</body>"
                   "</message>" % (B, DOMAIN))
    m = await bob.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'c4', 'c4')
    r.check('a from attribute the client sets is replaced by its full JID (RFC 6120 §8.1.2.1)',
            m.get('from') == fa, show(m))

    # slixmpp answers an iq it has no handler for with <feature-not-implemented/>.
    res = await alice.iq('get', "<query xmlns='urn:example:unhandled'/>", to=fb,
                         what="bob's client's answer")
    r.check("iq to bob's full JID reaches his client, and its error comes back from it",
            stanza_error(res) == ('cancel', 'feature-not-implemented') and res.get('from') == fb,
            show(res))

    big = ''.join(chr(0x41 + i % 26) for i in range(60000))
    alice.send_raw("<message to='%s' type='chat' id='c5'><body>%s</body></message>" % (B, big))
    m = await bob.expect(lambda el: is_(el, 'message', 'chat') and el.get('id') == 'c5', 'c5')
    r.check('a 60 KB message (under the 64 KB stanza limit) arrives whole',
            m.findtext(q(NS_CLIENT, 'body')) == big, 'body of %d characters' % len(
                m.findtext(q(NS_CLIENT, 'body')) or ''))

    await bob.logout()
    await alice.expect(lambda el: is_(el, 'presence', 'unavailable', from_=fb),
                              "bob's unavailable presence")
    r.check('bob logs out: alice gets unavailable presence from his full JID', True)
    # Among them a headline (RFC 6121 §8.5.2.2.1: silently ignored, never stored) and a
    # groupchat message (service-unavailable).
    for i, type_ in ((1, 'chat'), ('h', 'headline'), (2, 'chat'), ('g', 'groupchat'), (3, 'chat')):
        alice.send_raw("<message to='%s' type='%s' id='off%s'><body>offline %s</body></message>"
                       % (B, type_, i, i))
    # An answer from the SM after these: they have all been routed (stored or bounced) by then.
    res = await alice.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=DOMAIN)
    need(is_(res, 'iq', 'result'), 'ping after the offline messages: %s' % show(res))
    errors = {el.get('id'): stanza_error(el) for el in alice.received
              if is_(el, 'message', 'error')}
    r.check('to an offline user, chat is stored and headline dropped silently; groupchat gets '
            '<service-unavailable/>', errors == {'offg': ('cancel', 'service-unavailable')},
            'errors: %s' % errors)

    bob2 = await Client(B + '/work', PW['bob']).login()
    bob2.send_raw('<presence/>')
    got = []
    for i in (1, 2, 3):
        got.append(await bob2.expect(lambda el: (is_(el, 'message', 'chat') and
                                                 (el.findtext(q(NS_CLIENT, 'body')) or '')
                                                 .startswith('offline')), 'offline message %d' % i))
    bodies = [m.findtext(q(NS_CLIENT, 'body')) for m in got]
    stray = [show(el) for el in bob2.received if el.get('id') in ('offh', 'offg')]
    r.check('bob logs in again: the 3 chat messages arrive in order, nothing else stored',
            bodies == ['offline 1', 'offline 2', 'offline 3'] and not stray,
            'bodies %s, also %s' % (bodies, stray))
    delays = [m.find(q(NS_DELAY, 'delay')) for m in got]
    r.check('...each with <delay xmlns="urn:xmpp:delay" from="localhost" stamp=...Z/> and '
            'alice\'s full JID as sender',
            all(d is not None and d.get('from') == DOMAIN and (d.get('stamp') or '').endswith('Z')
                for d in delays) and all(m.get('from') == fa for m in got),
            ' | '.join(show(m) for m in got))

    res = await bob2.iq('get', "<query xmlns='%s' ver=''/>" % NS_ROSTER, what='the roster')
    query = res.find(q(NS_ROSTER, 'query'))
    ver = query.get('ver') if query is not None else None
    items = {i.get('jid'): i.get('subscription') for i in query} if query is not None else {}
    r.check("roster get with ver='': the whole roster, alice with subscription both, and a ver",
            is_(res, 'iq', 'result') and ver and items == {A: 'both'}, show(res))
    res = await bob2.iq('get', "<query xmlns='%s' ver='%s'/>" % (NS_ROSTER, xml_escape(ver or '')),
                        what='the roster answer to the current ver')
    r.check('roster get with the current ver: an empty result (XEP-0237 §2.3)',
            is_(res, 'iq', 'result') and len(res) == 0, show(res))
    res = await bob2.iq('set', "<query xmlns='%s'><item jid='%s' name='Alice'/></query>"
                        % (NS_ROSTER, A), what='the roster set answer')
    push = await bob2.expect(lambda el: (roster_push_for(el, A) is not None and
                                         roster_push_for(el, A).get('name') == 'Alice'), 'push')
    new_ver = push.find(q(NS_ROSTER, 'query')).get('ver')
    res = await bob2.iq('get', "<query xmlns='%s' ver='%s'/>" % (NS_ROSTER, xml_escape(ver or '')),
                        what='the roster answer to an old ver')
    query = res.find(q(NS_ROSTER, 'query'))
    r.check('after a change: the push carries a new ver, and a get with the old ver returns the '
            'roster at that new ver',
            new_ver and new_ver != ver and query is not None and query.get('ver') == new_ver and
            query.find(q(NS_ROSTER, 'item')).get('name') == 'Alice', show(push) + ' / ' + show(res))

    await bob2.logout()
    await alice.logout()


async def errors(r):
    c = await Client('dave@%s/err' % DOMAIN, PW['dave']).login()
    c.send_raw('<presence/>')

    c.send_raw("<message to='nobody@%s' type='chat' id='e1'><body>hi</body></message>" % DOMAIN)
    m = await c.expect_id('e1', 'the error for a message to a missing user')
    r.check('message to a user that does not exist: <service-unavailable/>, from that JID',
            stanza_error(m) == ('cancel', 'service-unavailable') and
            m.get('from') == 'nobody@' + DOMAIN, show(m))

    for to, who in ((DOMAIN, 'the server'), ('alice@' + DOMAIN, "a user's bare JID")):
        res = await c.iq('get', "<query xmlns='urn:example:no-such-thing'/>", to=to)
        r.check('iq in an unknown namespace to %s: <service-unavailable/>' % who,
                stanza_error(res) == ('cancel', 'service-unavailable') and res.get('from') == to,
                show(res))

    res = await c.iq('get', "<ping xmlns='%s'/>" % NS_PING, to='alice@%s/not-online' % DOMAIN)
    r.check('iq to a full JID that is not online: <service-unavailable/>',
            stanza_error(res) == ('cancel', 'service-unavailable'), show(res))

    for i, bad in enumerate(('@' + DOMAIN, 'bob@', 'a@b@' + DOMAIN, 'bob@%s/' % DOMAIN,
                             'x' * 1100 + '@' + DOMAIN)):
        c.send_raw("<message to='%s' id='bad%d'><body>x</body></message>" % (bad, i))
        m = await c.expect_id('bad%d' % i, 'the error for to=%r' % bad[:40])
        r.check('message to the malformed JID %r: <jid-malformed/>' % (bad[:20] + '...'
                if len(bad) > 20 else bad),
                stanza_error(m) == ('modify', 'jid-malformed'), show(m))

    # Never an error for an error (RFC 6120 §8.3.1), nor for a result: whatever the SM would
    # bounce comes back before its answer to the ping that follows.
    err = "<error type='cancel'><item-not-found xmlns='%s'/></error>" % NS_STANZAS
    c.send_raw("<message to='nobody@%s' type='error' id='n1'>%s</message>" % (DOMAIN, err))
    c.send_raw("<iq to='nobody@%s' type='error' id='n2'>%s</iq>" % (DOMAIN, err))
    c.send_raw("<iq to='alice@%s/not-online' type='result' id='n3'/>" % DOMAIN)
    res = await c.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=DOMAIN)
    answered = [show(el) for el in c.received if el.get('id') in ('n1', 'n2', 'n3')]
    r.check('error and result stanzas that cannot be delivered are dropped, never answered',
            is_(res, 'iq', 'result') and not answered, 'answers: %s' % answered)

    res = await c.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=DOMAIN)
    r.check('the session survives all of that', is_(res, 'iq', 'result'), show(res))
    await c.logout()


async def run(r):
    for name, fn in (('login over STARTTLS', login_starttls),
                     ('login over direct TLS', login_direct_tls),
                     ('resource conflict', same_resource_conflict),
                     ('wrong password', wrong_password),
                     ("SCRAM 'y' flag", scram_y_flag),
                     ('slixmpp defaults', slixmpp_defaults),
                     ('in-band registration', registration),
                     ('two users', two_users),
                     ('stanza errors', errors)):
        await r.scenario(name, lambda fn=fn: fn(r))


if __name__ == '__main__':
    main(run, 'xmpp clients')
