"""tests/integration/test_metrics.py — the Prometheus endpoints of the SM and the front, scraped
over real HTTP while a client uses the server.

1. both answer GET /metrics in the Prometheus text format (every line a comment or
   `name{labels} value`), with the process's figures;
2. after a login, a failed login and messages: the SM counts the session, the stanzas by kind,
   the routing latency and storage's requests by operation, and its front link up; the front
   counts the login, the failure by mechanism and reason, the connection, the client's stanzas
   and its link up;
3. etc/grafana/jabshard.json queries only metrics the programs give;
4. HTTP as operators' tools and attackers use it: HEAD, 404 for another path, 405 for POST,
   keep-alive, and no more than 16 connections at once.

Usage: test_metrics.py BUILD_DIR. Prints ok/not ok lines and "metrics: N passed, N failed"."""

import asyncio
import json
import os
import re
import socket
import ssl
import urllib.error
import urllib.request

from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.web import raw_http
from jabtest.xmpp import NS_CLIENT, Server, q

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$')


def scrape(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=30) as r:
        return r.status, r.headers.get('Content-Type'), r.read().decode()


def value(text, name, labels=''):
    """The sample name{labels} (labels as written, or '' for none), or None."""
    want = name + ('{%s}' % labels if labels else '')
    for line in text.splitlines():
        if line.startswith(want + ' '):
            return float(line.split()[-1])
    return None


def total(text, name):
    """Every sample of name, summed."""
    return sum(float(l.split()[-1]) for l in text.splitlines()
               if re.match(re.escape(name) + r'(\{| )', l))


def well_formed(text):
    bad = [l for l in text.splitlines() if l and not l.startswith('#') and not SAMPLE.match(l)]
    return not bad, bad[:3]


def client(server, jid, password):
    from jabtest.client import Client
    c = Client(jid, password, server)
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    return c


def use_server(r, server):
    require_slixmpp('metrics')

    async def run():
        wrong = client(server, 'u1@localhost/w', 'not-the-password')
        try:
            await wrong.login()
        except Exception:  # noqa: BLE001 - refused as it should be; the counter says how
            pass
        a, b = client(server, 'u0@localhost/a', 'pw0'), client(server, 'u1@localhost/b', 'pw1')
        await a.login()
        await b.login()
        a.send_presence()
        b.send_presence()
        for i in range(5):
            a.send_message(mto='u1@localhost/b', mbody='m%d' % i, mtype='chat')
        for i in range(5):
            await b.expect(lambda e: e.tag == q(NS_CLIENT, 'message'), 'message %d' % i)
        return a, b

    return asyncio.run(run())


def body(report, build):
    with System(build, 'metrics', report) as system:
        sm_port, port, tls, sm_metrics, front_metrics = free_ports(5)
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             extra='\n  <metrics><ip>127.0.0.1</ip><port>%d</port></metrics>'
                             % sm_metrics))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem'),
                                            extra='<metrics><ip>127.0.0.1</ip><port>%d</port>'
                                                  '</metrics>' % front_metrics), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(2))
        if not (report.check('import 2 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        for name, p in (('SM', sm_metrics), ('front', front_metrics)):
            status, ctype, text = scrape(p)
            good, bad = well_formed(text)
            report.check('%s: GET /metrics answers 200 in the Prometheus text format' % name,
                         status == 200 and ctype.startswith('text/plain; version=0.0.4') and good,
                         (status, ctype, bad))
            report.check('%s: the process figures are there' % name,
                         value(text, 'process_resident_memory_bytes') and
                         value(text, 'process_cpu_seconds_total') is not None, text[-400:])
        server = Server('127.0.0.1', port, tls, None, wait=15)
        try:
            use_server(report, server)
        except Failure as e:
            report.not_ok('a client logs in and sends messages', str(e))
            return
        _, _, sm_text = scrape(sm_metrics)
        _, _, fr_text = scrape(front_metrics)
        report.check('SM: two attached sessions, one front link up',
                     value(sm_text, 'jabshard_sm_sessions', 'state="attached"') == 2 and
                     value(sm_text, 'jabshard_sm_links_up', 'role="front"') == 1,
                     [l for l in sm_text.splitlines() if 'sessions' in l or 'links_up' in l])
        report.check('SM: the messages counted by kind, and their routing timed',
                     value(sm_text, 'jabshard_sm_stanzas_in_total', 'kind="message"') >= 5 and
                     value(sm_text, 'jabshard_sm_route_seconds_count') >= 7,
                     [l for l in sm_text.splitlines() if 'stanzas_in' in l or 'route_seconds_c' in l])
        report.check("SM: storage's requests timed by operation (the rosters' loads)",
                     'jabshard_sm_storage_request_seconds_count{op="roster-load",driver="sqlite"}'
                     in sm_text, [l for l in sm_text.splitlines() if 'storage' in l][:8])
        report.check('front: the logins, and the wrong password by mechanism and reason',
                     value(fr_text, 'jabshard_c2s_logins_total') >= 2 and
                     value(fr_text, 'jabshard_c2s_login_failures_total',
                           'mechanism="PLAIN",reason="wrong-password"') >= 1,
                     [l for l in fr_text.splitlines() if 'login' in l and not l.endswith(' 0')])
        report.check("front: connections, the clients' stanzas and bytes, its link up",
                     total(fr_text, 'jabshard_c2s_connections') >= 2 and
                     total(fr_text, 'jabshard_c2s_stanzas_in_total') >= 7 and
                     total(fr_text, 'jabshard_c2s_bytes_in_total') > 0 and
                     value(fr_text, 'jabshard_c2s_link_up') == 1,
                     [l for l in fr_text.splitlines() if 'connections' in l or 'stanzas' in l])

        dashboard = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'etc',
                                 'grafana', 'jabshard.json')
        with open(dashboard) as f:
            exprs = [t['expr'] for p in json.load(f)['panels'] for t in p['targets']]
        used = set(re.findall(r'\b(jabshard_[a-z0-9_]+|process_[a-z_]+)', ' '.join(exprs)))
        scraped = sm_text + fr_text
        unknown = sorted(n for n in used
                         if not re.search(r'^%s(\{| )' % re.sub(r'_(bucket|sum|count)$', '', n),
                                          scraped, re.M) and n + '_bucket' not in scraped
                         and not re.search(r'^%s' % n, scraped, re.M))
        report.check("the Grafana dashboard's queries name metrics the programs give",
                     not unknown, unknown)

        text = raw_http(sm_metrics, b'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        report.check('HTTP: HEAD gets the headers and no body',
                     text.startswith('HTTP/1.1 200') and text.endswith('\r\n\r\n'), text[:200])
        text = raw_http(sm_metrics, b'GET / HTTP/1.1\r\nConnection: close\r\n\r\n')
        report.check('HTTP: another path is 404', text.startswith('HTTP/1.1 404'), text[:100])
        text = raw_http(front_metrics, b'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n')
        report.check('HTTP: POST is 405 with Allow', text.startswith('HTTP/1.1 405') and
                     'Allow: GET, HEAD' in text, text[:200])
        text = raw_http(front_metrics, b'GET /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n'
                                       b'Connection: close\r\n\r\n')
        report.check('HTTP: two requests on one connection, answered in order',
                     text.count('HTTP/1.1 404') == 2, text[:300])
        held = [socket.create_connection(('127.0.0.1', sm_metrics), timeout=5) for _ in range(16)]
        extra = socket.create_connection(('127.0.0.1', sm_metrics), timeout=5)
        try:
            refused = extra.recv(1) == b''
        except (ConnectionResetError, socket.timeout):
            refused = True
        report.check('HTTP: a 17th connection at once is closed', refused)
        for s in held + [extra]:
            s.close()
        try:
            status, _, _ = scrape(sm_metrics)
            report.check('HTTP: once they are gone, scraping works again', status == 200)
        except urllib.error.URLError as e:
            report.not_ok('HTTP: once they are gone, scraping works again', str(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('metrics', body)
