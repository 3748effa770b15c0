"""tests/integration/test_muc.py — group chat end to end: the SM and a front on TLS, clients with
slixmpp's xep_0045 plugin (as Gajim-era clients and bots use it) and raw stanzas where the
plugin has no API.

1. discovery: the server's disco#items lists conference.localhost, whose disco#info says it is a
   MUC service (what Conversations and Gajim look for);
2. a room's life with the plugin: created (201) and configured (persistent, named) by its owner,
   joined by two more, group messages with the room's stanza id and occupant ids, history for a
   late joiner, the subject, the room's archive (slixmpp's xep_0313 iterator), a private
   message, the member list, a kick (307), an invitation;
3. an SM killed and started again: the room and its occupants are still there, nobody hears
   anyone leave or join, and a message reaches everyone.

Usage: test_muc.py BUILD_DIR. Prints ok/not ok lines and "muc: N passed, N failed"."""

import asyncio
import ssl

from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q

NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = NS_MUC + '#user'
NS_SID = 'urn:xmpp:sid:0'
NS_OID = 'urn:xmpp:occupant-id:0'
SERVICE = 'conference.localhost'
ROOM = 'lobby@' + SERVICE


def client(server, jid, password, clients):
    from jabtest.client import Client
    c = Client(jid, password, server,
               plugins=('xep_0030', 'xep_0004', 'xep_0045', 'xep_0059', 'xep_0313'))
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    clients.append(c)
    return c


def is_groupchat(body, sender=None):
    def pred(e):
        b = e.find(q(NS_CLIENT, 'body'))
        return (e.tag == q(NS_CLIENT, 'message') and e.get('type') == 'groupchat' and
                b is not None and b.text == body and
                (sender is None or e.get('from') == ROOM + '/' + sender))
    return pred


def presence_from(nick, unavailable=False):
    def pred(e):
        return (e.tag == q(NS_CLIENT, 'presence') and e.get('from') == ROOM + '/' + nick and
                (e.get('type') == 'unavailable') == unavailable)
    return pred


def codes(el):
    x = el.find(q(NS_MUC_USER, 'x'))
    return sorted(s.get('code') for s in x.findall(q(NS_MUC_USER, 'status'))) if x is not None else []


async def discovery(r, c):
    items = await c['xep_0030'].get_items(jid='localhost')
    jids = [i[0] for i in items['disco_items']['items']]
    r.check('discovery: the server lists its MUC service', SERVICE in jids, jids)
    info = await c['xep_0030'].get_info(jid=SERVICE)
    ids = info['disco_info']['identities']
    r.check('discovery: the service is conference/text with the MUC feature',
            any(i[0] == 'conference' and i[1] == 'text' for i in ids) and
            NS_MUC in info['disco_info']['features'], (ids, info['disco_info']['features']))


async def room_life(r, owner, u1, u2, u3):
    muc = owner['xep_0045']
    pres, _, _, _ = await muc.join_muc_wait(ROOM, 'Owner', timeout=10)
    r.check('create: the owner gets 110, 170 (archived) and 201 (a new room)',
            codes(pres.xml) == ['110', '170', '201'], codes(pres.xml))
    form = await muc.get_room_config(ROOM)
    fields = [f.get('var') for f in form['fields']]
    r.check('configure: the form has the usual fields',
            all(f in fields for f in ('muc#roomconfig_persistentroom', 'muc#roomconfig_whois',
                                      'muc#roomconfig_membersonly', 'muc#roomconfig_roomsecret')),
            fields)
    answer = owner['xep_0004'].make_form(ftype='submit')
    answer.add_field(var='FORM_TYPE', value=NS_MUC + '#roomconfig', ftype='hidden')
    answer.add_field(var='muc#roomconfig_persistentroom', value=True, ftype='boolean')
    answer.add_field(var='muc#roomconfig_roomname', value='The Lobby')
    await muc.set_room_config(ROOM, answer)
    info = await owner['xep_0030'].get_info(jid=ROOM)
    r.check('configure: disco#info says persistent, named',
            'muc_persistent' in info['disco_info']['features'] and
            any(i[3] == 'The Lobby' for i in info['disco_info']['identities']),
            info['disco_info']['identities'])

    pres, subject, occupants, _ = await u1['xep_0045'].join_muc_wait(ROOM, 'One', timeout=10)
    # slixmpp counts its own presence among the occupants.
    seen = [str(p['from']) for p in occupants]
    r.check('join: the second occupant sees the owner, then its own presence (110)',
            seen == [ROOM + '/Owner', ROOM + '/One'] and codes(pres.xml) == ['110', '170'],
            (seen, codes(pres.xml)))
    await owner.expect(presence_from('One'), 'One joining')

    u1.send_message(mto=ROOM, mbody='hello all', mtype='groupchat')
    got = await owner.expect(is_groupchat('hello all', 'One'), 'the group message')
    sid = got.find(q(NS_SID, 'stanza-id'))
    oid = got.find(q(NS_OID, 'occupant-id'))
    r.check('message: the room adds its stanza id and the occupant id',
            sid is not None and sid.get('by') == ROOM and oid is not None, got)
    await u1.expect(is_groupchat('hello all', 'One'), 'its own message reflected')
    muc.set_subject(ROOM, 'Welcome')
    # u1 also got the empty subject when it joined: wait for this one.
    await u1.expect(lambda e: e.findtext(q(NS_CLIENT, 'subject')) == 'Welcome', 'the subject')

    _, subject, occupants, history = await u2['xep_0045'].join_muc_wait(
        ROOM, 'Two', maxstanzas=10, timeout=10)
    bodies = [m['body'] for m in history]
    r.check('history: a late joiner gets the message, delayed, and the subject',
            bodies == ['hello all'] and subject['subject'] == 'Welcome', (bodies, subject['subject']))

    archived = []
    async for m in u2['xep_0313'].iterate(jid=ROOM, rsm={'max': 5}):
        fwd = m['mam_result']['forwarded']['stanza']
        archived.append((str(fwd['from']), fwd['body']))
    r.check('archive: the room\'s history through slixmpp\'s MAM iterator',
            archived == [(ROOM + '/One', 'hello all')], archived)

    u2.send_message(mto=ROOM + '/One', mbody='just you', mtype='chat')
    pm = await u1.expect(lambda e: e.get('from') == ROOM + '/Two' and e.get('type') == 'chat',
                         'the private message')
    r.check('private message: from the sender\'s occupant JID, marked muc#user',
            pm.find(q(NS_MUC_USER, 'x')) is not None, pm)

    await muc.set_affiliation(ROOM, 'member', jid='u2@localhost')
    members = await muc.get_affiliation_list(ROOM, 'member')
    r.check('affiliations: the member list', [str(j) for j in members] == ['u2@localhost'],
            members)

    await muc.set_role(ROOM, 'One', 'none', reason='test')
    kicked = await u1.expect(presence_from('One', unavailable=True), 'the kick')
    r.check('kick: the kicked occupant hears 307 and 110', codes(kicked) == ['110', '307'],
            codes(kicked))
    seen = await u2.expect(presence_from('One', unavailable=True), 'the kick, as the others see it')
    r.check('kick: the others hear 307', codes(seen) == ['307'], codes(seen))

    muc.invite(ROOM, 'u3@localhost', reason='come in')
    inv = await u3.expect(lambda e: e.get('from') == ROOM and e.find(q(NS_MUC_USER, 'x')) is not None,
                          'the invitation')
    invite = inv.find(q(NS_MUC_USER, 'x')).find(q(NS_MUC_USER, 'invite'))
    r.check('invitation: mediated, from the owner\'s bare JID',
            invite is not None and invite.get('from') == 'u0@localhost', inv)


async def survive_restart(r, system, owner, u2):
    system.sm.kill()
    r.check('restart: the SM starts again', system.start_sm(ready_port=system.sm_port, seconds=10))
    await asyncio.sleep(6)      # the front resyncs, the start's wait ends
    owner.send_message(mto=ROOM, mbody='after the restart', mtype='groupchat')
    await u2.expect(is_groupchat('after the restart', 'Owner'), 'the message after the restart',
                    timeout=15)
    await owner.expect(is_groupchat('after the restart', 'Owner'), 'its reflection')
    noise = [e for c in (owner, u2) for e in c.received
             if e.tag == q(NS_CLIENT, 'presence') and (e.get('from') or '').startswith(ROOM)]
    r.check('restart: occupants stay, nobody hears anyone leave or join', not noise, noise)


def scenario(r, server, system):
    require_slixmpp('muc')

    async def run():
        clients = []
        owner = client(server, 'u0@localhost/o', 'pw0', clients)
        u1 = client(server, 'u1@localhost/o', 'pw1', clients)
        u2 = client(server, 'u2@localhost/o', 'pw2', clients)
        u3 = client(server, 'u3@localhost/o', 'pw3', clients)
        for c in clients:
            await c.login()
            c.send_presence()
        await discovery(r, owner)
        await room_life(r, owner, u1, u2, u3)
        for c in (owner, u2):
            c.received.clear()
        await survive_restart(r, system, owner, u2)
        for c in clients:
            await c.logout()

    asyncio.run(run())


def suite(report, build):
    with System(build, 'muc', report) as system:
        sm_port, port, tls = free_ports(3)
        system.sm_port = sm_port
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             level='info'))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem')), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(4))
        if not (report.check('import 4 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        server = Server('127.0.0.1', port, tls, None, wait=15)
        try:
            scenario(report, server, system)
        except Failure as e:
            report.not_ok('the scenario ran to its end', str(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('muc', suite)
