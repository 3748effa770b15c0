"""tests/integration/test_browser.py — a real web client on the front's WebSocket listener
(RFC 7395): Converse.js (the npm package, pinned in tools/npm.sh) in Debian's headless Chromium,
driven through the DevTools protocol (jabtest.browser), against the SM and a front with <http>,
and a slixmpp client on TCP as its contact.

1. Converse logs in over ws://127.0.0.1:PORT/xmpp-websocket (loopback: counted as secure) with
   its own SASL (SCRAM-SHA-256) and bind: the page says it is connected, and the SM has the
   session;
2. a message from the TCP client reaches the page (Converse's message event, then the chat
   box's text), and one typed into the chat box and sent with Enter reaches the TCP client
   intact (non-ASCII, emoji, XML's special characters);
3. presence: Converse adds the TCP user as a contact, which approves and asks back; Converse
   approves, the contact gets the browser's presence, and a status change (dnd, with a text);
   Converse shows the contact online;
4. Converse logs out: the contact gets the unavailable presence, and the SM ends the session
   (Converse closes the stream: not detached for a resumption, though it enabled XEP-0198);
5. the same over wss:// on the front's <tls_port> (Chromium takes its self-signed certificate):
   Converse logs in, the contact sees it online, a message reaches the page, it logs out.

Any failure saves a screenshot of the page and what its console logged beside the programs'
logs, and keeps them (the path is printed). Needs chromium (Debian) and npm (tools/deps.sh);
skipped in sanitizer builds (Chromium and Converse test the protocol, not memory).

Usage: test_browser.py BUILD_DIR. Prints ok/not ok lines and "browser: N passed, N failed"."""

import asyncio
import json
import os
import re
import shutil
import ssl
import time

from jabtest.browser import CHROMIUM, Browser, StaticServer, npm_packages
from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, sanitized, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q

WEB, WEB_PW = 'web@localhost', 'pw-web'
BOB, BOB_PW = 'bob@localhost', 'pw-bob'
RESOURCE = 'browser'
FULL = '%s/%s' % (WEB, RESOURCE)
TO_PAGE = 'Grüße aus TCP — ünïcødé ✓ 🎉 <b>&amp; "quoted"'
FROM_PAGE = 'Antwort aus dem Browser: ßœ∑ 日本語 😀 <i>&lt; \'single\''
STATUS = 'Bin beschäftigt ☕'

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


def settings(url):
    """Converse's configuration: the WebSocket URL, no discovery, auto login, and nothing that
    prompts (OMEMO, notifications) or reconnects behind the test's back."""
    return {
        'websocket_url': url,
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
    }


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


async def login_page(r, browser, system, site, http_port, t0):
    browser.navigate(site.url('/ws.html'))
    state = await browser.until("window.pageErrors && window.pageErrors.length ? 'errors' : "
                                "window.api && api.connection.connected() && "
                                "api.connection.get().authenticated && api.connection.get().jid",
                                30)
    if not r.check('Converse logs in over WebSocket and binds', state == FULL,
                   '%s after %.1f s' % (state, time.monotonic() - t0), figures=True):
        raise Failure('no session: the page says %s; page errors %s' % (
            state, browser.evaluate('window.pageErrors')))
    # Converse logs every stanza at loglevel debug: its <auth> says which mechanism it chose.
    mech = re.search(r'<auth [^>]*mechanism="([^"]+)"', '\n'.join(browser.console))
    r.check('...choosing SCRAM-SHA-256, the strongest offered', mech and
            mech.group(1) == 'SCRAM-SHA-256', mech and mech.group(0))
    transport = browser.evaluate("api.connection.get().service")
    r.check("...on the front's WebSocket URL",
            transport == ws_url('ws', http_port), transport)
    rows = await sessions_until(system, has_web)
    r.check("the SM has the browser's session", has_web(rows), rows)


async def messages(r, browser, bob):
    bob.send_message(mto=WEB, mbody=TO_PAGE, mtype='chat')
    got = await browser.until('window.received.find(m => m.body === %s)' % json.dumps(TO_PAGE), 15)
    r.check('a message from the TCP client reaches Converse intact', got and
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
    r.check('the message typed in the browser reaches the TCP client intact, from its full JID',
            text_of(el, 'body') == FROM_PAGE and el.get('from') == FULL and
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


async def logout(r, browser, system, bob):
    browser.evaluate("api.user.logout().then(() => true)")
    await bob.expect(presence(WEB, 'unavailable'), "the browser's unavailable presence")
    r.ok('Converse logs out: the contact gets its unavailable presence')
    # Converse closes the stream (<close/>): the session ends, it is not kept for resumption.
    rows = await sessions_until(system, lambda rows: not has_web(rows))
    ended = system.sm.wait_log('sm: session %s ended' % FULL, 10)
    r.check('...and the SM ends its session (not detached, kept for resumption)',
            not has_web(rows) and ended and
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


def scenario(r, browser, system, site, ports, server):
    from jabtest.client import Client

    async def run():
        t0 = time.monotonic()
        await login_page(r, browser, system, site, ports[0], t0)
        bob = Client(BOB + '/tcp', BOB_PW, server)
        bob.ssl_context.check_hostname = False
        bob.ssl_context.verify_mode = ssl.CERT_NONE
        await bob.online()
        try:
            await messages(r, browser, bob)
            await presences(r, browser, bob)
            await logout(r, browser, system, bob)
            await over_tls(r, browser, system, site, ports[1], bob)
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
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')]))
        system.use_front('front', front_xml(
            'front', 's', sm_port, '127.0.0.1', port, tls, system.path('none.pem'),
            extra='<http><port>%d</port><tls_port>%d</tls_port></http>' % (http, https)), port)
        ok, out, _ = system.import_accounts([(WEB, WEB_PW), (BOB, BOB_PW)])
        if not (report.check('import 2 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts with <http>',
                             system.start_front('front', probe_port=http, seconds=10))):
            return
        www = system.path('www')
        os.mkdir(www)
        os.symlink(dist, os.path.join(www, 'dist'))
        for scheme, p in (('ws', http), ('wss', https)):
            with open(os.path.join(www, scheme + '.html'), 'w') as f:
                f.write(PAGE % json.dumps(settings(ws_url(scheme, p)), indent=4))
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
