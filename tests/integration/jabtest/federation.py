"""jabtest.federation — the world a federation suite runs in: jabshard (jabshard.test, 127.0.0.2,
started by the suite through jabtest.system) beside a real Prosody (prosody.test, 127.0.0.3) and a
real ejabberd (ejabberd.test, 127.0.0.4), Debian's packages, found through a real DNS server.

What it owns:

  enter_namespace(name)   at the top of a suite: re-executes it under
                          unshare --net --mount --propagation private (once: the environment
                          variable JABTEST_FEDERATION_NETNS marks the inside), brings lo up and
                          bind-mounts a generated /etc/resolv.conf (nameserver 127.0.0.1) and
                          /etc/hosts (the localhost lines and this machine's name) over the real
                          ones, in the new mount namespace only. The suite then owns every
                          address of 127.0.0.0/8 and every port (53, 5222, 5269...) whatever the
                          machine runs. Without the right to unshare (not root): a "# SKIP" line,
                          "NAME: 0 passed, 0 failed", exit status 0, the harness's skip.
  Federation(name)        a context manager owning one temporary directory (0755, the service
                          users read their configurations there) and all below, stopped by PID
                          and removed on exit (kept with KEEP=1 in the environment):
    .ca                   Ca: the test CA. .cafile is what every server and client trusts;
                          .cert(domain, valid=True, names=None) -> Cert, a key and certificate
                          for DNS:domain (and names) signed by the CA; valid='self-signed' (or
                          False) signs it with its own key; valid='other-name' has the CA sign
                          it for not-DOMAIN instead.
    .dns                  Dns: unbound on 127.0.0.1:53, serving zone-file lines
                          (.start(records), .restart(records), .stop()); every name of no
                          record is NXDOMAIN at once (no recursion: the namespace has no way out).
    .prosody(**options)   a Prosody (not started): .start(), .register(user, password),
    .ejabberd(**options)  an ejabberd (not started), the same API.
    .leftovers()          PIDs of processes whose command line names the directory (after
                          cleanup: none may be left).
  records(domain, ip, host=None, s2s_port=5269, c2s_port=5222, ttl=300)
                          the zone-file lines of an XMPP domain: _xmpp-server._tcp and
                          _xmpp-client._tcp SRV records to host (xmpp.DOMAIN), and its A record.
  standard_records()      records() of jabshard.test, prosody.test and ejabberd.test.
  query(name, qtype)      a one-question UDP DNS client: (rcode name, answer count) or None.
  in_namespace()          the other live processes in our network namespace (after cleanup:
                          none); host_file(path): a file as the machine outside sees it.

A server (Prosody, Ejabberd: Peer) takes as keyword options: domain, ip, cert (a Cert; by default
a valid one from the CA), secure_auth (True: certificates only, no dialback: Prosody's
s2s_secure_auth = true without mod_dialback, ejabberd without mod_s2s_dialback; False: dialback
allowed when a certificate does not do), debug (its log at debug level; by default when
FEDERATION_DEBUG is set), extra (more configuration lines, top level: Lua or YAML), modules
(Prosody only: more modules to enable, e.g. ('s2s_bidi',) for XEP-0288), accounts
(peerlib.Cred: SCRAM-SHA-1 keys written straight into its storage at start, as the peer
benchmark does: thousands in a second where .register() takes one each; ejabberd then
authenticates from an SQLite database, server_ejabberd.write_accounts). Both
require STARTTLS on c2s (port 5222; direct TLS on 5223) and s2s (port 5269), and trust the CA
(Prosody: the global ssl = { cafile }; ejabberd: s2s_cafile and ca_file). .restart(**options)
changes options and restarts on the same data (accounts stay). .client(user, password,
resource='fed', wait=15, verify=None) is a jabtest.client.Client (slixmpp) of that server
checking its certificate against cert.trust (not at all with verify=False, or by default when
the certificate is for another name); .server() is its jabtest.xmpp.Server; .jid(user);
.log() its logs so far; .wait_log(needle, seconds). Ejabberd.ctl(*command): ejabberdctl.

Example (a suite; jabshard's records beside the peers'):

    from jabtest import federation as fed
    fed.enter_namespace('federation')          # before anything else
    ...
    with fed.Federation('federation') as world:
        world.dns.start(fed.records('jabshard.test', '127.0.0.2') +
                        fed.records('prosody.test', fed.PROSODY_IP))
        prosody = world.prosody(secure_auth=True)
        prosody.start()
        prosody.register('alice', 'pw')
        jabshard_pem = world.ca.cert('jabshard.test').pem    # for jabshard-s2s
        alice = await prosody.client('alice', 'pw').login()

The self-check, which proves the world without jabshard (both peers federating through SRV
records, dialback and certificates, then a bad certificate refused):

    cd tests/integration && /usr/bin/python3 -m jabtest.federation selfcheck

What bites (found building this):
  - libunbound (Prosody's lua-unbound; jabshard-s2s's libunbound too) has built-in local zones
    (RFC 6761): it answers NXDOMAIN for all of "test." itself, never asking 127.0.0.1. Prosody
    here gets unbound = { options = { ["local-zone:"] = "test. transparent" } };
    jabshard-s2s needs ub_ctx_set_option(ctx, "local-zone:", "test. transparent") (with
    "test. nodefault" lua-unbound still answered NXDOMAIN). Our unbound server's explicit
    static zones override its own default.
  - Prosody delivers an inbound subscription approval (and roster pushes) only to "interested"
    resources, those that fetched the roster (RFC 6121 2.1.6): a client must get it first.
  - Prosody's direct TLS port gets its own certificate (c2s_direct_tls_ssl): a client
    connecting to an address sends no SNI, and the per-host certificate is chosen by SNI.
  - After a failed s2s connection ejabberd bounces stanzas to that domain for a while
    (s2s_max_retry_delay, 5 s here instead of 300) before it tries again; Prosody retries at
    the next stanza. Resolvers cache records for their TTL (records(ttl=...)).
  - Both bounce with remote-server-timeout on a refused certificate, at once; the reason is in
    their logs only ("certificate is not trusted", "Certificate host name mismatch").

The servers run as their service users, as the peer benchmark runs them: its helpers
(tests/bench/peers/peerlib.py: spawn, stop, chown_tree; server_ejabberd.py: ejabberdctl's
command line, its ejabberdctl.cfg template) are shared, not copied."""

import asyncio
import os
import pwd
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from .proc import alive, comm, wait_until
from .report import Failure, Report
from .system import ROOT, Workdir, read

sys.path.insert(0, os.path.join(ROOT, 'tests', 'bench', 'peers'))
import peerlib  # noqa: E402
import server_ejabberd  # noqa: E402
import server_prosody  # noqa: E402

MARK = 'JABTEST_FEDERATION_NETNS'
JABSHARD_DOMAIN, JABSHARD_IP = 'jabshard.test', '127.0.0.2'
PROSODY_DOMAIN, PROSODY_IP = 'prosody.test', '127.0.0.3'
EJABBERD_DOMAIN, EJABBERD_IP = 'ejabberd.test', '127.0.0.4'
C2S_PORT, TLS_PORT, S2S_PORT = 5222, 5223, 5269


# ---- the namespace -------------------------------------------------------------------------------

def _skip(name, why):
    report = Report(name)
    report.note('SKIP: %s' % why)
    sys.exit(report.finish())


def enter_namespace(name, hosts=()):
    """Runs the rest of this script in a network and mount namespace of its own (see the module's
    docstring). hosts: more "IP NAME" lines for the generated /etc/hosts. Returns inside."""
    if os.environ.get(MARK) != '1':
        if not shutil.which('unshare'):
            _skip(name, 'no unshare (util-linux) to make a private network')
        probe = subprocess.run(['unshare', '--net', '--mount', 'true'], capture_output=True,
                               text=True)
        if probe.returncode != 0:
            _skip(name, 'not allowed to unshare a network and mount namespace (root, or '
                        'CAP_SYS_ADMIN, is needed): %s' % probe.stderr.strip())
        sys.stdout.flush()
        # orig_argv: "-m jabtest.federation" stays a module run (relative imports).
        os.execvpe('unshare', ['unshare', '--net', '--mount', '--propagation', 'private', '--',
                               sys.executable] + sys.orig_argv[1:], dict(os.environ, **{MARK: '1'}))
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    keep = [line for line in read('/etc/hosts').splitlines()
            if 'localhost' in line.split('#')[0]] or ['127.0.0.1 localhost', '::1 localhost']
    me = socket.gethostname()
    text = {'resolv.conf': 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n',
            'hosts': '\n'.join(keep + ['127.0.1.1 %s' % me] + list(hosts)) + '\n'}
    # A bind mount holds the file's inode: the directory can go at once.
    tmp = tempfile.mkdtemp(prefix='jabtest-netns.')
    try:
        for base, content in text.items():
            path = os.path.join(tmp, base)
            with open(path, 'w') as f:
                f.write(content)
            os.chmod(path, 0o644)
            subprocess.run(['mount', '--bind', path, '/etc/' + base], check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def in_namespace():
    """PIDs of the other live processes in our network namespace (inside it: ours)."""
    me = os.readlink('/proc/self/ns/net')
    out = []
    for entry in os.listdir('/proc'):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if os.readlink('/proc/%s/ns/net' % entry) == me and alive(int(entry)):
                    out.append(int(entry))
            except OSError:
                pass
    return out


def host_file(path):
    """A file as the machine outside our mount namespace sees it (PID 1's root; the PID
    namespace is not ours alone)."""
    return read('/proc/1/root' + path)


# ---- DNS -----------------------------------------------------------------------------------------

QTYPES = {'A': 1, 'NS': 2, 'SOA': 6, 'TXT': 16, 'AAAA': 28, 'SRV': 33}
RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED'}


def query(name, qtype='A', server='127.0.0.1', port=53, timeout=1.0):
    """One question over UDP: (rcode name, answer count), or None without an answer."""
    qid = random.getrandbits(16)
    qname = b''.join(bytes([len(label)]) + label.encode()
                     for label in name.rstrip('.').split('.')) + b'\0'
    packet = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0) + qname + \
        struct.pack('>HH', QTYPES[qtype], 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(packet, (server, port))
        while True:
            data = s.recv(4096)
            if len(data) >= 12 and struct.unpack('>H', data[:2])[0] == qid:
                flags, _, ancount = struct.unpack('>HHH', data[2:8])
                return RCODES.get(flags & 15, str(flags & 15)), ancount
    except OSError:
        return None
    finally:
        s.close()


def standard_records(ttl=300):
    """records() of jabshard.test, prosody.test and ejabberd.test at their addresses."""
    return [r for domain, ip in ((JABSHARD_DOMAIN, JABSHARD_IP), (PROSODY_DOMAIN, PROSODY_IP),
                                 (EJABBERD_DOMAIN, EJABBERD_IP)) for r in records(domain, ip, ttl=ttl)]


def records(domain, ip, host=None, s2s_port=S2S_PORT, c2s_port=C2S_PORT, ttl=300):
    """Zone-file lines for an XMPP domain served at ip: SRV records (s2s and c2s) naming host
    (xmpp.DOMAIN by default) and its A record."""
    host = host or 'xmpp.' + domain
    return ['_xmpp-server._tcp.%s. %d IN SRV 0 5 %d %s.' % (domain, ttl, s2s_port, host),
            '_xmpp-client._tcp.%s. %d IN SRV 0 5 %d %s.' % (domain, ttl, c2s_port, host),
            '%s. %d IN A %s' % (host, ttl, ip)]


UNBOUND_CONF = """server:
    interface: 127.0.0.1
    port: 53
    do-ip6: no
    num-threads: 1
    username: ""
    chroot: ""
    directory: "%(dir)s"
    pidfile: ""
    use-syslog: no
    logfile: "%(dir)s/unbound.log"
    verbosity: 1
    log-queries: yes
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    local-zone: "." static
%(zones)s
%(data)s
"""


class Dns:
    """unbound in the foreground (-d) on 127.0.0.1:53, its configuration and log in directory:
    every record given, each test domain a static local zone, all else NXDOMAIN."""

    def __init__(self, directory):
        self.dir = directory
        self.proc = None
        self.records = []

    def start(self, records_, zones=None, timeout=15):
        """Serves records_ (zone-file lines); zones: the static local zones (by default the last
        two labels of every record's name). Returns once it answers; raises Failure if not."""
        self.records = list(records_)
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        names = [r.split()[0].rstrip('.') for r in self.records]
        if zones is None:
            zones = sorted({'.'.join(n.split('.')[-2:]) for n in names})
        conf = os.path.join(self.dir, 'unbound.conf')
        with open(conf, 'w') as f:
            f.write(UNBOUND_CONF % {
                'dir': self.dir,
                'zones': '\n'.join('    local-zone: "%s." static' % z for z in zones),
                'data': '\n'.join('    local-data: "%s"' % r.replace('"', '\\"')
                                  for r in self.records)})
        check = subprocess.run(['unbound-checkconf', conf], capture_output=True, text=True)
        if check.returncode != 0:
            raise Failure('unbound-checkconf %s:\n%s' % (conf, check.stdout + check.stderr))
        self.proc = peerlib.spawn(['/usr/sbin/unbound', '-d', '-c', conf],
                                  os.path.join(self.dir, 'stdout'))
        probe = names[0] if names else 'localhost'
        if not wait_until(lambda: query(probe, 'SOA', timeout=0.3) or not alive(self.proc.pid),
                          timeout, 0.1) or not alive(self.proc.pid):
            raise Failure('unbound does not answer on 127.0.0.1:53: %s' % self.log()[-2000:])
        return self

    def restart(self, records_, zones=None):
        self.stop()
        return self.start(records_, zones)

    def stop(self):
        if self.proc:
            peerlib.stop([self.proc.pid], grace=5)
            self.proc = None

    def log(self):
        return read(os.path.join(self.dir, 'unbound.log')) + read(os.path.join(self.dir, 'stdout'))


# ---- certificates --------------------------------------------------------------------------------

class Cert:
    """One key and certificate: certfile, keyfile, pem (both: ejabberd's, jabshard's form);
    trust, the file a peer must trust to accept it (the CA's, or itself when self-signed);
    kind: 'valid', 'self-signed' or 'other-name'."""

    def __init__(self, base, kind, trust):
        self.certfile, self.keyfile, self.pem = base + '.crt', base + '.key', base + '.pem'
        self.kind, self.trust = kind, trust


def _openssl(*args):
    r = subprocess.run(['openssl'] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure('openssl %s:\n%s' % (args[0], r.stdout + r.stderr))


class Ca:
    """The test CA (P-256, valid 7 days) in directory; cafile is its certificate."""

    NEWKEY = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes')
    LEAF_EXT = ('basicConstraints=critical,CA:FALSE\n'
                'keyUsage=critical,digitalSignature,keyEncipherment\n'
                'extendedKeyUsage=serverAuth,clientAuth\n'
                'subjectAltName=%s\n')

    def __init__(self, directory, name='jabtest federation CA'):
        self.dir = directory
        os.makedirs(directory, mode=0o755, exist_ok=True)
        self.cafile, self.cakey = self.path('ca.pem'), self.path('ca.key')
        _openssl('req', '-x509', *self.NEWKEY, '-days', '7', '-subj', '/CN=' + name,
                 '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
                 '-keyout', self.cakey, '-out', self.cafile)
        os.chmod(self.cafile, 0o644)

    def path(self, name):
        return os.path.join(self.dir, name)

    def cert(self, domain, *, valid=True, names=None):
        """A Cert for DNS:domain (and names). valid: True (signed by the CA), False or
        'self-signed', 'other-name' (signed by the CA for not-DOMAIN only)."""
        kind = {True: 'valid', False: 'self-signed'}.get(valid, valid)
        if kind not in ('valid', 'self-signed', 'other-name'):
            raise ValueError('valid: True, False, "self-signed" or "other-name"')
        subject = 'not-' + domain if kind == 'other-name' else domain
        san = ','.join('DNS:' + n for n in [subject] + list(names or ()))
        base = self.path(domain if kind == 'valid' else '%s-%s' % (domain, kind))
        c = Cert(base, kind, self.cafile)
        if kind == 'self-signed':
            c.trust = c.certfile
            _openssl('req', '-x509', *self.NEWKEY, '-days', '7', '-subj', '/CN=' + subject,
                     '-addext', 'subjectAltName=' + san,
                     '-addext', 'extendedKeyUsage=serverAuth,clientAuth',
                     '-keyout', c.keyfile, '-out', c.certfile)
        else:
            with open(base + '.ext', 'w') as f:
                f.write(self.LEAF_EXT % san)
            _openssl('req', '-new', *self.NEWKEY, '-subj', '/CN=' + subject,
                     '-keyout', c.keyfile, '-out', base + '.csr')
            _openssl('x509', '-req', '-in', base + '.csr', '-CA', self.cafile, '-CAkey',
                     self.cakey, '-set_serial', str(random.getrandbits(63)), '-days', '7',
                     '-extfile', base + '.ext', '-out', c.certfile)
        with open(c.pem, 'w') as out:
            out.write(read(c.certfile) + read(c.keyfile))
        for path in (c.certfile, c.keyfile, c.pem):
            os.chmod(path, 0o644)   # the service users read them; they protect a test only
        return c


# ---- the peers -----------------------------------------------------------------------------------

def _run_as(user, argv, log, env=None, cwd=None, timeout=120):
    """Runs argv as user to its end (output appended to log); its exit status."""
    p = peerlib.spawn(argv, log, user=user, env=env, cwd=cwd)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        peerlib.stop([p.pid], grace=2)
        return None


class Peer:
    """One foreign server of the federation in fed's directory (NAME/): its configuration is
    written at every start() from its options, its data stays across restarts."""
    name = user = ''
    logs = ()
    stop_too = ()

    def __init__(self, fed, domain, ip, cert=None, secure_auth=False, debug=None, extra='',
                 modules=(), accounts=()):
        self.fed, self.domain, self.ip = fed, domain, ip
        self.cert = cert or fed.ca.cert(domain)
        self.secure_auth, self.extra, self.modules = secure_auth, extra, tuple(modules)
        self.accounts = list(accounts)
        self.debug = bool(os.environ.get('FEDERATION_DEBUG')) if debug is None else debug
        self.dir = fed.path('%s-%s' % (self.name, domain))
        self.c2s_port, self.tls_port, self.s2s_port = C2S_PORT, TLS_PORT, S2S_PORT
        self.proc = None
        os.makedirs(self.dir, mode=0o755, exist_ok=True)

    def start(self, timeout=90):
        """Writes the configuration, starts the server as its user and waits for its c2s and
        s2s ports; raises Failure (with its log's tail) if it does not listen."""
        self.write_config()
        peerlib.chown_tree(self.dir, self.user)
        self.proc = self.launch()
        try:
            peerlib.wait_listening([self.c2s_port, self.s2s_port], [self.proc.pid], timeout,
                                   host=self.ip)
        except RuntimeError as e:
            raise Failure('%s on %s: %s\n%s' % (self.name, self.domain, e, self.log()[-3000:]))
        return self

    def stop(self):
        """SIGTERM to its root process and to the processes named stop_too in its tree, SIGKILL
        to what is left of the tree after 15 s."""
        if self.proc:
            tree = peerlib.tree([self.proc.pid])
            peerlib.stop([self.proc.pid] + [p for p in tree if comm(p) in self.stop_too])
            self.proc = None

    def restart(self, **options):
        """Stops, sets options (cert, secure_auth, debug...), starts on the same data."""
        self.stop()
        for key, value in options.items():
            if not hasattr(self, key):
                raise TypeError('no option %s' % key)
            setattr(self, key, value)
        return self.start()

    def jid(self, user):
        return '%s@%s' % (user, self.domain)

    def server(self, wait=15):
        """Where its clients connect (jabtest.xmpp.Server), trusting its certificate."""
        from .xmpp import Server
        return Server(self.ip, self.c2s_port, self.tls_port, self.cert.trust, wait, self.domain)

    def client(self, user, password, resource='fed', wait=15, verify=None, **kwargs):
        """A jabtest.client.Client of user on this server (await .login()). verify: whether it
        checks the server's certificate (by default unless the certificate is for another
        name: no client could accept that one)."""
        import ssl
        from .client import Client
        c = Client('%s/%s' % (self.jid(user), resource), password, self.server(wait), **kwargs)
        if verify is False or (verify is None and self.cert.kind == 'other-name'):
            c.ssl_context.check_hostname = False
            c.ssl_context.verify_mode = ssl.CERT_NONE
        return c

    def log(self):
        """Its logs so far, concatenated."""
        return ''.join(read(os.path.join(self.dir, name)) for name in self.logs)

    def wait_log(self, needle, seconds=20):
        """needle appears in its logs within seconds."""
        return bool(wait_until(lambda: needle in self.log(), seconds, 0.2))

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


PROSODY_CFG = """-- jabtest.federation: Prosody for %(domain)s, written at each start
pidfile = "%(run)s/prosody.pid"
data_path = "%(run)s/data"
plugin_paths = { }
admins = { }
network_backend = "epoll"
interfaces = { "%(ip)s" }
c2s_ports = { %(c2s_port)d }
c2s_direct_tls_ports = { %(tls_port)d }
s2s_ports = { %(s2s_port)d }
http_ports = { }
https_ports = { }
component_ports = { }
modules_enabled = { "disco"; "roster"; "saslauth"; "tls"; "ping"; "version"; %(dialback)s%(modules)s }
modules_disabled = { "posix"; "admin_shell"; %(no_dialback)s }
authentication = "internal_hashed"
storage = "internal"
allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = %(secure_auth)s
-- net.unbound (lua-unbound): the namespace's /etc/resolv.conf, not root hints; "test." made
-- transparent: libunbound's built-in local zone (RFC 6761) answers NXDOMAIN for all of it itself
unbound = { resolvconf = true; hoststxt = false; options = { ["local-zone:"] = "test. transparent" } }
certificates = "%(certdir)s"
ssl = { cafile = "%(cafile)s" }
-- direct TLS clients connecting by address send no SNI: the port needs its own certificate
c2s_direct_tls_ssl = { certificate = "%(certfile)s"; key = "%(keyfile)s" }
log = { %(level)s = "%(run)s/prosody.log" }
%(extra)s

VirtualHost "%(domain)s"
	ssl = { certificate = "%(certfile)s"; key = "%(keyfile)s" }
"""


class Prosody(Peer):
    """Prosody: s2s with dialback unless secure_auth (then s2s_secure_auth = true and no
    mod_dialback: certificates only, checked against the CA)."""
    name = user = 'prosody'
    logs = ('prosody.log', 'stdout')

    @property
    def config(self):
        return self.path('prosody.cfg.lua')

    def write_config(self):
        for sub in ('data', 'certs'):   # certs: empty, for Prosody's certificate index
            os.makedirs(self.path(sub), exist_ok=True)
        if self.accounts:
            server_prosody.write_accounts(self.path('data'), self.domain, self.accounts)
        with open(self.config, 'w') as f:
            f.write(PROSODY_CFG % {
                'domain': self.domain, 'run': self.dir, 'ip': self.ip,
                'c2s_port': self.c2s_port, 'tls_port': self.tls_port, 's2s_port': self.s2s_port,
                'dialback': '' if self.secure_auth else '"dialback";', 'extra': self.extra,
                'modules': ''.join(' "%s";' % m for m in self.modules),
                'no_dialback': '"dialback";' if self.secure_auth else '',
                'secure_auth': 'true' if self.secure_auth else 'false',
                'cafile': self.fed.ca.cafile, 'level': 'debug' if self.debug else 'info',
                'certdir': self.path('certs'),
                'certfile': self.cert.certfile, 'keyfile': self.cert.keyfile})
        os.chmod(self.config, 0o644)

    def launch(self):
        return peerlib.spawn(['prosody', '--config', self.config, '-F'], self.path('stdout'),
                             user=self.user, cwd=self.dir)

    def register(self, user, password):
        """prosodyctl register on this configuration (running or not)."""
        if not os.path.exists(self.config):
            self.write_config()
            peerlib.chown_tree(self.dir, self.user)
        status = _run_as(self.user, ['prosodyctl', '--config', self.config, 'register', user,
                                     self.domain, password], self.path('prosodyctl.log'),
                         cwd=self.dir)
        if status != 0:
            raise Failure('prosodyctl register %s: status %s\n%s' % (
                self.jid(user), status, read(self.path('prosodyctl.log'))[-2000:]))


EJABBERD_YML = """# jabtest.federation: ejabberd for %(domain)s, written at each start
loglevel: %(level)s
log_rotate_count: 0
hosts:
  - "%(domain)s"
certfiles:
  - "%(pem)s"
ca_file: "%(cafile)s"
s2s_cafile: "%(cafile)s"
s2s_use_starttls: required
s2s_dns_timeout: 5
s2s_dns_retries: 1
s2s_max_retry_delay: 5
outgoing_s2s_families: [ipv4]
outgoing_s2s_timeout: 15
%(auth)s
listen:
  -
    port: %(c2s_port)d
    ip: "%(ip)s"
    module: ejabberd_c2s
    starttls_required: true
  -
    port: %(tls_port)d
    ip: "%(ip)s"
    module: ejabberd_c2s
    tls: true
  -
    port: %(s2s_port)d
    ip: "%(ip)s"
    module: ejabberd_s2s_in
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
s2s_access: all
modules:
  mod_disco: {}
  mod_roster: {}
  mod_offline: {}
  mod_ping: {}
  mod_version: {}
%(dialback)s
%(extra)s
"""


class Ejabberd(Peer):
    """ejabberd: s2s with STARTTLS required and the CA trusted (s2s_cafile); mod_s2s_dialback
    unless secure_auth (then SASL EXTERNAL only: certificates). Its own Erlang node, spool
    (mnesia/), logs (log/), cookie (HOME in its directory) and distribution port (no epmd)."""
    name = user = 'ejabberd'
    logs = ('log/ejabberd.log', 'log/error.log', 'log/stdout')
    # ejabberdctl's bash does not pass SIGTERM on; the Erlang VM stops cleanly on it.
    stop_too = ('beam.smp',)

    def __init__(self, fed, domain, ip, **options):
        super().__init__(fed, domain, ip, **options)
        self.node = 'jabtest-%s@localhost' % domain.replace('.', '-')
        self.dist_port = 4370 + sum(isinstance(s, Ejabberd) for s in fed.servers)

    def write_config(self):
        os.makedirs(self.path('log'), exist_ok=True)
        cfg = self.path('ejabberd.yml')
        with open(cfg, 'w') as f:
            f.write(EJABBERD_YML % {
                'domain': self.domain, 'ip': self.ip, 'pem': self.cert.pem,
                'cafile': self.fed.ca.cafile, 'level': 'debug' if self.debug else 'info',
                'c2s_port': self.c2s_port, 'tls_port': self.tls_port, 's2s_port': self.s2s_port,
                'dialback': '' if self.secure_auth else '  mod_s2s_dialback: {}',
                'auth': self.auth(), 'extra': self.extra})
        ctl = self.path('ejabberdctl.cfg')
        peerlib.render('ejabberdctl.cfg', ctl, {'RUN': self.dir, 'DIST_PORT': self.dist_port})
        for path in (cfg, ctl):
            os.chmod(path, 0o644)
        server_ejabberd.write_inetrc(self.dir)

    def auth(self):
        """Its authentication: Mnesia (internal), or with accounts an SQLite database of them
        (made anew at each start)."""
        if not self.accounts:
            return 'auth_method: internal'
        db = self.path('accounts.db')
        if os.path.exists(db):
            os.unlink(db)
        server_ejabberd.write_accounts(db, self.accounts)
        return ('auth_method: [sql]\nauth_password_format: scram\nsql_type: sqlite\n'
                'sql_database: "%s"' % db)

    def launch(self):
        return peerlib.spawn(server_ejabberd.ejabberdctl(self.dir, self.node, 'foreground'),
                             self.path('log', 'stdout'), user=self.user,
                             env=server_ejabberd.ejabberdctl_env(self.dir), cwd=self.dir)

    def ctl(self, *command, timeout=120):
        """ejabberdctl COMMAND against the running node; its exit status (output: log/ctl)."""
        return _run_as(self.user, server_ejabberd.ejabberdctl(self.dir, self.node, *command),
                       self.path('log', 'ctl'), env=server_ejabberd.ejabberdctl_env(self.dir),
                       cwd=self.dir, timeout=timeout)

    def register(self, user, password):
        """ejabberdctl register (the node must run; a few seconds: it starts an Erlang VM)."""
        status = self.ctl('register', user, self.domain, password)
        if status != 0:
            raise Failure('ejabberdctl register %s: status %s\n%s' % (
                self.jid(user), status, read(self.path('log', 'ctl'))[-2000:]))


# ---- the world -----------------------------------------------------------------------------------

class Federation(Workdir):
    """The CA, the DNS server and the peers of one suite, in one temporary directory; on exit
    everything is stopped by PID and the directory removed (kept with KEEP=1)."""

    def __init__(self, name='federation'):
        super().__init__('jabtest-fed-%s.' % name)
        self.servers = []
        self.ca = Ca(self.path('ca'))
        self.dns = Dns(self.path('dns'))

    def prosody(self, domain=PROSODY_DOMAIN, ip=PROSODY_IP, **options):
        p = Prosody(self, domain, ip, **options)
        self.servers.append(p)
        return p

    def ejabberd(self, domain=EJABBERD_DOMAIN, ip=EJABBERD_IP, **options):
        e = Ejabberd(self, domain, ip, **options)
        self.servers.append(e)
        return e

    def leftovers(self):
        """PIDs of live processes whose command line names our directory."""
        out = []
        needle = self.dir.encode()
        for entry in os.listdir('/proc'):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    with open('/proc/%s/cmdline' % entry, 'rb') as f:
                        if needle in f.read() and alive(int(entry)):
                            out.append(int(entry))
                except OSError:
                    pass
        return out

    def stop(self):
        for s in reversed(self.servers):
            s.stop()
        self.dns.stop()

    def cleanup(self):
        self.stop()
        left = self.leftovers()
        if left:
            peerlib.stop(left, grace=5)
        if os.environ.get('KEEP'):
            print('# federation files kept in %s' % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- the self-check ------------------------------------------------------------------------------

def _getent(name):
    r = subprocess.run(['getent', 'hosts', name], capture_output=True, text=True)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout else None


async def _exchange(report, what, a, a_jid, b, b_jid, arrives=True, wait=20):
    """a sends b a chat message; checks that it arrives or, arrives false, that a gets an error
    back (within wait seconds) and b nothing."""
    from .xmpp import NS_CLIENT, local, q
    body = 'hello %s from %s %d' % (b_jid, a_jid, random.getrandbits(32))
    a.send_raw("<message to='%s' type='chat' id='%s'><body>%s</body></message>" % (
        b_jid, a.next_id('m'), body))

    def delivered(el):
        return el.tag == q(NS_CLIENT, 'message') and el.findtext(q(NS_CLIENT, 'body')) == body
    t0 = time.monotonic()
    if arrives:
        await b.expect(delivered, 'the message', timeout=wait)
        report.ok('%s: %s -> %s arrives' % (what, a_jid, b_jid), '%.1f s' % (time.monotonic() - t0))
        return
    err = await a.expect(lambda el: el.tag == q(NS_CLIENT, 'message') and
                         el.get('type') == 'error' and
                         el.get('from', '').split('/')[0] == b_jid, 'an error back', timeout=wait)
    error = err.find(q(NS_CLIENT, 'error'))
    cond = [local(c.tag) for c in error if local(c.tag) != 'text'] if error is not None else []
    report.ok('%s: %s -> %s bounces' % (what, a_jid, b_jid), '%s after %.1f s' % (
        ' '.join(cond) or 'an error', time.monotonic() - t0))
    await asyncio.sleep(1)
    report.check('%s: %s gets nothing' % (what, b_jid), not any(delivered(el) for el in b.received))


async def _subscribe(report, what, a, a_jid, b, b_jid):
    """a asks for b's presence, b approves; both see it."""
    from .xmpp import NS_CLIENT, q

    def presence(kind, sender):
        return lambda el: (el.tag == q(NS_CLIENT, 'presence') and el.get('type') == kind and
                           el.get('from', '').split('/')[0] == sender)
    a.send_raw("<presence to='%s' type='subscribe'/>" % b_jid)
    await b.expect(presence('subscribe', a_jid), 'the subscription request')
    b.send_raw("<presence to='%s' type='subscribed'/>" % a_jid)
    await a.expect(presence('subscribed', b_jid), 'the approval')
    report.ok('%s: %s subscribes to %s, approved' % (what, a_jid, b_jid))


async def _direct_tls(report, *servers):
    for server in servers:
        c = server.client('alice' if server.name == 'prosody' else 'bob',
                          'alice-pw' if server.name == 'prosody' else 'bob-pw', 'direct')
        await c.login(direct_tls=True)
        report.ok('a client logs in to %s with direct TLS (port %d)' % (server.domain,
                                                                         server.tls_port))
        await c.logout()


async def _phase(report, what, prosody, ejabberd, arrives=True, subscribe=False):
    from .xmpp import NS_ROSTER
    alice = prosody.client('alice', 'alice-pw')
    bob = ejabberd.client('bob', 'bob-pw')
    for c in (alice, bob):
        await c.login()
        # An "interested resource" (RFC 6121 2.1.6): Prosody delivers subscription approvals
        # only to the resources that asked for the roster.
        await c.iq('get', "<query xmlns='%s'/>" % NS_ROSTER, what='the roster')
        c.send_raw('<presence/>')
    try:
        a_jid, b_jid = prosody.jid('alice'), ejabberd.jid('bob')
        await _exchange(report, what, alice, a_jid, bob, b_jid, arrives)
        await _exchange(report, what, bob, b_jid, alice, a_jid, arrives)
        if subscribe:
            await _subscribe(report, what, alice, a_jid, bob, b_jid)
            await _subscribe(report, what, bob, b_jid, alice, a_jid)
    finally:
        for c in (alice, bob):
            await c.logout()


def selfcheck(report, _build=None):
    """The environment without jabshard (see the module's docstring)."""
    host_resolv = host_file('/etc/resolv.conf')
    with Federation('selfcheck') as fed:
        fed.dns.start(standard_records())
        report.check('unbound serves the SRV records',
                     query('_xmpp-server._tcp.prosody.test', 'SRV') == ('NOERROR', 1),
                     str(query('_xmpp-server._tcp.prosody.test', 'SRV')))
        report.check('unbound: a name of no record is NXDOMAIN',
                     (query('nowhere.example', 'A') or ('',))[0] == 'NXDOMAIN')
        ip = _getent('xmpp.ejabberd.test')
        report.check('the system resolver (our resolv.conf) finds xmpp.ejabberd.test',
                     ip == EJABBERD_IP, str(ip))
        ours = read('/etc/resolv.conf')
        report.check("/etc/resolv.conf is ours in the namespace, not the machine's",
                     ours.startswith('nameserver 127.0.0.1') and host_resolv != ours, host_resolv)
        prosody, ejabberd = fed.prosody(), fed.ejabberd()
        t0 = time.monotonic()
        prosody.start()
        ejabberd.start()
        prosody.register('alice', 'alice-pw')
        ejabberd.register('bob', 'bob-pw')
        report.ok('Prosody and ejabberd start, one account each', '%.1f s' % (
            time.monotonic() - t0))

        def phase(what, **kwargs):
            return report.run(what, asyncio.run, _phase(report, what, prosody, ejabberd,
                                                        **kwargs))
        phase('dialback allowed', subscribe=True)
        report.run('direct TLS', asyncio.run, _direct_tls(report, prosody, ejabberd))
        prosody.restart(secure_auth=True)
        ejabberd.restart(secure_auth=True)
        phase('certificates only')
        ejabberd.restart(cert=fed.ca.cert(EJABBERD_DOMAIN, valid='self-signed'))
        phase('a self-signed ejabberd certificate', arrives=False)
        report.check('a self-signed ejabberd certificate: Prosody says why',
                     'certificate is not trusted' in prosody.log(), prosody.log()[-1500:])
        ejabberd.restart(cert=fed.ca.cert(EJABBERD_DOMAIN))
        prosody.restart(cert=fed.ca.cert(PROSODY_DOMAIN, valid='other-name'))
        phase('a Prosody certificate for another name', arrives=False)
        report.check('a Prosody certificate for another name: ejabberd says why',
                     'Certificate host name mismatch' in ejabberd.log(), ejabberd.log()[-1500:])
        roots = [s.proc.pid for s in fed.servers if s.proc] + [fed.dns.proc.pid]
        fed.stop()
        report.check('everything stopped by PID: no process of the tree left',
                     not peerlib.tree(roots), str(peerlib.tree(roots)))
        report.check('no process left naming the federation directory', not fed.leftovers(),
                     str(fed.leftovers()))
        where = fed.dir
    report.check("the machine's /etc/resolv.conf is unchanged",
                 host_file('/etc/resolv.conf') == host_resolv)
    report.check('the federation directory is removed', not os.path.exists(where) or
                 bool(os.environ.get('KEEP')))

    mine = in_namespace()
    report.check('no process left in the namespace but this one', not mine, str(mine))


def main():
    if sys.argv[1:2] != ['selfcheck']:
        sys.exit('usage: /usr/bin/python3 -m jabtest.federation selfcheck')
    enter_namespace('fedenv')
    if os.getuid() != 0 or any(_missing(u) for u in ('prosody', 'ejabberd')):
        _skip('fedenv', 'needs root and the prosody and ejabberd service users')
    from .suite import main as suite_main
    suite_main('fedenv', selfcheck)


def _missing(user):
    try:
        pwd.getpwnam(user)
        return False
    except KeyError:
        return True


if __name__ == '__main__':
    main()
