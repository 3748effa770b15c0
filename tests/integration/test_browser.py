"""tests/integration/test_browser.py — a real web client on the front's web listener: Converse.js
(the npm package, pinned in tools/npm.sh) in Debian's headless Chromium, driven through the
DevTools protocol (jabtest.browser), against the SM (with its upload service) and a front with
<http> (WebSocket, RFC 7395; BOSH, XEP-0206; the upload store), and a slixmpp client on TCP as
its contact. The page is served from another port than the front's: every request Converse
makes to the front is cross-origin.

1. Converse logs in over ws://127.0.0.1:PORT/xmpp-websocket (loopback: counted as secure) with
   its own SASL (SCRAM-SHA-256) and bind: the page says it is connected, and the SM has the
   session;
2. a message from the TCP client reaches the page (Converse's message event, then the chat
   box's text), and one typed into the chat box and sent with Enter reaches the TCP client
   intact (non-ASCII, emoji, XML's special characters);
3. presence: Converse adds the TCP user as a contact, which approves and asks back; Converse
   approves, the contact gets the browser's presence, and a status change (dnd, with a text);
   Converse shows the contact online;
4. HTTP File Upload (XEP-0363), from the browser: Converse finds upload.localhost through
   disco and shows the chat box's upload button; a file of random bytes (a non-ASCII name, a
   type of its own) is picked in its file input as a person would: Converse gets a slot, PUTs
   the file on the front (a CORS preflight) and sends the GET URL; the TCP client gets it in the
   body and in XEP-0066's <x><url>, and downloads the same bytes (SHA-256) with the page's
   Content-Type;
5. ...and to the browser: the TCP client uploads a PNG (slixmpp's xep_0363) and sends its URL;
   the page gets the message, Converse shows the image loaded from the front, and the page's
   fetch() of the URL (cross-origin: CORS) gets it intact (SHA-256 computed in the page) as
   image/png;
6. Converse logs out: the contact gets the unavailable presence, and the SM ends the session
   (Converse closes the stream: not detached for a resumption, though it enabled XEP-0198);
7. the same over wss:// on the front's <tls_port> (Chromium takes its self-signed certificate):
   Converse logs in, the contact sees it online, a message reaches the page, it logs out;
8. the same account over BOSH (bosh_service_url http://127.0.0.1:PORT/http-bind, no
   WebSocket): Converse logs in (SCRAM-SHA-256, bind) and the SM has the session, the contact
   sees it online, a message each way as in 2, and its logout ends the session in the SM.

Any failure saves a screenshot of the page and what its console logged beside the programs'
logs, and keeps them (the path is printed). Needs chromium (Debian) and npm (tools/deps.sh);
skipped in sanitizer builds (Chromium and Converse test the protocol, not memory).

Usage: test_browser.py BUILD_DIR. Prints ok/not ok lines and "browser: N passed, N failed"."""

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

from jabtest.browser import CHROMIUM, Browser, StaticServer, npm_packages
from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, sanitized, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q, xml_escape

WEB, WEB_PW = 'web@localhost', 'pw-web'
BOB, BOB_PW = 'bob@localhost', 'pw-bob'
RESOURCE = 'browser'
FULL = '%s/%s' % (WEB, RESOURCE)
TO_PAGE = 'Grüße aus TCP — ünïcødé ✓ 🎉 <b>&amp; "quoted"'
FROM_PAGE = 'Antwort aus dem Browser: ßœ∑ 日本語 😀 <i>&lt; \'single\''
STATUS = 'Bin beschäftigt ☕'
NS_OOB = 'jabber:x:oob'
UPLOAD_SECRET = 'browser-upload-secret-0123456789abcdef'
MAX_FILE_SIZE = 10_000_000
UPLOAD_NAME = 'Zufall äöü 🎲.bin'
UPLOAD_TYPE = 'application/x-jabtest-random'
UPLOAD_SIZE = 300_000

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>jabshard: Converse.js</title>
<link rel="stylesheet" href="dist/converse.min.css">
<script type="module" src="dist/converse.min.js"></script>
</head>
<body class="converse-fullscreen">
<script type="module">
window.received = [];
window.pageErrors = [];
window.addEventListener('error', e => window.pageErrors.push(String(e.message)));
converse.plugins.add('jabtest', {
    initialize() {
        const api = this._converse.api;
        window.api = api;
        api.listen.on('message', d => {
            if (d.attrs.body) window.received.push({from: d.attrs.from, body: d.attrs.body});
        });
    }
});
converse.initialize(%s);
</script>
</body>
</html>
"""


def ws_url(scheme, port):
    return '%s://127.0.0.1:%d/xmpp-websocket' % (scheme, port)


def bosh_url(port):
    return 'http://127.0.0.1:%d/http-bind' % port


def settings(transport):
    """Converse's configuration: the transport ({'websocket_url': URL} or {'bosh_service_url':
    URL}), no discovery, auto login, and nothing that prompts (OMEMO, notifications) or
    reconnects behind the test's back."""
    return dict(transport, **{
        'discover_connection_methods': False,
        'view_mode': 'fullscreen',
        'auto_login': True,
        'auto_reconnect': False,
        'jid': '%s/%s' % (WEB, RESOURCE),
        'password': WEB_PW,
        'assets_path': 'dist/',
        'i18n': 'en',
        'loglevel': 'debug',
        'whitelisted_plugins': ['jabtest'],
        'blacklisted_plugins': ['converse-omemo', 'converse-omemo-views', 'converse-push'],
        'allow_non_roster_messaging': True,
        'allow_contact_requests': True,
        'auto_subscribe': False,
        'play_sounds': False,
        'show_desktop_notifications': False,
        'message_archiving': 'never',
        'clear_cache_on_logout': True,
        'persistent_store': 'localStorage',
    })


def presence(frm, type_=None):
    """A presence from frm (a bare JID matches any of its resources) of type_ (None:
    available)."""
    def pred(e):
        f = e.get('from') or ''
        return (e.tag == q(NS_CLIENT, 'presence') and e.get('type') == type_ and
                (f == frm or f.startswith(frm + '/')))
    return pred


def text_of(el, name):
    child = el.find(q(NS_CLIENT, name))
    return child.text if child is not None else None


async def sessions_until(system, pred, seconds=10):
    """jabshardctl sessions' rows once pred(rows) holds, or the last ones after seconds."""
    end = time.monotonic() + seconds
    while True:
        _, rows = system.sessions()
        if pred(rows) or time.monotonic() >= end:
            return rows
        await asyncio.sleep(0.2)


def has_web(rows):
    return any(row[0] == FULL for row in rows)


async def login_page(r, browser, system, site, page, service, how, t0):
    """Converse on page logs in over how, to service; the SM has the session."""
    browser.navigate(site.url(page))
    state = await browser.until("window.pageErrors && window.pageErrors.length ? 'errors' : "
                                "window.api && api.connection.connected() && "
                                "api.connection.get().authenticated && api.connection.get().jid",
                                30)
    if not r.check('Converse logs in over %s and binds' % how, state == FULL,
                   '%s after %.1f s' % (state, time.monotonic() - t0), figures=True):
        raise Failure('no session: the page says %s; page errors %s' % (
            state, browser.evaluate('window.pageErrors')))
    # Converse logs every stanza at loglevel debug: its <auth> says which mechanism it chose
    # (the console holds every page's lines: this page's is the last).
    mech = re.findall(r'<auth [^>]*mechanism="([^"]+)"', '\n'.join(browser.console))
    r.check('...choosing SCRAM-SHA-256, the strongest offered',
            mech and mech[-1] == 'SCRAM-SHA-256', mech)
    transport = browser.evaluate("api.connection.get().service")
    r.check("...on the front's %s URL" % how, transport == service, transport)
    rows = await sessions_until(system, has_web)
    r.check("the SM has the browser's session", has_web(rows), rows)


async def messages(r, browser, bob, how=''):
    bob.send_message(mto=WEB, mbody=TO_PAGE, mtype='chat')
    got = await browser.until('window.received.find(m => m.body === %s)' % json.dumps(TO_PAGE), 15)
    r.check('a message from the TCP client reaches Converse intact' + how, got and
            got['from'].startswith(BOB + '/'),
            '%s; the page got %s' % (got, browser.evaluate('window.received')))
    browser.evaluate("api.chats.open(%s, {}, true).then(() => true)" % json.dumps(BOB))
    shown = await browser.until(
        "Array.from(document.querySelectorAll('.chat-msg__text')).map(e => e.textContent)"
        ".find(t => t.includes(%s))" % json.dumps(TO_PAGE), 15)
    r.check("...and Converse's chat box shows it", shown,
            browser.evaluate("document.body.innerText.slice(0, 2000)"))
    # A person types into the chat box and presses Enter.
    focused = await browser.until(
        "(() => { const t = document.querySelector('converse-chat textarea.chat-textarea');"
        " if (!t) return false; t.focus(); return document.activeElement === t; })()", 15)
    if not r.check("Converse's chat box has a text area to type in", focused,
                   browser.evaluate("document.body.innerText.slice(0, 2000)")):
        return
    browser.devtools.call('Input.insertText', text=FROM_PAGE)
    for kind in ('keyDown', 'keyUp'):
        browser.devtools.call('Input.dispatchKeyEvent', type=kind, key='Enter', code='Enter',
                              windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)
    el = await bob.expect(lambda e: e.tag == q(NS_CLIENT, 'message') and
                          text_of(e, 'body') is not None, 'the message typed in the browser')
    r.check('the message typed in the browser reaches the TCP client intact, from its full JID' +
            how, text_of(el, 'body') == FROM_PAGE and el.get('from') == FULL and
            el.get('type') == 'chat',
            'from %s type %s body %r' % (el.get('from'), el.get('type'), text_of(el, 'body')))


async def presences(r, browser, bob):
    browser.evaluate("api.contacts.add({jid: %s, name: 'Bob'}).then(() => true)" %
                     json.dumps(BOB))
    el = await bob.expect(presence(WEB, 'subscribe'), "the browser's subscription request")
    r.check("Converse's subscription request reaches the TCP client, from the bare JID",
            el.get('from') == WEB, el.get('from'))
    bob.send_raw("<presence to='%s' type='subscribed'/>" % WEB)
    bob.send_raw("<presence to='%s' type='subscribe'/>" % WEB)
    await bob.expect(presence(WEB, 'subscribed'), "Converse's approval of the request back")
    el = await bob.expect(presence(WEB), "the browser's presence once subscribed")
    r.check("...Converse approves the request back and the browser's presence follows",
            el.get('from') == FULL, el.get('from'))
    browser.evaluate("api.user.status.set('dnd', %s).then(() => true)" % json.dumps(STATUS))
    el = await bob.expect(lambda e: presence(WEB)(e) and text_of(e, 'show') == 'dnd',
                          "the browser's status change")
    r.check("the browser's status change (dnd, with a text) reaches the contact",
            el.get('from') == FULL and text_of(el, 'status') == STATUS,
            'from %s status %r' % (el.get('from'), text_of(el, 'status')))
    seen = await browser.until(
        "api.contacts.get(%s).then(c => c && c.get('subscription') === 'both' &&"
        " c.getStatus() === 'online' && c.getStatus())" % json.dumps(BOB), 15)
    r.check('Converse shows the contact online, subscribed both ways', seen == 'online',
            browser.evaluate("api.contacts.get(%s).then(c => c && [c.get('subscription'), "
                             "c.getStatus()])" % json.dumps(BOB)))


async def logout(r, browser, system, bob, how=''):
    ended = 'sm: session %s ended' % FULL
    before = system.sm.count(ended)
    browser.evaluate("api.user.logout().then(() => true)")
    await bob.expect(presence(WEB, 'unavailable'), "the browser's unavailable presence")
    r.ok('Converse logs out%s: the contact gets its unavailable presence' % how)
    # Converse closes the stream (<close/>, BOSH's terminate): the session ends, it is not kept
    # for resumption.
    rows = await sessions_until(system, lambda rows: not has_web(rows))
    r.check('...and the SM ends its session (not detached, kept for resumption)',
            not has_web(rows) and system.sm.wait_log(ended, 10, times=before + 1) and
            'session %s detached' % FULL not in system.sm.text(), rows)


async def over_tls(r, browser, system, site, https_port, bob):
    """The same account again, on wss:// (the front's <http><tls_port>), then logged out."""
    browser.navigate(site.url('/wss.html'))
    state = await browser.until("window.api && api.connection.connected() && "
                                "api.connection.get().authenticated && "
                                "api.connection.get().service", 30)
    r.check("Converse logs in again over wss:// on the front's TLS port",
            state == ws_url('wss', https_port), state)
    el = await bob.expect(presence(FULL), "the browser's presence, back over wss://")
    bob.send_message(mto=FULL, mbody=TO_PAGE + ' (wss)', mtype='chat')
    got = await browser.until('window.received.find(m => m.body === %s)' %
                              json.dumps(TO_PAGE + ' (wss)'), 15)
    r.check('...the contact sees it online and its message reaches the page',
            el.get('from') == FULL and got, browser.evaluate('window.received'))
    browser.evaluate("api.user.logout().then(() => true)")
    await bob.expect(presence(WEB, 'unavailable'), "the browser's unavailable presence")
    rows = await sessions_until(system, lambda rows: not has_web(rows))
    r.check('...and logs out', not has_web(rows), rows)


CHOOSE_FILE = """(() => {
    const bytes = Uint8Array.from(atob(%s), c => c.charCodeAt(0));
    const file = new File([bytes], %s, {type: %s});
    const input = document.querySelector('converse-chat input.fileupload');
    const chosen = new DataTransfer();
    chosen.items.add(file);
    input.files = chosen.files;
    input.dispatchEvent(new Event('change', {bubbles: true}));
    return input.files.length;
})()"""

# The upload's outcome in the chat box, once there is one: the message Converse sent with the
# file's URL (success), or the error it shows (the slot request or the PUT failed).
UPLOAD_STATE = """api.chats.get(%s).then(c => {
    const ms = c ? c.messages.models : [];
    const sent = ms.find(m => m.get('sender') === 'me' && m.get('oob_url'));
    if (sent) return {upload: 'success', url: sent.get('oob_url')};
    const error = ms.find(m => m.get('type') === 'error' || m.get('upload') === 'failure');
    return error && {upload: error.get('upload'), message: error.get('message')};
})"""

# Which element of the chat box shows url: an <img> (with its width once loaded) or a link.
SHOWN_AS = """(() => {
    const url = %s;
    const img = Array.from(document.querySelectorAll('converse-chat img'))
        .find(e => e.getAttribute('src') === url);
    if (img) return img.complete && img.naturalWidth ? 'img ' + img.naturalWidth : false;
    const a = Array.from(document.querySelectorAll('converse-chat a'))
        .find(e => e.getAttribute('href') === url);
    return a ? 'link' : false;
})()"""

# fetch() from the page's origin (another port: cross-origin), the SHA-256 in the page.
FETCH = """fetch(%s).then(async r => {
    const body = await r.arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
    return {status: r.status, type: r.headers.get('content-type'), length: body.byteLength,
            sha256: Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')};
}).catch(e => ({error: String(e)}))"""


def png(width, height):
    """A PNG of random RGB pixels."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data)))
    rows = b''.join(b'\0' + os.urandom(width * 3) for _ in range(height))
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def download(url):
    """urllib's GET of url: (status, Content-Type, body)."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers['Content-Type'], resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers['Content-Type'], e.read()


async def upload_from_page(r, browser, bob, http):
    """The chat box's upload button, given a file as a person picks one: Converse asks
    upload.localhost for a slot, PUTs the file on the front (cross-origin) and sends the URL."""
    data = os.urandom(UPLOAD_SIZE)
    button = await browser.until("!!document.querySelector('converse-chat input.fileupload')",
                                 15)
    if not r.check('Converse finds upload.localhost (disco) and shows its upload button',
                   button, browser.evaluate("document.body.innerText.slice(0, 2000)")):
        return
    browser.evaluate(CHOOSE_FILE % (json.dumps(base64.b64encode(data).decode()),
                                    json.dumps(UPLOAD_NAME), json.dumps(UPLOAD_TYPE)))
    state = await browser.until(UPLOAD_STATE % json.dumps(BOB), 30)
    if not r.check("...Converse's PUT succeeds", state and state.get('upload') == 'success',
                   '%s; the page: %s' % (state, browser.evaluate(
                       "document.body.innerText.slice(-2000)"))):
        return
    el = await bob.expect(lambda e: e.tag == q(NS_CLIENT, 'message') and
                          text_of(e, 'body') is not None, 'the file sent from the browser', 30)
    url = text_of(el, 'body')
    oob = el.find('{%s}x/{%s}url' % (NS_OOB, NS_OOB))
    r.check("a file picked in the chat box is uploaded and its GET URL reaches the TCP client, "
            "in the body and in XEP-0066's <x><url>",
            el.get('from') == FULL and url == state['url'] and
            url.startswith('http://127.0.0.1:%d/upload/' % http) and
            url.endswith('/' + urllib.parse.quote(UPLOAD_NAME, safe='')) and
            oob is not None and oob.text == url,
            'from %s body %r oob %r' % (el.get('from'), url, oob is not None and oob.text))
    status, ctype, got = download(url)
    r.check('...the TCP client downloads it intact (SHA-256), with the type the page gave',
            status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(data).digest() and
            ctype == UPLOAD_TYPE, 'status %s type %s %d bytes' % (status, ctype, len(got)))


async def upload_to_page(r, browser, bob, system):
    """The TCP client uploads an image and sends its URL; Converse shows it and the page's
    fetch() gets it."""
    from jabtest.client import http_upload
    image = png(64, 48)
    path = system.path('from-tcp.png')
    with open(path, 'wb') as f:
        f.write(image)
    url = await http_upload(bob, path, 'image/png', MAX_FILE_SIZE)
    bob.send_raw("<message to='%s' type='chat'><body>%s</body><x xmlns='%s'><url>%s</url></x>"
                 "</message>" % (FULL, xml_escape(url), NS_OOB, xml_escape(url)))
    got = await browser.until('window.received.find(m => m.body === %s)' % json.dumps(url), 15)
    r.check('the URL of an image the TCP client uploaded reaches the page', got,
            '%s; the page got %s' % (url, browser.evaluate('window.received')))
    shown = await browser.until(SHOWN_AS % json.dumps(url), 15)
    r.check('...Converse shows the image from the front in the chat box', shown == 'img 64',
            '%s; %s' % (shown, browser.evaluate("document.body.innerText.slice(-2000)")))
    fetched = browser.evaluate(FETCH % json.dumps(url))
    r.check("...and the page's fetch() gets it from the front's origin (CORS): intact (its "
            "SHA-256 in the page), image/png",
            fetched.get('status') == 200 and fetched.get('type') == 'image/png' and
            fetched.get('length') == len(image) and
            fetched.get('sha256') == hashlib.sha256(image).hexdigest(), fetched)


async def over_bosh(r, browser, system, site, http, bob, t0):
    """The same account on the front's BOSH URL: login, a message each way, logout."""
    await login_page(r, browser, system, site, '/bosh.html', bosh_url(http), 'BOSH', t0)
    r.check('...Converse uses BOSH (no WebSocket)',
            browser.evaluate("api.connection.isType('bosh')"),
            browser.evaluate("api.connection.get()._proto.constructor.name"))
    await bob.expect(presence(FULL), "the browser's presence over BOSH")
    await messages(r, browser, bob, ' over BOSH')
    await logout(r, browser, system, bob, ' over BOSH')


def scenario(r, browser, system, site, ports, server):
    from jabtest.client import Client

    async def run():
        t0 = time.monotonic()
        await login_page(r, browser, system, site, '/ws.html', ws_url('ws', ports[0]),
                         'WebSocket', t0)
        bob = Client(BOB + '/tcp', BOB_PW, server, plugins=('xep_0363',))
        bob.ssl_context.check_hostname = False
        bob.ssl_context.verify_mode = ssl.CERT_NONE
        await bob.online()
        try:
            await messages(r, browser, bob)
            await presences(r, browser, bob)
            await upload_from_page(r, browser, bob, ports[0])
            await upload_to_page(r, browser, bob, system)
            await logout(r, browser, system, bob)
            await over_tls(r, browser, system, site, ports[1], bob)
            await over_bosh(r, browser, system, site, ports[0], bob, t0)
        finally:
            await bob.logout()
        r.note('the scenario took %.1f s' % (time.monotonic() - t0))

    asyncio.run(run())


def keep_evidence(r, browser, system):
    """After a failure: the page's screenshot and console beside the programs' logs, kept."""
    try:
        path = browser.screenshot(system.path('browser-failure.png'))
        r.note('screenshot of the page: %s' % path)
    except Exception as e:  # noqa: BLE001 — the failure itself is already reported
        r.note('no screenshot: %s' % e)
    with open(system.path('browser-console.log'), 'w') as f:
        f.write('\n'.join(browser.console) + '\n')
    r.note("the page's console: %s" % system.path('browser-console.log'))
    os.environ['KEEP'] = '1'   # System keeps its directory (the logs) and says where


def body(report, build):
    if sanitized(build):
        report.note('SKIP: a browser tests the protocol, not memory: run once, without '
                    'sanitizers')
        return
    require_slixmpp('browser')
    if not shutil.which(CHROMIUM):
        report.not_ok('chromium is installed (Debian package chromium: tools/deps.sh)')
        return
    try:
        modules = npm_packages()
    except Failure as e:
        report.not_ok('tools/npm.sh installs Converse.js', str(e))
        return
    dist = os.path.join(modules, 'converse.js', 'dist')
    if not report.check('Converse.js is in build/npm', os.path.isfile(
            os.path.join(dist, 'converse.min.js')), dist):
        return
    with System(build, 'browser', report) as system:
        sm_port, port, tls, http, https = free_ports(5)
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             extra='<upload><url>http://127.0.0.1:%d/upload</url><secret>%s'
                                   '</secret><max_file_size>%d</max_file_size></upload>'
                                   % (http, UPLOAD_SECRET, MAX_FILE_SIZE)))
        system.use_front('front', front_xml(
            'front', 's', sm_port, '127.0.0.1', port, tls, system.path('none.pem'),
            extra='<http><port>%d</port><tls_port>%d</tls_port><upload><dir>%s</dir><secret>%s'
                  '</secret></upload></http>' % (http, https, system.path('files'),
                                                  UPLOAD_SECRET)), port)
        ok, out, _ = system.import_accounts([(WEB, WEB_PW), (BOB, BOB_PW)])
        if not (report.check('import 2 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts with <http>',
                             system.start_front('front', probe_port=http, seconds=10))):
            return
        www = system.path('www')
        os.mkdir(www)
        os.symlink(dist, os.path.join(www, 'dist'))
        for page, transport in (('ws', {'websocket_url': ws_url('ws', http)}),
                                ('wss', {'websocket_url': ws_url('wss', https)}),
                                ('bosh', {'bosh_service_url': bosh_url(http)})):
            with open(os.path.join(www, page + '.html'), 'w') as f:
                f.write(PAGE % json.dumps(settings(transport), indent=4))
        site = StaticServer(www)
        browser = None
        try:
            browser = Browser(system)
            report.ok('headless Chromium runs, driven through DevTools')
            report.run('the browser scenario', scenario, report, browser, system, site,
                       (http, https),
                       Server('127.0.0.1', port, tls, None, wait=15))
        except Failure as e:
            report.not_ok('headless Chromium runs, driven through DevTools', str(e))
        finally:
            if browser is not None:
                if report.failed:
                    keep_evidence(report, browser, system)
                browser.stop()
            site.stop()
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)


if __name__ == '__main__':
    main('browser', body)
