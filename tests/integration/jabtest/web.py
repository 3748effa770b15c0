"""jabtest/web.py — what the web listener's suites share (test_websocket, test_bosh,
test_upload, test_metrics): HTTP by hand, and a front whose plain-HTTP clients do not count as
secure."""

import socket
import ssl

from .system import front_xml


def raw_http(port, request, tls=False, half_close=False):
    """Sends request (bytes) to 127.0.0.1:port, over TLS (no certificate check) if asked, then
    (half_close) shuts its sending side, and returns everything answered until the server closes
    or is quiet 5 s (a HEAD: until the end of the head)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname='localhost')
    s.sendall(request)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    data = b''
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b'\r\n\r\n' in data and request.startswith(b'HEAD'):
                break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    return data.decode(errors='replace')


def strict_front(report, system, sm_port, port, tls, web_port, what, probe):
    """A second front (stop the first before: it takes the same XMPP ports) with plain HTTP on
    web_port and an empty <secure_from>: probe(web_port) must give 403 (TLS is required). The
    checks are report's; the front is stopped after."""
    system.use_front('strict', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                         system.path('none.pem'),
                                         extra='<http><port>%d</port><tls_port>0</tls_port>'
                                               '<secure_from/></http>' % web_port), port)
    if not report.check('a front with an empty <secure_from> starts',
                        system.start_front('strict', probe_port=tls, seconds=10)):
        return
    status = probe(web_port)
    report.check('%s on plain HTTP from an address not counted as secure: 403 (TLS is required)'
                 % what, status == 403, status)
    report.check('it exits 0 on SIGTERM', system.front('strict').stop() == 0)
