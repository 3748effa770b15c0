"""jabtest.browser — a real browser for the suites: Debian's headless Chromium, started as one of
the System's programs and driven through the Chrome DevTools Protocol on its debugging port (the
WebSocket client of jabtest.websocket: no library beyond the standard one); the npm packages a
page loads (tools/npm.sh installs them into build/npm); a static web server for the page.

    browser = Browser(system)            # Chromium on a free port, a profile in the system's dir
    browser.navigate('http://127.0.0.1:PORT/')
    browser.evaluate('1 + 1')            # 2; a promise is awaited; a thrown error is a Failure
    await browser.until('window.ready', 10)   # polls an expression until it is truthy
    browser.screenshot(path)             # the page as a PNG
    browser.console                      # what the page logged, one line a message"""

import asyncio
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request

from .proc import wait_until
from .report import Failure
from .system import ROOT, free_ports
from .websocket import TEXT, WebSocket

CHROMIUM = 'chromium'       # Debian's wrapper of /usr/lib/chromium/chromium (package chromium)
NPM_DIR = os.path.join(ROOT, 'build', 'npm')


def npm_packages():
    """tools/npm.sh: the pinned npm packages in build/npm (installed once, then reused); their
    node_modules directory. A Failure says why not."""
    r = subprocess.run(['sh', os.path.join(ROOT, 'tools', 'npm.sh'), NPM_DIR],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise Failure('tools/npm.sh:\n' + r.stdout)
    return os.path.join(NPM_DIR, 'node_modules')


class StaticServer:
    """http.server in a thread on a free loopback port, serving directory; stop() ends it."""

    def __init__(self, directory):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *_):
                pass
        handler = functools.partial(Quiet, directory=directory)
        self.port = free_ports(1)[0]
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path='/'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class DevTools(WebSocket):
    """One DevTools session on a page target: call() sends a command and returns its result,
    keeping the events that come before it (console messages in console)."""

    def __init__(self, url, timeout=30):
        # ws://127.0.0.1:PORT/devtools/page/ID
        hostport, path = url.split('://', 1)[1].split('/', 1)
        host, port = hostport.rsplit(':', 1)
        super().__init__(int(port), host=host, timeout=timeout)
        if self.handshake('/' + path, protocol=None) != 101:
            raise Failure('DevTools socket %s: HTTP status %s' % (url, self.status))
        self.serial = 0
        self.console = []

    def call(self, method, **params):
        self.serial += 1
        self.send(json.dumps({'id': self.serial, 'method': method, 'params': params}))
        while True:
            op, payload = self.recv()
            if op != TEXT:
                raise Failure('DevTools socket: frame %d (%r) during %s' % (op, payload, method))
            msg = json.loads(payload)
            if msg.get('id') == self.serial:
                if 'error' in msg:
                    raise Failure('DevTools %s: %s' % (method, msg['error']))
                return msg.get('result', {})
            self._event(msg)

    def _event(self, msg):
        params = msg.get('params', {})
        if msg.get('method') == 'Runtime.consoleAPICalled':
            self.console.append('%s: %s' % (params.get('type'), ' '.join(
                str(a.get('value', a.get('description', ''))) for a in params.get('args', []))))
        elif msg.get('method') == 'Runtime.exceptionThrown':
            details = params.get('exceptionDetails', {})
            self.console.append('exception: %s' % details.get('exception', {}).get(
                'description', details.get('text')))


class Browser:
    """Headless Chromium, one of system's programs (its log: chromium.log), with a profile in
    system's directory, and a DevTools session on its one page. It takes any certificate (a
    suite's server has a self-signed one)."""

    def __init__(self, system, seconds=30):
        self.system = system
        self.port = free_ports(1)[0]
        self.profile = system.path('chromium-profile')
        self.program = system.start([CHROMIUM, '--headless=new', '--no-sandbox',
                                     '--no-first-run', '--disable-gpu', '--disable-extensions',
                                     # the suites' servers have self-signed certificates
                                     '--ignore-certificate-errors',
                                     '--disable-dev-shm-usage', '--window-size=1280,900',
                                     '--remote-debugging-address=127.0.0.1',
                                     '--remote-debugging-port=%d' % self.port,
                                     '--user-data-dir=%s' % self.profile, 'about:blank'],
                                    'chromium.log')
        page = wait_until(self._page, seconds, step=0.1)
        if not page:
            raise Failure('Chromium gave no page on its debugging port %d within %d s:\n%s' % (
                self.port, seconds, self.program.text()[-2000:]))
        self.devtools = DevTools(page['webSocketDebuggerUrl'])
        self.devtools.call('Runtime.enable')
        self.devtools.call('Page.enable')

    def _page(self):
        if not self.program.alive():
            return None
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/json' % self.port, timeout=2) as r:
                targets = json.load(r)
        except OSError:
            return None
        return next((t for t in targets if t.get('type') == 'page'), None)

    @property
    def console(self):
        return self.devtools.console

    def navigate(self, url):
        result = self.devtools.call('Page.navigate', url=url)
        if result.get('errorText'):
            raise Failure('navigating to %s: %s' % (url, result['errorText']))

    def evaluate(self, expression):
        """expression's value in the page (JSON-able), a promise awaited; a Failure if it
        threw."""
        result = self.devtools.call('Runtime.evaluate', expression=expression,
                                    awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in result:
            d = result['exceptionDetails']
            raise Failure('the page threw on %s: %s' % (
                expression[:200], d.get('exception', {}).get('description', d.get('text'))))
        return result.get('result', {}).get('value')

    async def until(self, expression, seconds, step=0.2):
        """Evaluates expression until it is truthy (its value) or seconds pass (its last value),
        letting the event loop run in between (the suite's XMPP clients)."""
        end = time.monotonic() + seconds
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() >= end:
                return value
            await asyncio.sleep(step)

    def screenshot(self, path):
        data = self.devtools.call('Page.captureScreenshot', format='png')['data']
        with open(path, 'wb') as f:
            f.write(base64.b64decode(data))
        return path

    def stop(self):
        """Closes the DevTools session, stops Chromium and removes its profile."""
        self.devtools.close()
        self.program.stop()
        shutil.rmtree(self.profile, ignore_errors=True)
