"""tests/integration/test_package.py — the Debian package, installed and run as systemd would run it,
without systemd (CI has none running): tools/deb.sh builds the .deb from this tree (make deb's
script: dpkg-buildpackage in a scratch copy, no test suite; about 15 s on two cores), dpkg -i
installs it into the real system, and the suite checks what it put where (the programs in
/usr/sbin, the units, the man pages, /etc/jabshard's configurations as conffiles readable by the
jabshard group only, the jabshard user and /var/lib/jabshard owned by it), that the units pass
systemd-analyze verify, and that the man pages render without warnings. Then it starts the
three services as their units' ExecStart would: the installed programs, as user jabshard (setpriv), in
/var/lib/jabshard, with LimitNOFILE's limit (prlimit) and a NOTIFY_SOCKET of its own to read
READY=1 and STOPPING=1 from (what Type=notify waits for), on copies of the installed
configurations that differ only in ports, link secret and listening address (loopback). An
account made with the installed jabshardctl (as jabshard) logs in over direct TLS and binds, and
jabshardctl sessions sees it through the admin socket in /var/lib/jabshard; jabshard-s2s (federation
turned on in the SM's copy: its <service id='s2s'>) passes --check and links to the SM; SIGTERM by
PID stops each program with status 0, the SM last (as systemd orders them). Last, dpkg --purge removes
the package, its state and logs; the jabshard user, which Debian keeps on purge, is removed too
if this suite created it, so the machine is left as it was.

It changes the system: it runs as root only (CI runs make check as root on a throwaway machine);
otherwise it prints a "# SKIP" line and no check. It refuses to run over a jabshard package
already installed. The whole suite takes well under a minute.

Usage: test_package.py BUILD_DIR (unused: the package builds its own programs). Prints ok / not
ok lines and ends "package: N passed, N failed"."""

import grp
import os
import pwd
import signal
import socket
import stat
import subprocess
import xml.etree.ElementTree as ET

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import ROOT, System, free_ports, sanitized, secret

CONFIGS = ['/etc/jabshard/jadc2s.xml', '/etc/jabshard/sm.xml', '/etc/jabshard/s2s.xml']
UNITS = ['/lib/systemd/system/jabshard-%s.service' % p for p in ('sm', 'c2s', 's2s')]
PAGES = ['jabshard-c2s.8', 'jabshard-s2s.8', 'jabshard-sm.8', 'jabshardctl.8', 'jadc2s.xml.5',
         's2s.xml.5', 'sm.xml.5']
FILES = (['/usr/sbin/jabshard-c2s', '/usr/sbin/jabshard-s2s', '/usr/sbin/jabshard-sm',
          '/usr/sbin/jabshardctl', '/usr/share/doc/jabshard/copyright'] + CONFIGS + UNITS +
         ['/usr/share/man/man%s/%s.gz' % (page[-1], page) for page in PAGES])
STATE = '/var/lib/jabshard'
NOFILE = 16384      # the front's unit: LimitNOFILE


def run(argv, timeout=120, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, **kwargs)


def installed():
    r = run(['dpkg-query', '-W', '-f=${Status}', 'jabshard'])
    return r.returncode == 0 and r.stdout.endswith(' installed')


def as_jabshard(argv):
    """argv as the unit runs it: user and group jabshard, no new privileges, the unit's limit."""
    return ['prlimit', '--nofile=%d:%d' % (NOFILE, NOFILE), '--', 'setpriv',
            '--reuid=jabshard', '--regid=jabshard', '--init-groups', '--no-new-privs', '--'] + argv


def edit(src, dst, fn):
    """A copy of the installed configuration src at dst, changed by fn(root), readable by
    jabshard."""
    tree = ET.parse(src)
    fn(tree.getroot())
    tree.write(dst, encoding='UTF-8', xml_declaration=True)
    os.chmod(dst, 0o644)
    return dst


def set_texts(root, values):
    """Each element at a path of values (a dict) gets its value as text."""
    for path, text in values.items():
        el = root.find(path)
        if el is None:
            raise Failure('the installed configuration has no <%s>' % path)
        el.text = str(text)


class Notify:
    """A NOTIFY_SOCKET as systemd gives a Type=notify service: what the program sends to it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.messages = []

    def wait_for(self, line, seconds):
        """The first message with a line that starts with line (READY=1, STATUS=...) within
        seconds, or None."""
        def has(m):
            return any(x.startswith(line) for x in m.split('\n'))
        for m in self.messages:
            if has(m):
                return m
        self.sock.settimeout(seconds)
        try:
            while True:
                m = self.sock.recv(4096).decode()
                self.messages.append(m)
                if has(m):
                    return m
        except OSError:
            return None


def check_install(report, deb):
    r = run(['dpkg', '-i', deb])
    if not report.check('dpkg -i installs the package', r.returncode == 0, r.stdout):
        raise Failure('not installed')
    missing = [f for f in FILES if not os.path.isfile(f)]
    report.check('programs, units, man pages, configurations and copyright are installed',
                 not missing, 'missing: %s' % ', '.join(missing))
    conffiles = run(['dpkg-query', '-W', '-f=${Conffiles}', 'jabshard']).stdout
    report.check('the configurations are conffiles', all(c in conffiles for c in CONFIGS),
                 conffiles)
    try:
        user = pwd.getpwnam('jabshard')
        group = grp.getgrnam('jabshard')
    except KeyError:
        report.not_ok('the jabshard system user and group exist')
        raise Failure('no jabshard user')
    report.check('the jabshard system user and group exist', user.pw_uid < 1000 and
                 user.pw_gid == group.gr_gid, 'uid %d gid %d' % (user.pw_uid, user.pw_gid))
    st = os.stat(STATE)
    report.check('%s is owned by jabshard, mode 0750' % STATE, st.st_uid == user.pw_uid and
                 stat.S_IMODE(st.st_mode) == 0o750, 'uid %d mode %o' % (st.st_uid, st.st_mode))
    modes = {c: os.stat(c) for c in CONFIGS}
    report.check('the configurations (link and dialback secrets) are root:jabshard 0640',
                 all(st.st_uid == 0 and st.st_gid == group.gr_gid and
                     stat.S_IMODE(st.st_mode) == 0o640 for st in modes.values()),
                 '\n'.join('%s: uid %d gid %d mode %o' % (c, st.st_uid, st.st_gid, st.st_mode)
                           for c, st in modes.items()))
    sm_xml = open('/etc/jabshard/sm.xml').read()
    front_xml = open('/etc/jabshard/jadc2s.xml').read()
    report.check('the packaged sm.xml keeps the database in %s' % STATE,
                 '<path>%s/jabshard.db</path>' % STATE in sm_xml)
    report.check('the packaged jadc2s.xml and s2s.xml read the certificate from /etc/jabshard',
                 '<pemfile>/etc/jabshard/server.pem</pemfile>' in front_xml and
                 '<pemfile>/etc/jabshard/server.pem</pemfile>' in
                 open('/etc/jabshard/s2s.xml').read())
    report.check("the packaged sm.xml has federation off (<service id='s2s'> in a comment)",
                 ET.parse('/etc/jabshard/sm.xml').getroot().find("service[@id='s2s']") is None
                 and "<service id='s2s' role='s2s'>" in sm_xml)
    units = [open(u).read() for u in UNITS]
    report.check('the units run the installed programs on the installed configurations',
                 'ExecStart=/usr/sbin/jabshard-c2s -c /etc/jabshard/jadc2s.xml' in units[1] and
                 'ExecStart=/usr/sbin/jabshard-s2s -c /etc/jabshard/s2s.xml' in units[2] and
                 'After=network-online.target jabshard-sm.service' in units[2])
    r = run(['systemd-analyze', 'verify'] + UNITS)
    report.check('systemd-analyze verify passes the units', r.returncode == 0 and
                 'jabshard' not in r.stdout, r.stdout)
    for page in PAGES:
        name, section = page.rsplit('.', 1)
        r = subprocess.run(['man', '--warnings', section, name], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60,
                           env=dict(os.environ, MANWIDTH='80'))
        report.check('man %s %s renders without warnings' % (section, name),
                     r.returncode == 0 and 'NAME' in r.stdout and not r.stderr,
                     'status %d: %s' % (r.returncode, r.stderr))


def start_s2s(report, system, s2s_conf, env):
    """jabshard-s2s as its unit runs it: --check first, then READY=1 and its link to the SM up.
    Returns the Program and its Notify."""
    r = run(as_jabshard(['/usr/sbin/jabshard-s2s', '-c', s2s_conf, '--check']), cwd=STATE)
    report.check('the installed jabshard-s2s --check, as jabshard, finds no error in the copy '
                 '(the SM accepts its handshake)', r.returncode == 0 and
                 "accepts service 's2s' and its <secret>" in r.stdout, r.stdout)
    notify = Notify(system.path('s2s.notify'))
    s2s = system.start(as_jabshard(['/usr/sbin/jabshard-s2s', '-c', s2s_conf]), 's2s.log',
                       env=dict(env, NOTIFY_SOCKET=notify.path))
    report.check('jabshard-s2s, as jabshard, tells READY=1', notify.wait_for('READY=1', 20)
                 is not None, 'nothing; its log:\n' + s2s.text())
    report.check('...and links to the SM', s2s.wait_log('SM link: up', 15), s2s.text())
    return s2s, notify


def check_services(report, system):
    sm_port, port, tls_port, http_port, https_port, sm_s2s_port, s2s_port, s2s_tls_port = \
        free_ports(8)
    link_secret, s2s_secret = secret(), secret()

    def sm_edit(root):
        set_texts(root, {'service/accept/port': sm_port, 'service/accept/secret': link_secret})
        # Federation on, as docs/operations.md says: the commented <service id='s2s'>.
        svc = ET.SubElement(root, 'service', {'id': 's2s', 'role': 's2s'})
        acc = ET.SubElement(svc, 'accept')
        ET.SubElement(acc, 'ip').text = '127.0.0.1'
        ET.SubElement(acc, 'port').text = str(sm_s2s_port)
        ET.SubElement(acc, 'secret').text = s2s_secret

    def s2s_edit(root):
        set_texts(root, {'sm/port': sm_s2s_port, 'sm/secret': s2s_secret,
                         'local/ip': '127.0.0.1', 'local/port': s2s_port,
                         'local/tls_port': s2s_tls_port, 'local/pemfile': system.certificate(),
                         'dialback_secret': secret()})

    def front_edit(root):
        set_texts(root, {'sm/port': sm_port, 'sm/secret': link_secret, 'local/ip': '127.0.0.1',
                         'local/port': port, 'local/ssl/port': tls_port,
                         'http/port': http_port, 'http/tls_port': https_port, 'max_fds': 1023})

    sm_conf = edit('/etc/jabshard/sm.xml', system.path('sm.xml'), sm_edit)
    front_conf = edit('/etc/jabshard/jadc2s.xml', system.path('jadc2s.xml'), front_edit)
    s2s_conf = edit('/etc/jabshard/s2s.xml', system.path('s2s.xml'), s2s_edit)
    r = run(as_jabshard(['/usr/sbin/jabshard-sm', '-c', sm_conf, '--check']), cwd=STATE)
    report.check('the installed jabshard-sm --check, as jabshard, finds no error in the copy',
                 r.returncode == 0, r.stdout)
    ctl = as_jabshard(['/usr/sbin/jabshardctl', '-c', sm_conf])
    r = run(ctl + ['adduser', 'alice@localhost', 'wonderland'], cwd=STATE)
    report.check('the installed jabshardctl, as jabshard, makes an account', r.returncode == 0,
                 r.stdout)

    env = dict(os.environ)
    sm_notify = Notify(system.path('sm.notify'))
    env['NOTIFY_SOCKET'] = sm_notify.path
    # The configurations' paths are absolute (the admin socket's follows the database), so the
    # programs need not start in the unit's WorkingDirectory.
    sm = system.start(as_jabshard(['/usr/sbin/jabshard-sm', '-c', sm_conf]), 'sm.log', env=env)
    ready = sm_notify.wait_for('READY=1', 20)
    report.check('jabshard-sm, as jabshard, tells READY=1', ready is not None,
                 'nothing; its log:\n' + sm.text())
    front_notify = Notify(system.path('c2s.notify'))
    env['NOTIFY_SOCKET'] = front_notify.path
    front = system.start(as_jabshard(['/usr/sbin/jabshard-c2s', '-c', front_conf]), 'c2s.log',
                         env=env)
    ready = front_notify.wait_for('READY=1', 20)
    report.check('jabshard-c2s, as jabshard, tells READY=1', ready is not None,
                 'nothing; its log:\n' + front.text())
    report.check('...then STATUS says the link to the SM is up', front_notify.wait_for(
        'STATUS=link to the SM up', 15) is not None, '\n'.join(front_notify.messages))
    s2s, s2s_notify = start_s2s(report, system, s2s_conf, env)
    users = [pwd.getpwuid(os.stat('/proc/%d' % p.pid).st_uid).pw_name for p in (sm, front, s2s)]
    report.check('all three run as jabshard', users == ['jabshard'] * 3, str(users))

    c = Raw.connect(tls_port, tls=True)
    try:
        jid = c.login('alice', 'wonderland', resource='package', presence=True)
        report.check('a client logs in over direct TLS and binds', jid.startswith(
            'alice@localhost/'), jid)
        r = run(ctl + ['sessions'], cwd=STATE)
        report.check('jabshardctl sessions reaches the SM through %s/jabshard-sm.sock' % STATE,
                     r.returncode == 0 and 'alice@localhost' in r.stdout, r.stdout)
        report.check("the SM's STATUS counts the session (every 10 s)", sm_notify.wait_for(
            'STATUS=1 sessions (0 detached)', 15) is not None, '\n'.join(sm_notify.messages))
        front.kill(signal.SIGTERM, 20)
        report.check('SIGTERM stops jabshard-c2s with status 0', front.proc.returncode == 0,
                     'status %s; its log:\n%s' % (front.proc.returncode, front.text()))
        report.check('...telling STOPPING=1', front_notify.wait_for('STOPPING=1', 2) is not None)
        cond, _ = c.stream_error()
        report.check('...and the client gets <system-shutdown/>', cond == 'system-shutdown', cond)
    finally:
        c.close()
    status = s2s.stop(30)
    report.check('SIGTERM stops jabshard-s2s with status 0', status == 0,
                 'status %s; its log:\n%s' % (status, s2s.text()))
    report.check('...telling STOPPING=1', s2s_notify.wait_for('STOPPING=1', 2) is not None)
    status = sm.stop(30)
    report.check('SIGTERM stops jabshard-sm with status 0', status == 0,
                 'status %s; its log:\n%s' % (status, sm.text()))
    report.check('...telling STOPPING=1', sm_notify.wait_for('STOPPING=1', 2) is not None)
    report.check('the database is in %s, owned by jabshard' % STATE,
                 os.path.isfile(STATE + '/jabshard.db') and
                 os.stat(STATE + '/jabshard.db').st_uid == pwd.getpwnam('jabshard').pw_uid)


def body(report, build):
    if os.geteuid() != 0:
        report.note('SKIP: installs a package into this system: runs as root only (CI does)')
        return
    if sanitized(build):
        # The package is built from the tree, not from this build: once, in the plain run.
        report.note('SKIP: the package is built and installed once, in the run without sanitizers')
        return
    if installed():
        report.not_ok('no jabshard package is installed before the test',
                      'one is: not touching it (dpkg --purge jabshard first)')
        return
    had_user = True
    try:
        pwd.getpwnam('jabshard')
    except KeyError:
        had_user = False
    with System(build, 'package', report) as system:
        r = run(['sh', os.path.join(ROOT, 'tools', 'deb.sh'), system.path('deb')], timeout=600)
        debs = [line for line in r.stdout.splitlines() if line.endswith('.deb')]
        if not report.check('tools/deb.sh builds the package', r.returncode == 0 and debs,
                            r.stdout[-3000:]):
            return
        try:
            report.run('installing the package', check_install, report, debs[-1])
            if installed():
                report.run('the services without systemd', check_services, report, system)
        finally:
            for p in system.programs:
                if p.alive():
                    p.stop()
            r = run(['dpkg', '--purge', 'jabshard'])
            report.check('dpkg --purge removes the package', r.returncode == 0 and
                         not installed(), r.stdout)
            left = [p for p in FILES + [STATE, '/etc/jabshard', '/var/log/jabshard']
                    if os.path.exists(p)]
            report.check('...and everything it installed or made', not left,
                         'left: %s' % ', '.join(left))
            if not had_user:
                run(['deluser', '--system', '--quiet', 'jabshard'])
                run(['delgroup', '--system', '--quiet', 'jabshard'])
                users = run(['getent', 'passwd', 'jabshard']).stdout
                report.check('the jabshard user this test made is gone', not users, users)


if __name__ == '__main__':
    main('package', body)
