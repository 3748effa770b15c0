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
import urllib.request

from jabtest import federation as fed
from jabtest.suite import main, require_slixmpp

fed.enter_namespace('federation')
require_slixmpp('federation')

from jabtest.proc import wait_until  # noqa: E402
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


def metrics(js):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % js.metrics_port, timeout=10) as r:
        return r.read().decode()


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
    text = metrics(js)
    report.check('metrics: stanzas both ways, SASL EXTERNAL authentications, connections both '
                 'ways, the SM link up',
                 all(re.search(p, text, re.M) for p in (
                     r'^jabshard_s2s_stanzas_total\{direction="in"\} [1-9]',
                     r'^jabshard_s2s_stanzas_total\{direction="out"\} [1-9]',
                     r'^jabshard_s2s_authenticated_total\{method="sasl"\} [1-9]',
                     r'^jabshard_s2s_connections\{direction="out"\} [1-9]',
                     r'^jabshard_s2s_connections\{direction="in"\} [1-9]',
                     r'^jabshard_s2s_link_up 1$')), text)
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

    # XEP-0368: both domains also publish _xmpps-server records, preferred (priority 0 against
    # 10 for STARTTLS); TLS from the first byte.
    world.dns.restart(fed.records(fed.EJABBERD_DOMAIN, fed.EJABBERD_IP) + [
        line for d, ip in ((DOMAIN, IP), (fed.PROSODY_DOMAIN, fed.PROSODY_IP)) for line in (
            '_xmpps-server._tcp.%s. 300 IN SRV 0 5 5270 xmpp.%s.' % (d, d),
            '_xmpp-server._tcp.%s. 300 IN SRV 10 5 5269 xmpp.%s.' % (d, d),
            '_xmpp-client._tcp.%s. 300 IN SRV 0 5 5222 xmpp.%s.' % (d, d),
            'xmpp.%s. 300 IN A %s' % (d, ip))])
    cert = prosody.cert
    prosody.restart(extra='s2s_direct_tls_ports = { 5270 }\n'
                          's2s_direct_tls_ssl = { certificate = "%s"; key = "%s" }'
                          % (cert.certfile, cert.keyfile))
    js.start_s2s(report, 'direct TLS: jabshard-s2s restarted (its DNS cache with it)')
    since = len(js.log())
    if await exchange(report, js, prosody, 'bob', 'bob-pw', 'direct TLS'):
        lines = re.findall(r's2s (?:in|out) \S+ -> \S+ .*authenticated by \w+, .*',
                           js.log()[since:])
        report.check('direct TLS: both streams with prosody.test start with TLS (XEP-0368)',
                     any(l.startswith('s2s out') and 'prosody.test' in l and 'direct TLS' in l
                         for l in lines) and
                     any(l.startswith('s2s in prosody.test') and 'direct TLS' in l
                         for l in lines), lines)
    # XEP-0288: Prosody with mod_s2s_bidi; one stream each way becomes one stream for both.
    world.dns.restart(fed.standard_records())
    prosody.restart(extra='', modules=('s2s_bidi',))
    js.start_s2s(report, 'bidi: jabshard-s2s restarted')
    since = len(js.log())
    # Our stream first (alice's presence and message open it), and only then bob: his presence
    # and his answer must find it, and need no stream of Prosody's own.
    a = await js.client('alice', 'alice-pw').online()
    a.send_raw("<message to='bob@prosody.test' type='chat'><body>bidi out</body></message>")
    ours = await asyncio.to_thread(wait_until, lambda: re.search(
        r's2s out \S+ -> prosody\.test .*authenticated', js.log()[since:]), 10)
    report.check('bidi: our stream to prosody.test is up', ours)
    b = await prosody.client('bob', 'bob-pw').online()
    try:
        await check(report, 'bidi: jabshard to prosody.test', b.expect(is_message('bidi out'),
                                                                       'the message'))
        b.send_raw("<message to='alice@%s' type='chat'><body>bidi in</body></message>" % DOMAIN)
        await check(report, 'bidi: prosody.test to jabshard, back on our stream',
                    a.expect(is_message('bidi in'), 'the message'))
    finally:
        await a.logout()
        await b.logout()
    streams = re.findall(r's2s (?:in|out) .*prosody\.test.*authenticated by .*', js.log()[since:])
    report.check('bidi: one stream with prosody.test, ours, carries both directions (XEP-0288)',
                 len(streams) == 1 and streams[0].startswith('s2s out') and
                 streams[0].endswith('bidirectional'), streams)

    # The other way round: Prosody's stream first; alice's answer goes back on it.
    prosody.restart()
    js.start_s2s(report, 'bidi: both restarted, no stream between them')
    since = len(js.log())
    b = await prosody.client('bob', 'bob-pw').online()
    b.send_raw("<message to='alice@%s' type='chat'><body>bidi first</body></message>" % DOMAIN)
    theirs = await asyncio.to_thread(wait_until, lambda: re.search(
        r's2s in prosody\.test -> \S+ .*authenticated.*bidirectional', js.log()[since:]), 10)
    report.check("bidi: Prosody's bidirectional stream to us is up", theirs)
    a = await js.client('alice', 'alice-pw').online()
    try:
        await check(report, 'bidi: prosody.test to jabshard (offline, then delivered)',
                    a.expect(is_message('bidi first'), 'the message'))
        a.send_raw("<message to='bob@prosody.test' type='chat'><body>bidi back</body></message>")
        await check(report, "bidi: jabshard to prosody.test, back on Prosody's stream",
                    b.expect(is_message('bidi back'), 'the message'))
    finally:
        await a.logout()
        await b.logout()
    streams = re.findall(r's2s (?:in|out) .*prosody\.test.*authenticated by .*', js.log()[since:])
    report.check("bidi: one stream with prosody.test, Prosody's, carries both directions",
                 len(streams) == 1 and streams[0].startswith('s2s in'), streams)

    prosody.stop()
    await bounced(report, js, 'bob@prosody.test', 'remote-server-not-found',
                  'gone: a message to prosody.test while it is down', CONNECT_TIMEOUT)
    await bounced(report, js, 'nobody@nowhere.test', 'remote-server-not-found',
                  'a domain without DNS records', CONNECT_TIMEOUT)


def suite(report, build):
    if 'thread' in os.path.basename(os.path.abspath(build)):
        report.note('SKIP: jabshard-s2s runs one thread, and the peers take minutes under '
                    'ThreadSanitizer: run without it and under ASan/UBSan')
        return
    with fed.Federation('federation') as world, System(build, 'federation', report) as system:
        if not system.ready(report):
            return
        world.dns.start(fed.standard_records())
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
