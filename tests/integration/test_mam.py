"""tests/integration/test_mam.py — message archives end to end: the SM and a front on TLS,
slixmpp's xep_0313 (MAM) and xep_0359 plugins.

1. two devices: bob writes to alice's phone; her desktop, logging in later, pages through her
   archive with slixmpp's MAM iterator (pages of 5) and gets every message once, in order; each
   delivered message carried a stanza id by alice's bare JID, the archive's id for it;
2. the archive outlives the SM: it is killed and started again, and the history is there;
3. what Converse.js and Conversations check: the account's disco#info lists urn:xmpp:mam:2 and
   urn:xmpp:sid:0.

Usage: test_mam.py BUILD_DIR. Prints ok/not ok lines and "mam: N passed, N failed"."""

import asyncio
import ssl

from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q

NS_SID = 'urn:xmpp:sid:0'
COUNT = 12


def client(server, jid, password, clients):
    from jabtest.client import Client
    c = Client(jid, password, server, plugins=('xep_0030', 'xep_0059', 'xep_0313', 'xep_0359'))
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    clients.append(c)
    return c


async def history(c):
    """The bodies of alice's archive through slixmpp's iterator, pages of 5, oldest first."""
    got = []
    async for msg in c['xep_0313'].iterate(rsm={'max': 5}):
        got.append(msg['mam_result']['forwarded']['stanza']['body'])
    return got


def two_devices(r, server, system):
    require_slixmpp('mam')

    async def run():
        clients = []
        phone = client(server, 'u0@localhost/phone', 'pw0', clients)
        bob = client(server, 'u1@localhost/b', 'pw1', clients)
        await phone.login()
        await bob.login()
        phone.send_presence()
        for i in range(COUNT):
            bob.send_message(mto='u0@localhost/phone', mbody='m%d' % i, mtype='chat')
        ids = []
        for i in range(COUNT):
            el = await phone.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'message %d' % i)
            sid = el.find(q(NS_SID, 'stanza-id'))
            ids.append(sid.get('id') if sid is not None and sid.get('by') == 'u0@localhost'
                       else None)
        r.check('two devices: every delivered message has a stanza id by the account',
                all(ids) and len(set(ids)) == COUNT, ids)
        desktop = client(server, 'u0@localhost/desktop', 'pw0', clients)
        await desktop.login()
        want = ['m%d' % i for i in range(COUNT)]
        got = await history(desktop)
        r.check('two devices: the desktop pages through what the phone received, once, in order',
                got == want, got)
        info = await desktop['xep_0030'].get_info(jid='u0@localhost')
        features = info['disco_info']['features']
        r.check('Converse.js: the account has urn:xmpp:mam:2 and urn:xmpp:sid:0',
                'urn:xmpp:mam:2' in features and NS_SID in features, features)
        for c in clients:
            await c.logout()

        system.sm.kill()
        r.check('restart: the SM starts again', system.start_sm(ready_port=system.sm_port,
                                                                seconds=10))
        again = client(server, 'u0@localhost/again', 'pw0', [])
        await again.login()
        got = await history(again)
        r.check('restart: the archive is there after the SM was killed', got == want, got)
        await again.logout()

    asyncio.run(run())


def suite(report, build):
    with System(build, 'mam', report) as system:
        sm_port, port, tls = free_ports(3)
        system.sm_port = sm_port
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             level='info'))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem')), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(2))
        if not (report.check('import 2 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        server = Server('127.0.0.1', port, tls, None, wait=15)
        try:
            two_devices(report, server, system)
        except Failure as e:
            report.not_ok('two devices ran to its end', str(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('mam', suite)
