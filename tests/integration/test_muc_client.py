"""tests/integration/test_muc_client.py — a real client in a group chat: Profanity (the Debian
package, driven in tmux as test_omemo.py drives it: jabtest.profanity) and a scripted participant
(slixmpp with its xep_0045 plugin) in the same room of conference.localhost.

1. the participant (u1, nick Bot) creates lobby@conference.localhost, configures it persistent and
   sets its subject;
2. Profanity (u0) logs in and types /join lobby@conference.localhost nick Prof: its screen shows it
   joined as Prof (its self-presence, status 110, in its debug log) and the room's subject; the
   participant hears Prof join;
3. the participant's group message appears in Profanity's window, from Bot;
4. a line typed in Profanity's room window reaches the participant as a group message from
   lobby@conference.localhost/Prof;
5. Profanity leaves (/close in the room window): the participant hears Prof leave.

Usage: test_muc_client.py BUILD_DIR. Prints ok/not ok lines and "muc_client: N passed, N
failed"."""

import asyncio
import re
import secrets
import ssl
import xml.etree.ElementTree as ET

from jabtest.profanity import Profanity, Tmux, start_system, stop_system
from jabtest.suite import main, require_slixmpp
from jabtest.system import System
from jabtest.xmpp import NS_CLIENT, Server, q

NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = NS_MUC + '#user'
ROOM = 'lobby@conference.localhost'
SUBJECT = 'Welcome to the lobby'


def groupchat_from(nick, body):
    def pred(e):
        b = e.find(q(NS_CLIENT, 'body'))
        return (e.tag == q(NS_CLIENT, 'message') and e.get('type') == 'groupchat' and
                e.get('from') == ROOM + '/' + nick and b is not None and b.text == body)
    return pred


def presence_from(nick, unavailable=False):
    return lambda e: (e.tag == q(NS_CLIENT, 'presence') and e.get('from') == ROOM + '/' + nick and
                      (e.get('type') == 'unavailable') == unavailable)


def self_presence(s):
    """A stanza of Profanity's debug log is its own presence in the room (status 110)."""
    if not s.startswith('<presence'):
        return False
    try:
        el = ET.fromstring(s)
    except ET.ParseError:
        return False
    x = el.find('{%s}x' % NS_MUC_USER)
    return (el.get('from') == ROOM + '/Prof' and el.get('type') is None and x is not None and
            '110' in [st.get('code') for st in x.findall('{%s}status' % NS_MUC_USER)])


async def make_room(r, bot):
    muc = bot['xep_0045']
    await muc.join_muc_wait(ROOM, 'Bot', timeout=10)
    answer = bot['xep_0004'].make_form(ftype='submit')
    answer.add_field(var='FORM_TYPE', value=NS_MUC + '#roomconfig', ftype='hidden')
    answer.add_field(var='muc#roomconfig_persistentroom', value=True, ftype='boolean')
    answer.add_field(var='muc#roomconfig_roomname', value='The Lobby')
    await muc.set_room_config(ROOM, answer)
    muc.set_subject(ROOM, SUBJECT)
    await bot.expect(lambda e: (e.get('from') == ROOM + '/Bot' and
                                e.find(q(NS_CLIENT, 'subject')) is not None), 'its subject')
    r.ok('the participant creates %s, configures it persistent and sets its subject' % ROOM)


async def prof_joins(r, prof, bot):
    prof.type_line('/join %s nick Prof' % ROOM)
    await asyncio.to_thread(prof.wait_screen, r'You have joined the room as Prof', 'the join')
    r.ok("Profanity's screen: it joined the room as Prof")
    got = await asyncio.to_thread(prof.wait_received, self_presence)
    r.check('Profanity received its self-presence (status 110)', got,
            'not in its debug log')
    # The subject comes from the occupant that set it: "*Bot has set the room subject: ...";
    # from the room's bare JID it would be "Room subject: ...".
    await asyncio.to_thread(prof.wait_screen, r'(?:Room subject|\*Bot has set the room subject): %s'
                            % re.escape(SUBJECT), 'the subject')
    r.ok("Profanity's screen: the room's subject")
    await bot.expect(presence_from('Prof'), 'Prof joining')
    r.ok('the participant hears Prof join')


async def bot_speaks(r, prof, bot):
    text = 'hello from the bot %s' % secrets.token_hex(3)
    bot.send_message(mto=ROOM, mbody=text, mtype='groupchat')
    await bot.expect(groupchat_from('Bot', text), 'its own message reflected')
    await asyncio.to_thread(prof.wait_screen, r'Bot: %s' % re.escape(text), 'the bot\'s message')
    r.ok("the participant's group message appears in Profanity's room window, from Bot")


async def prof_speaks(r, prof, bot):
    text = 'hello from profanity %s' % secrets.token_hex(3)
    prof.type_line(text)
    await bot.expect(groupchat_from('Prof', text), "Profanity's group message")
    r.ok('a line typed in Profanity reaches the participant, from %s/Prof' % ROOM)
    await asyncio.to_thread(prof.wait_screen, r'Prof: %s' % re.escape(text),
                            'its own message, reflected')
    r.ok("Profanity's screen shows its own message")


async def prof_leaves(r, prof, bot):
    prof.type_line('/close')
    left = await bot.expect(presence_from('Prof', unavailable=True), 'Prof leaving')
    r.check('Profanity closes the room window: the participant hears Prof leave', left is not None)


def scenario(r, system, port, server):
    from jabtest.client import Client

    async def run():
        tmux = Tmux(system.path('tmux.sock'))
        bot = Client('u1@localhost/bot', 'pw1', server,
                     plugins=('xep_0030', 'xep_0004', 'xep_0045'))
        bot.ssl_context.check_hostname = False      # the front's certificate is self-signed
        bot.ssl_context.verify_mode = ssl.CERT_NONE
        try:
            await bot.login()
            bot.send_presence()
            await make_room(r, bot)
            prof = Profanity(tmux, system.path('home-u0'), 'u0', 'u0@localhost', 'pw0', port)
            prof.start()
            await asyncio.to_thread(prof.wait_screen, r'u0@localhost/prof logged in successfully',
                                    'login')
            r.ok('Profanity logs in over STARTTLS')
            await prof_joins(r, prof, bot)
            await bot_speaks(r, prof, bot)
            await prof_speaks(r, prof, bot)
            await prof_leaves(r, prof, bot)
            await bot.logout()
        finally:
            await asyncio.to_thread(tmux.close)

    asyncio.run(run())


def suite(report, build):
    require_slixmpp('muc_client')
    with System(build, 'muc_client', report) as system:
        ports = start_system(report, system)
        if ports is None:
            return
        server = Server('127.0.0.1', ports[0], ports[1], None, wait=15)
        report.run('Profanity in a room', scenario, report, system, ports[0], server)
        stop_system(report, system)


if __name__ == '__main__':
    main('muc_client', suite)
