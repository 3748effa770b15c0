"""tests/integration/test_reload.py — SIGHUP to a running front and SM: what takes effect without
dropping anyone, what is named as needing a restart, and a broken file that changes nothing.

The front: a smaller <limits><stanza_size> holds for the connections that come after the reload,
while a connection from before goes on as it was; a renewed certificate is what the next TLS
connection is shown; a changed port is logged as needing a restart; a file that does not load is
logged and nothing changes. The SM: a module's limit (<muc><nick_max>) holds at once, a changed
<storage> is logged as needing a restart. Nobody connected before is cut.

Usage: test_reload.py BUILD_DIR. Prints ok/not ok lines and "reload: N passed, N failed"."""

import hashlib
import os
import signal
import socket
import ssl
import xml.etree.ElementTree as ET

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q

BIG = 'x' * 3000


def fingerprint(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname='localhost') as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def got_message(c, body):
    return c.expect(lambda e: e.tag == q(NS_CLIENT, 'message') and
                    (e.findtext(q(NS_CLIENT, 'body')) or '') == body, 'a message')


def body(report, build):
    with System(build, 'reload', report) as system:
        sm_port, port, tls, other = free_ports(4)
        pem = system.certificate()
        db = system.path('db.sqlite')
        services = [service('front', sm_port, 's', 'front')]
        system.use_sm(sm_xml(db, services))
        front = lambda limits=None, p=port: front_xml('front', 's', sm_port, '127.0.0.1', p, tls,
                                                      pem, limits=limits)
        system.use_front('front', front(), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(3))
        if not (report.check('import 3 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        server = Server('127.0.0.1', port, tls, pem, wait=10)
        fr = system.front('front')
        try:
            before = Raw.to(server)
            before.login('u0', 'pw0', 'before', presence=True)
            receiver = Raw.to(server)
            receiver.login('u1', 'pw1', 'r', presence=True)
            cert_before = fingerprint(tls)

            # ---- the front ----
            system.write('front.xml', front('<stanza_size>1024</stanza_size>', p=other))
            reloads = fr.count('read again')
            os.kill(fr.pid, signal.SIGHUP)
            report.check('front: SIGHUP reads the file again',
                         fr.wait_log('read again', 10, reloads + 1), fr.text()[-2000:])
            report.check('front: a changed port is named as needing a restart',
                         '<local><ip> and the ports changed: it takes effect at the next restart'
                         in fr.text(), fr.text()[-2000:])
            after = Raw.to(server)
            after.login('u2', 'pw2', 'after')
            after.send("<message to='u1@localhost/r' type='chat'><body>%s</body></message>" % BIG)
            report.check('front: a connection after the reload has the new stanza size',
                         after.read_to_close(10) and b'policy-violation' in after.data,
                         after.data[-500:])
            before.send("<message to='u1@localhost/r' type='chat'><body>%s</body></message>" % BIG)
            got_message(receiver, BIG)
            report.ok('front: a connection from before goes on as it was (its 3,000-byte message '
                      'is delivered)')

            system.certificate()
            reloads = fr.count('read again')
            os.kill(fr.pid, signal.SIGHUP)
            fr.wait_log('read again', 10, reloads + 1)
            report.check('front: a renewed certificate is what the next connection sees',
                         fingerprint(tls) != cert_before)

            system.write('front.xml', '<jadc2s>\n  <local><port>nope</port></local>\n</jadc2s>\n')
            os.kill(fr.pid, signal.SIGHUP)
            report.check('front: a file that does not load is logged, and nothing changes',
                         fr.wait_log('nothing changed', 10))
            again = Raw.to(server)
            again.login('u2', 'pw2', 'again')
            report.ok('front: logins go on after the failed reload')

            # ---- the SM ----
            sm = system.sm
            system.use_sm(sm_xml(db, services, extra='\n  <muc><nick_max>4</nick_max></muc>'))
            reloads = sm.count('read again')
            os.kill(sm.pid, signal.SIGHUP)
            report.check('SM: SIGHUP reads the file again', sm.wait_log('read again', 10,
                                                                        reloads + 1))
            before.send("<presence to='r@conference.localhost/LongNick'>"
                        "<x xmlns='http://jabber.org/protocol/muc'/></presence>")
            err = before.expect(lambda e: e.tag == q(NS_CLIENT, 'presence') and
                                e.get('type') == 'error', 'the join refused')
            report.check("SM: a module's new limit holds at once (the nick is too long now)",
                         b'not-acceptable' in ET.tostring(err), ET.tostring(err))
            system.use_sm(sm_xml(system.path('other.sqlite'), services))
            os.kill(sm.pid, signal.SIGHUP)
            report.check('SM: a changed <storage> is named as needing a restart',
                         sm.wait_log('<storage> changed: it takes effect at the next restart', 10))
            before.send("<message to='u1@localhost/r' type='chat'><body>still here</body></message>")
            got_message(receiver, 'still here')
            report.ok('SM: nobody was cut by the reloads')
        except Failure as e:
            report.not_ok('the reloads ran to their end', str(e))
        report.check('the front exits 0 on SIGTERM', fr.stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('reload', body)
