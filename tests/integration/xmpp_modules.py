"""tests/integration/xmpp_modules.py — the session manager's modules end to end, with slixmpp:
service discovery of their features, vCard (XEP-0054), private XML storage (XEP-0049), last
activity (XEP-0012), message carbons (XEP-0280) and the blocking command (XEP-0191). With the
argument kick-witness it is instead the client that xmpp.sh kicks with jabshardctl: two logged-in
sessions of one account that say "ready JID JID" and report the stream error each gets.

Run by xmpp.sh with /usr/bin/python3 beside the other scenario files, so it uses accounts of its
own (mona, nick; oscar for the witness), passwords in XMPP_PASSWORDS. Whatever must not arrive is
checked once a later stanza on the same path has arrived: the SM keeps a session's order. Prints
ok / not ok lines and ends with "xmpp modules: N passed, N failed" ("xmpp kick: ..." for the
witness)."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))

from xmpptest import (DOMAIN, NS_CLIENT, Client, Failure, Raw, is_, main, q,  # noqa: E402
                      show, stanza_error, xml_escape)
from slixmpp.exceptions import IqError  # noqa: E402  (after xmpptest: it quiets slixmpp's logging)

PW = dict(pair.split('=', 1) for pair in os.environ.get('XMPP_PASSWORDS', '').split())
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_VCARD = 'vcard-temp'
NS_PRIVATE = 'jabber:iq:private'
NS_LAST = 'jabber:iq:last'
NS_BLOCKING = 'urn:xmpp:blocking'
NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors'
NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_PREFS = 'urn:example:jabshard:prefs'
MONA = 'mona@' + DOMAIN
NICK = 'nick@' + DOMAIN
PLUGINS = ('xep_0054', 'xep_0012', 'xep_0191', 'xep_0280')


def need(cond, why):
    if not cond:
        raise Failure(why)


async def online(user, resource):
    """A logged-in client of user/resource that has sent its initial presence."""
    c = await Client('%s@%s/%s' % (user, DOMAIN, resource), PW[user], plugins=PLUGINS).login()
    c.send_presence()
    return c


def chat(sender, to, body, extra=''):
    sender.send_raw("<message to='%s' type='chat' id='%s'><body>%s</body>%s</message>" % (
        xml_escape(to), sender.next_id('m'), xml_escape(body), extra))


def body_of(el):
    b = el.find(q(NS_CLIENT, 'body'))
    return None if b is None else b.text


def is_chat(body):
    return lambda el: is_(el, 'message', 'chat') and body_of(el) == body


def carbon(el, how):
    """The forwarded message inside el if el is a carbon copy (<sent/> or <received/>)."""
    if not is_(el, 'message'):
        return None
    wrap = el.find(q(NS_CARBONS, how))
    fwd = None if wrap is None else wrap.find(q(NS_FORWARD, 'forwarded'))
    return None if fwd is None else fwd.find(q(NS_CLIENT, 'message'))


def carbon_of(how, body):
    return lambda el: (carbon(el, how) is not None and body_of(carbon(el, how)) == body)


def any_carbon_of(body):
    return lambda el: carbon_of('sent', body)(el) or carbon_of('received', body)(el)


async def logout(*clients):
    for c in clients:
        await c.logout()


# ---- the scenarios ----------------------------------------------------------------------------

async def disco(r):
    c = await online('mona', 'disco')
    res = await c.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN,
                     what='the disco#info answer')
    query = res.find(q(NS_DISCO_INFO, 'query'))
    need(is_(res, 'iq', 'result') and query is not None, 'disco#info: %s' % show(res))
    features = {f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))}
    for ns, what in ((NS_VCARD, 'XEP-0054'), (NS_PRIVATE, 'XEP-0049'), (NS_LAST, 'XEP-0012'),
                     (NS_BLOCKING, 'XEP-0191'), (NS_CARBONS, 'XEP-0280')):
        r.check('disco#info on the server lists %s (%s)' % (ns, what), ns in features,
                'features: %s' % sorted(features))
    await logout(c)


async def vcard(r):
    mona = await online('mona', 'vcard')
    nick = await online('nick', 'vcard')
    card = mona['xep_0054'].make_vcard()
    card['FN'] = 'Mona Lisa del Giocondo'
    card['NICKNAME'] = 'mona'
    await mona['xep_0054'].publish_vcard(card, timeout=5)
    r.ok('mona publishes her vCard')
    got = await nick['xep_0054'].get_vcard(MONA, local=False, cached=False, timeout=5)
    r.check("nick fetches mona's vCard and sees what she published",
            (got['vcard_temp']['FN'], got['vcard_temp']['NICKNAME']) ==
            ('Mona Lisa del Giocondo', ['mona']), show(got.xml))
    forged = nick['xep_0054'].make_vcard()
    forged['FN'] = 'Not Mona'
    try:
        await nick['xep_0054'].publish_vcard(forged, jid=MONA, timeout=5)
        r.not_ok("nick cannot set mona's vCard", 'the server accepted it')
    except IqError as e:
        r.check("nick cannot set mona's vCard (<forbidden/>)",
                e.iq['error']['condition'] == 'forbidden', show(e.iq.xml))
    got = await mona['xep_0054'].get_vcard(MONA, local=False, cached=False, timeout=5)
    r.check("...and mona's vCard is still hers",
            got['vcard_temp']['FN'] == 'Mona Lisa del Giocondo', show(got.xml))
    await logout(mona, nick)


async def private(r):
    one = await online('mona', 'one')
    two = await online('mona', 'two')
    nick = await online('nick', 'private')
    prefs = "<prefs xmlns='%s'><colour>blue</colour></prefs>" % NS_PREFS
    res = await one.iq('set', "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, prefs),
                       what='the answer to storing private XML')
    need(is_(res, 'iq', 'result'), 'storing private XML: %s' % show(res))
    ask = "<query xmlns='%s'><prefs xmlns='%s'/></query>" % (NS_PRIVATE, NS_PREFS)
    res = await two.iq('get', ask, what='the private XML')
    colour = res.find('%s/%s/%s' % (q(NS_PRIVATE, 'query'), q(NS_PREFS, 'prefs'),
                                     q(NS_PREFS, 'colour')))
    r.check('private XML stored by mona/one is read back by mona/two',
            is_(res, 'iq', 'result') and colour is not None and colour.text == 'blue', show(res))
    res = await nick.iq('get', ask, what="nick's private XML")
    got = res.find('%s/%s' % (q(NS_PRIVATE, 'query'), q(NS_PREFS, 'prefs')))
    r.check("nick's own storage under that namespace is empty (an empty <prefs/> back)",
            is_(res, 'iq', 'result') and got is not None and len(got) == 0 and not got.text,
            show(res))
    res = await nick.iq('get', ask, to=MONA, what="the answer to reading mona's private XML")
    r.check("nick cannot read mona's private XML (<forbidden/>)",
            stanza_error(res) == ('cancel', 'forbidden'), show(res))
    await logout(one, two, nick)


async def last(r):
    mona = await online('mona', 'last')
    nick = await online('nick', 'last')
    got = await mona['xep_0012'].get_last_activity(DOMAIN, timeout=5)
    seconds = got['last_activity']['seconds']
    r.check('last activity of the server: its uptime, seconds >= 0',
            isinstance(seconds, int) and seconds >= 0, show(got.xml))
    try:
        await nick['xep_0012'].get_last_activity(MONA, timeout=5)
        r.not_ok('nick, not subscribed to mona, may not ask her last activity', 'answered')
    except IqError as e:
        r.check('nick, not subscribed to mona, may not ask her last activity (<forbidden/>)',
                (e.iq['error']['type'], e.iq['error']['condition']) == ('auth', 'forbidden'),
                show(e.iq.xml))
    await logout(mona, nick)


async def carbons(r):
    one = await online('mona', 'one')
    two = await online('mona', 'two')
    nick = await online('nick', 'carbons')
    await two['xep_0280'].enable(timeout=5)
    r.ok('mona/two enables carbons')

    chat(nick, str(one.boundjid), 'to one')
    await one.expect(is_chat('to one'), "nick's message")
    copy = await two.expect(carbon_of('received', 'to one'), 'the <received/> copy')
    inner = carbon(copy, 'received')
    r.check("nick's chat to mona/one is copied to mona/two as <received/>, from mona's bare JID, "
            'the original inside',
            copy.get('from') == MONA and copy.get('type') == 'chat' and
            inner.get('from') == str(nick.boundjid) and inner.get('to') == str(one.boundjid),
            show(copy))

    chat(one, NICK, 'from one')
    await nick.expect(is_chat('from one'), "mona/one's message")
    copy = await two.expect(carbon_of('sent', 'from one'), 'the <sent/> copy')
    inner = carbon(copy, 'sent')
    r.check("mona/one's chat to nick is copied to mona/two as <sent/>, from mona's bare JID",
            copy.get('from') == MONA and inner.get('from') == str(one.boundjid) and
            inner.get('to') == NICK, show(copy))

    private = "<private xmlns='%s'/>" % NS_CARBONS
    chat(one, NICK, 'private out', private)
    m = await nick.expect(is_chat('private out'), "mona/one's private message")
    r.check('a message with <private/> is delivered, without the <private/>',
            m.find(q(NS_CARBONS, 'private')) is None, show(m))
    chat(one, NICK, 'after private out')
    await two.expect(carbon_of('sent', 'after private out'), 'the <sent/> copy of the next one')
    r.check('...and mona/one\'s <private/> message is not copied to mona/two',
            not any(any_carbon_of('private out')(el) for el in two.received),
            'got %s' % [show(el) for el in two.received if any_carbon_of('private out')(el)])

    # XEP-0280 §7: the receiving server must not copy it either.
    chat(nick, str(one.boundjid), 'private in', private)
    await one.expect(is_chat('private in'), "nick's private message")
    chat(nick, str(one.boundjid), 'after private in')
    await two.expect(carbon_of('received', 'after private in'),
                     'the <received/> copy of the next one')
    r.check("nick's <private/> message to mona/one is not copied to mona/two either",
            not any(any_carbon_of('private in')(el) for el in two.received),
            'got %s' % [show(el) for el in two.received if any_carbon_of('private in')(el)])
    await logout(one, two, nick)


async def blocking(r):
    one = await online('mona', 'one')
    two = await online('mona', 'two')
    nick = await online('nick', 'blocking')
    empty = await two['xep_0191'].get_blocked(timeout=5)
    need(not empty['blocklist']['items'], 'a block list at the start: %s' % show(empty.xml))
    await one['xep_0191'].block(NICK, timeout=5)
    r.ok('mona blocks nick')
    push = await two.expect(lambda el: is_(el, 'iq', 'set') and
                            el.find(q(NS_BLOCKING, 'block')) is not None, 'the block push')
    items = [i.get('jid') for i in push.find(q(NS_BLOCKING, 'block'))]
    r.check('the block is pushed to mona/two, which had asked for the list', items == [NICK],
            show(push))
    got = await two['xep_0191'].get_blocked(timeout=5)
    r.check('the block list shows nick', [str(j) for j in got['blocklist']['items']] == [NICK],
            show(got.xml))

    chat(nick, str(one.boundjid), 'blocked in')
    err = await nick.expect(lambda el: is_(el, 'message', 'error') and
                            body_of(el) in ('blocked in', None), 'the error for his message')
    r.check("nick's message to mona gets <service-unavailable/> (XEP-0191 §3.6: as if she "
            'were not there)', stanza_error(err) == ('cancel', 'service-unavailable'), show(err))

    chat(one, NICK, 'blocked out')
    err = await one.expect(lambda el: is_(el, 'message', 'error'), 'the error for her message')
    cond = err.find(q(NS_CLIENT, 'error'))
    r.check("mona's message to nick gets <not-acceptable/> with <blocked xmlns='%s'/>"
            % NS_BLOCKING_ERRORS,
            stanza_error(err) == ('cancel', 'not-acceptable') and cond is not None and
            cond.find(q(NS_BLOCKING_ERRORS, 'blocked')) is not None, show(err))

    await one['xep_0191'].unblock([], timeout=5)
    got = await two['xep_0191'].get_blocked(timeout=5)
    r.check('unblocking everyone empties the list', not got['blocklist']['items'], show(got.xml))
    chat(nick, str(one.boundjid), 'unblocked in')
    await one.expect(is_chat('unblocked in'), "nick's message after the unblock")
    r.check("after the unblock nick's message reaches mona, and the blocked one never did",
            not any(is_chat('blocked in')(el) for el in one.received))
    chat(one, NICK, 'unblocked out')
    await nick.expect(is_chat('unblocked out'), "mona's message after the unblock")
    r.check("after the unblock mona's message reaches nick, and the refused one never did",
            not any(is_chat('blocked out')(el) for el in nick.received))
    await logout(one, two, nick)


def kick_witness(r):
    """Two sessions of oscar, one per port, that wait for jabshardctl to kick the account."""
    first, second = Raw(), Raw(direct_tls=False)
    second.starttls()
    jids = [first.login('oscar', PW['oscar'], 'one'), second.login('oscar', PW['oscar'], 'two')]
    print('ready %s' % ' '.join(jids), flush=True)
    for raw, jid in ((first, jids[0]), (second, jids[1])):
        got, closed = raw.stream_error()
        text = raw.data.decode('utf-8', 'replace')
        r.check('%s, kicked by jabshardctl, gets <policy-violation/> "kicked by an '
                'administrator" and the connection is closed' % jid,
                got == 'policy-violation' and 'kicked by an administrator' in text and closed,
                'got <%s/>, connection %s: %r' % (got, 'closed' if closed else 'open',
                                                  text[-300:]))
        raw.close()


async def run(r):
    if sys.argv[1:] == ['kick-witness']:
        await r.scenario('kick witness', lambda: asyncio.to_thread(kick_witness, r), timeout=90)
        return
    for name, fn in (('disco#info', disco), ('vCard', vcard), ('private XML', private),
                     ('last activity', last), ('carbons', carbons), ('blocking', blocking)):
        await r.scenario(name, lambda fn=fn: fn(r))


if __name__ == '__main__':
    main(run, 'xmpp kick' if sys.argv[1:] == ['kick-witness'] else 'xmpp modules')
