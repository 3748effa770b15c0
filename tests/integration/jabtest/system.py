"""jabtest.system — the system under test, in a temporary directory of its own: the SM and its
fronts (and any other program a suite needs: tools/run.sh itself, biboumi, the compiler) started
as Programs with their own log files and stopped, killed or restarted by PID; free loopback
ports; a certificate; the configurations, either prepared by tools/run.sh (JABSHARD_PREPARE_ONLY:
derived from etc/ as "make run" does) and edited, or written by hand (sm_xml, front_xml); accounts
and sessions through jabshardctl; the sanitizer reports in the programs' logs.

System is a context manager: on exit every program still running is stopped by its PID
(SIGTERM, then SIGKILL), then the directory is removed (kept, and said so, when KEEP is set in the
environment and the suite's report has failures)."""

import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

from .loadgen import Loadgen
from .proc import alive, comm, wait_until
from .report import Failure

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))
RUN_SH = os.path.join(ROOT, 'tools', 'run.sh')
PROGRAMS = ('jabshard-sm', 'jabshard-c2s', 'jabshard-s2s', 'jabshardctl')
# What the sanitizers print (make check SAN=...): none of it may appear in a program's log.
SANITIZER = re.compile(r'runtime error|(Address|Leak|Thread|Memory)Sanitizer')
# run.sh's <limits> for the fault suites: the load generator measures the link, not the front's
# pacing (max_bps), and its bursts of offline messages are not slow readers (output_queue); its
# clients come from loopback, trusted by default (no conn_rate).
LOAD_LIMITS = 'max_bps=0 output_queue=4194304'


def sanitized(build):
    """A sanitizer build (build/san-...): slower, so suites give it a smaller load."""
    return 'san-' in os.path.basename(os.path.abspath(build))


def sanitizer_reports(*texts):
    """The lines of texts (programs' logs) that are sanitizer reports, joined ('' if none)."""
    return '\n'.join(line for text in texts for line in text.splitlines()
                     if SANITIZER.search(line))


def free_ports(n, host='127.0.0.1'):
    """n ports free on host, below the kernel's ephemeral range: a program restarted by a test
    binds its port again, and a port the kernel may hand to an outgoing connection (the load
    generator's thousands) could be taken by then."""
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        low = int(f.read().split()[0])
    ports, rng = [], random.Random()
    while len(ports) < n:
        port = rng.randrange(max(1024, low - 12000), low)
        if port in ports:
            continue
        s = socket.socket()
        try:
            s.bind((host, port))
            ports.append(port)
        except OSError:
            pass
        finally:
            s.close()
    return ports


def secret():
    """A link or component secret: 48 random hex digits."""
    return secrets.token_hex(24)


def read(path):
    """A file's text ('' if it is not there)."""
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


# ---- configurations written by hand --------------------------------------------------------------

def service(id_, port, secret_, role, ip='127.0.0.1'):
    """One <service> of the SM (role front or component)."""
    return ("  <service id='%s' role='%s'><accept><ip>%s</ip><port>%d</port><secret>%s</secret>"
            "</accept></service>" % (id_, role, ip, port, secret_))


# The HTTP File Upload signing key of the SM configurations written here (the upload module
# will not start without one).
UPLOAD_SECRET = 'integration upload secret'


def sm_xml(db, services, hosts="<host name='localhost'/>", level='info', extra=''):
    """The SM's configuration: services (<service> elements), hosts, SQLite at db; an <upload>
    with UPLOAD_SECRET unless extra has its own."""
    if '<upload>' not in extra:
        extra += '\n  <upload><secret>%s</secret></upload>' % UPLOAD_SECRET
    return """<?xml version="1.0" encoding="UTF-8"?>
<sm>
%s
  %s
  <storage><driver>sqlite</driver><path>%s</path></storage>%s
  <log><level>%s</level></log>
</sm>
""" % ('\n'.join(services), hosts, db, extra, level)


def front_xml(front_id, secret_, sm_port, ip, port, tls_port, pemfile, ids=('localhost',),
              max_fds=1021, limits=None, level='info', extra=''):
    """A front's configuration (jadc2s.xml): linked to the SM on 127.0.0.1:sm_port as front_id,
    serving ids on ip:port (STARTTLS) and ip:tls_port (direct TLS), two IO threads; limits, if
    given, is the content of <limits>; extra, more elements (<csi>...)."""
    return """<?xml version="1.0" encoding="UTF-8"?>
<jadc2s>
  <sm><host>127.0.0.1</host><port>%d</port><secret>%s</secret><id>%s</id></sm>
  <local>
    %s<ip>%s</ip><port>%d</port>
    <ssl><port>%d</port><pemfile>%s</pemfile></ssl>
  </local>
  <max_fds>%d</max_fds>
  <threads>2</threads>%s%s
  <log><level>%s</level></log>
</jadc2s>
""" % (sm_port, secret_, front_id, ''.join('<id>%s</id>' % i for i in ids), ip, port, tls_port,
       pemfile, max_fds, '' if limits is None else '\n  <limits>%s</limits>' % limits,
       '\n  ' + extra if extra else '', level)


# ---- programs ------------------------------------------------------------------------------------

# Starts a command as a terminal starts a foreground job, so that a test can press Ctrl-C: with
# SIGINT at its default disposition (a background job of a shell inherits it ignored), in its own
# process group (start_new_session) that interrupt() signals as a whole.
_FOREGROUND = ('import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); '
               'os.execvp(sys.argv[1], sys.argv[1:])')


class Program:
    """One program, its output (stdout and stderr) appended to its own log file."""

    def __init__(self, argv, log_path, env=None, foreground_job=False):
        self.argv, self.log_path = argv, log_path
        if foreground_job:
            argv = ['/usr/bin/python3', '-c', _FOREGROUND] + list(argv)
        with open(log_path, 'ab') as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=foreground_job)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def text(self):
        return read(self.log_path)

    def count(self, needle):
        return self.text().count(needle)

    def wait_log(self, needle, seconds, times=1, watch=None):
        """needle appears times times in the log within seconds; the wait ends early once the
        program watch (by default this one) has exited."""
        watch = watch or self
        return bool(wait_until(lambda: self.count(needle) >= times or not watch.alive(), seconds)
                    and self.count(needle) >= times)

    def wait(self, seconds):
        """The exit status once the program has ended, or None if it still runs after seconds."""
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self, sig=signal.SIGKILL, seconds=15):
        """Sends sig and waits for the end (SIGKILL after seconds); returns the exit status
        (negative: the signal that ended it)."""
        if self.alive():
            os.kill(self.pid, sig)
        if self.wait(seconds) is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        return self.proc.returncode

    def stop(self, seconds=10):
        """SIGTERM, then SIGKILL if it has not exited after seconds; returns the exit status."""
        return self.kill(signal.SIGTERM, seconds)

    def interrupt(self):
        """Ctrl-C: SIGINT to the program's whole process group (started as a foreground job)."""
        os.killpg(self.pid, signal.SIGINT)

    def kill_group(self):
        """SIGKILL to the program's whole process group (started as a foreground job)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def logged_pid(self, name):
        """The PID jabshard-NAME logged with in this log (tools/run.sh's children), or None."""
        m = re.search(r' jabshard-%s\[(\d+)\]' % re.escape(name), self.text())
        return int(m.group(1)) if m else None


# ---- the system ----------------------------------------------------------------------------------

class Workdir:
    """A temporary directory of its own (mode 0755: service users read what is written there),
    a context manager whose exit runs cleanup()."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.cleanup()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def cleanup(self):
        raise NotImplementedError


class System(Workdir):
    """One SM, its fronts and what else a suite starts, in a temporary directory."""

    def check_memory(self, report, what, cond, detail=''):
        """A check of a program's memory figure: judged in the default build; in a sanitizer
        build only printed, since AddressSanitizer keeps freed memory in quarantine (256 MB by
        default) and pads every allocation, and ThreadSanitizer shadows it: the figure would be
        theirs, not ours."""
        if sanitized(self.build):
            report.note('not judged under a sanitizer (its figure): %s' % what)
            return True
        return report.check(what, cond, detail)

    def __init__(self, build, name, report=None):
        self.build = os.path.abspath(build)
        self.bin = os.path.join(self.build, 'bin')
        self.name, self.report = name, report
        super().__init__('jabshard-%s.' % name)
        self.programs = []
        self.run = None             # tools/run.sh's run directory, once run_sh_env() made it
        self.port = self.tls_port = self.sm_port = None
        self.sm_conf = None
        self.secret = None
        self.fronts = {}            # front id -> (config path, client port)
        self.front_procs = {}       # front id -> its latest Program
        self.sm = None
        self.loadgens = []

    def write(self, name, text):
        path = self.path(name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def binary(self, name):
        return os.path.join(self.bin, name)

    def missing(self):
        """Our programs that are not built."""
        return [self.binary(p) for p in PROGRAMS if not os.access(self.binary(p), os.X_OK)]

    def ready(self, report, certificate=False):
        """Our programs are built (and, if asked, server.pem made); else a not ok line, False."""
        for path in self.missing():
            report.not_ok('%s is built' % path)
            return False
        if certificate:
            try:
                self.certificate()
            except Failure as e:
                report.not_ok('openssl makes a certificate', str(e))
                return False
        return True

    def start(self, argv, log, env=None, foreground_job=False):
        """Starts argv with its output in log (a name in our directory); stopped by cleanup()."""
        p = Program(argv, self.path(log), env=env, foreground_job=foreground_job)
        self.programs.append(p)
        return p

    def certificate(self):
        """A self-signed certificate for localhost, with its key, in server.pem."""
        r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                            'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj',
                            '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-keyout',
                            self.path('key.pem'), '-out', self.path('cert.pem')],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure('openssl makes a certificate:\n' + r.stdout + r.stderr)
        pem = self.path('server.pem')
        with open(pem, 'w') as out:
            out.write(read(self.path('cert.pem')) + read(self.path('key.pem')))
        return pem

    # ---- configurations from tools/run.sh ----

    def run_sh_env(self, limits, federation=False):
        """tools/run.sh's environment: its run directory in ours, free ports (the web listener's
        too, and with federation the federation front's and its SM link's), the <limits>."""
        if self.run is None:
            self.run = self.path('run')
            (self.port, self.tls_port, self.sm_port, self.http_port, self.https_port,
             self.s2s_port, self.s2s_tls_port, self.sm_s2s_port) = free_ports(8)
            self.sm_conf = os.path.join(self.run, 'sm.xml')
        env = dict(os.environ, JABSHARD_RUN_DIR=self.run, JABSHARD_IP='127.0.0.1',
                   JABSHARD_PORT=str(self.port), JABSHARD_TLS_PORT=str(self.tls_port),
                   JABSHARD_SM_PORT=str(self.sm_port), JABSHARD_HTTP_PORT=str(self.http_port),
                   JABSHARD_HTTPS_PORT=str(self.https_port), JABSHARD_LIMITS=limits,
                   JABSHARD_FEDERATION='1' if federation else '0')
        if federation:
            env.update(JABSHARD_S2S_PORT=str(self.s2s_port),
                       JABSHARD_S2S_TLS_PORT=str(self.s2s_tls_port),
                       JABSHARD_SM_S2S_PORT=str(self.sm_s2s_port))
        return env

    def run_sh(self, log, limits, foreground_job=False, federation=False):
        """tools/run.sh ("make run") itself, running the SM and the front (and, with federation,
        jabshard-s2s: make run FEDERATION=1)."""
        return self.start(['sh', RUN_SH, self.build], log,
                          env=self.run_sh_env(limits, federation), foreground_job=foreground_job)

    def prepare(self, limits=LOAD_LIMITS):
        """The run directory as tools/run.sh prepares it (JABSHARD_PREPARE_ONLY), to start the
        programs one by one; the front's plain port serves without TLS (the load generator
        measures the link, not TLS)."""
        env = dict(self.run_sh_env(limits), JABSHARD_PREPARE_ONLY='1')
        subprocess.run(['sh', RUN_SH, self.build], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        self.secret = read(os.path.join(self.run, 'secret')).strip()
        self.fronts['jadc2s'] = (os.path.join(self.run, 'jadc2s.xml'), self.port)
        self._edit(self.fronts['jadc2s'][0], self._plain_allowed)

    @staticmethod
    def _edit(path, fn):
        tree = ET.parse(path)
        fn(tree.getroot())
        tree.write(path, encoding='unicode')

    @staticmethod
    def _plain_allowed(root):
        ssl = root.find('local/ssl')
        req = ssl.find('required') if ssl is not None else None
        if req is None and ssl is not None:
            req = ET.SubElement(ssl, 'required')
        if req is not None:
            req.text = 'false'

    def add_front(self, front_id, secret_=None, ip='127.0.0.1', sm_port=None, service_=True):
        """A second (third...) front made from the prepared one: a <service> on the SM (unless
        service_ is False) and its own configuration with its own client ports. Returns the
        client port."""
        port, tls_port = free_ports(2)
        secret_ = secret_ or self.secret
        if service_:
            def add_service(root):
                svc = ET.SubElement(root, 'service', {'id': front_id, 'role': 'front'})
                acc = ET.SubElement(svc, 'accept')
                ET.SubElement(acc, 'ip').text = '127.0.0.1'
                ET.SubElement(acc, 'port').text = str(self.sm_port)
                ET.SubElement(acc, 'secret').text = secret_
            self._edit(self.sm_conf, add_service)
        tree = ET.parse(self.fronts['jadc2s'][0])
        root = tree.getroot()
        root.find('sm/id').text = front_id
        root.find('sm/secret').text = secret_
        if sm_port:
            root.find('sm/port').text = str(sm_port)
        root.find('local/ip').text = ip
        root.find('local/port').text = str(port)
        root.find('local/ssl/port').text = str(tls_port)
        path = os.path.join(self.run, '%s.xml' % front_id)
        tree.write(path, encoding='unicode')
        self.fronts[front_id] = (path, port)
        return port

    def set_storage(self, settings):
        """settings: XDB_* from tests/storage/{postgres,mariadb}.sh's env file."""
        def edit(root):
            st = root.find('storage')
            for child in list(st):
                st.remove(child)
            ET.SubElement(st, 'driver').text = settings['XDB_DRIVER']
            for key, tag in (('XDB_HOST', 'host'), ('XDB_PORT', 'port'), ('XDB_USER', 'user'),
                             ('XDB_PASSWORD', 'password'), ('XDB_DATABASE', 'database')):
                if key in settings:
                    ET.SubElement(st, tag).text = settings[key]
        self._edit(self.sm_conf, edit)

    # ---- configurations written by hand ----

    def use_sm(self, text):
        """The SM's configuration (sm.xml), written by hand."""
        self.sm_conf = self.write('sm.xml', text)

    def use_front(self, front_id, text, port):
        """A front's configuration (FRONT_ID.xml), written by hand; port: its STARTTLS port."""
        self.fronts[front_id] = (self.write('%s.xml' % front_id, text), port)

    # ---- programs ----

    def start_sm(self, ready_port=None, seconds=20, log='sm.log'):
        """The SM on sm_conf (its log: log, sm.log by default, across restarts), once it has
        logged that it started or, with ready_port, accepts a connection there; None if it did
        not."""
        before = read(self.path(log)).count('sm: started')
        self.sm = self.start([self.binary('jabshard-sm'), '-c', self.sm_conf], log)
        if ready_port:
            ok = wait_port(ready_port, self.sm, seconds)
        else:
            ok = self.sm.wait_log('sm: started', seconds, before + 1)
        return self.sm if ok and self.sm.alive() else None

    def start_front(self, front_id='jadc2s', wait_link=True, probe_port=None, seconds=20):
        """A front (its log: FRONT_ID.log, across restarts), once its link to the SM is up (and,
        with probe_port, once it accepts one connection there); None if it is not."""
        before = read(self.path('%s.log' % front_id)).count('SM link: up')
        p = self.start([self.binary('jabshard-c2s'), '-c', self.fronts[front_id][0]],
                       '%s.log' % front_id)
        self.front_procs[front_id] = p
        if probe_port and not wait_port(probe_port, p, seconds):
            return None
        if wait_link and not p.wait_log('SM link: up', seconds, before + 1):
            return None
        return p

    def front(self, front_id='jadc2s'):
        return self.front_procs[front_id]

    def program_log(self, front_id):
        """The front's log over all its runs (restarts append to it)."""
        return self.front_procs[front_id].text()

    # ---- jabshardctl ----

    def ctl(self, *args, config=None, input_=None, timeout=120):
        """jabshardctl on the SM's configuration (or config); the CompletedProcess (text)."""
        return subprocess.run([self.binary('jabshardctl'), '-c', config or self.sm_conf] +
                              list(args),
                              capture_output=True, text=True, input=input_, timeout=timeout,
                              stdin=None if input_ is not None else subprocess.DEVNULL)

    def import_accounts(self, accounts, timeout=600):
        """jabshardctl import of (JID, password) pairs; (succeeded, its output, seconds)."""
        path = self.path('users.txt')
        with open(path, 'w') as f:
            for jid, password in accounts:
                f.write('%s %s\n' % (jid, password))
        t0 = time.monotonic()
        r = self.ctl('import', path, timeout=timeout)
        return r.returncode == 0, r.stdout + r.stderr, time.monotonic() - t0

    def make_users(self, n, first=1):
        """Accounts user<i>@localhost with password pass<i>."""
        ok, out, _ = self.import_accounts(('user%d@localhost' % i, 'pass%d' % i)
                                          for i in range(first, first + n))
        return ok, out

    def sessions(self, timeout=30):
        """jabshardctl sessions: (its CompletedProcess, the rows of its five tab-separated fields:
        full JID, link, session id, since, state)."""
        r = self.ctl('sessions', timeout=timeout)
        return r, [f for f in (line.split('\t') for line in r.stdout.splitlines()) if len(f) == 5]

    def loadgen(self, args, name='loadgen'):
        """tests/bench/loadgen with args, its stderr in NAME.err; stopped by cleanup()."""
        lg = Loadgen(os.path.join(self.build, 'bench', 'loadgen'), args,
                     self.path('%s.err' % name))
        self.loadgens.append(lg)
        return lg

    # ---- the pair of the front suites ----

    def start_pair(self, report, nusers, limits, register=False, ports=None, front_extra=''):
        """The front suites' system, on configurations written by hand: accounts u0..u{nusers-1}
        (password pw<i>), the SM (with in-band registration when register is true, quiet: log
        level warn) and one front with limits (the content of its <limits>), front_extra (more
        of its elements) and a certificate made in memory, on ports (SM, STARTTLS, direct TLS;
        free ones when None). Each step is a check; False after the one that failed."""
        self.sm_port, self.port, self.tls_port = ports or free_ports(3)
        self.use_sm(sm_xml(self.path('db.sqlite'),
                           [service('jadc2s', self.sm_port, 's', 'front')],
                           "<host name='localhost'>%s</host>" % ('<register/>' if register else ''),
                           level='warn', extra='\n  <offline_quota>100000</offline_quota>'))
        self.use_front('jadc2s', front_xml('jadc2s', 's', self.sm_port, '127.0.0.1', self.port,
                                           self.tls_port, self.path('none.pem'), max_fds=4099,
                                           limits=limits, extra=front_extra), self.port)
        ok, out, took = self.import_accounts(('u%d@localhost' % i, 'pw%d' % i)
                                             for i in range(nusers))
        report.check('import %d accounts (%.1f s)' % (nusers, took), ok, out)
        if not report.check('the SM starts', self.start_sm(ready_port=self.sm_port, seconds=10)):
            return False
        return report.check('the front starts and links to the SM',
                            self.start_front(probe_port=self.tls_port, seconds=10))

    def stop_pair(self, report):
        """SIGTERM to the front (checked: exit status 0), then to the SM."""
        front = self.front_procs.get('jadc2s')
        if front and front.alive():
            report.check('the front exits 0 on SIGTERM', front.stop() == 0)
        if self.sm and self.sm.alive():
            self.sm.stop()

    # ---- the end ----

    def check_sanitizers(self, report, programs=None):
        """The check that the logs of programs (by default, of all our programs and run.sh) have
        no sanitizer reports (sanitizer builds: make check SAN=...)."""
        if programs is None:
            ours = [self.binary(p) for p in PROGRAMS] + [RUN_SH]
            programs = [p for p in self.programs if p.argv[0] in ours or p.argv[1:2] == [RUN_SH]]
        logs = sorted({p.log_path for p in programs})
        found = sanitizer_reports(*(read(path) for path in logs))
        report.check("the programs' logs have no sanitizer reports", not found, found)

    def cleanup(self):
        """Stops every program still running, by PID, latest first; then what a tools/run.sh
        could not stop, by the PIDs it logged (if they are still our programs); then removes the
        directory."""
        for lg in self.loadgens:
            lg.stop()
        for p in reversed(self.programs):
            if p.alive():
                p.stop()
        for p in self.programs:
            if p.argv[:2] == ['sh', RUN_SH]:
                for name in ('c2s', 's2s', 'sm'):
                    pid = p.logged_pid(name)
                    if pid and alive(pid) and comm(pid) == 'jabshard-' + name:
                        os.kill(pid, signal.SIGKILL)
        if os.environ.get('KEEP') and self.report is not None and self.report.failed:
            print('# logs kept in %s' % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_port(port, program, seconds=10):
    """Connects to port on loopback until it accepts (True), program exits or seconds pass."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not program.alive():
            return False
        try:
            socket.create_connection(('127.0.0.1', port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def feature_suite(report, build, name, accounts, scenario, sm_extra=''):
    """What a feature's suite does around its scenario: the SM on SQLite (sm_extra: more of
    sm.xml) and one front on TLS, accounts ((JID, password) pairs) imported, both started;
    scenario(report, server, system) run (a Failure is a not ok line); both stopped, each
    exiting 0; the logs checked for sanitizer reports."""
    from .xmpp import Server
    with System(build, name, report) as system:
        sm_port, port, tls = free_ports(3)
        system.sm_port = sm_port
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             extra=sm_extra))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem')), port)
        ok, out, _ = system.import_accounts(accounts)
        if not (report.check('import %d accounts' % len(accounts), ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        try:
            scenario(report, Server('127.0.0.1', port, tls, None, wait=15), system)
        except Failure as e:
            report.not_ok('the scenario ran to its end', str(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)
