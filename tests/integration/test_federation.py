"""tests/integration/test_federation.py — federation with real servers: jabshard (jabshard.test:
its SM, a front and jabshard-s2s on 127.0.0.2) beside Debian's Prosody (prosody.test, 127.0.0.3)
and ejabberd (ejabberd.test, 127.0.0.4), in a network namespace of the suite's own whose DNS is a
real unbound serving the domains' SRV records (jabtest.federation), so every server finds the
others the way it would on the internet. Certificates come from a test CA every server trusts.

With each peer: messages both ways, a subscription each way and presence both ways, a disco#info
of the remote server. Then, with Prosody: certificates only (its s2s_secure_auth, our dialback
off: SASL EXTERNAL both ways), dialback only (self-signed certificates on both sides), a bad
certificate refused by our policy (the message bounced, the remote's stream refused), a remote
server that goes away (bounced within <connect_timeout>), push notifications (XEP-0357) to a
scripted app server on Prosody's domain. Against jabshard-s2s by hand: a stream that
authenticated evil.test and sends from prosody.test (<invalid-from/>, nothing delivered), a
forged dialback key (refused after asking prosody.test), garbage (<not-well-formed/>); after
all of which federation still works and every program stops cleanly.

Usage: test_federation.py BUILD_DIR (as root: the namespace). Prints ok / not ok lines and ends
"federation: N passed, N failed"."""

import asyncio
import os
import re
import time

from jabtest import federation as fed
from jabtest.suite import main, require_slixmpp

fed.enter_namespace('federation')
require_slixmpp('federation')

from jabtest.report import Failure  # noqa: E402
from jabtest.s2s import Jabshard, RawS2S  # noqa: E402
from jabtest.system import System  # noqa: E402
from jabtest.xmpp import NS_CLIENT, NS_DISCO_INFO, q, show, stanza_error  # noqa: E402

DOMAIN, IP = fed.JABSHARD_DOMAIN, fed.JABSHARD_IP
NS_PUSH = 'urn:xmpp:push:0'
NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
CONNECT_TIMEOUT = 6


def is_message(body, sender=None):
    def pred(el):
        return (el.tag == q(NS_CLIENT, 'message') and el.findtext(q(NS_CLIENT, 'body')) == body
                and (sender is None or el.get('from', '').split('/')[0] == sender))
    return pred


def is_presence(sender, type_=None):
    def pred(el):
        return (el.tag == q(NS_CLIENT, 'presence') and
                el.get('from', '').split('/')[0] == sender and el.get('type') == type_)
    return pred


async def check(report, what, coro):
    """One check from an awaitable that raises Failure when it does not hold."""
    try:
        await coro
        report.ok(what)
        return True
    except Failure as e:
        report.not_ok(what, str(e))
        return False


async def messages_both_ways(report, a, b, tag):
    """a (jabshard) and b (the peer) exchange a message each way."""
    bj, aj = b.boundjid.bare, a.boundjid.bare
    a.send_raw("<message to='%s' type='chat'><body>to %s %s</body></message>" % (bj, tag, bj))
    await check(report, '%s: a message from jabshard to %s arrives' % (tag, bj),
                b.expect(is_message('to %s %s' % (tag, bj), aj), 'the message'))
    b.send_raw("<message to='%s' type='chat'><body>from %s</body></message>" % (aj, tag))
    await check(report, '%s: a message from %s to jabshard arrives' % (tag, bj),
                a.expect(is_message('from %s' % tag, bj), 'the message'))


async def subscribe(report, asker, owner, tag):
    """asker subscribes to owner's presence, owner approves; asker then gets owner's presence."""
    aj, oj = asker.boundjid.bare, owner.boundjid.bare
    asker.send_raw("<presence to='%s' type='subscribe'/>" % oj)
    if not await check(report, '%s: %s gets the subscription request of %s' % (tag, oj, aj),
                       owner.expect(is_presence(aj, 'subscribe'), 'the subscribe')):
        return
    owner.send_raw("<presence to='%s' type='subscribed'/>" % aj)
    await check(report, '%s: %s gets subscribed, then the presence of %s' % (tag, aj, oj),
                asyncio.gather(asker.expect(is_presence(oj, 'subscribed'), 'the subscribed'),
                               asker.expect(is_presence(oj), 'the presence')))


async def with_peer(report, js, peer, user, pw, tag):
    """Messages, subscriptions and presence both ways, disco#info: jabshard's alice and the
    peer's user."""
    a = await js.client('alice', 'alice-pw').online()
    b = await peer.client(user, pw).online()
    # RFC 6121 §2.1.6: subscription approvals go to the resources that asked for the roster
    # (Prosody holds them back from the others).
    for c in (a, b):
        await c.iq('get', "<query xmlns='jabber:iq:roster'/>", what='the roster')
    try:
        await messages_both_ways(report, a, b, tag)
        await subscribe(report, a, b, tag)
        await subscribe(report, b, a, tag)
        a.send_raw('<presence><show>away</show><status>%s</status></presence>' % tag)
        await check(report, '%s: a presence change of alice reaches %s' % (tag, user),
                    b.expect(lambda el: is_presence(a.boundjid.bare)(el) and
                             el.findtext(q(NS_CLIENT, 'show')) == 'away', 'the away presence'))
        b.send_raw('<presence><show>dnd</show></presence>')
        await check(report, '%s: a presence change of %s reaches alice' % (tag, user),
                    a.expect(lambda el: is_presence(b.boundjid.bare)(el) and
                             el.findtext(q(NS_CLIENT, 'show')) == 'dnd', 'the dnd presence'))
        info = await a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=peer.domain,
                          what='the remote disco#info')
        ident = info.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_DISCO_INFO, 'identity')))
        report.check('%s: a disco#info of %s answers (identity server/im)' % (tag, peer.domain),
                     info.get('type') == 'result' and ident is not None and
                     ident.get('category') == 'server', show(info))
    finally:
        await a.logout()
        await b.logout()


async def exchange(report, js, peer, user, pw, what):
    """One message each way; returns whether both arrived."""
    a = await js.client('alice', 'alice-pw').online()
    b = await peer.client(user, pw).online()
    try:
        a.send_raw("<message to='%s' type='chat'><body>%s out</body></message>"
                   % (b.boundjid.bare, what))
        b.send_raw("<message to='%s' type='chat'><body>%s in</body></message>"
                   % (a.boundjid.bare, what))
        ok1 = await check(report, '%s: jabshard to %s' % (what, peer.domain),
                          b.expect(is_message('%s out' % what), 'the message'))
        ok2 = await check(report, '%s: %s to jabshard' % (what, peer.domain),
                          a.expect(is_message('%s in' % what), 'the message'))
        return ok1 and ok2
    finally:
        await a.logout()
        await b.logout()


def auth_lines(js, since):
    """The s2s log's "authenticated by" lines after offset since: [(direction, remote, how)]."""
    text = js.log()[since:]
    out = [(m.group(1), m.group(3) if m.group(1) == 'out' else m.group(2), m.group(4))
           for m in re.finditer(r's2s (in|out) (\S+) -> (\S+) \([^)]*\): authenticated by (\w+)',
                                text)]
    return out


async def bounced(report, js, to, condition, what, seconds):
    """alice sends to `to`: an error with condition comes back within seconds."""
    a = await js.client('alice', 'alice-pw').online()
    try:
        t0 = time.monotonic()
        a.send_raw("<message to='%s' type='chat' id='gone1'><body>anyone?</body></message>" % to)
        err = await a.expect(lambda el: el.get('id') == 'gone1' and el.get('type') == 'error',
                             'the bounce', timeout=seconds + 5)
        took = time.monotonic() - t0
        report.check('%s: bounced with <%s/> in %.1f s (at most %d)' % (what, condition, took,
                                                                        seconds),
                     stanza_error(err)[1] == condition and took <= seconds + 1, show(err))
    except Failure as e:
        report.not_ok('%s: bounced' % what, str(e))
    finally:
        await a.logout()


async def push(report, js, prosody):
    """XEP-0357 through federation: alice registers an app server on Prosody's domain (a scripted
    one: pushapp's client), goes offline; bob's message makes a notification arrive there."""
    app = await prosody.client('pushapp', 'app-pw').online()
    a = await js.client('alice', 'alice-pw').online()
    node = 'node-for-alice'
    r = await a.iq('set', "<enable xmlns='%s' jid='%s' node='%s'/>"
                   % (NS_PUSH, app.boundjid.full, node), what='the push enable')
    report.check('push: enabled with an app server on prosody.test', r.get('type') == 'result',
                 show(r))
    await a.logout()
    b = await prosody.client('bob', 'bob-pw').online()
    b.send_raw("<message to='alice@%s' type='chat'><body>wake up</body></message>" % DOMAIN)
    try:
        iq = await app.expect(lambda el: el.tag == q(NS_CLIENT, 'iq') and el.get('type') == 'set'
                              and el.find('.//{%s}notification' % NS_PUSH) is not None,
                              'the push notification', timeout=20)
        fields = {f.get('var'): f.findtext('{jabber:x:data}value')
                  for f in iq.iter('{jabber:x:data}field')}
        publish = iq.find('.//{%s}publish' % NS_PUBSUB)
        report.check('push: the app server on prosody.test gets the notification from '
                     'alice@jabshard.test, for its node, with the count and the sender, no body',
                     iq.get('from') == 'alice@' + DOMAIN and publish is not None and
                     publish.get('node') == node and fields.get('message-count') == '1' and
                     (fields.get('last-message-sender') or '').startswith('bob@prosody.test') and
                     'last-message-body' not in fields and b'wake up' not in
                     show(iq).encode(), show(iq))
        app.send_raw("<iq type='result' to='%s' id='%s'/>" % (iq.get('from'), iq.get('id')))
    except Failure as e:
        report.not_ok('push: the notification reaches the app server', str(e))
    finally:
        await app.logout()
        await b.logout()


def raw_attacks(report, js, world):
    """Remote servers by hand, against jabshard-s2s's direct TLS port."""
    evil = world.ca.cert('evil.test')
    s = RawS2S.direct(IP, 5270, world.ca.cafile, evil.certfile, evil.keyfile, DOMAIN)
    s.open_s2s('evil.test', DOMAIN)
    s.read_until(r'</stream:features>', 'the features')
    report.check('raw: jabshard offers SASL EXTERNAL to a certificate valid for evil.test',
                 b'EXTERNAL' in s.data, s.data[-400:])
    ok = s.sasl_external('evil.test')
    report.check('raw: evil.test authenticates by its certificate', ok, s.data[-300:])
    if ok:
        s.restart()
        s.open_s2s('evil.test', DOMAIN)
        s.read_until(r'</stream:features>', 'the features after SASL')
        s.send("<message from='bob@prosody.test/x' to='alice@%s' type='chat'>"
               "<body>spoofed</body></message>" % DOMAIN)
        cond, _ = s.stream_error()
        report.check('raw: a stanza from prosody.test on evil.test\'s stream: <invalid-from/>',
                     cond == 'invalid-from', cond)
    s.close()

    s = RawS2S.direct(IP, 5270, world.ca.cafile, server_name=DOMAIN)
    s.open_s2s('prosody.test', DOMAIN)
    s.read_until(r'</stream:features>', 'the features')
    answer = s.db_result('prosody.test', DOMAIN, 'f' * 64)
    report.check('raw: a forged dialback key for prosody.test is refused once prosody.test is '
                 'asked (db:result type invalid)', answer == 'invalid', answer)
    s.send("<message from='bob@prosody.test/x' to='alice@%s'><body>spoofed</body></message>"
           % DOMAIN)
    cond, _ = s.stream_error()
    report.check('raw: ...and its stanza then ends the stream (<not-authorized/>)',
                 cond == 'not-authorized', cond)
    s.close()

    s = RawS2S.direct(IP, 5270, world.ca.cafile, server_name=DOMAIN)
    s.send(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream="
           b"'http://etherx.jabber.org/streams' to='jabshard.test' version='1.0'><a><</b>")
    cond, _ = s.stream_error()
    report.check('raw: garbage gets <not-well-formed/>', cond == 'not-well-formed', cond)
    s.close()

    s = RawS2S.direct(IP, 5270, world.ca.cafile, server_name=DOMAIN)
    s.open_s2s('x.test', 'elsewhere.test')
    cond, _ = s.stream_error()
    report.check('raw: a stream to a domain not served here gets <host-unknown/>',
                 cond == 'host-unknown', cond)
    s.close()


async def scenarios(report, js, world, prosody, ejabberd):
    await with_peer(report, js, prosody, 'bob', 'bob-pw', 'prosody')
    since = len(js.log())
    await with_peer(report, js, ejabberd, 'carol', 'carol-pw', 'ejabberd')
    methods = auth_lines(js, 0)
    report.check('valid certificates: every stream authenticated by SASL EXTERNAL or a '
                 'certificate, both ways, with both peers',
                 methods and all(how in ('sasl', 'certificate') for _, _, how in methods) and
                 {('out', 'prosody.test'), ('in', 'prosody.test'), ('out', 'ejabberd.test'),
                  ('in', 'ejabberd.test')} <= {(d, r) for d, r, _ in methods}, methods)
    del since

    await push(report, js, prosody)

    # Certificates only: Prosody's s2s_secure_auth, our dialback off.
    prosody.restart(secure_auth=True)
    js.start_s2s(report, 'certificates only: jabshard-s2s restarted with dialback off',
                 policy='<dialback>false</dialback>')
    since = len(js.log())
    if await exchange(report, js, prosody, 'bob', 'bob-pw', 'certificates only'):
        methods = auth_lines(js, since)
        report.check('certificates only: SASL EXTERNAL both ways',
                     {('out', 'prosody.test', 'sasl'), ('in', 'prosody.test', 'sasl')} <=
                     set(methods), methods)

    # Dialback only: self-signed certificates on both sides.
    prosody.restart(secure_auth=False, cert=world.ca.cert('prosody.test', valid=False))
    js.start_s2s(report, 'dialback only: jabshard-s2s restarted with a self-signed certificate',
                 cert=js.bad_cert)
    since = len(js.log())
    if await exchange(report, js, prosody, 'bob', 'bob-pw', 'dialback only'):
        methods = auth_lines(js, since)
        report.check('dialback only: dialback both ways',
                     {('out', 'prosody.test', 'dialback'), ('in', 'prosody.test', 'dialback')}
                     <= set(methods), methods)

    # A bad certificate refused: Prosody's is self-signed, our policy wants a valid one.
    js.start_s2s(report, 'bad certificate: jabshard-s2s restarted requiring a valid certificate '
                 'from prosody.test',
                 policy="<domain name='prosody.test'><require_valid_cert/></domain>")
    await bounced(report, js, 'bob@prosody.test', 'remote-server-not-found',
                  'bad certificate: a message to prosody.test', CONNECT_TIMEOUT)
    report.check('bad certificate: the log says why',
                 "the server's certificate is not valid for its domain" in js.log(),
                 js.log()[-2000:])

    # Back to valid certificates; attacks by hand; then the remote server goes away.
    prosody.restart(cert=world.ca.cert('prosody.test'))
    js.start_s2s(report, 'jabshard-s2s restarted with its valid certificate')
    raw_attacks(report, js, world)
    await exchange(report, js, prosody, 'bob', 'bob-pw', 'after the attacks')
    prosody.stop()
    await bounced(report, js, 'bob@prosody.test', 'remote-server-not-found',
                  'gone: a message to prosody.test while it is down', CONNECT_TIMEOUT)
    await bounced(report, js, 'nobody@nowhere.test', 'remote-server-not-found',
                  'a domain without DNS records', CONNECT_TIMEOUT)


def suite(report, build):
    with fed.Federation('federation') as world, System(build, 'federation', report) as system:
        if not system.ready(report):
            return
        world.dns.start(fed.records(DOMAIN, IP) + fed.records(fed.PROSODY_DOMAIN, fed.PROSODY_IP)
                        + fed.records(fed.EJABBERD_DOMAIN, fed.EJABBERD_IP))
        prosody = world.prosody()
        ejabberd = world.ejabberd()
        prosody.start()
        ejabberd.start()
        prosody.register('bob', 'bob-pw')
        prosody.register('pushapp', 'app-pw')
        ejabberd.register('carol', 'carol-pw')
        js = Jabshard(system, world, connect_timeout=CONNECT_TIMEOUT)
        if not js.start(report, [('alice@' + DOMAIN, 'alice-pw'), ('dave@' + DOMAIN, 'dave-pw')]):
            return
        try:
            asyncio.run(scenarios(report, js, world, prosody, ejabberd))
        finally:
            if os.environ.get('FEDERATION_DEBUG'):
                print(js.log()[-20000:])
        s2s, sm = js.s2s, system.sm
        report.check('jabshard-s2s, the SM and the front are still running',
                     s2s.alive() and sm.alive() and system.front().alive())
        report.check('jabshard-s2s stops cleanly on SIGTERM (status 0)', s2s.stop() == 0,
                     s2s.text()[-2000:])
        report.check('the front and the SM stop cleanly', system.front().stop() == 0 and
                     sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('federation', suite)
