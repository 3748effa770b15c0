"""jabtest.s2s — jabshard's federation box in a suite: the configuration of a jabshard-s2s
(s2s_xml, written by hand like jabtest.system's sm_xml and front_xml) and the program itself
started beside a System's SM (start_s2s), and RawS2S, a remote server driven by hand: a TLS
stream (direct TLS, XEP-0368) with a client certificate, SASL EXTERNAL or a db:result, then
whatever stanzas a test wants to try, however wrong."""

import re
import socket
import ssl

from .raw import Raw
from .xmpp import xml_escape

NS_SERVER = 'jabber:server'
NS_DIALBACK = 'jabber:server:dialback'
NS_STREAM = 'http://etherx.jabber.org/streams'


def s2s_xml(service_id, secret_, sm_port, domains, ip, port, tls_port, pemfile, cafile=None,
            policy='', limits='', level='debug', dialback_secret='integration dialback secret',
            metrics_port=None):
    """A jabshard-s2s configuration: linked to the SM on 127.0.0.1:sm_port as service_id, for
    domains, listening on ip:port (STARTTLS) and ip:tls_port (direct TLS), with pemfile, cafile
    (extra trust anchors), the contents of <policy> and <limits>, and a metrics endpoint on
    127.0.0.1:metrics_port if given."""
    return """<?xml version="1.0" encoding="UTF-8"?>
<s2s>
  <sm><host>127.0.0.1</host><port>%d</port><secret>%s</secret><id>%s</id><retries>3</retries></sm>
  <local>
    %s<ip>%s</ip><port>%d</port><tls_port>%d</tls_port>
    <pemfile>%s</pemfile>%s
  </local>
  <dialback_secret>%s</dialback_secret>
  <policy>%s</policy>
  <limits>%s</limits>%s
  <log><level>%s</level></log>
</s2s>
""" % (sm_port, secret_, service_id, ''.join('<id>%s</id>' % d for d in domains), ip, port,
       tls_port, pemfile, '<cafile>%s</cafile>' % cafile if cafile else '', dialback_secret,
       policy, limits,
       '\n  <metrics><ip>127.0.0.1</ip><port>%d</port></metrics>' % metrics_port
       if metrics_port else '', level)


def start_s2s(system, conf, log='s2s.log', seconds=20):
    """jabshard-s2s on conf (a path) as one of system's programs, once its SM link is up; None
    if it is not."""
    before = system_log_count(system, log, 'SM link: up')
    p = system.start([system.binary('jabshard-s2s'), '-c', conf], log)
    if not p.wait_log('SM link: up', seconds, before + 1):
        return None
    return p


def system_log_count(system, log, needle):
    try:
        with open(system.path(log)) as f:
            return f.read().count(needle)
    except OSError:
        return 0


class RawS2S(Raw):
    """A remote server's stream to jabshard-s2s over direct TLS from the first byte, presenting
    certfile/keyfile as its certificate and checking jabshard's against cafile."""

    @classmethod
    def direct(cls, host, port, cafile, certfile=None, keyfile=None, server_name=None, wait=5.0):
        ctx = ssl.create_default_context(cafile=cafile)
        if certfile:
            ctx.load_cert_chain(certfile, keyfile)
        sock = socket.create_connection((host, port), timeout=wait)
        sock = ctx.wrap_socket(sock, server_hostname=server_name)
        return cls(sock, wait, server_name)

    def open_s2s(self, from_, to):
        self.send(("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' "
                   "xmlns:db='%s' from='%s' to='%s' version='1.0'>"
                   % (NS_SERVER, NS_STREAM, NS_DIALBACK, from_, to)).encode())

    def stream_id(self):
        m = re.search(rb"<stream:stream[^>]*\sid=['\"]([^'\"]+)", self.data)
        return m.group(1) if m else None

    def sasl_external(self, domain):
        """SASL EXTERNAL as domain; True on <success/> (the stream is then restarted)."""
        import base64
        self.send(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>%s"
                   "</auth>" % base64.b64encode(domain.encode()).decode()).encode())
        self.read_until(r'<(success|failure)', 'the SASL outcome')
        return b'<success' in self.data

    def db_result(self, from_, to, key):
        self.send(("<db:result from='%s' to='%s'>%s</db:result>"
                   % (from_, to, xml_escape(key))).encode())
        m = self.read_until(r"<db:result[^>]*type=['\"](\w+)", 'the db:result answer', 15)
        return m.group(1) if m else None
