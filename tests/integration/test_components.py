"""tests/integration/test_components.py — XEP-0114 external components on the SM, seen from both
ends. Starts the SM with one front and three component <service>s sharing one port
(comp.localhost for slixmpp's ComponentXMPP, irc.localhost for biboumi, down.localhost that never
connects) and makes accounts; then, with slixmpp's ComponentXMPP as the component and slixmpp
clients (through the front) as users: the handshake (and refused ones: wrong secret, unknown
id), messages, iqs and presence both ways with their addresses (bare and full JIDs, an offline
user, a subscription to a JID at the component, the server's own domain), disco answered by the
component, 'from' outside its domain, subdomains, a second connection, and what a user gets
while the component is down. Then Debian's biboumi (an XMPP-IRC gateway; no IRC server is needed
to answer disco) connects as irc.localhost and a user's disco#info must reach it. Finally the SM
and the front must still be running and stop cleanly.

Usage: test_components.py BUILD_DIR. Prints ok / not ok lines and ends
"components: N passed, N failed"."""

import asyncio
import re
import shutil

from jabtest.suite import main, require_slixmpp

require_slixmpp('components')

import slixmpp  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

from jabtest.client import Client, Recorder  # noqa: E402
from jabtest.link import component  # noqa: E402
from jabtest.report import Failure  # noqa: E402
from jabtest.system import System, free_ports, front_xml, secret, service, sm_xml  # noqa: E402
from jabtest.xmpp import (NS_ACCEPT, NS_CLIENT, NS_DELAY, NS_DISCO_INFO,  # noqa: E402
                          NS_DISCO_ITEMS, Server, is_, q, roster_push_for, show, stanza_error,
                          xml_escape)

PW = {'alice': 'alice-secret', 'bob': 'bob-secret'}
COMP = 'comp.localhost'
DOWN = 'down.localhost'
BIBOUMI = 'irc.localhost'
NS_ECHO = 'urn:example:jabshard:echo'
COMP_NAME = 'jabshard test component'


class Setup:
    """The system the scenarios run against, set by body(): the front's address (a Server), the
    SM's component port and comp.localhost's secret."""
    server = None
    comp_port = None
    secret = None


setup = Setup()


def need(cond, why):
    if not cond:
        raise Failure(why)


def client(jid):
    return Client(jid, PW[jid.split('@')[0]], setup.server)


class Component(Recorder, slixmpp.ComponentXMPP):
    """slixmpp's XEP-0114 component for domain, recording every element it receives (Recorder)
    and answering two things itself: disco#info and disco#items through slixmpp's XEP-0030
    plugin, and an echo iq that returns its payload."""

    def __init__(self, domain=COMP, secret_=None, port=None):
        super().__init__(domain, secret_ or setup.secret, setup.server.host,
                         port or setup.comp_port)
        self._record(setup.server.wait)
        self.register_plugin('xep_0030')
        self.stream_errors = []
        self.started = self.loop.create_future()
        self.started.add_done_callback(lambda f: f.cancelled() or f.exception())  # no warning
        self.gone = self.loop.create_future()
        self.add_event_handler('session_start', lambda _: self.started.done() or
                               self.started.set_result(True))
        self.add_event_handler('stream_error', lambda e: self.stream_errors.append(e['condition']))
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('connection_failed', self._on_disconnected)
        self.register_handler(Callback('echo', MatchXPath('{%s}iq/{%s}echo' % (NS_ACCEPT, NS_ECHO)),
                                       self._echo))

    def _on_disconnected(self, _):
        if not self.started.done():
            self.started.set_exception(Failure('%s: disconnected before the handshake was '
                                               'accepted (stream errors %s)' %
                                               (self.boundjid, self.stream_errors)))
        if not self.gone.done():
            self.gone.set_result(True)

    def _echo(self, iq):
        if iq['type'] != 'get':
            return
        self.send_raw("<iq type='result' id='%s' from='%s' to='%s'><echo xmlns='%s'>%s</echo></iq>"
                      % (xml_escape(iq['id']), xml_escape(str(iq['to'])),
                         xml_escape(str(iq['from'])), NS_ECHO,
                         xml_escape(iq.xml.find('{%s}echo' % NS_ECHO).text or '')))

    async def start(self):
        await self['xep_0030'].add_identity(category='component', itype='generic', name=COMP_NAME,
                                            jid=self.boundjid.full)
        await self['xep_0030'].add_item(jid='lobby@' + self.boundjid.bare, name='The lobby',
                                        ijid=self.boundjid.full)
        self.connect()
        try:
            await asyncio.wait_for(asyncio.shield(self.started), self.wait)
        except asyncio.TimeoutError:
            self.abort()
            raise Failure('%s: no <handshake/> within %s s' % (self.boundjid, self.wait))
        return self

    async def closed(self, what):
        """Waits until the SM has closed this component's connection."""
        try:
            await asyncio.wait_for(asyncio.shield(self.gone), self.wait)
        except asyncio.TimeoutError:
            raise Failure('%s is still connected after %s' % (self.boundjid, what))

    async def stop(self):
        if self.transport:
            await asyncio.wait_for(self.disconnect(wait=self.wait), self.wait + 1)


def acc(name):
    """A tag in the component's namespace (what the component receives)."""
    return q(NS_ACCEPT, name)


async def raw_refusal(domain, secret_):
    """(condition, closed) of the stream error the SM ends a raw component stream with: its
    header for domain and, unless the SM refused the name, a handshake computed with secret_."""
    r = await asyncio.to_thread(component, setup.comp_port, domain, secret_, setup.server.wait,
                                accepted=False)
    try:
        return await asyncio.to_thread(r.stream_error)
    finally:
        r.close()


def msg(to, body, mid, mfrom=None, type_=None):
    return "<message to='%s' id='%s'%s%s><body>%s</body></message>" % (
        xml_escape(to), mid, " from='%s'" % xml_escape(mfrom) if mfrom else '',
        " type='%s'" % type_ if type_ else '', xml_escape(body))


def body(el):
    b = el.find(q(NS_CLIENT, 'body'))
    if b is None:
        b = el.find(acc('body'))
    return None if b is None else b.text


async def nothing_but(holder, send_marker, marker_pred, bad_pred, what):
    """The marker (sent after the stanza that must not arrive) arrives, and nothing matching
    bad_pred arrived before it: stanzas on one path keep their order."""
    send_marker()
    await holder.expect(marker_pred, 'the marker sent after %s' % what)
    bad = [el for el in holder.received if bad_pred(el)]
    need(not bad, '%s arrived: %s' % (what, ' | '.join(show(el) for el in bad)))


# ---- the slixmpp scenarios ------------------------------------------------------------------

async def scenarios(r):
    comp = await Component().start()
    r.ok('a component connects on its <service> port with its secret (handshake accepted)')

    cond, closed = await raw_refusal(COMP, 'not the secret')
    r.check('a wrong secret is refused with <not-authorized/> and the connection closed',
            cond == 'not-authorized' and closed, 'stream error %s, closed %s' % (cond, closed))
    cond, closed = await raw_refusal('nobody.localhost', setup.secret)
    r.check('a name with no <service> is refused with <host-unknown/> (XEP-0114 §3)',
            cond == 'host-unknown' and closed, 'stream error %s, closed %s' % (cond, closed))

    alice = await client('alice@localhost/desk').login()
    alice.send_presence()   # available: what is sent to her bare JID is delivered, not stored
    alice.send_raw(msg(COMP, 'hello component', 'm1'))
    el = await comp.expect(lambda e: e.tag == acc('message') and e.get('id') == 'm1',
                           "alice's message")
    r.check('the refused attempts left the connected component in place: a user\'s message '
            'reaches it, from her full JID, to the component\'s domain, body intact',
            el.get('from') == 'alice@localhost/desk' and el.get('to') == COMP and
            body(el) == 'hello component', show(el))
    alice.send_raw(msg('lobby@%s/someone' % COMP, 'to a JID at the component', 'm2'))
    el = await comp.expect(lambda e: e.tag == acc('message') and e.get('id') == 'm2',
                           'the message to a full JID at its domain')
    r.check('a message to user@component/resource reaches the component with that address',
            el.get('to') == 'lobby@%s/someone' % COMP and el.get('from') == 'alice@localhost/desk',
            show(el))

    alice.send_raw("<iq type='get' id='e1' to='%s'><echo xmlns='%s'>ping &amp; pong</echo></iq>"
                   % (COMP, NS_ECHO))
    el = await comp.expect(lambda e: e.tag == acc('iq') and e.get('id') == 'e1', "alice's iq")
    r.check('a user\'s iq reaches the component from her full JID, to its domain',
            el.get('from') == 'alice@localhost/desk' and el.get('to') == COMP and
            el.get('type') == 'get', show(el))
    res = await alice.expect_id('e1', "the component's answer")
    echo = res.find(q(NS_ECHO, 'echo'))
    r.check("...and the component's answer comes back to her, from the component, payload intact",
            is_(res, 'iq', 'result', from_=COMP) and echo is not None and
            echo.text == 'ping & pong', show(res))

    res = await alice.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=COMP,
                         what='disco#info of the component')
    ids = [(i.get('category'), i.get('type'), i.get('name'))
           for i in res.iter(q(NS_DISCO_INFO, 'identity'))]
    r.check("disco#info to the component is answered by the component (its identity, not the "
            "SM's)", is_(res, 'iq', 'result', from_=COMP) and
            ids == [('component', 'generic', COMP_NAME)], show(res))
    res = await alice.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=COMP,
                         what='disco#items of the component')
    items = [(i.get('jid'), i.get('name')) for i in res.iter(q(NS_DISCO_ITEMS, 'item'))]
    r.check('disco#items to the component is answered by the component',
            is_(res, 'iq', 'result', from_=COMP) and items == [('lobby@' + COMP, 'The lobby')],
            show(res))

    alice.send_raw("<presence to='lobby@%s/alice'/>" % COMP)
    el = await comp.expect(lambda e: e.tag == acc('presence') and e.get('to') ==
                           'lobby@%s/alice' % COMP, "alice's directed presence")
    r.check('a user\'s directed presence reaches the component (as a MUC join would)',
            el.get('from') == 'alice@localhost/desk' and el.get('type') is None, show(el))

    await to_users(r, comp, alice)
    await forged(r, comp, alice)
    comp = await subdomains(r, alice)
    comp = await replaced(r, comp, alice)
    await down(r, comp, alice)
    await alice.logout()


async def to_users(r, comp, alice):
    """The component's stanzas to users: messages and presence, bare and full JIDs, an iq both
    ways, and a message to a user who is offline."""
    bot = 'bot@%s/1' % COMP
    comp.send_raw(msg('alice@localhost', 'to your bare JID', 'b1', bot, 'chat'))
    el = await alice.expect(lambda e: e.get('id') == 'b1', "the component's message to her "
                            'bare JID')
    r.check("the component's message to a user's bare JID arrives, from the component's JID",
            is_(el, 'message', 'chat', from_=bot) and body(el) == 'to your bare JID', show(el))
    comp.send_raw(msg('alice@localhost/desk', 'to your full JID', 'b2', bot))
    el = await alice.expect(lambda e: e.get('id') == 'b2', "the component's message to her full "
                            'JID')
    r.check("the component's message to a user's full JID arrives",
            is_(el, 'message', from_=bot) and el.get('to') == 'alice@localhost/desk' and
            body(el) == 'to your full JID', show(el))
    comp.send_raw("<presence from='%s' to='alice@localhost'><status>bare</status></presence>" % bot)
    el = await alice.expect(lambda e: e.tag == q(NS_CLIENT, 'presence') and e.get('from') == bot,
                            "the component's presence to her bare JID")
    r.check("the component's presence to a user's bare JID reaches her available resource",
            el.get('type') is None and el.findtext(q(NS_CLIENT, 'status')) == 'bare', show(el))
    comp.send_raw("<presence from='%s' to='alice@localhost/desk' type='unavailable'/>" % bot)
    el = await alice.expect(lambda e: e.tag == q(NS_CLIENT, 'presence') and e.get('from') == bot,
                            "the component's presence to her full JID")
    r.check("the component's presence to a user's full JID arrives",
            el.get('type') == 'unavailable' and el.get('to') == 'alice@localhost/desk', show(el))

    comp.send_raw("<iq type='get' id='c1' from='%s' to='alice@localhost/desk'>"
                  "<query xmlns='%s'/></iq>" % (COMP, NS_DISCO_INFO))
    el = await alice.expect(lambda e: e.tag == q(NS_CLIENT, 'iq') and e.get('id') == 'c1',
                            "the component's iq")
    r.check("the component's iq reaches the user's full JID", el.get('from') == COMP, show(el))
    el = await comp.expect(lambda e: e.tag == acc('iq') and e.get('id') == 'c1',
                           "the user's answer to its iq")
    r.check("...and her client's answer comes back to the component",
            el.get('from') == 'alice@localhost/desk' and el.get('to') == COMP and
            el.get('type') in ('result', 'error'), show(el))

    comp.send_raw("<iq type='get' id='h1' from='%s' to='localhost'><query xmlns='%s'/></iq>" %
                  (COMP, NS_DISCO_INFO))
    el = await comp.expect(lambda e: e.tag == acc('iq') and e.get('id') == 'h1',
                           "the SM's answer to its disco#info")
    r.check("the component's iq to the server's own domain is answered by the SM",
            el.get('type') == 'result' and el.get('from') == 'localhost' and
            el.get('to') == COMP and el.find('{%s}query' % NS_DISCO_INFO) is not None, show(el))

    # A gateway's contacts: a user subscribes to a JID at the component, which approves.
    contact = 'bot@' + COMP
    res = await alice.iq('get', "<query xmlns='jabber:iq:roster'/>", what='her roster')
    need(is_(res, 'iq', 'result'), 'no roster: %s' % show(res))   # now she gets roster pushes
    alice.send_raw("<presence to='%s' type='subscribe'/>" % contact)
    el = await comp.expect(lambda e: e.tag == acc('presence') and e.get('type') == 'subscribe',
                           "alice's subscription request")
    r.check("a user's subscription request reaches the component, from her bare JID",
            el.get('from') == 'alice@localhost' and el.get('to') == contact, show(el))
    comp.send_raw("<presence from='%s' to='alice@localhost' type='subscribed'/>" % contact)
    await alice.expect(lambda e: is_(e, 'presence', 'subscribed', from_=contact),
                       "the component's approval")
    push = await alice.expect(lambda e: (roster_push_for(e, contact) is not None and
                                         roster_push_for(e, contact).get('subscription') == 'to'),
                              'the roster push for the approved subscription')
    r.check("...and the component's approval reaches her, with a roster push (subscription to)",
            push is not None)

    comp.send_raw(msg('bob@localhost', 'while you were away', 'b3', bot, 'chat'))
    # The SM handles one component's stanzas in order: once alice has the next one, bob's was
    # stored (bob is offline), before his login can race it.
    comp.send_raw(msg('alice@localhost/desk', 'after the one for bob', 'b4', bot))
    await alice.expect(lambda e: e.get('id') == 'b4', "the component's next message")
    bob = await client('bob@localhost/phone').login()
    bob.send_presence()
    el = await bob.expect(lambda e: e.get('id') == 'b3', "the component's message, offline")
    r.check("the component's message to an offline user is stored and delivered at login, "
            'with <delay/>', is_(el, 'message', 'chat', from_=bot) and
            el.find(q(NS_DELAY, 'delay')) is not None, show(el))
    await bob.logout()


async def forged(r, comp, alice):
    """XEP-0114 §3: a component's 'from' is in its own domain. Anything else closes its stream
    with <invalid-from/> (RFC 6120 §4.9.3.9, as Prosody and ejabberd do) and reaches no one."""
    for n, (sender, what) in enumerate([('bob@localhost', 'a local user'),
                                        ('x@elsewhere.example', 'another domain')]):
        if n:
            comp = await Component().start()
        comp.send_raw(msg('alice@localhost/desk', 'forged', 'f%d' % n, sender))
        await comp.closed('a stanza from %s' % sender)
        r.check("a component's stanza from %s (%s) closes its stream with <invalid-from/>" %
                (sender, what), comp.stream_errors == ['invalid-from'],
                'stream errors %s' % comp.stream_errors)
    comp = await Component().start()
    r.ok('the component connects again after being closed')
    await nothing_but(alice, lambda: comp.send_raw(msg('alice@localhost/desk', 'marker', 'fm',
                                                       'bot@' + COMP)),
                      lambda e: e.get('id') == 'fm',
                      lambda e: e.get('id') in ('f0', 'f1'), 'the forged messages')
    r.ok('...and the forged messages reached no one (the user got the next real one, not them)')
    await comp.stop()


async def subdomains(r, alice):
    """A component serves exactly its <service id> domain (XEP-0114: the 'from' domain "MUST
    match the hostname of the component"; Prosody too routes only the configured host): a
    subdomain such as conference.COMP is a domain of its own, with its own <service>."""
    comp = await Component().start()
    sub = 'room@conference.%s' % COMP
    alice.send_raw(msg(sub, 'to a subdomain', 's1'))
    res = await alice.expect_id('s1', 'the answer to a message for a subdomain')
    r.check('a message to a subdomain of the component (conference.%s) is not routed to it: '
            '<remote-server-not-found/>' % COMP,
            stanza_error(res) == ('cancel', 'remote-server-not-found') and
            res.get('from') == sub, show(res))
    await nothing_but(comp, lambda: alice.send_raw(msg(COMP, 'marker', 's2')),
                      lambda e: e.get('id') == 's2', lambda e: e.get('id') == 's1',
                      'the message for the subdomain')
    r.ok('...and the component never saw it')
    comp.send_raw(msg('alice@localhost/desk', 'from a subdomain', 's3', sub))
    await comp.closed('a stanza from its subdomain')
    r.check('a stanza from a subdomain of the component closes its stream with <invalid-from/>',
            comp.stream_errors == ['invalid-from'], 'stream errors %s' % comp.stream_errors)
    return await Component().start()


async def replaced(r, comp, alice):
    """A second connection for the same name replaces the first: it proved the secret, and a
    component that restarted must not wait for its old, half-open connection to time out. The
    first is told with <conflict/> (XEP-0114 §3's condition for a name the server will not
    serve on that connection)."""
    second = await Component().start()
    r.ok('a second connection with the same name and secret is accepted')
    await comp.closed('a second connection took its name')
    r.check('...and the first is closed with <conflict/>', comp.stream_errors == ['conflict'],
            'stream errors %s' % comp.stream_errors)
    alice.send_raw(msg(COMP, 'who gets this?', 'r1'))
    el = await second.expect(lambda e: e.get('id') == 'r1', 'a message after the replacement')
    r.check('stanzas for the domain now go to the second connection',
            el.get('from') == 'alice@localhost/desk' and not any(
                e.get('id') == 'r1' for e in comp.received), show(el))
    return second


async def down(r, comp, alice):
    """While a configured component is not connected, its domain is a local service that is
    down: <service-unavailable/> (RFC 6120 §8.3.3.19, §10.5), not the silence a user would wait
    on, nor <remote-server-not-found/> (for domains that are not ours: there is no
    server-to-server)."""
    await comp.stop()
    await comp.closed('it closed its stream')
    for what, to in (('its domain', COMP), ('a JID at its domain', 'lobby@%s/x' % COMP)):
        alice.send_raw(msg(to, 'anyone there?', 'd1'))
        res = await alice.expect_id('d1', 'the answer to a message for a component that is down')
        r.check('a message to %s while the component is down: <service-unavailable/> from that '
                'address' % what, stanza_error(res) == ('cancel', 'service-unavailable') and
                res.get('from') == to, show(res))
    res = await alice.iq('get', "<echo xmlns='%s'>x</echo>" % NS_ECHO, to=COMP,
                         what='the answer to an iq for a component that is down')
    r.check('an iq to a component that is down: <service-unavailable/>',
            stanza_error(res) == ('cancel', 'service-unavailable'), show(res))
    res = await alice.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOWN,
                         what='the answer to disco#info for a component never connected')
    r.check('the same for a configured component that never connected (%s)' % DOWN,
            stanza_error(res) == ('cancel', 'service-unavailable') and res.get('from') == DOWN,
            show(res))
    alice.send_raw(msg('nowhere.example', 'hello?', 'd2'))
    res = await alice.expect_id('d2', 'the answer to a message for a domain nobody serves')
    r.check('(contrast) a domain that is neither a host nor a component: '
            '<remote-server-not-found/>',
            stanza_error(res) == ('cancel', 'remote-server-not-found'), show(res))
    again = await Component().start()
    alice.send_raw(msg(COMP, 'back?', 'd3'))
    el = await again.expect(lambda e: e.get('id') == 'd3', 'a message after it reconnected')
    r.check('a component that reconnects is routed to again', el.get('to') == COMP, show(el))
    await again.stop()


# ---- biboumi --------------------------------------------------------------------------------

async def biboumi(r):
    alice = await client('alice@localhost/irc').login()
    res = await alice.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=BIBOUMI,
                         what="biboumi's disco#info")
    ids = [(i.get('category'), i.get('type'), i.get('name'))
           for i in res.iter(q(NS_DISCO_INFO, 'identity'))]
    feats = {f.get('var') for f in res.iter(q(NS_DISCO_INFO, 'feature'))}
    r.check("biboumi, connected as component %s, answers a user's disco#info with its identity "
            "(conference/irc) and the MUC feature" % BIBOUMI,
            is_(res, 'iq', 'result', from_=BIBOUMI) and len(ids) == 1 and
            ids[0][:2] == ('conference', 'irc') and 'Biboumi' in (ids[0][2] or '') and
            'http://jabber.org/protocol/muc' in feats, show(res))
    res = await alice.iq('get', "<query xmlns='jabber:iq:version'/>", to=BIBOUMI,
                         what="biboumi's software version")
    r.check("biboumi answers jabber:iq:version with its name",
            is_(res, 'iq', 'result', from_=BIBOUMI) and
            res.findtext('{jabber:iq:version}query/{jabber:iq:version}name') == 'biboumi',
            show(res))
    await alice.logout()


# ---- the suite -------------------------------------------------------------------------------

BIBOUMI_CFG = """hostname=irc.localhost
password=%(secret)s
xmpp_server_ip=127.0.0.1
port=%(port)d
admin=
identd_port=0
db_name=%(db)s
log_file=
log_level=1
policy_directory=%(dir)s
realname_customization=true
realname_from_jid=false
ca_file=
outgoing_bind=
"""


def run_part(report, name, scenario, timeout):
    part = report.part('components %s' % name)
    asyncio.run(part.scenario('components: %s' % name, lambda: scenario(part), timeout=timeout))
    report.merge(part)


def with_biboumi(report, system, sm, comp_port, irc_secret):
    """Debian's biboumi as component irc.localhost. It needs no IRC server to connect as a
    component and answer disco; its identd is turned off (port 0) so that nothing listens on
    port 113, its database stays in our directory, and it logs to its standard output."""
    if not shutil.which('biboumi'):
        report.not_ok('biboumi is installed (Debian package biboumi, from tools/deps.sh): without '
                      'it, the check that a real gateway works as a component here was not run')
        return
    cfg = system.write('biboumi.cfg', BIBOUMI_CFG % {
        'secret': irc_secret, 'port': comp_port, 'db': system.path('biboumi.sqlite'),
        'dir': system.dir})
    bib = system.start(['biboumi', cfg], 'biboumi.out')
    if sm.wait_log('link irc.localhost (', 10, watch=bib) and \
            re.search(r'link irc\.localhost \(.*\): handshake accepted', sm.text()):
        report.ok('biboumi connects to the SM as component irc.localhost (handshake accepted)')
        run_part(report, 'biboumi', biboumi, 30)
        status = bib.stop()
        report.check('biboumi stops on SIGTERM (status 0) and the SM sees the component go',
                     status == 0 and sm.wait_log("component 'irc.localhost' is down", 5),
                     '(status %s)\n%s' % (status, bib.text()))
    else:
        # Say exactly why: biboumi's own words, and what the SM saw.
        report.not_ok('biboumi connects to the SM as component irc.localhost (it did not: its '
                      'output and the SM\'s lines about it below)',
                      bib.text() + ''.join('sm: %s\n' % line for line in sm.text().splitlines()
                                           if 'irc.localhost' in line))


def suite(report, build):
    with System(build, 'components', report) as system:
        if not system.ready(report, certificate=True):
            return
        c2s_port, tls_port, sm_port, comp_port = free_ports(4)
        front_secret, comp_secret, irc_secret = secret(), secret(), secret()
        system.use_sm(sm_xml(system.path('jabshard.db'), [
            service('jadc2s', sm_port, front_secret, 'front'),
            service(COMP, comp_port, comp_secret, 'component'),
            service(BIBOUMI, comp_port, irc_secret, 'component'),
            service(DOWN, comp_port, secret(), 'component')]))
        system.use_front('jadc2s', front_xml('jadc2s', front_secret, sm_port, '127.0.0.1',
                                             c2s_port, tls_port, system.path('server.pem')),
                         c2s_port)
        sm = system.start_sm(seconds=10)
        if not sm:
            report.not_ok('the SM starts', system.sm.text())
            return
        front = system.start_front(seconds=10)
        if not front:
            report.not_ok('the front links to the SM', system.front().text())
            return
        report.check('the SM listens once for the three components that share a port, once for '
                     'the front', 'link: listening on 127.0.0.1:%d' % comp_port in sm.text() and
                     sm.count('link: listening on') == 2, sm.text())

        ok, out, _ = system.import_accounts(('%s@localhost' % u, p) for u, p in PW.items())
        if not ok:
            report.not_ok('jabshardctl creates the accounts', out)
            return
        setup.server = Server('127.0.0.1', c2s_port, tls_port, system.path('server.pem'))
        setup.comp_port, setup.secret = comp_port, comp_secret

        # ---- slixmpp's ComponentXMPP ----
        run_part(report, 'slixmpp', scenarios, 45)
        text = sm.text()
        report.check('the SM logs the refused handshakes and the stanzas from outside the '
                     "component's domain",
                     re.search(r'link comp\.localhost .*handshake refused: wrong secret', text) and
                     "unknown service id 'nobody.localhost'" in text and
                     "outside the component's domain" in text, text)

        with_biboumi(report, system, sm, comp_port, irc_secret)

        # ---- the SM and the front lived through all of it ----
        report.check('the SM and the front are still running, their link never dropped',
                     sm.alive() and front.alive() and 'SM link: lost' not in front.text(),
                     front.text())
        front_status = front.stop()
        sm_status = sm.stop()
        report.check('the front and the SM stop cleanly on SIGTERM (status 0)',
                     front_status == 0 and sm_status == 0,
                     '(front %s, SM %s)\n%s' % (front_status, sm_status, sm.text()))
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('components', suite)
