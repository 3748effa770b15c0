"""tests/integration/test_xmpp.py — the whole system end to end with real clients. Starts the SM
and the front through tools/run.sh ("make run") on free loopback ports in a temporary run
directory, makes accounts with jabshardctl, then runs at the same time:
  clients     slixmpp: logins, SASL PLAIN, registration, two users, offline, roster, errors
  raw         raw sockets: malformed input and its stream errors; one byte per segment
  modules     slixmpp: disco, vCard, private XML, last activity, carbons, blocking
  strophe     strophe_client.c (libstrophe, compiled here): SCRAM-SHA-1, SCRAM-SHA-256 and
              PLAIN, wrong passwords
  admin       jabshardctl sessions and kick against the running SM (the kick witness: two
              sessions of one account that report the stream error each gets)
and then checks run.sh itself: SIGTERM (clients get <system-shutdown/>), a restart that keeps
the certificate, the secret and the accounts, Ctrl-C, and a program that dies; federation off
by default (no jabshard-s2s), and on (JABSHARD_FEDERATION=1, make run FEDERATION=1): jabshard-s2s
started, linked to the SM, listening on its ports, and stopped with the others by SIGTERM.

The parts that run at the same time each print their lines in one block, with their own count.
Whatever must not arrive is checked once a later stanza on the same path has arrived: the SM
keeps a session's order. Every wait is bounded; a scenario never sleeps to decide anything.

Usage: test_xmpp.py BUILD_DIR. Prints ok / not ok lines and ends "xmpp: N passed, N failed"."""

import asyncio
import os
import re
import signal
import socket
import stat
import subprocess
import threading

from jabtest.suite import main, require_slixmpp

require_slixmpp('xmpp')

from slixmpp.exceptions import IqError  # noqa: E402

from jabtest.client import Client  # noqa: E402
from jabtest.proc import alive, wait_until  # noqa: E402
from jabtest.raw import Raw  # noqa: E402
from jabtest.report import Failure  # noqa: E402
from jabtest.system import System, read  # noqa: E402
from jabtest.xmpp import (DOMAIN, NS_BIND, NS_CLIENT, NS_DELAY, NS_DISCO_INFO,  # noqa: E402
                          NS_PING, NS_ROSTER, NS_SASL, NS_STANZAS, Server, is_, q,
                          roster_push_for, show, stanza_error, stream_header, tls_context,
                          xml_escape)

HERE = os.path.dirname(os.path.abspath(__file__))
PW = {'alice': 'alice-secret', 'bob': 'bob-secret', 'carol': 'pässwörd', 'dave': 'dave-secret',
      'erin': 'erin-secret', 'frank': 'frank-secret', 'mona': 'mona-secret',
      'nick': 'nick-secret', 'oscar': 'oscar-secret'}
LIMITS = 'auth_timeout=45'     # run.sh's <limits> for the front
NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session'
NS_VCARD = 'vcard-temp'
NS_PRIVATE = 'jabber:iq:private'
NS_LAST = 'jabber:iq:last'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_PREFS = 'urn:example:jabshard:prefs'
MONA = 'mona@' + DOMAIN
NICK = 'nick@' + DOMAIN
PLUGINS = ('xep_0054', 'xep_0012', 'xep_0191', 'xep_0280')
HEADER = stream_header()


class Setup:
    """The server the scenarios talk to (a Server), set by suite()."""
    server = None


setup = Setup()


def client(jid, password, mech='PLAIN', plugins=()):
    return Client(jid, password, setup.server, mech=mech, plugins=plugins)


def raw_stream(direct_tls=True, nodelay=False, wait=None):
    """A Raw stream to the server: direct TLS, or its STARTTLS port; reads bounded by wait."""
    server = setup.server if wait is None else setup.server.with_wait(wait)
    return Raw.to(server, direct_tls=direct_tls, nodelay=nodelay)


def need(cond, why):
    if not cond:
        raise Failure(why)


# ---- clients: slixmpp -------------------------------------------------------------------------

async def login_starttls(r):
    c = await client('carol@%s/desk' % DOMAIN, PW['carol']).login()
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
    c = await client('carol@%s' % DOMAIN, PW['carol']).login(direct_tls=True)
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
    first = await client('carol@%s/same' % DOMAIN, PW['carol']).login()
    second = await client('carol@%s/same' % DOMAIN, PW['carol']).login(direct_tls=True)
    r.check('binding a resource already in use succeeds for the new session',
            str(second.boundjid) == 'carol@localhost/same', 'bound %s' % second.boundjid)
    deadline = asyncio.get_running_loop().time() + setup.server.wait
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
    failures = await refused(client('carol@%s' % DOMAIN, 'not the password'))
    r.check('PLAIN with a wrong password fails with <not-authorized/>',
            failures == ['not-authorized'], 'SASL failures %s' % failures)


async def scram_y_flag(r):
    # slixmpp's SCRAM-SHA-256 sends gs2 flag 'y' (it could bind but thinks we cannot), yet we
    # advertise SCRAM-SHA-256-PLUS: RFC 5802 §6 says the server must fail that exchange.
    failures = await refused(client('carol@%s' % DOMAIN, PW['carol'], mech='SCRAM-SHA-256'))
    r.check("SCRAM with the 'y' flag is refused while -PLUS is advertised (downgrade)",
            failures == ['not-authorized'], 'SASL failures %s' % failures)


async def slixmpp_defaults(r):
    # Left to itself slixmpp tries SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with tls-unique (not
    # offered: TLS 1.3 has none), then both SCRAMs with the 'y' flag (refused, see above), then
    # PLAIN. None of the four is a password guess, so none may count toward auth_failures.
    c = await client('carol@%s/defaults' % DOMAIN, PW['carol'], mech=None).login()
    r.check('slixmpp with its own mechanism choice gets through four refused exchanges to PLAIN '
            '(only wrong passwords count as failures)',
            len(c.auth_failures) == 4 and str(c.boundjid) == 'carol@localhost/defaults',
            'SASL failures %s, bound %s' % (c.auth_failures, c.boundjid))
    await c.logout()


class Registrant(Client):
    """Registers its JID's user name in band (XEP-0077) before authenticating as it."""

    def __init__(self, jid, password):
        super().__init__(jid, password, setup.server, plugins=['xep_0077'])
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
            await iq.send(timeout=setup.server.wait)
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
        again.connect((setup.server.host, setup.server.port))
        try:
            cond = await asyncio.wait_for(asyncio.shield(again.outcome), setup.server.wait)
        except asyncio.TimeoutError:
            cond = 'no answer'
        r.check('registering an existing name (%s, %s) is a <conflict/>' % (user, why),
                cond == 'conflict', 'got %s' % cond)
        await again.logout()


async def two_users(r):
    A, B = 'alice@' + DOMAIN, 'bob@' + DOMAIN
    alice = await client(A + '/home', PW['alice']).login()
    bob = await client(B + '/work', PW['bob']).login(direct_tls=True)
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

    phone = await client(A + '/phone', PW['alice']).login()
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

    bob2 = await client(B + '/work', PW['bob']).login()
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
    c = await client('dave@%s/err' % DOMAIN, PW['dave']).login()
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



# ---- the raw streams -----------------------------------------------------------------------------

# (name, expected condition, what to send, where): each on a fresh connection; 'tls' is the
# direct TLS port before authentication, 'plain' the STARTTLS port before STARTTLS, 'auth' a
# direct TLS stream after login and bind.
CASES = [
    ('a mismatched end tag', 'not-well-formed', HEADER + '<message><body>x</message>', 'tls'),
    ('text between stanzas', 'not-well-formed', HEADER + 'hello', 'tls'),
    ('a comment', 'restricted-xml', HEADER + '<!-- a comment -->', 'tls'),
    ('a processing instruction', 'restricted-xml', HEADER + '<?evil instruction?>', 'tls'),
    ('a DOCTYPE before the stream header', 'restricted-xml',
     "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>" +
     stream_header(prolog=False), 'tls'),
    ('an undeclared entity', 'restricted-xml', HEADER + '<message><body>&x;</body></message>',
     'tls'),
    ('an unbound prefix on a stanza', 'bad-namespace-prefix',
     HEADER + "<foo:message to='a@%s'/>" % DOMAIN, 'tls'),
    ('a stream header without xmlns:stream', 'bad-namespace-prefix',
     "<?xml version='1.0'?><stream:stream xmlns='jabber:client' to='%s' version='1.0'>" % DOMAIN,
     'tls'),
    ("to='nowhere'", 'host-unknown', stream_header(to='nowhere'), 'tls'),
    ("to='nowhere' on the STARTTLS port", 'host-unknown', stream_header(to='nowhere'), 'plain'),
    ("the content namespace jabber:server", 'invalid-namespace',
     stream_header(xmlns='jabber:server'), 'tls'),
    ('a stream element in the wrong namespace', 'invalid-namespace',
     stream_header(stream_ns='http://example.com/streams'), 'tls'),
    ("version='2.0'", 'unsupported-version', stream_header(version='2.0'), 'tls'),
    ('an encoding other than UTF-8', 'unsupported-encoding',
     "<?xml version='1.0' encoding='ISO-8859-1'?>" + stream_header(prolog=False), 'tls'),
    ('a stanza over 256 KiB before authentication', 'policy-violation',
     HEADER + '<message><body>' + 'a' * 263000 + '</body></message>', 'tls'),
    ('a message before authentication', 'not-authorized',
     HEADER + "<message to='frank@%s'><body>hi</body></message>" % DOMAIN, 'tls'),
    ('SASL on the STARTTLS port before STARTTLS', 'policy-violation',
     HEADER + "<auth xmlns='%s' mechanism='PLAIN'>AGZyYW5rAHg=</auth>" % NS_SASL, 'plain'),
    ('a stanza over 256 KiB after authentication', 'policy-violation',
     "<message to='frank@%s'><body>%s</body></message>" % (DOMAIN, 'a' * 263000), 'auth'),
    ('an unknown top-level element after authentication', 'unsupported-stanza-type',
     "<foo xmlns='jabber:client'/>", 'auth'),
]


class Witness:
    """frank, logged in on a raw stream, who must keep getting answers while the others fail."""

    def __init__(self):
        self.raw = raw_stream()
        self.jid = self.raw.login('frank', PW['frank'], 'witness')
        self.pings = 0

    def ping(self):
        self.pings += 1
        sid = 'w%d' % self.pings
        self.raw.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>"
                      % (sid, DOMAIN, NS_PING))
        self.raw.read_until(r"<iq[^>]*\bid=['\"]%s['\"][^>]*type=['\"]result|"
                            r"<iq[^>]*type=['\"]result['\"][^>]*\bid=['\"]%s['\"]" % (sid, sid),
                            'the answer to ping %s' % sid)


def one_case(r, witness, name, condition, data, where):
    raw = raw_stream(direct_tls=where != 'plain')
    try:
        if where == 'auth':
            raw.login('erin', PW['erin'])
        try:
            raw.send(data)
        except OSError:
            pass    # the server may close before reading it all: what it said is what counts
        got, closed = raw.stream_error()
        r.check('%s: <%s/>, then the connection is closed' % (name, condition),
                got == condition and closed,
                'got <%s/>, connection %s' % (got, 'closed' if closed else 'still open'))
    except Failure as e:
        r.not_ok('%s: <%s/>' % (name, condition), str(e))
    finally:
        raw.close()
    witness.ping()


def malformed(r):
    witness = Witness()
    # A connection that stalls in the middle of a stanza stays open throughout.
    stalled = raw_stream()
    stalled.send(HEADER + "<message to='frank@%s'><body>never fin" % DOMAIN)
    for case in CASES:
        one_case(r, witness, *case)
    witness.ping()
    r.check('a logged-in session was served between and after all of them (%d pings), with a '
            'stalled half stanza open elsewhere' % witness.pings, True)
    stalled.close()
    witness.raw.close()


def bytewise(r):
    """The plain port, TCP_NODELAY, one byte per segment up to STARTTLS; after it one byte per
    TLS record for the stanzas."""
    witness = raw_stream()
    witness_jid = witness.login('frank', PW['frank'], 'bytewise')
    raw = raw_stream(direct_tls=False, nodelay=True)
    raw.send_bytewise(HEADER)
    raw.read_until(r'</stream:features>', 'stream features')
    raw.send_bytewise("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    raw.read_until(r'<proceed[^>]*/>', '<proceed/>')
    raw.restart()
    raw.sock = tls_context(setup.server.cafile).wrap_socket(raw.sock, server_hostname=DOMAIN)
    r.check('stream header and STARTTLS sent one byte per TCP segment', True)
    sender = raw.login('erin', PW['erin'], 'bytes')
    body = 'one byte at a time: \u00e9\u00e8 \u2603'   # multi-byte UTF-8 split across records
    raw.send_bytewise("<message to='%s' type='chat' id='b1'><body>%s</body></message>"
                      % (witness_jid, body))
    m = witness.read_until(r"<message[^>]*>.*?</message>", 'the bytewise message')
    text = m.group(0)
    r.check('a message sent one byte per TLS record after auth is delivered whole, from the '
            'sender\'s full JID',
            ('<body>%s</body>' % body) in text and ("from='%s'" % sender in text or
                                                    'from="%s"' % sender in text),
            'got %r' % text)
    raw.send_bytewise("<iq type='get' id='b2' to='%s'><ping xmlns='%s'/></iq>" % (DOMAIN, NS_PING))
    raw.read_until(r"<iq[^>]*\bid=['\"]b2['\"]", 'the answer to the bytewise ping')
    r.check('an iq sent one byte per record is answered', True)
    raw.send_bytewise('</stream:stream>')
    r.check('a closing tag sent one byte per record closes the stream',
            raw.read_to_close() and raw.data.decode().rstrip().endswith('</stream:stream>'),
            'got %r' % raw.data[-200:])
    raw.close()
    witness.close()


def shutdown_witness(r, ready):
    """Logged in, says so (ready()) and waits for the server to go away: a server stopping on
    SIGTERM or Ctrl-C must say <system-shutdown/> to every client before closing."""
    raw = raw_stream()
    raw.login('erin', PW['erin'], 'shutdown')
    ready()
    got, closed = raw.stream_error()
    r.check('a logged-in client gets <system-shutdown/> when the server is stopped, and the '
            'connection is closed', got == 'system-shutdown' and closed,
            'got <%s/>, connection %s' % (got, 'closed' if closed else 'still open'))
    raw.close()



# ---- the modules: slixmpp ------------------------------------------------------------------------

async def online(user, resource):
    """A logged-in client of user/resource that has sent its initial presence."""
    c = await client('%s@%s/%s' % (user, DOMAIN, resource), PW[user], plugins=PLUGINS).login()
    c.send_presence()
    return c


def chat(sender, to, body, extra=''):
    sender.send_raw("<message to='%s' type='chat' id='%s'><body>%s</body>%s</message>" % (
        xml_escape(to), sender.next_id('m'), xml_escape(body), extra))


def body_of(el):
    b = el.find(q(NS_CLIENT, 'body'))
    return None if b is None else b.text


def is_chat(body):
    return lambda el: is_(el, 'message', 'chat') and body_of(el) == body


def carbon(el, how):
    """The forwarded message inside el if el is a carbon copy (<sent/> or <received/>)."""
    if not is_(el, 'message'):
        return None
    wrap = el.find(q(NS_CARBONS, how))
    fwd = None if wrap is None else wrap.find(q(NS_FORWARD, 'forwarded'))
    return None if fwd is None else fwd.find(q(NS_CLIENT, 'message'))


def carbon_of(how, body):
    return lambda el: (carbon(el, how) is not None and body_of(carbon(el, how)) == body)


def any_carbon_of(body):
    return lambda el: carbon_of('sent', body)(el) or carbon_of('received', body)(el)


async def logout(*clients):
    for c in clients:
        await c.logout()


# ---- the scenarios ----------------------------------------------------------------------------

async def disco(r):
    c = await online('mona', 'disco')
    res = await c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN,
                     what='the disco#info answer')
    query = res.find(q(NS_DISCO_INFO, 'query'))
    need(is_(res, 'iq', 'result') and query is not None, 'disco#info: %s' % show(res))
    features = {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}
    for ns, what in ((NS_VCARD, 'XEP-0054'), (NS_PRIVATE, 'XEP-0049'), (NS_LAST, 'XEP-0012'),
                     (NS_BLOCKING, 'XEP-0191'), (NS_CARBONS, 'XEP-0280')):
        r.check('disco#info on the server lists %s (%s)' % (ns, what), ns in features,
                'features: %s' % sorted(features))
    await logout(c)


async def vcard(r):
    mona = await online('mona', 'vcard')
    nick = await online('nick', 'vcard')
    card = mona['xep_0054'].make_vcard()
    card['FN'] = 'Mona Lisa del Giocondo'
    card['NICKNAME'] = 'mona'
    await mona['xep_0054'].publish_vcard(card, timeout=5)
    r.ok('mona publishes her vCard')
    got = await nick['xep_0054'].get_vcard(MONA, local=False, cached=False, timeout=5)
    r.check("nick fetches mona's vCard and sees what she published",
            (got['vcard_temp']['FN'], got['vcard_temp']['NICKNAME']) ==
            ('Mona Lisa del Giocondo', ['mona']), show(got.xml))
    forged = nick['xep_0054'].make_vcard()
    forged['FN'] = 'Not Mona'
    try:
        await nick['xep_0054'].publish_vcard(forged, jid=MONA, timeout=5)
        r.not_ok("nick cannot set mona's vCard", 'the server accepted it')
    except IqError as e:
        r.check("nick cannot set mona's vCard (<forbidden/>)",
                e.iq['error']['condition'] == 'forbidden', show(e.iq.xml))
    got = await mona['xep_0054'].get_vcard(MONA, local=False, cached=False, timeout=5)
    r.check("...and mona's vCard is still hers",
            got['vcard_temp']['FN'] == 'Mona Lisa del Giocondo', show(got.xml))
    await logout(mona, nick)


async def private(r):
    one = await online('mona', 'one')
    two = await online('mona', 'two')
    nick = await online('nick', 'private')
    prefs = "<prefs xmlns='%s'><colour>blue</colour></prefs>" % NS_PREFS
    res = await one.iq('set', "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, prefs),
                       what='the answer to storing private XML')
    need(is_(res, 'iq', 'result'), 'storing private XML: %s' % show(res))
    ask = "<query xmlns='%s'><prefs xmlns='%s'/></query>" % (NS_PRIVATE, NS_PREFS)
    res = await two.iq('get', ask, what='the private XML')
    colour = res.find('%s/%s/%s' % (q(NS_PRIVATE, 'query'), q(NS_PREFS, 'prefs'),
                                     q(NS_PREFS, 'colour')))
    r.check('private XML stored by mona/one is read back by mona/two',
            is_(res, 'iq', 'result') and colour is not None and colour.text == 'blue', show(res))
    res = await nick.iq('get', ask, what="nick's private XML")
    got = res.find('%s/%s' % (q(NS_PRIVATE, 'query'), q(NS_PREFS, 'prefs')))
    r.check("nick's own storage under that namespace is empty (an empty <prefs/> back)",
            is_(res, 'iq', 'result') and got is not None and len(got) == 0 and not got.text,
            show(res))
    res = await nick.iq('get', ask, to=MONA, what="the answer to reading mona's private XML")
    r.check("nick cannot read mona's private XML (<forbidden/>)",
            stanza_error(res) == ('cancel', 'forbidden'), show(res))
    await logout(one, two, nick)


async def last(r):
    mona = await online('mona', 'last')
    nick = await online('nick', 'last')
    got = await mona['xep_0012'].get_last_activity(DOMAIN, timeout=5)
    seconds = got['last_activity']['seconds']
    r.check('last activity of the server: its uptime, seconds >= 0',
            isinstance(seconds, int) and seconds >= 0, show(got.xml))
    try:
        await nick['xep_0012'].get_last_activity(MONA, timeout=5)
        r.not_ok('nick, not subscribed to mona, may not ask her last activity', 'answered')
    except IqError as e:
        r.check('nick, not subscribed to mona, may not ask her last activity (<forbidden/>)',
                (e.iq['error']['type'], e.iq['error']['condition']) == ('auth', 'forbidden'),
                show(e.iq.xml))
    await logout(mona, nick)


async def carbons(r):
    one = await online('mona', 'one')
    two = await online('mona', 'two')
    nick = await online('nick', 'carbons')
    await two['xep_0280'].enable(timeout=5)
    r.ok('mona/two enables carbons')

    chat(nick, str(one.boundjid), 'to one')
    await one.expect(is_chat('to one'), "nick's message")
    copy = await two.expect(carbon_of('received', 'to one'), 'the <received/> copy')
    inner = carbon(copy, 'received')
    r.check("nick's chat to mona/one is copied to mona/two as <received/>, from mona's bare JID, "
            'the original inside',
            copy.get('from') == MONA and copy.get('type') == 'chat' and
            inner.get('from') == str(nick.boundjid) and inner.get('to') == str(one.boundjid),
            show(copy))

    chat(one, NICK, 'from one')
    await nick.expect(is_chat('from one'), "mona/one's message")
    copy = await two.expect(carbon_of('sent', 'from one'), 'the <sent/> copy')
    inner = carbon(copy, 'sent')
    r.check("mona/one's chat to nick is copied to mona/two as <sent/>, from mona's bare JID",
            copy.get('from') == MONA and inner.get('from') == str(one.boundjid) and
            inner.get('to') == NICK, show(copy))

    private = "<private xmlns='%s'/>" % NS_CARBONS
    chat(one, NICK, 'private out', private)
    m = await nick.expect(is_chat('private out'), "mona/one's private message")
    r.check('a message with <private/> is delivered, without the <private/>',
            m.find(q(NS_CARBONS, 'private')) is None, show(m))
    chat(one, NICK, 'after private out')
    await two.expect(carbon_of('sent', 'after private out'), 'the <sent/> copy of the next one')
    r.check('...and mona/one\'s <private/> message is not copied to mona/two',
            not any(any_carbon_of('private out')(el) for el in two.received),
            'got %s' % [show(el) for el in two.received if any_carbon_of('private out')(el)])

    # XEP-0280 §7: the receiving server must not copy it either.
    chat(nick, str(one.boundjid), 'private in', private)
    await one.expect(is_chat('private in'), "nick's private message")
    chat(nick, str(one.boundjid), 'after private in')
    await two.expect(carbon_of('received', 'after private in'),
                     'the <received/> copy of the next one')
    r.check("nick's <private/> message to mona/one is not copied to mona/two either",
            not any(any_carbon_of('private in')(el) for el in two.received),
            'got %s' % [show(el) for el in two.received if any_carbon_of('private in')(el)])
    await logout(one, two, nick)


async def blocking(r):
    one = await online('mona', 'one')
    two = await online('mona', 'two')
    nick = await online('nick', 'blocking')
    empty = await two['xep_0191'].get_blocked(timeout=5)
    need(not empty['blocklist']['items'], 'a block list at the start: %s' % show(empty.xml))
    await one['xep_0191'].block(NICK, timeout=5)
    r.ok('mona blocks nick')
    push = await two.expect(lambda el: is_(el, 'iq', 'set') and
                            el.find(q(NS_BLOCKING, 'block')) is not None, 'the block push')
    items = [i.get('jid') for i in push.find(q(NS_BLOCKING, 'block'))]
    r.check('the block is pushed to mona/two, which had asked for the list', items == [NICK],
            show(push))
    got = await two['xep_0191'].get_blocked(timeout=5)
    r.check('the block list shows nick', [str(j) for j in got['blocklist']['items']] == [NICK],
            show(got.xml))

    chat(nick, str(one.boundjid), 'blocked in')
    err = await nick.expect(lambda el: is_(el, 'message', 'error') and
                            body_of(el) in ('blocked in', None), 'the error for his message')
    r.check("nick's message to mona gets <service-unavailable/> (XEP-0191 §3.6: as if she "
            'were not there)', stanza_error(err) == ('cancel', 'service-unavailable'), show(err))

    chat(one, NICK, 'blocked out')
    err = await one.expect(lambda el: is_(el, 'message', 'error'), 'the error for her message')
    cond = err.find(q(NS_CLIENT, 'error'))
    r.check("mona's message to nick gets <not-acceptable/> with <blocked xmlns='%s'/>"
            % NS_BLOCKING_ERRORS,
            stanza_error(err) == ('cancel', 'not-acceptable') and cond is not None and
            cond.find(q(NS_BLOCKING_ERRORS, 'blocked')) is not None, show(err))

    await one['xep_0191'].unblock([], timeout=5)
    got = await two['xep_0191'].get_blocked(timeout=5)
    r.check('unblocking everyone empties the list', not got['blocklist']['items'], show(got.xml))
    chat(nick, str(one.boundjid), 'unblocked in')
    await one.expect(is_chat('unblocked in'), "nick's message after the unblock")
    r.check("after the unblock nick's message reaches mona, and the blocked one never did",
            not any(is_chat('blocked in')(el) for el in one.received))
    chat(one, NICK, 'unblocked out')
    await nick.expect(is_chat('unblocked out'), "mona's message after the unblock")
    r.check("after the unblock mona's message reaches nick, and the refused one never did",
            not any(is_chat('blocked out')(el) for el in nick.received))
    await logout(one, two, nick)


def kick_witness(r, ready):
    """Two sessions of oscar, one per port, that wait for jabshardctl to kick the account (its
    reads are bounded by 30 s, longer than the checks): ready(their two full JIDs) once they are
    logged in."""
    first, second = raw_stream(wait=30), raw_stream(direct_tls=False, wait=30)
    second.starttls()
    jids = [first.login('oscar', PW['oscar'], 'one'), second.login('oscar', PW['oscar'], 'two')]
    ready(jids)
    for raw, jid in ((first, jids[0]), (second, jids[1])):
        got, closed = raw.stream_error()
        text = raw.data.decode('utf-8', 'replace')
        r.check('%s, kicked by jabshardctl, gets <policy-violation/> "kicked by an '
                'administrator" and the connection is closed' % jid,
                got == 'policy-violation' and 'kicked by an administrator' in text and closed,
                'got <%s/>, connection %s: %r' % (got, 'closed' if closed else 'open',
                                                  text[-300:]))
        raw.close()


# ---- jabshardctl against the running SM -------------------------------------------------------

SINCE = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$')


def listed(rows, jid):
    """jabshardctl sessions lists jid: its link, a session id of 16 hex digits, since (RFC
    3339), its state."""
    return any(f[0] == jid and f[1] != '' and len(f[2]) == 16 and
               not re.search('[^0-9a-f]', f[2]) and SINCE.match(f[3]) and
               f[4] in ('bound', 'available') for f in rows)


def admin(r, system, witness):
    """jabshardctl sessions and kick, with the kick witness's two sessions of oscar."""
    if not wait_until(lambda: witness.jids or witness.over, 10) or not witness.jids:
        r.not_ok('the kick witness logs in')
        return
    jids = witness.jids
    sock = os.path.join(system.run, 'jabshard-sm.sock')
    try:
        mode = os.lstat(sock).st_mode
    except OSError:
        mode = 0
    r.check("the SM's admin socket is in the run directory, private (0600)",
            stat.S_ISSOCK(mode) and not mode & 0o077)
    out, rows = system.sessions()
    r.check('jabshardctl sessions lists the witness\'s two full JIDs (%s): link, id, since, '
            'state' % ' '.join(jids),
            out.returncode == 0 and len(jids) == 2 and all(listed(rows, j) for j in jids),
            out.stdout + out.stderr)
    out = system.ctl('kick', 'oscar@localhost')
    text = out.stdout + out.stderr
    r.check('jabshardctl kick of the bare JID ends both sessions and exits 0',
            out.returncode == 0 and 'kicked 2 session(s)' in text.splitlines(), text)
    out, rows = system.sessions()
    r.check('...after which jabshardctl sessions lists neither',
            out.returncode == 0 and not re.search(r'(?m)^oscar@localhost/', out.stdout),
            out.stdout + out.stderr)
    out = system.ctl('kick', 'oscar@localhost')
    text = out.stdout + out.stderr
    r.check('kicking an account with no session is refused: exit 1',
            out.returncode == 1 and 'refused: oscar@localhost has no session' in text, text)
    out = system.ctl('kick', 'nobody@example.org')
    text = out.stdout + out.stderr
    r.check('kicking a JID of another server is refused: exit 1',
            out.returncode == 1 and 'is not an account of this server' in text, text)


# ---- libstrophe ---------------------------------------------------------------------------------

def compile_strophe(system):
    """strophe_client.c, compiled in the background while the server starts: the Program."""
    flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'libstrophe'],
                           capture_output=True, text=True).stdout.split()
    return system.start(['cc', '-std=gnu17', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Wshadow',
                         '-Wstrict-prototypes', '-Wmissing-prototypes', '-Wformat=2',
                         '-Wno-unused-parameter', '-Werror', '-O1', '-g',
                         os.path.join(HERE, 'strophe_client.c')] + flags +
                        ['-ldl', '-o', system.path('strophe_client')], 'cc.log')


def strophe(r, system, name, want_status, patterns, *args):
    """The libstrophe client run with args exits with want_status and prints a line matching
    each (whole-line) pattern; returns its output."""
    try:
        p = subprocess.run([system.path('strophe_client')] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=30)
        status, out = p.returncode, p.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        status, out = 124, (e.output or b'').decode('utf-8', 'replace')
    bad = [] if status == want_status else ['exit status %d, expected %d' % (status, want_status)]
    lines = out.splitlines()
    for pattern in patterns.split():
        if not any(re.fullmatch(pattern, line) for line in lines):
            bad.append('no line matching %s' % pattern)
    r.check(name, not bad, '; '.join(bad) + '\n' + out)
    return out


def strophe_suite(r, system):
    ca = os.path.join(system.run, 'server.pem')
    h, port, tls_port = '127.0.0.1', str(system.port), str(system.tls_port)
    strophe(r, system, 'libstrophe over STARTTLS picks SCRAM-SHA-256 by itself, binds, is '
            'answered', 0, 'mechanism=SCRAM-SHA-256 bound=frank@localhost/.+ ping=ok',
            '-c', ca, h, port, 'frank@localhost', 'frank-secret')
    strophe(r, system, 'libstrophe over direct TLS with SCRAM-SHA-256 and a chosen resource', 0,
            'mechanism=SCRAM-SHA-256 bound=frank@localhost/strophe ping=ok',
            '-t', '-m', 'SCRAM-SHA-256', '-c', ca, h, tls_port, 'frank@localhost/strophe',
            'frank-secret')
    strophe(r, system, 'libstrophe with SCRAM-SHA-1', 0,
            'mechanism=SCRAM-SHA-1 bound=frank@localhost/.+ ping=ok',
            '-m', 'SCRAM-SHA-1', '-c', ca, h, port, 'frank@localhost', 'frank-secret')
    strophe(r, system, 'libstrophe with PLAIN', 0,
            'mechanism=PLAIN bound=frank@localhost/.+ ping=ok',
            '-m', 'PLAIN', '-c', ca, h, port, 'frank@localhost', 'frank-secret')
    strophe(r, system, 'libstrophe with SCRAM-SHA-1 and a non-ASCII password (SASLprep, UTF-8)',
            0, 'mechanism=SCRAM-SHA-1 bound=carol@localhost/.+ ping=ok',
            '-m', 'SCRAM-SHA-1', '-c', ca, h, port, 'carol@localhost', PW['carol'])
    strophe(r, system, 'SCRAM-SHA-1 with a wrong password: <not-authorized/>', 1,
            'mechanism=SCRAM-SHA-1 sasl-failure=not-authorized',
            '-m', 'SCRAM-SHA-1', '-c', ca, h, port, 'frank@localhost', 'wrong')
    strophe(r, system, 'SCRAM-SHA-256 with a wrong password: <not-authorized/>', 1,
            'mechanism=SCRAM-SHA-256 sasl-failure=not-authorized',
            '-t', '-m', 'SCRAM-SHA-256', '-c', ca, h, tls_port, 'frank@localhost', 'wrong')
    strophe(r, system, 'SCRAM for an account that does not exist fails the same way', 1,
            'mechanism=SCRAM-SHA-256 sasl-failure=not-authorized',
            '-m', 'SCRAM-SHA-256', '-c', ca, h, port, 'nosuchuser@localhost', 'wrong')
    # Control: the logins above checked the server's certificate against the run directory's.
    out = strophe(r, system, '(control) libstrophe refuses a certificate other than the pinned '
                  'one', 1, '', '-c', system.path('other.pem'), h, port, 'frank@localhost',
                  'frank-secret')
    r.check('(control) ...before any authentication',
            not re.search(r'(?m)^mechanism=', out), out)


# ---- the parts, at the same time ----------------------------------------------------------------

class KickWitness:
    """What the kick witness tells admin(): its two full JIDs once logged in; over when it
    ended (whether or not it got that far)."""
    jids = None
    over = False


async def clients_part(r):
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


async def raw_part(r):
    for name, fn in (('malformed input', malformed), ('one byte per segment', bytewise)):
        await r.scenario(name, lambda fn=fn: asyncio.to_thread(fn, r), timeout=60)


async def modules_part(r):
    for name, fn in (('disco#info', disco), ('vCard', vcard), ('private XML', private),
                     ('last activity', last), ('carbons', carbons), ('blocking', blocking)):
        await r.scenario(name, lambda fn=fn: fn(r))


async def kick_part(r, witness):
    def ready(jids):
        witness.jids = jids
    try:
        await r.scenario('kick witness', lambda: asyncio.to_thread(kick_witness, r, ready),
                         timeout=90)
    finally:
        witness.over = True


def admin_and_strophe(admin_r, strophe_r, system, witness, strophe_ok):
    admin(admin_r, system, witness)
    if strophe_ok:
        strophe_suite(strophe_r, system)


async def at_once(report, system, strophe_ok):
    """The clients, the raw streams, the modules, the kick witness with jabshardctl, and
    libstrophe, all at once; each part's lines are printed in one block, in that order."""
    names = ('clients', 'raw', 'modules', 'admin', 'kick', 'strophe')
    parts = {n: report.part('xmpp ' + n) for n in names}
    witness = KickWitness()

    async def bounded(aw):
        try:
            await asyncio.wait_for(aw, 120)
            return True
        except Exception:  # noqa: BLE001 — a part that crashed or hung did not run to its end
            return False
    ended = await asyncio.gather(
        bounded(clients_part(parts['clients'])), bounded(raw_part(parts['raw'])),
        bounded(modules_part(parts['modules'])), bounded(kick_part(parts['kick'], witness)),
        bounded(asyncio.to_thread(admin_and_strophe, parts['admin'], parts['strophe'], system,
                                  witness, strophe_ok)))
    ends = dict(zip(('clients', 'raw', 'modules', 'kick', 'admin'), ended))
    ends['strophe'] = ends['admin']
    for n in names:
        if n != 'strophe' or strophe_ok:
            report.merge(parts[n], ends[n])


# ---- the suite ----------------------------------------------------------------------------------

def run_directory_ok(system):
    """run.sh's run directory: the configurations from etc/ with a random secret, the ports,
    the database and certificate paths, all private but cert.pem: the certificate alone, for
    clients to trust."""
    run = system.run
    secret = read(os.path.join(run, 'secret'))
    sm, front = read(os.path.join(run, 'sm.xml')), read(os.path.join(run, 'jadc2s.xml'))
    pem = read(os.path.join(run, 'server.pem'))
    cert = read(os.path.join(run, 'cert.pem'))
    shared = []
    for name in os.listdir(run):
        st = os.lstat(os.path.join(run, name))
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            shared.append(name)
    return (len(secret) == 48 and '<secret>%s</secret>' % secret in sm and
            '<secret>%s</secret>' % secret in front and
            '<port>%d</port>' % system.sm_port in sm and
            '<path>%s/jabshard.db</path>' % run in sm and
            '<pemfile>%s/server.pem</pemfile>' % run in front and
            '<auth_timeout>45</auth_timeout>' in front and
            'BEGIN CERTIFICATE' in pem and 'BEGIN PRIVATE KEY' in pem and
            'BEGIN CERTIFICATE' in cert and 'PRIVATE' not in cert and shared == ['cert.pem'])


def gone(pid):
    return pid is None or not alive(pid)


def run_sh_federation(report, system):
    """make run FEDERATION=1: jabshard-s2s starts after the SM, links to it, listens on its
    ports, and SIGTERM stops all three with status 0."""
    run4 = system.run_sh('run4.log', LIMITS, federation=True)
    if not run4.wait_log('Ctrl-C stops all three', 30):
        report.not_ok('with JABSHARD_FEDERATION=1, run.sh starts the SM, the front and '
                      'jabshard-s2s', run4.text())
        return
    pids = {name: run4.logged_pid(name) for name in ('sm', 'c2s', 's2s')}
    text = run4.text()
    report.check('with JABSHARD_FEDERATION=1, run.sh starts jabshard-s2s and says federation is '
                 'on, on which ports', pids['s2s'] and alive(pids['s2s']) and
                 'Federation is on' in text and
                 'STARTTLS\non 127.0.0.1:%d, direct TLS on 127.0.0.1:%d' % (
                     system.s2s_port, system.s2s_tls_port) in text, text)
    report.check("jabshard-s2s's link to the SM is up",
                 run4.wait_log("jabshard-s2s[%s] info: SM link: up" % pids['s2s'], 10), text)
    listening = []
    for port in (system.s2s_port, system.s2s_tls_port):
        try:
            socket.create_connection(('127.0.0.1', port), 2).close()
            listening.append(port)
        except OSError:
            pass
    report.check('jabshard-s2s listens on the s2s ports (STARTTLS and direct TLS)',
                 listening == [system.s2s_port, system.s2s_tls_port], str(listening))
    run4.proc.send_signal(signal.SIGTERM)
    status = run4.wait(30)
    report.check('run.sh on SIGTERM stops all three and exits 0', status == 0 and
                 all(gone(p) for p in pids.values()) and
                 re.search(r'(?m)^jabshard: stopped$', run4.text()) and
                 'jabshard-s2s[%s] notice: SIGTERM' % pids['s2s'] in run4.text(),
                 '(status %s)\n%s' % (status, run4.text()))


def suite(report, build):
    with System(build, 'xmpp', report) as system:
        if not system.ready(report):
            return
        if subprocess.run(['pkg-config', '--exists', 'libstrophe']).returncode != 0:
            report.not_ok('the client libraries are installed (python3-slixmpp, libstrophe-dev: '
                          'tools/deps.sh)')
            return
        # The libstrophe client builds while the server starts; so does a certificate that is
        # not the server's, for the client-side control check.
        cc = compile_strophe(system)
        other = system.start(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                              'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj',
                              '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
                              '-keyout', system.path('other.key'), '-out',
                              system.path('other.pem')], 'openssl.log')

        # ---- start ----
        run1 = system.run_sh('run1.log', LIMITS)
        run = system.run
        setup.server = Server('127.0.0.1', system.port, system.tls_port,
                              os.path.join(run, 'server.pem'))
        if run1.wait_log('Ctrl-C stops both', 20) and \
                'STARTTLS on 127.0.0.1:%d, direct TLS on 127.0.0.1:%d' % (
                    system.port, system.tls_port) in run1.text() and \
                'jabshardctl -c %s/sm.xml adduser alice@localhost' % run in run1.text() and \
                '%s/cert.pem' % run in run1.text() and 'SHA-1 ' in run1.text():
            report.ok('tools/run.sh starts the SM and the front on the requested ports and says '
                      'how to connect')
        else:
            report.not_ok('tools/run.sh starts the SM and the front and says how to connect',
                          run1.text())
            return
        report.check("the front's link to the SM is up", run1.wait_log('SM link: up', 10),
                     run1.text())
        report.check('federation is off by default: no jabshard-s2s runs, and run.sh says how to '
                     'turn it on', run1.logged_pid('s2s') is None and
                     not os.path.exists(os.path.join(run, 's2s.xml')) and
                     'make run FEDERATION=1' in run1.text() and
                     "<!-- federation off" in read(os.path.join(run, 'sm.xml')), run1.text())
        report.check('run directory: configurations from etc/ with a random secret, the ports, '
                     'the database and certificate paths, all private', run_directory_ok(system),
                     read(os.path.join(run, 'jadc2s.xml')))
        ok, out, _ = system.import_accounts(('%s@localhost' % u, p) for u, p in PW.items())
        report.check('jabshardctl creates the test accounts while the SM runs', ok, out)

        # ---- the clients, all at once ----
        strophe_ok = cc.wait(300) == 0
        if not strophe_ok:
            report.not_ok('strophe_client.c compiles', cc.text())
        other.wait(60)
        asyncio.run(at_once(report, system, strophe_ok))

        # ---- run.sh: SIGTERM, with a client connected ----
        sm_pid, c2s_pid = run1.logged_pid('sm'), run1.logged_pid('c2s')
        shutdown = report.part('xmpp shutdown')
        ready = threading.Event()
        witness = threading.Thread(target=shutdown.run, args=(
            'shutdown', shutdown_witness, shutdown, ready.set))
        witness.start()
        stopped = False
        if wait_until(lambda: ready.is_set() or not witness.is_alive(), 10) and ready.is_set():
            run1.proc.send_signal(signal.SIGTERM)
            status = run1.wait(20)
            stopped = True
            text = run1.text()
            report.check('run.sh on SIGTERM stops the front and the SM and exits 0',
                         status == 0 and gone(sm_pid) and gone(c2s_pid) and
                         re.search(r'(?m)^jabshard: stopped', text) and 'sm: stopped' in text,
                         '(status %s)\n%s' % (status, text))
        else:
            report.not_ok('the shutdown witness logs in')
        witness.join(60)
        report.merge(shutdown, not witness.is_alive())
        if stopped:
            out = system.ctl('sessions')
            report.check('with the SM stopped (admin socket removed), jabshardctl sessions says '
                         'so, exits 3', out.returncode == 3 and 'cannot reach the session '
                         'manager' in out.stdout + out.stderr and
                         not os.path.exists(os.path.join(run, 'jabshard-sm.sock')),
                         '(status %d)\n%s' % (out.returncode, out.stdout + out.stderr))

        # ---- run.sh again: made once, accounts kept; then Ctrl-C ----
        secret_before = read(os.path.join(run, 'secret'))
        pem_before = read(os.path.join(run, 'server.pem'))
        run2 = system.run_sh('run2.log', LIMITS, foreground_job=True)
        if run2.wait_log('Ctrl-C stops both', 20) and run2.wait_log('SM link: up', 10):
            report.check('restarted: the secret and the certificate were made once and kept',
                         read(os.path.join(run, 'secret')) == secret_before and
                         read(os.path.join(run, 'server.pem')) == pem_before)
            if strophe_ok:
                strophe(report, system, 'restarted: accounts persist (alice logs in, certificate '
                        'still pinned)', 0, 'bound=alice@localhost/.+ ping=ok',
                        '-c', os.path.join(run, 'server.pem'), '127.0.0.1', str(system.port),
                        'alice@localhost', 'alice-secret')
            sm_pid, c2s_pid = run2.logged_pid('sm'), run2.logged_pid('c2s')
            run2.interrupt()
            status = run2.wait(15)
            if status is None:      # Ctrl-C did not stop it: the whole group goes
                run2.kill_group()
                status = 124
            report.check('Ctrl-C (SIGINT to the foreground process group) stops both; run.sh '
                         'exits 0', status == 0 and gone(sm_pid) and gone(c2s_pid) and
                         re.search(r'(?m)^jabshard: stopped', run2.text()),
                         '(status %s)\n%s' % (status, run2.text()))
        else:
            report.not_ok('run.sh starts again in the same run directory', run2.text())

        # ---- run.sh when a program dies ----
        run3 = system.run_sh('run3.log', LIMITS)
        if run3.wait_log('Ctrl-C stops both', 20):
            sm_pid, c2s_pid = run3.logged_pid('sm'), run3.logged_pid('c2s')
            if sm_pid:
                os.kill(sm_pid, signal.SIGKILL)
            status = run3.wait(20)
            report.check('when the SM dies, run.sh says so, stops the front and exits 1',
                         status == 1 and gone(c2s_pid) and
                         'session manager (jabshard-sm) exited' in run3.text(),
                         '(status %s)\n%s' % (status, run3.text()))
        else:
            report.not_ok('run.sh starts a third time', run3.text())

        run_sh_federation(report, system)

        # Sanitizer builds (make check SAN=...): the programs must not have reported anything.
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('xmpp', suite)
