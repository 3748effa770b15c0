"""jabtest.client — Client, a slixmpp client (Debian's python3-slixmpp) that pins the server's
certificate and records every stanza it receives, in order, so that a scenario can wait for the
one it expects (expect) and check afterwards what must not have arrived; Recorder, that recording
for any slixmpp stream (a suite's ComponentXMPP too).

slixmpp's own logging (its complaints about connections a scenario cut on purpose) is shown only
with XMPP_DEBUG=1 in the environment, and then all of it, wire traffic included."""

import asyncio
import copy
import logging
import os
import time

# Before slixmpp is imported: it logs a warning about its stringprep at import time.
if os.environ.get('XMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, format='    %(name)s: %(message)s')
else:
    logging.disable(logging.CRITICAL)

import slixmpp  # noqa: E402

from .report import Failure  # noqa: E402
from .xmpp import NS_CLIENT, q, show, xml_escape  # noqa: E402


class Recorder:
    """Mixed into a slixmpp stream class before it: keeps every element received (received) and
    lets a scenario wait for one, for at most wait seconds."""

    def _record(self, wait):
        self.wait = wait
        self.received = []
        self._arrived = asyncio.Event()

    def incoming_filter(self, xml):
        xml = super().incoming_filter(xml)
        self.received.append(copy.deepcopy(xml))
        self._arrived.set()
        return xml

    async def expect(self, pred, what, timeout=None):
        """Waits for, removes and returns the first received element for which pred is true."""
        deadline = time.monotonic() + (self.wait if timeout is None else timeout)
        while True:
            for i, el in enumerate(self.received):
                if pred(el):
                    del self.received[i]
                    return el
            left = deadline - time.monotonic()
            if left <= 0:
                recent = ' | '.join(show(e) for e in self.received[-4:]) or 'nothing'
                raise Failure('%s did not get %s (unclaimed stanzas: %s)' %
                              (self.boundjid.bare, what, recent))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass


class Client(Recorder, slixmpp.ClientXMPP):
    """A slixmpp client of server (a jabtest.xmpp.Server) over TLS, checking the server's
    certificate against server.cafile.

    slixmpp 1.8 can authenticate to us with PLAIN only: its SCRAM -PLUS variants know only the
    tls-unique channel binding, which TLS 1.3 does not have, and its plain SCRAM then sends the
    'y' flag ("I could bind, the server cannot") while we advertise -PLUS, which the server must
    and does refuse as a possible downgrade (RFC 5802 §6). So mech defaults to PLAIN; None leaves
    the choice to slixmpp."""

    def __init__(self, jid, password, server, mech='PLAIN', plugins=()):
        super().__init__(jid, password, sasl_mech=mech)
        self.target = server   # not .server: slixmpp has that (its domain)
        self._record(server.wait)
        for p in plugins:
            self.register_plugin(p)
        if server.cafile:
            self.ssl_context.load_verify_locations(server.cafile)
        # Subscriptions are the scenarios' business, not the library's.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.auth_failures = []
        self.stream_errors = []
        self.end_of_stream = False   # the server sent </stream:stream>
        self.started = self.loop.create_future()
        self.started.add_done_callback(lambda f: f.cancelled() or f.exception())  # no warning
        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('failed_auth', lambda st: self.auth_failures.append(st['condition']))
        self.add_event_handler('stream_error', lambda e: self.stream_errors.append(e['condition']))
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('connection_failed', self._on_connection_failed)
        self._serial = 0

    def _on_session_start(self, _):
        if not self.started.done():
            self.started.set_result(True)

    def _on_disconnected(self, reason):
        # slixmpp gives this reason when it saw the server's closing tag (and aborted at once,
        # so whether the server's FIN or our close comes first is a race of no interest).
        if reason == 'End of stream':
            self.end_of_stream = True
        if not self.started.done():
            why = 'disconnected before the session started'
            if self.auth_failures:
                why += '; SASL failures: %s' % ', '.join(self.auth_failures)
            if self.stream_errors:
                why += '; stream errors: %s' % ', '.join(self.stream_errors)
            self.started.set_exception(Failure(why))

    def _on_connection_failed(self, err):
        if not self.started.done():
            self.started.set_exception(Failure('cannot connect: %s' % err))
        self.cancel_connection_attempt()

    def next_id(self, prefix='t'):
        self._serial += 1
        return '%s%d' % (prefix, self._serial)

    async def login(self, direct_tls=False, port=None):
        """Connects (STARTTLS on the server's port, or direct TLS on its TLS port; port
        overrides either), authenticates and binds; raises Failure if that does not happen
        within the server's wait."""
        port = port or (self.target.tls_port if direct_tls else self.target.port)
        self.connect((self.target.host, port), use_ssl=direct_tls, force_starttls=not direct_tls)
        try:
            await asyncio.wait_for(asyncio.shield(self.started), self.wait)
        except asyncio.TimeoutError:
            self.abort()
            raise Failure('%s: no session within %s s (SASL failures %s, stream errors %s)' %
                          (self.boundjid, self.wait, self.auth_failures, self.stream_errors))
        return self

    async def online(self, priority=None):
        """Logs in and sends initial presence (with priority, if given)."""
        await self.login()
        self.send_raw('<presence>%s</presence>' % (
            '' if priority is None else '<priority>%d</priority>' % priority))
        return self

    async def logout(self):
        if self.transport:
            await asyncio.wait_for(self.disconnect(wait=self.wait), self.wait + 1)

    async def expect_id(self, sid, what):
        return await self.expect(lambda el: el.get('id') == sid and el.tag in (
            q(NS_CLIENT, 'iq'), q(NS_CLIENT, 'message'), q(NS_CLIENT, 'presence')), what)

    async def iq(self, type_, payload, to=None, what='the answer'):
        """Sends <iq type=type_ to=to>payload</iq> and returns the answer's element."""
        sid = self.next_id('iq')
        self.send_raw("<iq type='%s' id='%s'%s>%s</iq>" % (
            type_, sid, " to='%s'" % xml_escape(to) if to else '', payload))
        return await self.expect_id(sid, '%s (iq %s)' % (what, sid))


async def http_upload(c, path, ctype, max_file_size, service='upload.localhost'):
    """Uploads the file at path with c's xep_0363 plugin (registered) and returns its GET URL.

    Debian's slixmpp 1.8.3 cannot find the service itself on Python 3.11 (its disco search
    passes coroutines to asyncio.wait): the service is named here, with the max_file_size it
    announces; the rest of the plugin, slot request and PUT (aiohttp), runs."""
    plugin = c['xep_0363']
    if plugin.upload_service is None:
        info = await c['xep_0030'].get_info(jid=service, timeout=10)
        plugin.upload_service = info['from']
        plugin.max_file_size = max_file_size
    return await plugin.upload_file(path, content_type=ctype, timeout=60)
