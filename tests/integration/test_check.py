"""tests/integration/test_check.py — `jabshard-c2s --check` and `jabshard-sm --check`: what an
operator learns before starting anything, one list, exit status 1 on an error.

The front: a good configuration (0 errors; the SM not running is a warning), a certificate for
another name, one whose key is another's, one missing, one expiring tomorrow (a warning), a port
in use (a warning), the example's secret (a warning), a configuration error (file:line, exit 2).
The SM: a good configuration, storage that cannot be opened, a database written by a newer
jabshard, a port in use.
The federation front (jabshard-s2s): a good configuration with the SM running (the handshake
accepted), a wrong link secret and an unknown service id (errors), the SM not running, a
certificate for another name, the example's secrets, a port in use (the handshake then not
tried: it would replace a running box's link), a configuration error (exit 2); DNS is looked up
but what it finds depends on the machine.

Usage: test_check.py BUILD_DIR. Prints ok/not ok lines and "check: N passed, N failed"."""

import os
import socket
import sqlite3
import subprocess

from jabtest.suite import main
from jabtest.s2s import s2s_xml
from jabtest.system import System, free_ports, front_xml, read, service, sm_xml


def openssl_cert(system, name, cn, days):
    key, crt = system.path(name + '.key'), system.path(name + '.crt')
    r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-days', str(days), '-subj',
                        '/CN=%s' % cn, '-addext', 'subjectAltName=DNS:%s' % cn, '-keyout', key,
                        '-out', crt], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return crt, key


def pem(system, name, crt, key):
    path = system.path(name + '.pem')
    with open(path, 'w') as out:
        out.write(read(crt) + read(key))
    return path


def run(system, program, config):
    r = subprocess.run([system.binary(program), '-c', config, '--check'], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def body(report, build):
    with System(build, 'check', report) as system:
        sm_port, port, tls_port, busy = free_ports(4)
        good_crt, good_key = openssl_cert(system, 'good', 'localhost', 365)
        other_crt, other_key = openssl_cert(system, 'other', 'other.example', 365)
        soon_crt, soon_key = openssl_cert(system, 'soon', 'localhost', 1)
        pems = {'good': pem(system, 'good', good_crt, good_key),
                'other': pem(system, 'other', other_crt, other_key),
                'mismatch': pem(system, 'mismatch', good_crt, other_key),
                'soon': pem(system, 'soon', soon_crt, soon_key),
                'missing': system.path('nowhere.pem')}

        def front(name, pemfile, secret='s', listen_port=port):
            return system.write(name + '.xml', front_xml('jadc2s', secret, sm_port, '127.0.0.1',
                                                          listen_port, tls_port, pemfile))

        def check(name, program, config, status, *needles):
            rc, out = run(system, program, config)
            report.check(name, rc == status and all(n in out for n in needles),
                         'exit %d (expected %d)\n%s' % (rc, status, out))

        check('front: a good configuration has no errors (the SM not running is a warning)',
              'jabshard-c2s', front('f-good', pems['good']), 0, '0 error(s), 1 warning(s)',
              'names localhost', 'nothing accepts connections on 127.0.0.1 port %d' % sm_port)
        check('front: a certificate for another name is an error', 'jabshard-c2s',
              front('f-other', pems['other']), 1, 'does not name localhost')
        check("front: a key that is not the certificate's is an error", 'jabshard-c2s',
              front('f-mismatch', pems['mismatch']), 1, "is not this certificate's")
        check('front: a missing certificate is an error', 'jabshard-c2s',
              front('f-missing', pems['missing']), 1, 'No such file')
        check('front: a certificate expiring tomorrow is a warning', 'jabshard-c2s',
              front('f-soon', pems['soon']), 0, 'warning: certificate', 'expires in')
        check("front: the example's secret is a warning", 'jabshard-c2s',
              front('f-secret', pems['good'], secret='secret'), 0, "the example's 'secret'")
        holder = socket.socket()
        holder.bind(('127.0.0.1', busy))
        holder.listen(1)
        check('front: a port in use is a warning', 'jabshard-c2s',
              front('f-busy', pems['good'], listen_port=busy), 0,
              '127.0.0.1 port %d is in use' % busy)
        with open(front('f-standby', pems['good'])) as f:
            text = f.read().replace('</sm>', '<standby><host>127.0.0.1</host><port>%d</port>'
                                    '</standby></sm>' % busy)
        check('front: with a standby SM, one SM of the two accepting connections is enough',
              'jabshard-c2s', system.write('f-standby.xml', text), 0,
              '0 error(s), 0 warning(s)', 'port %d accepts connections (SM 2 of 2)' % busy,
              'port %d (SM 1 of 2): one SM runs at a time' % sm_port)
        bad = system.write('f-bad.xml', '<jadc2s>\n<local><port>none</port></local>\n</jadc2s>\n')
        check('front: a configuration error names file and line (exit 2)', 'jabshard-c2s', bad, 2,
              'f-bad.xml:1: <jadc2s>: missing required element')

        db = system.path('db.sqlite')
        good_sm = system.write('s-good.xml', sm_xml(db, [service('jadc2s', sm_port, 's',
                                                                 'front')]))
        check('SM: a good configuration has no errors (an empty database is made at start)',
              'jabshard-sm', good_sm, 0, '0 error(s)', 'the schema will be made at start')
        nowhere = system.write('s-nowhere.xml', sm_xml(system.path('no', 'such', 'dir', 'db'),
                                                       [service('jadc2s', sm_port, 's', 'front')]))
        check('SM: storage that cannot be opened is an error', 'jabshard-sm', nowhere, 1,
              'error: storage (sqlite)')
        con = sqlite3.connect(db)
        con.execute('CREATE TABLE IF NOT EXISTS jabshard_schema (version INTEGER NOT NULL)')
        con.execute('DELETE FROM jabshard_schema')
        con.execute('INSERT INTO jabshard_schema VALUES (99)')
        con.commit()
        con.close()
        check('SM: a database written by a newer jabshard is an error', 'jabshard-sm', good_sm,
              1, 'schema version 99 is newer')
        os.remove(db)
        busy_sm = system.write('s-busy.xml', sm_xml(db, [service('jadc2s', busy, 's', 'front')]))
        check("SM: a <service>'s port in use is a warning", 'jabshard-sm', busy_sm, 0,
              '127.0.0.1 port %d is in use' % busy)
        s2s_checks(system, check, pems, busy)
        holder.close()


def s2s_checks(system, check, pems, busy):
    """jabshard-s2s --check, with an SM running that has its <service role='s2s'>."""
    sm_port, port, tls_port = free_ports(3)
    link_secret = 'the s2s link secret'

    def conf(name, pemfile=pems['good'], secret_=link_secret, service_id='s2s', listen_port=port,
             dialback_secret='integration dialback secret'):
        return system.write(name + '.xml', s2s_xml(service_id, secret_, sm_port, ['localhost'],
                                                   '127.0.0.1', listen_port, tls_port, pemfile,
                                                   dialback_secret=dialback_secret))

    check('s2s: the SM not running is a warning', 'jabshard-s2s', conf('x-nosm'), 0,
          '0 error(s)', 'the SM link: nothing accepts connections on 127.0.0.1 port %d' % sm_port,
          'names localhost', 'DNS: ')
    system.use_sm(sm_xml(system.path('s2s-db.sqlite'),
                         [service('s2s', sm_port, link_secret, 's2s')]))
    if not system.start_sm(ready_port=sm_port):
        check('s2s: the SM starts', 'jabshard-sm', system.sm_conf, -1)
        return
    check('s2s: a good configuration has no errors (the SM accepts the handshake)',
          'jabshard-s2s', conf('x-good'), 0, '0 error(s)',
          "port %d accepts service 's2s' and its <secret>" % sm_port,
          'other servers (STARTTLS): 127.0.0.1 port %d is free' % port,
          'other servers (direct TLS): 127.0.0.1 port %d is free' % tls_port)
    check('s2s: a wrong link secret is an error', 'jabshard-s2s',
          conf('x-secret', secret_='not the secret'), 1,
          "refuses service 's2s': stream error <not-authorized/>")
    check('s2s: a service id the SM does not know is an error', 'jabshard-s2s',
          conf('x-id', service_id='s2s-other'), 1,
          "refuses service 's2s-other': stream error <host-unknown/>")
    check('s2s: a certificate for another name is a warning (dialback still works)',
          'jabshard-s2s', conf('x-other', pemfile=pems['other']), 0, '0 error(s)',
          'does not name localhost', 'self-signed')
    check('s2s: a missing certificate is an error', 'jabshard-s2s',
          conf('x-missing', pemfile=pems['missing']), 1, 'error: TLS: ')
    check("s2s: the example's secrets are warnings", 'jabshard-s2s',
          conf('x-example', dialback_secret='change this dialback secret'), 0,
          "<dialback_secret> is the example's")
    check('s2s: a port in use is a warning, and the handshake is not tried (it would replace the '
          "running box's link)", 'jabshard-s2s', conf('x-busy', listen_port=busy), 0,
          '127.0.0.1 port %d is in use' % busy, "knows service 's2s' (its <secret> not tried")
    bad = system.write('x-bad.xml', '<s2s>\n<sm><secret>s</secret></sm>\n</s2s>\n')
    check('s2s: a configuration error names file and line (exit 2)', 'jabshard-s2s', bad, 2,
          'x-bad.xml:')
    system.sm.stop()


if __name__ == '__main__':
    main('check', body)
