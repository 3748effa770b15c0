"""tests/integration/test_upload.py — HTTP File Upload (XEP-0363) end to end: the SM hands out
signed slots, the front's web listener takes the PUTs and serves the GETs, over real sockets.

1. slixmpp's xep_0363 plugin (the real client code: the slot request, then an aiohttp PUT)
   uploads a 3 MB file over plain HTTP and another over HTTPS; each GET returns it byte for byte,
   with its Content-Type, an inline or attachment Content-Disposition and the safety headers;
2. ranges: the first, middle and last bytes (206 with Content-Range), a range past the end
   (416), HEAD (the length, no body); a GET naming the slot with another file name is 404; a
   reader that stops midway (the file goes out with sendfile on plain HTTP): the front waits
   without spinning, the rest arrives intact, the connection answers its next request;
3. the PUT's refusals, with URLs signed by hand with the same secret (the scheme of
   docs/upload.md): a wrong signature, an expired one, a Content-Length other than the signed
   size, another Content-Type (403 each), no Content-Length (411), a signed size over the front's
   max_file_size (413), the same slot again (409), a body cut short (no file left behind);
4. the SM's refusals as the XEP has them: over max-file-size (<not-acceptable/> with
   <file-too-large/>), over the quota (<resource-constraint/>);
5. the sweep: files older than expire_after are deleted when the front starts (and hourly).

Usage: test_upload.py BUILD_DIR. Prints ok/not ok lines and "upload: N passed, N failed"."""

import asyncio
import hashlib
import hmac
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.web import raw_http

SECRET = 'test-upload-secret-0123456789abcdef'
NS_UPLOAD = 'urn:xmpp:http:upload:0'
MAX = 20_000_000
QUOTA = 12_000_000


def insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def get(url, headers=None, method='GET'):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30, context=insecure()) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def signed_put_url(base, slot, name, size, ctype, expires):
    path = '%s/%s' % (slot, name)
    msg = 'jabshard-upload-v1\n%s\n%d\n%s\n%d' % (path, size, ctype, expires)
    sig = hmac.new(SECRET.encode(), msg.encode(), hashlib.sha256).hexdigest()
    return '%s/%s/%s?e=%d&s=%d&t=%s&sig=%s' % (base, slot, urllib.parse.quote(name, safe=''),
                                               expires, size, urllib.parse.quote(ctype, safe=''),
                                               sig)


def raw_put(port, url, body, headers, send=None):
    """A PUT by hand (so a test can lie about the length, or send only `send` and stop); the
    answer's status, or None."""
    target = url.split(str(port), 1)[1]
    head = 'PUT %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n' % target
    head += ''.join('%s: %s\r\n' % kv for kv in headers.items()) + '\r\n'
    text = raw_http(port, head.encode() + (body if send is None else send),
                    half_close=send is not None and len(send) < len(body))
    return int(text.split()[1]) if text.startswith('HTTP/1.1') else None


def client(port, tls_port, jid, password):
    from jabtest.client import Client
    from jabtest.xmpp import Server
    c = Client(jid, password, Server('127.0.0.1', port, tls_port, None, wait=15))
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    c.register_plugin('xep_0363')
    return c


async def upload(c, path, ctype):
    from jabtest.client import http_upload
    return await http_upload(c, path, ctype, MAX)


async def slot_error(c, name, size):
    iq = c.Iq(stype='get', sto='upload.localhost')
    iq.append(__import__('xml.etree.ElementTree', fromlist=['Element']).fromstring(
        "<request xmlns='%s' filename='%s' size='%d' content-type='application/octet-stream'/>"
        % (NS_UPLOAD, name, size)))
    try:
        await iq.send(timeout=10)
        return None, None
    except Exception as e:  # noqa: BLE001 - an IqError carries the stanza error
        err = getattr(e, 'iq', None)
        if err is None:
            return 'no error stanza', str(e)
        return err['error']['condition'], str(err)


def client_part(r, system, port, tls_port, http, https):
    require_slixmpp('upload')
    photo = os.urandom(3_000_000)
    doc = os.urandom(1_000_001)
    results = {}

    async def run():
        c = client(port, tls_port, 'u0@localhost/up', 'pw0')
        await c.login()
        p1, p2 = system.path('photo.jpg'), system.path('notes.pdf')
        with open(p1, 'wb') as f:
            f.write(photo)
        with open(p2, 'wb') as f:
            f.write(doc)
        results['photo'] = await upload(c, p1, 'image/jpeg')
        results['doc'] = await upload(c, p2, 'application/pdf')
        results['big'] = await slot_error(c, 'big.bin', MAX + 1)
        results['quota'] = await slot_error(c, 'more.bin', QUOTA - 3_000_000)
        c.disconnect()

    asyncio.run(run())
    url = results['photo']
    r.check("slixmpp's xep_0363 uploads a 3 MB photo: a GET URL on the front",
            url.startswith('http://127.0.0.1:%d/upload/' % http), url)
    status, headers, data = get(url)
    r.check('the GET returns it byte for byte as image/jpeg, inline',
            status == 200 and data == photo and headers['Content-Type'] == 'image/jpeg' and
            headers['Content-Disposition'].startswith('inline'), (status, dict(headers)))
    r.check('with nosniff, a CSP that runs nothing, CORS',
            headers['X-Content-Type-Options'] == 'nosniff' and
            "default-src 'none'" in headers['Content-Security-Policy'] and
            headers['Access-Control-Allow-Origin'] == '*', dict(headers))
    status, headers, data = get(results['doc'].replace('http://127.0.0.1:%d' % http,
                                                       'https://127.0.0.1:%d' % https))
    r.check('a PDF over HTTPS: intact, as an attachment named notes.pdf',
            status == 200 and data == doc and
            headers['Content-Disposition'] == "attachment; filename*=UTF-8''notes.pdf",
            (status, dict(headers)))
    for rng, want in (('bytes=0-9', photo[:10]), ('bytes=1000-1999', photo[1000:2000]),
                      ('bytes=-5', photo[-5:]), ('bytes=2999990-', photo[-10:])):
        status, headers, data = get(url, {'Range': rng})
        r.check('Range %s: 206 with its bytes' % rng,
                status == 206 and data == want and headers['Content-Range'].endswith('/3000000'),
                (status, headers.get('Content-Range'), len(data)))
    status, headers, _ = get(url, {'Range': 'bytes=3000000-'})
    r.check('a range past the end: 416 naming the size',
            status == 416 and headers['Content-Range'] == 'bytes */3000000', status)
    status, headers, data = get(url, method='HEAD')
    r.check('HEAD: the length and no body',
            status == 200 and headers['Content-Length'] == '3000000' and data == b'', status)
    status, _, _ = get(url.rsplit('/', 1)[0] + '/other.jpg')
    r.check('the slot under another name: 404', status == 404, status)
    cond, text = results['big']
    r.check('a slot over max-file-size: not-acceptable with file-too-large',
            cond == 'not-acceptable' and 'file-too-large' in text and str(MAX) in text, text)
    cond, text = results['quota']
    r.check('a slot past the quota: resource-constraint', cond == 'resource-constraint', text)
    return url, photo


def refusals(r, http):
    base = 'http://127.0.0.1:%d/upload' % http
    slot = os.urandom(16).hex()
    body = b'x' * 1000
    now = int(time.time())
    good = signed_put_url(base, slot, 'a.txt', 1000, 'text/plain', now + 300)
    hdr = {'Content-Length': '1000', 'Content-Type': 'text/plain'}
    for what, url, headers, want in (
            ('a wrong signature', good[:-4] + '0000', hdr, 403),
            ('an expired slot', signed_put_url(base, slot, 'a.txt', 1000, 'text/plain', now - 5),
             hdr, 403),
            ('a length other than the signed size', good, dict(hdr, **{'Content-Length': '999'}),
             403),
            ('another Content-Type', good, dict(hdr, **{'Content-Type': 'text/html'}), 403),
            ('a size over max_file_size',
             signed_put_url(base, slot, 'a.txt', MAX + 1, 'text/plain', now + 300),
             dict(hdr, **{'Content-Length': str(MAX + 1)}), 413)):
        status = raw_put(http, url, body[:int(headers['Content-Length'])] if
                         int(headers['Content-Length']) <= 1000 else b'', headers)
        r.check('PUT refused: %s (%d)' % (what, want), status == want, status)
    status = raw_put(http, good, body, {'Content-Type': 'text/plain',
                                        'Transfer-Encoding': 'chunked'}, send=b'')
    r.check('PUT without Content-Length: 411', status == 411, status)
    status = raw_put(http, good, body, hdr, send=body[:400])
    r.check('a PUT cut short stores nothing', status in (None, 400) and
            get(base + '/%s/a.txt' % slot)[0] == 404, status)
    status = raw_put(http, good, body, hdr)
    r.check('then the whole PUT: 201', status == 201, status)
    r.check('the same slot again: 409', raw_put(http, good, body, hdr) == 409)
    status, _, data = get(base + '/%s/a.txt' % slot)
    r.check('and the file is the first one', status == 200 and data == body, status)
    return slot


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def slow_reader(r, system, url, want):
    """A client that stops reading a plain-HTTP download midway: the front waits for the socket
    (no busy loop while it is full), the rest arrives intact when it reads again, and the
    keep-alive connection answers its next request."""
    host, port = '127.0.0.1', int(url.split(':')[2].split('/')[0])
    path = '/' + url.split('/', 3)[3]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect((host, port))
    s.settimeout(10)
    s.sendall(b'GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n' % (path.encode(), host.encode(), port))
    got = b''
    while len(got) < 100_000:
        got += s.recv(65536)
    pid = system.front('front').pid
    before = cpu_seconds(pid)
    time.sleep(2)
    spent = cpu_seconds(pid) - before
    r.check('a reader that stops midway: the front waits for it without spinning',
            spent < 0.5, '%.2f CPU s in 2 s' % spent)
    head, _, data = got.partition(b'\r\n\r\n')
    while len(data) < len(want):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    r.check('then it reads the rest: 200, byte for byte',
            head.startswith(b'HTTP/1.1 200') and data == want, (head[:40], len(data)))
    s.sendall(b'HEAD %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n' % (path.encode(), host.encode(), port))
    answer = s.recv(4096)
    r.check('and the same connection answers its next request',
            answer.startswith(b'HTTP/1.1 200') and b'Content-Length: %d' % len(want) in answer,
            answer[:60])
    s.close()


def body(report, build):
    with System(build, 'upload', report) as system:
        sm_port, port, tls, http, https = free_ports(5)
        files = system.path('files')
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             extra='<upload><url>http://127.0.0.1:%d/upload</url><secret>%s'
                                   '</secret><max_file_size>%d</max_file_size><quota>%d</quota>'
                                   '</upload>' % (http, SECRET, MAX, QUOTA)))
        web = ('<http><port>%d</port><tls_port>%d</tls_port><upload><dir>%s</dir><secret>%s'
               '</secret><max_file_size>%d</max_file_size><expire_after>3600</expire_after>'
               '</upload></http>' % (http, https, files, SECRET, MAX))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem'), extra=web), port)
        ok, out, _ = system.import_accounts([('u0@localhost', 'pw0')])
        if not (report.check('import an account', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        try:
            url, photo = client_part(report, system, port, tls, http, https)
            slow_reader(report, system, url, photo)
            slot = refusals(report, http)
        except (Failure, OSError) as e:
            report.not_ok('the upload scenario ran to its end', repr(e))
            return
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        old_slot = url.split('/upload/')[1].split('/')[0]
        old = time.time() - 7200
        for name in ('meta', 'data'):
            os.utime(os.path.join(files, old_slot, name), (old, old))
        report.check('the front starts again', system.start_front('front', probe_port=tls,
                                                                  seconds=10))
        end = time.monotonic() + 10
        while time.monotonic() < end and os.path.exists(os.path.join(files, old_slot)):
            time.sleep(0.1)
        report.check('a file older than expire_after is swept away at start',
                     not os.path.exists(os.path.join(files, old_slot)), os.listdir(files))
        report.check('a younger one stays and is served',
                     get('http://127.0.0.1:%d/upload/%s/a.txt' % (http, slot))[0] == 200)
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('upload', body)
