"""tests/integration/test_adhoc.py — ad-hoc admin commands end to end (XEP-0050, XEP-0133): the SM
with <admins> and a front on TLS, clients with slixmpp's xep_0050 and xep_0133 plugins.

1. the command list: the administrator sees XEP-0133's commands, another account none, and is
   refused (forbidden) when it runs one;
2. add-user: the form, its submission, and the new account logging in with its password;
3. get-online-users-num and get-online-users-list;
4. announce: every online session gets the headline;
5. set-motd: a session that logs in afterwards gets the message of the day; delete-motd.

Usage: test_adhoc.py BUILD_DIR. Prints ok/not ok lines and "adhoc: N passed, N failed"."""

import asyncio
import ssl

from jabtest.suite import main, require_slixmpp
from jabtest.system import feature_suite
from jabtest.xmpp import NS_CLIENT, q

NS_CMD = 'http://jabber.org/protocol/commands'
NS_ADMIN = 'http://jabber.org/protocol/admin'
NS_DATA = 'jabber:x:data'


def client(server, jid, password, clients):
    from jabtest.client import Client
    c = Client(jid, password, server,
               plugins=('xep_0030', 'xep_0004', 'xep_0050', 'xep_0133'))
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    clients.append(c)
    return c


def form(c, fields):
    """A submitted form: FORM_TYPE and fields (var: value or list of values)."""
    f = c['xep_0004'].make_form(ftype='submit')
    f.add_field(var='FORM_TYPE', ftype='hidden', value=NS_ADMIN)
    for var, value in fields.items():
        if isinstance(value, list):
            f.add_field(var=var, ftype='text-multi', value=value)
        else:
            f.add_field(var=var, value=value)
    return f


def vars_of(iq):
    x = iq.xml.find('%s/%s' % (q(NS_CMD, 'command'), q(NS_DATA, 'x')))
    if x is None:
        return {}
    return {f.get('var'): [v.text or '' for v in f.findall(q(NS_DATA, 'value'))]
            for f in x.findall(q(NS_DATA, 'field'))}


async def run_command(c, name, fields):
    """Executes admin#name, then completes it with fields when it asks for a form; the last
    answer."""
    node = NS_ADMIN + '#' + name
    first = await c['xep_0050'].send_command('localhost', node, timeout=10)
    if first['command']['status'] != 'executing':
        return first
    return await c['xep_0050'].send_command('localhost', node, action='complete',
                                           sessionid=first['command']['sessionid'],
                                           payload=form(c, fields), timeout=10)


def error_condition(exc):
    return exc.iq['error']['condition']


async def command_list(r, admin, user):
    from slixmpp.exceptions import IqError
    items = await admin['xep_0133'].get_commands(timeout=10)
    nodes = [i[1] for i in items['disco_items']['items']]
    r.check('list: the administrator sees add-user, announce and set-motd',
            all(NS_ADMIN + '#' + n in nodes for n in ('add-user', 'announce', 'set-motd')), nodes)
    items = await user['xep_0050'].get_commands('localhost', timeout=10)
    r.check('list: another account sees none', not items['disco_items']['items'],
            items['disco_items']['items'])
    try:
        await user['xep_0050'].send_command('localhost', NS_ADMIN + '#add-user', timeout=10)
        r.not_ok('forbidden: a non-administrator cannot run add-user', 'it ran')
    except IqError as e:
        r.check('forbidden: a non-administrator cannot run add-user',
                error_condition(e) == 'forbidden', error_condition(e))


async def add_user(r, admin, server, clients):
    node = NS_ADMIN + '#add-user'
    first = await admin['xep_0050'].send_command('localhost', node, timeout=10)
    r.check('add-user: a form with accountjid, password and password-verify',
            first['command']['status'] == 'executing' and
            {'accountjid', 'password', 'password-verify'} <= set(vars_of(first)), vars_of(first))
    done = await admin['xep_0050'].send_command(
        'localhost', node, action='complete', sessionid=first['command']['sessionid'],
        payload=form(admin, {'accountjid': 'newbie@localhost', 'password': 'fresh',
                             'password-verify': 'fresh'}), timeout=10)
    r.check('add-user: completed', done['command']['status'] == 'completed', done)
    newbie = client(server, 'newbie@localhost/n', 'fresh', clients)
    await newbie.login()
    r.check('add-user: the new account logs in with its password', True)
    return newbie


async def online(r, admin):
    num = await run_command(admin, 'get-online-users-num', {})
    r.check('get-online-users-num: three accounts online',
            vars_of(num).get('onlineusersnum') == ['3'], vars_of(num))
    lst = await run_command(admin, 'get-online-users-list', {'max_items': 'none'})
    r.check('get-online-users-list: every online account, sorted',
            vars_of(lst).get('onlineuserjids') == ['admin@localhost', 'newbie@localhost',
                                                   'u1@localhost'], vars_of(lst))


async def announce(r, admin, user):
    done = await run_command(admin, 'announce', {'subject': 'Notice',
                                                 'announcement': ['Maintenance at noon']})
    r.check('announce: completed', done['command']['status'] == 'completed', done)

    def headline(e):
        b = e.find(q(NS_CLIENT, 'body'))
        return (e.tag == q(NS_CLIENT, 'message') and e.get('type') == 'headline' and
                b is not None and b.text == 'Maintenance at noon')
    got = await user.expect(headline, 'the announcement')
    r.check('announce: an online user gets the headline from the server',
            got.get('from') == 'localhost', got)


async def motd(r, admin, server, clients):
    done = await run_command(admin, 'set-motd', {'motd': ['Welcome to jabshard']})
    r.check('set-motd: completed', done['command']['status'] == 'completed', done)
    late = client(server, 'u2@localhost/late', 'pw2', clients)
    await late.login()
    late.send_presence()

    def is_motd(e):
        b = e.find(q(NS_CLIENT, 'body'))
        return e.tag == q(NS_CLIENT, 'message') and b is not None and b.text == 'Welcome to jabshard'
    got = await late.expect(is_motd, 'the message of the day')
    r.check('motd: a session that logs in gets it from the server', got.get('from') == 'localhost',
            got)
    done = await run_command(admin, 'delete-motd', {})
    r.check('delete-motd: completed', done['command']['status'] == 'completed', done)


def scenario(r, server, _system):
    require_slixmpp('adhoc')

    async def run():
        clients = []
        admin = client(server, 'admin@localhost/a', 'pwa', clients)
        user = client(server, 'u1@localhost/u', 'pw1', clients)
        for c in (admin, user):
            await c.login()
            c.send_presence()
        await command_list(r, admin, user)
        await add_user(r, admin, server, clients)
        await online(r, admin)
        await announce(r, admin, user)
        await motd(r, admin, server, clients)
        for c in clients:
            await c.logout()

    asyncio.run(run())


def suite(report, build):
    feature_suite(report, build, 'adhoc', [('admin@localhost', 'pwa'), ('u1@localhost', 'pw1'),
                                           ('u2@localhost', 'pw2')], scenario,
                  sm_extra='\n  <admins><jid>admin@localhost</jid></admins>')


if __name__ == '__main__':
    main('adhoc', suite)
