"""tests/integration/test_ctl.py — jabshardctl end to end on SQLite: accounts, bulk import, the
running SM's status, stats, sessions and announcements (text and --json), and the configuration
errors every program reports (file:line: <element>: message, exit status 2).

Usage: test_ctl.py BUILD_DIR. Prints ok / not ok lines and ends "ctl: N passed, N failed"."""

import json

from jabtest.link import fake_front
from jabtest.suite import main
from jabtest.system import UPLOAD_SECRET, System, free_ports

# Credentials exported by another server (password "pencil" with the salts of the RFC 5802 and
# RFC 7677 examples), and a malformed such line.
SCRAM = ('{SCRAM}QSXCR+Q6sek8bf92:4096:6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=:'
         'W22ZaJ0SNY7soEsUEjb6gQ==:4096:WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:'
         'wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=')

IMPORT = """# comment lines and blank lines are skipped

erin@localhost first password
frank@example.org p2
alice@localhost already-there
not-a-jid
grace@unknown.host pw
"""


def body(report, build):
    with System(build, 'ctl', report) as system:
        sm_port, comp_port = free_ports(2)
        system.use_sm("""<sm>
  <service id='jadc2s' role='front'>
    <accept><ip>127.0.0.1</ip><port>%d</port><secret>s</secret></accept>
  </service>
  <service id='muc.example.org' role='component'>
    <accept><ip>127.0.0.1</ip><port>%d</port><secret>c</secret></accept>
  </service>
  <host name='localhost'><register/></host>
  <host name='example.org'/>
  <storage><driver>sqlite</driver><path>%s</path></storage>
  <upload><secret>%s</secret></upload>
</sm>
""" % (sm_port, comp_port, system.path('db.sqlite'), UPLOAD_SECRET))
        last = ['']

        def check(name, expect, *args, config=None, input_=None):
            """jabshardctl ARGS exits with status expect; its output is kept for output()."""
            r = system.ctl(*args, config=config, input_=input_)
            last[0] = r.stdout + r.stderr
            report.check(name, r.returncode == expect, 'exit %d, expected %d\n%s' % (
                r.returncode, expect, last[0]))

        def output(name, text):
            """The last command's output contains text."""
            report.check(name, text in last[0], 'no "%s" in:\n%s' % (text, last[0]))

        check('adduser with the password as an argument', 0, 'adduser', 'alice@localhost',
              'secret')
        check('adduser with the password on stdin', 0, 'adduser', 'Bob@LocalHost',
              input_='pass word\n')
        check('adduser of an existing account is refused', 1, 'adduser', 'alice@localhost',
              'other')
        output('...saying so', 'alice@localhost already exists')
        check('adduser on a host that is not served is refused', 1, 'adduser',
              'carol@elsewhere.net', 'pw')
        check('adduser of a JID with a resource is refused', 1, 'adduser', 'dave@localhost/desk',
              'pw')
        check('listusers', 0, 'listusers')
        output('...lists alice', 'alice@localhost')
        output('...lists bob, normalised', 'bob@localhost')
        check('passwd', 0, 'passwd', 'bob@localhost', 'new')
        check('passwd of a missing account', 1, 'passwd', 'nobody@localhost', 'new')
        check('deluser', 0, 'deluser', 'bob@localhost')
        check('deluser twice', 1, 'deluser', 'bob@localhost')
        output('...saying so', 'no such user bob@localhost')

        check('import reports the lines it refused', 1, 'import', system.write('import.txt',
                                                                                IMPORT))
        output('...counts', 'imported 2 accounts, 3 failed')
        output("...names the duplicate's line", 'import line 5: alice@localhost: already exists')
        output('...names the bad line', 'import line 6:')
        check('imported accounts are listed', 0, 'listusers', 'example.org')
        output('...with their host', 'frank@example.org')

        hashed = system.write('hashed.txt', 'imported@localhost %s\nbroken@localhost '
                              '{SCRAM}QSXCR+Q6sek8bf92:4096:short\n' % SCRAM)
        check('import of exported SCRAM credentials', 1, 'import', hashed)
        output('...takes the good line', 'imported 1 accounts, 1 failed')
        output('...refuses the malformed one', 'import line 2: malformed {SCRAM} credentials')
        check('the imported account is listed', 0, 'listusers', 'localhost')
        output('...by name', 'imported@localhost')

        # Configuration errors: file, line and element, and exit status 2.
        typo = system.write('typo.xml', '<sm>\n  <host name="localhost"/>\n  <storage><drver>'
                            'sqlite</drver></storage>\n</sm>\n')
        check('a misspelt element is a config error', 2, 'listusers', config=typo)
        output('...naming file, line and element', '%s:3: <storage/drver>: unknown element' % typo)
        value = system.write('value.xml', '<sm>\n  <host name="localhost"/>\n  <storage>\n    '
                             '<workers>many</workers>\n  </storage>\n</sm>\n')
        check('a bad number is a config error', 2, 'listusers', config=value)
        output('...naming file, line and element', '%s:4: <storage/workers>:' % value)
        syntax = system.write('syntax.xml', '<sm>\n  <host name="localhost">\n</sm>\n')
        check('an XML syntax error is a config error', 2, 'listusers', config=syntax)
        output('...naming the file and line', '%s:3' % syntax)
        enum = system.write('enum.xml', '<sm>\n  <host name="localhost"/>\n  <storage><driver>'
                            'oracle</driver></storage>\n</sm>\n')
        check('an unknown storage driver is a config error', 2, 'listusers', config=enum)
        output('...naming file, line and element', '%s:3: <storage/driver>:' % enum)
        none = system.path('none.xml')
        check('a missing config file is an error', 2, 'listusers', config=none)
        output('...naming the file', none)
        check('an unknown command is a usage error', 2, 'frobnicate')

        running_sm(report, system, check, output, last, sm_port)


def parsed(report, text):
    """The command's output as JSON ({} and a not ok line when it is not)."""
    try:
        return json.loads(text)
    except ValueError as e:
        report.not_ok('...is JSON', '%s: %s' % (e, text))
        return {}


def running_sm(report, system, check, output, last, sm_port):
    """status, stats, sessions and announce against a running SM (a raw front linked)."""
    check('status without a running SM fails', 3, 'status')
    output('...saying so', 'cannot reach the session manager')
    if not report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)):
        return
    link, _ = fake_front(sm_port, 'jadc2s', 's')
    try:
        system.sm.wait_log("front 'jadc2s' is up", 10)
        check('status', 0, 'status')
        output('...the uptime', 'uptime')
        output('...the sessions', 'sessions   0')
        output('...the front, up', 'front      jadc2s: up')
        output('...the component, down', 'component  muc.example.org: down')
        output('...storage', 'storage    sqlite: up (')
        check('status --json', 0, '--json', 'status')
        st = parsed(report, last[0])
        report.check('...with uptime, sessions and users as numbers',
                     all(isinstance(st.get(k), int) for k in ('uptime', 'sessions', 'users')), st)
        report.check('...services with their state',
                     {(x['id'], x['role'], x['state']) for x in st.get('services', [])} ==
                     {('jadc2s', 'front', 'up'), ('muc.example.org', 'component', 'down')}, st)
        report.check('...storage', st.get('storage', {}).get('driver') == 'sqlite' and
                     st['storage'].get('state') == 'up' and st['storage'].get('workers', 0) >= 1,
                     st)
        check('stats --json (after the command)', 0, 'stats', '--json')
        stats = parsed(report, last[0])
        report.check('...the counters', all(isinstance(stats.get(k), int) for k in (
            'sessions', 'users', 'links', 'dropped_stale', 'dropped_bad', 'storage_pending')) and
            stats.get('links') == 1, stats)
        check('stats', 0, 'stats')
        output('...as lines', 'dropped_bad\t0')
        check('sessions --json', 0, '-j', 'sessions')
        report.check('...an empty array', last[0].strip() == '[]', last[0])
        check('announce', 0, 'announce', 'back', 'in', 'five', 'minutes')
        output('...to every session', 'announced to 0 session(s)')
        check('announce without text is a usage error', 2, 'announce')
    finally:
        link.sock.close()
    report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)


if __name__ == '__main__':
    main('ctl', body)
