"""jabtest.s2s — jabshard's federation box in a suite: the configuration of a jabshard-s2s
(s2s_xml, written by hand like jabtest.system's sm_xml and front_xml) and the program itself
started beside a System's SM (start_s2s); Jabshard, the whole of jabshard.test in a
jabtest.federation world (its SM, one front and jabshard-s2s, as test_federation.py and the
federation benchmark, tests/bench/peers/scenario_s2s.py, run it); and RawS2S, a remote server
driven by hand: a TLS stream (direct TLS, XEP-0368) with a client certificate, SASL EXTERNAL or a
db:result, then whatever stanzas a test wants to try, however wrong."""

import re
import socket
import ssl

from . import federation as fed
from .raw import Raw
from .system import free_ports, front_xml, secret, service, sm_xml
from .xmpp import Server, xml_escape

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


class Jabshard:
    """jabshard on jabshard.test (fed.JABSHARD_IP): the SM, one front and jabshard-s2s, in system
    (a jabtest.system.System), its certificates from world's CA (a jabtest.federation.Federation).
    level: the s2s log level (debug for the suites: their checks read it); front_limits: the
    content of the front's <limits> (None: the front's defaults); s2s_limits: more of jabshard-s2s'
    <limits> after <connect_timeout>; sm_extra: more elements of the SM's configuration. Its
    metrics endpoint is on 127.0.0.1:metrics_port."""

    DOMAIN, IP = fed.JABSHARD_DOMAIN, fed.JABSHARD_IP

    def __init__(self, system, world, connect_timeout=6, level='debug', front_limits=None,
                 s2s_limits='', sm_extra=''):
        self.system, self.world, self.sm_extra = system, world, sm_extra
        self.connect_timeout, self.level = connect_timeout, level
        self.front_limits, self.s2s_limits = front_limits, s2s_limits
        self.sm_port, self.s2s_port, self.metrics_port = free_ports(3)
        self.front_secret, self.s2s_secret = secret(), secret()
        d = self.DOMAIN
        self.cert = world.ca.cert(d, names=['conference.' + d, 'upload.' + d])
        self.bad_cert = world.ca.cert(d, valid=False)
        self.s2s = None

    def start(self, report, accounts):
        """Accounts ((JID, password) pairs) created, then the SM, the front and jabshard-s2s
        started: a check line each; False at the first that fails."""
        sys_, d = self.system, self.DOMAIN
        sys_.use_sm(sm_xml(sys_.path('jabshard.db'), [
            service('jadc2s', self.sm_port, self.front_secret, 'front'),
            service('s2s', self.s2s_port, self.s2s_secret, 's2s')],
            hosts="<host name='%s'/>" % d, extra=self.sm_extra))
        sys_.use_front('jadc2s', front_xml('jadc2s', self.front_secret, self.sm_port, self.IP,
                                           fed.C2S_PORT, fed.TLS_PORT, self.cert.pem, ids=(d,),
                                           limits=self.front_limits), fed.C2S_PORT)
        ok, out, _ = sys_.import_accounts(accounts)
        if not report.check('jabshardctl creates the accounts', ok, out):
            return False
        if not report.check('the SM starts', sys_.start_sm(seconds=15), sys_.sm and sys_.sm.text()):
            return False
        if not report.check('the front starts', sys_.start_front(seconds=15)):
            return False
        return self.start_s2s(report, 'jabshard-s2s starts and links to the SM as role s2s')

    def start_s2s(self, report, what, cert=None, policy='', limits=''):
        """(Re)starts jabshard-s2s: cert (by default the valid one), the content of <policy>,
        limits beyond the connect timeout and s2s_limits. A check line; whether it is up."""
        if self.s2s and self.s2s.alive():
            self.s2s.stop()
        d = self.DOMAIN
        conf = self.system.write('s2s.xml', s2s_xml(
            's2s', self.s2s_secret, self.sm_port, [d, 'conference.' + d, 'upload.' + d], self.IP,
            fed.S2S_PORT, fed.S2S_PORT + 1, (cert or self.cert).pem, cafile=self.world.ca.cafile,
            policy=policy, level=self.level, metrics_port=self.metrics_port,
            limits='<connect_timeout>%d</connect_timeout>%s%s' % (
                self.connect_timeout, self.s2s_limits, limits)))
        self.s2s = start_s2s(self.system, conf)
        return report.check(what, self.s2s, self.system.path('s2s.log'))

    def server(self):
        return Server(self.IP, fed.C2S_PORT, fed.TLS_PORT, self.world.ca.cafile, 15, self.DOMAIN)

    def client(self, user, pw, **kw):
        from .client import Client
        return Client('%s@%s/fed' % (user, self.DOMAIN), pw, self.server(), **kw)

    def log(self):
        return self.s2s.text() if self.s2s else ''
