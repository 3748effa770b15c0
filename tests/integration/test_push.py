"""tests/integration/test_push.py — push notifications (XEP-0357) end to end: the SM with a front
on TLS and an app server, slixmpp's XEP-0114 ComponentXMPP on push.localhost, which records the
notifications it gets and answers them (a result, or an error when told to).

1. the account's disco#info lists urn:xmpp:push:0; <enable/> without a jid is <bad-request/>;
2. offline: alice (u0) enables push with a publish-options form and logs out; bob (u1) writes
   twice: the app server gets one notification from alice's bare JID with the count 1, bob as
   the sender, no body, and alice's form; once it has answered and push/interval (1 s) passed,
   the next message's notification counts 3;
3. hibernated: alice logs in again (the count starts again), enables stream management with
   resumption, and her connection dies: bob's message is pushed (count 1) and kept for her;
   she resumes and gets it;
4. <disable/> stops the notifications;
5. an app server's error (cancel, item-not-found) disables the registration: the next message
   is not pushed;
6. the registrations and the count survive an SM restart (SIGKILL): a message after it is
   pushed, counting the one before.

Usage: test_push.py BUILD_DIR. Prints ok/not ok lines and "push: N passed, N failed"."""

import asyncio
import socket
import ssl

from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, secret, service, sm_xml
from jabtest.xmpp import NS_ACCEPT, NS_CLIENT, NS_DISCO_INFO, Server, q, show, stanza_error

require_slixmpp('push')

import slixmpp  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

from jabtest.client import Client, Recorder  # noqa: E402
from jabtest.raw import Raw  # noqa: E402

APP = 'push.localhost'
NS_PUSH = 'urn:xmpp:push:0'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_XDATA = 'jabber:x:data'
NS_SM = 'urn:xmpp:sm:3'
FORM = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
        "http://jabber.org/protocol/pubsub#publish-options</value></field>"
        "<field var='secret'><value>eruio234vzxc2kla-91</value></field></x>")


class Setup:
    server = None
    comp_port = None
    secret = None
    tls = None


setup = Setup()


def need(cond, why):
    if not cond:
        raise Failure(why)


class AppServer(Recorder, slixmpp.ComponentXMPP):
    """The app server: records what it receives, answers each publish with a result, or with
    the error (type, condition) in self.error."""

    def __init__(self):
        super().__init__(APP, setup.secret, setup.server.host, setup.comp_port)
        self._record(setup.server.wait)
        self.error = None
        self.started = self.loop.create_future()
        self.add_event_handler('session_start', lambda _: self.started.done() or
                               self.started.set_result(True))
        self.register_handler(Callback('publish', MatchXPath('{%s}iq/{%s}pubsub' %
                                                             (NS_ACCEPT, NS_PUBSUB)), self._answer))

    def _answer(self, iq):
        if iq['type'] != 'set':
            return
        if self.error:
            self.send_raw("<iq type='error' id='%s' from='%s' to='%s'><error type='%s'><%s xmlns="
                          "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>" %
                          (iq['id'], APP, iq['from'], self.error[0], self.error[1]))
        else:
            self.send_raw("<iq type='result' id='%s' from='%s' to='%s'/>" %
                          (iq['id'], APP, iq['from']))

    async def start(self):
        self.connect()
        await asyncio.wait_for(asyncio.shield(self.started), self.wait)
        return self

    async def stop(self):
        if self.transport:
            await asyncio.wait_for(self.disconnect(wait=self.wait), self.wait + 1)

    async def notification(self, what):
        """The next notification: its iq and its summary form's fields (var: value)."""
        iq = await self.expect(lambda e: e.tag == q(NS_ACCEPT, 'iq') and
                               e.find(q(NS_PUBSUB, 'pubsub')) is not None, what)
        fields = {}
        form = iq.find('.//%s/%s' % (q(NS_PUSH, 'notification'), q(NS_XDATA, 'x')))
        for f in form.findall(q(NS_XDATA, 'field')) if form is not None else ():
            v = f.find(q(NS_XDATA, 'value'))
            fields[f.get('var')] = v.text if v is not None else None
        return iq, fields

    def notifications(self):
        return [e for e in self.received if e.find(q(NS_PUBSUB, 'pubsub')) is not None]


def client(jid, password):
    c = Client(jid, password, setup.server)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    return c


async def push_iq(c, what, attrs, inner=''):
    return await c.iq('set', "<%s xmlns='%s' %s>%s</%s>" % (what, NS_PUSH, attrs, inner, what),
                      what='the answer to <%s/>' % what)


async def alice_enables(r, node, form=''):
    alice = await client('u0@localhost/phone', 'pw0').login()
    res = await push_iq(alice, 'enable', "jid='%s' node='%s'" % (APP, node), form)
    r.check('<enable/> of node %s is accepted' % node, res.get('type') == 'result', show(res))
    await alice.logout()


def tell_alice(bob, body):
    bob.send_raw("<message to='u0@localhost' type='chat'><body>%s</body></message>" % body)


async def none_before_marker(r, app, bob, what):
    """bob's marker message to the app server arrives, and no notification came before it."""
    bob.send_raw("<message to='%s' id='marker'><body>marker</body></message>" % APP)
    await app.expect(lambda e: e.get('id') == 'marker', 'the marker')
    r.check(what, not app.notifications(), ' | '.join(show(e) for e in app.notifications()))


async def first_steps(r, app, bob):
    alice = await client('u0@localhost/phone', 'pw0').login()
    info = await alice.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to='u0@localhost')
    r.check("the account's disco#info lists urn:xmpp:push:0",
            info.find("%s/%s[@var='%s']" % (q(NS_DISCO_INFO, 'query'), q(NS_DISCO_INFO, 'feature'),
                                             NS_PUSH)) is not None, show(info))
    res = await push_iq(alice, 'enable', "node='x'")
    r.check('<enable/> without a jid: <bad-request/>',
            stanza_error(res) == ('modify', 'bad-request'), show(res))
    await alice.logout()

    await alice_enables(r, 'n1', FORM)
    tell_alice(bob, 'secret one')
    tell_alice(bob, 'secret two')
    iq, fields = await app.notification('the notification of the first message')
    r.check('offline: the notification comes from the bare JID, to the app server, publishing '
            'to the node', iq.get('from') == 'u0@localhost' and iq.get('to') == APP and
            iq.find('.//%s' % q(NS_PUBSUB, 'publish')).get('node') == 'n1', show(iq))
    r.check('offline: a summary with count 1 and the sender, no body',
            fields.get('FORM_TYPE') == 'urn:xmpp:push:summary' and
            fields.get('message-count') == '1' and
            fields.get('last-message-sender') == 'u1@localhost/b' and
            'last-message-body' not in fields and b'secret' not in show(iq).encode(), fields)
    opts = iq.find('.//%s/%s' % (q(NS_PUBSUB, 'publish-options'), q(NS_XDATA, 'x')))
    r.check("offline: the client's publish-options go with it",
            opts is not None and 'eruio234vzxc2kla-91' in show(opts), show(iq))
    await asyncio.sleep(1.5)    # answered; push/interval (1 s) and a tick pass
    r.check('offline: the second message, while the first was unanswered, was not pushed',
            not app.notifications(), ' | '.join(show(e) for e in app.notifications()))
    tell_alice(bob, 'three')
    _, fields = await app.notification('the notification of the third message')
    r.check('offline: the next notification counts every message since', fields.get(
        'message-count') == '3', fields)


def hibernate():
    """alice online over raw TLS with resumption enabled; her connection dies. Returns her
    resumption id."""
    s = Raw.connect(setup.tls, tls=True, wait=10)
    s.login('u0', 'pw0', 'r', presence=True)
    s.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    el = s.expect(lambda e: e.tag in (q(NS_SM, 'enabled'), q(NS_SM, 'failed')), '<enabled/>')
    need(el.tag == q(NS_SM, 'enabled'), 'enable refused')
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    s.close()
    return el.get('id')


def resume(previd):
    s = Raw.connect(setup.tls, tls=True, wait=10)
    cond, _ = s.authenticate('u0', 'pw0')
    need(cond == 'success', 'SASL %s' % cond)
    s.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM, previd))
    el = s.expect(lambda e: e.tag in (q(NS_SM, 'resumed'), q(NS_SM, 'failed')), '<resumed/>')
    need(el.tag == q(NS_SM, 'resumed'), 'resumption refused')
    # What she had not acknowledged comes first: her offline messages, if they came after
    # <enable/>, then the one sent while she was away.
    m = s.next(lambda e: e.tag == q(NS_CLIENT, 'message') and
               e.findtext(q(NS_CLIENT, 'body')) == 'while away', 10)
    s.end()
    return None if m is None else m.findtext(q(NS_CLIENT, 'body'))


async def hibernated(r, app, bob, system):
    previd = await asyncio.to_thread(hibernate)
    await asyncio.to_thread(system.sm.wait_log, 'u0@localhost/r detached', 10)
    await asyncio.sleep(1.5)
    tell_alice(bob, 'while away')
    _, fields = await app.notification('the notification for the hibernated session')
    r.check('hibernated: pushed, the count starting again since she was online',
            fields.get('message-count') == '1' and
            fields.get('last-message-sender') == 'u1@localhost/b', fields)
    got = await asyncio.to_thread(resume, previd)
    r.check('hibernated: the session kept the message for the resumption', got == 'while away',
            got)


async def disabled(r, app, bob):
    alice = await client('u0@localhost/phone', 'pw0').login()
    res = await push_iq(alice, 'disable', "jid='%s' node='n1'" % APP)
    r.check('<disable/> is accepted', res.get('type') == 'result', show(res))
    await alice.logout()
    await asyncio.sleep(1.5)
    tell_alice(bob, 'not pushed')
    await none_before_marker(r, app, bob, 'disable: no notification any more')

    await alice_enables(r, 'n2')
    app.error = ('cancel', 'item-not-found')
    tell_alice(bob, 'refused')
    await app.notification('the notification the app server refuses')
    await asyncio.sleep(1.5)
    app.error = None
    tell_alice(bob, 'after the error')
    await none_before_marker(r, app, bob, "an app server's <item-not-found/> disabled the "
                             "registration")


async def scenarios(r, system):
    app = await AppServer().start()
    bob = await client('u1@localhost/b', 'pw1').login()
    try:
        await first_steps(r, app, bob)
        await hibernated(r, app, bob, system)
        await disabled(r, app, bob)
        await alice_enables(r, 'n3')
    finally:
        await bob.logout()
        await app.stop()
    system.sm.kill()
    r.check('restart: the SM starts again', system.start_sm(ready_port=system.sm_port,
                                                            seconds=10))
    app = await AppServer().start()
    bob = await client('u1@localhost/b', 'pw1').login()
    try:
        tell_alice(bob, 'after the restart')
        iq, fields = await app.notification('a notification after the SM restart')
        r.check('restart: the registration and the count (the refused one and this) are still '
                'there', iq.find('.//%s' % q(NS_PUBSUB, 'publish')).get('node') == 'n3' and
                fields.get('message-count') == '2', show(iq))
    finally:
        await bob.logout()
        await app.stop()


def suite(report, build):
    with System(build, 'push', report) as system:
        sm_port, comp_port, port, tls = free_ports(4)
        system.sm_port = sm_port
        setup.secret = secret()
        setup.comp_port = comp_port
        setup.tls = tls
        system.use_sm(sm_xml(system.path('db.sqlite'),
                             [service('front', sm_port, 's', 'front'),
                              service(APP, comp_port, setup.secret, 'component')],
                             extra='\n  <push><interval>1</interval></push>'))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem')), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(2))
        if not (report.check('import 2 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        setup.server = Server('127.0.0.1', port, tls, None, wait=15)
        try:
            asyncio.run(scenarios(report, system))
        except Failure as e:
            report.not_ok('the push scenarios ran to their end', str(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('push', suite)
