"""tests/integration/test_pep.py — personal eventing end to end: the SM and a front on TLS,
slixmpp's PEP plugins (xep_0060, xep_0163, xep_0084 with xep_0115 caps) and raw streams.

1. avatars (XEP-0084) between two contacts: bob's client announces interest in avatar metadata
   through its entity capabilities; alice publishes her avatar's data and metadata; bob is
   notified of the metadata at once, fetches the data by id and gets alice's bytes; bob's second
   client, coming online later, is sent the last metadata item as soon as its capabilities are
   known;
2. what Conversations checks before it turns OMEMO on: the account's disco#info has the
   pubsub/pep identity and publish-options; the OMEMO device list published with
   publish-options access_model=open can be read by an account that is no contact, a presence
   node cannot (presence-subscription-required); publish-options that conflict with the node
   are refused (precondition-not-met);
3. bookmarks (XEP-0402): published with the options the XEP says (persist, max_items=max,
   whitelist, never send last), all of them come back to the owner, none to a contact;
4. the server's own entity capabilities (XEP-0115 §6.3) in its stream features, and the
   disco#info its node#ver gets, which hashes to that ver.

Usage: test_pep.py BUILD_DIR. Prints ok/not ok lines and "pep: N passed, N failed"."""

import asyncio
import base64
import hashlib
import ssl
import xml.etree.ElementTree as ET

from jabtest.raw import Raw
from jabtest.report import Failure
from jabtest.suite import main, require_slixmpp
from jabtest.system import System, free_ports, front_xml, service, sm_xml
from jabtest.xmpp import NS_CLIENT, Server, q

NS_PUBSUB = 'http://jabber.org/protocol/pubsub'
NS_EVENT = NS_PUBSUB + '#event'
NS_ERRORS = NS_PUBSUB + '#errors'
NS_DISCO = 'http://jabber.org/protocol/disco#info'
NS_OMEMO_DEVICES = 'eu.siacs.conversations.axolotl.devicelist'
NS_BOOKMARKS = 'urn:xmpp:bookmarks:1'
# 1x1 transparent PNG
AVATAR = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=')


def raw(port, user, resource='r', presence=True):
    s = Raw.connect(port, tls=True, wait=10)
    s.login(user, 'pw' + user[1:], resource, presence=presence)
    return s


def befriend(a, b, a_user, b_user):
    """Mutual presence subscriptions between two raw streams' accounts, each request answered
    once it has arrived, as a client does (the two streams reach the SM independently: an answer
    sent before the request is there approves nothing, RFC 6121 §3.1.5)."""
    def presence(type_, sender):
        return lambda e: (e.tag == q(NS_CLIENT, 'presence') and e.get('type') == type_ and
                          e.get('from', '').startswith(sender + '@'))
    for asker, allower, asker_user, allower_user in ((a, b, a_user, b_user),
                                                     (b, a, b_user, a_user)):
        asker.send("<presence to='%s@localhost' type='subscribe'/>" % allower_user)
        allower.expect(presence('subscribe', asker_user), 'the request from %s' % asker_user)
        allower.send("<presence to='%s@localhost' type='subscribed'/>" % asker_user)
        asker.expect(presence('subscribed', allower_user), 'the approval of %s' % allower_user)
    for s in (a, b):
        s.send("<iq type='get' id='sync'><query xmlns='jabber:iq:roster'/></iq>")
        s.expect(lambda e: e.get('id') == 'sync', 'the roster after the subscriptions')


def options(fields):
    return ("<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' "
            "type='hidden'><value>%s#publish-options</value></field>%s</x></publish-options>"
            % (NS_PUBSUB, ''.join("<field var='%s'><value>%s</value></field>" % kv
                                  for kv in fields)))


def iq(s, type_, body, to=None, what='the answer'):
    s.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, what.replace(' ', '-'),
                                              " to='%s'" % to if to else '', body))
    return s.expect(lambda e: e.get('id') == what.replace(' ', '-'), what)


def error_of(el):
    err = el.find(q(NS_CLIENT, 'error'))
    return [c.tag.split('}')[1] for c in err] if err is not None else []


def publish(s, node, item_id, payload, fields=(), what='publish'):
    return iq(s, 'set', "<pubsub xmlns='%s'><publish node='%s'><item id='%s'>%s</item></publish>"
              "%s</pubsub>" % (NS_PUBSUB, node, item_id, payload,
                               options(fields) if fields else ''), what=what)


def items(s, owner, node, what='items'):
    return iq(s, 'get', "<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (NS_PUBSUB, node),
              to='%s@localhost' % owner, what=what)


def item_ids(el):
    return [i.get('id') for i in el.iter(q(NS_PUBSUB, 'item'))]


async def subscribe(asker, asker_user, approver, approver_user):
    """asker's account subscribes to approver's presence, approver's client approving it once
    the request has reached it."""
    asker.send_raw("<presence to='%s@localhost' type='subscribe'/>" % approver_user)
    await approver.expect(lambda e: e.tag == q(NS_CLIENT, 'presence') and
                          e.get('type') == 'subscribe', 'the subscription request')
    approver.send_raw("<presence to='%s@localhost' type='subscribed'/>" % asker_user)
    await asker.expect(lambda e: e.tag == q(NS_CLIENT, 'presence') and
                       e.get('type') == 'subscribed', 'the approval')


def avatars(r, server):
    require_slixmpp('pep')
    from jabtest.client import Client
    plugins = ('xep_0030', 'xep_0060', 'xep_0115', 'xep_0163', 'xep_0084')

    async def run():
        clients = []

        def client(jid, password):
            c = Client(jid, password, server, plugins=plugins)
            c.ssl_context.check_hostname = False
            c.ssl_context.verify_mode = ssl.CERT_NONE
            clients.append(c)
            return c

        alice, bob = client('u0@localhost/s', 'pw0'), client('u1@localhost/s', 'pw1')
        await alice.login()
        await bob.login()
        alice.send_presence()
        bob.send_presence()   # with <c/>: its features name urn:xmpp:avatar:metadata+notify
        await subscribe(alice, 'u0', bob, 'u1')
        await subscribe(bob, 'u1', alice, 'u0')
        await asyncio.sleep(1)   # the SM asks bob's client for its disco#info
        digest = hashlib.sha1(AVATAR).hexdigest()
        await alice['xep_0084'].publish_avatar(AVATAR)
        await alice['xep_0084'].publish_avatar_metadata([{
            'id': digest, 'type': 'image/png', 'bytes': str(len(AVATAR)), 'width': '1',
            'height': '1'}])
        ev = await bob.expect(lambda e: e.find('.//{%s}items[@node="urn:xmpp:avatar:metadata"]'
                                               % NS_EVENT) is not None,
                              "alice's avatar metadata notification", timeout=10)
        r.check('avatars: bob is notified of the metadata (by his caps)',
                ev.get('from') == 'u0@localhost' and digest in str(ev.findall('.//*')) or
                any(i.get('id') == digest for i in ev.iter(q(NS_EVENT, 'item'))))
        got = await bob['xep_0084'].retrieve_avatar('u0@localhost', digest)
        data = got['pubsub']['items']['item']['avatar_data']['value']
        r.check('avatars: bob fetches the data by id and gets alice\'s bytes', data == AVATAR,
                len(data or b''))
        r.check('avatars: no data notification for bob (he did not ask for it)',
                not any(e.find('.//{%s}items[@node="urn:xmpp:avatar:data"]' % NS_EVENT)
                        is not None for e in bob.received))
        later = client('u1@localhost/later', 'pw1')
        await later.login()
        later.send_presence()
        ev = await later.expect(lambda e: e.find('.//{%s}items[@node="urn:xmpp:avatar:metadata"]'
                                                 % NS_EVENT) is not None,
                                'the last metadata item', timeout=10)
        r.check('avatars: a client coming online gets the last item once its caps are known',
                any(i.get('id') == digest for i in ev.iter(q(NS_EVENT, 'item'))))
        for c in clients:
            await c.logout()

    asyncio.run(run())


NS_CAPS = 'http://jabber.org/protocol/caps'
NS_DATA = 'jabber:x:data'


def caps_ver(query):
    """XEP-0115 §5.1: the SHA-1 verification string of a disco#info <query/>."""
    ids = sorted('%s/%s/%s/%s' % (i.get('category', ''), i.get('type', ''),
                                  i.get('{http://www.w3.org/XML/1998/namespace}lang', ''),
                                  i.get('name', ''))
                 for i in query.findall(q(NS_DISCO, 'identity')))
    s = ''.join(x + '<' for x in ids)
    s += ''.join(f + '<' for f in sorted(f.get('var') for f in query.findall(q(NS_DISCO, 'feature'))))
    forms = []
    for x in query.findall(q(NS_DATA, 'x')):
        fields = {f.get('var'): sorted(v.text or '' for v in f.findall(q(NS_DATA, 'value')))
                  for f in x.findall(q(NS_DATA, 'field'))}
        form_type = fields.pop('FORM_TYPE', [''])[0]
        forms.append(form_type + '<' + ''.join(var + '<' + ''.join(v + '<' for v in vals)
                                               for var, vals in sorted(fields.items())))
    s += ''.join(sorted(forms))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def server_caps(r, port):
    """The server's own entity capabilities in its stream features (XEP-0115 §6.3), and the
    disco#info its node#ver answers, which hashes to that ver."""
    s = Raw.connect(port, tls=True, wait=10)
    s.open()
    feat = s.features()
    c = feat.find(q(NS_CAPS, 'c')) if feat is not None else None
    r.check('server caps: the stream features carry <c/>', c is not None and c.get('ver') and
            c.get('hash') == 'sha-1', ET.tostring(feat, encoding='unicode') if feat is not None
            else 'no features')
    s.end()
    s = raw(port, 'u7', presence=False)
    info = iq(s, 'get', "<query xmlns='%s' node='%s#%s'/>" % (NS_DISCO, c.get('node'), c.get('ver')),
              to='localhost', what='server caps info')
    query = info.find(q(NS_DISCO, 'query'))
    r.check('server caps: node#ver is answered with the info whose ver it is',
            query is not None and caps_ver(query) == c.get('ver'),
            'computed %s' % (caps_ver(query) if query is not None else None))
    s.end()


def conversations_checks(r, port):
    owner, friend, stranger = raw(port, 'u2'), raw(port, 'u3'), raw(port, 'u4')
    befriend(owner, friend, 'u2', 'u3')
    info = iq(owner, 'get', "<query xmlns='%s'/>" % NS_DISCO, to='u2@localhost', what='disco')
    idents = [(i.get('category'), i.get('type')) for i in info.iter(q(NS_DISCO, 'identity'))]
    features = [f.get('var') for f in info.iter(q(NS_DISCO, 'feature'))]
    r.check('Conversations: the account has the pubsub/pep identity', ('pubsub', 'pep') in idents,
            idents)
    r.check('Conversations: publish-options is advertised',
            NS_PUBSUB + '#publish-options' in features)
    devices = "<list xmlns='%s'><device id='12345'/></list>" % NS_OMEMO_DEVICES
    el = publish(owner, NS_OMEMO_DEVICES, 'current', devices,
                 [('pubsub#access_model', 'open')], what='devicelist')
    r.check('OMEMO: the device list is published open', el.get('type') == 'result', error_of(el))
    el = items(stranger, 'u2', NS_OMEMO_DEVICES, what='stranger devicelist')
    r.check('OMEMO: anyone reads an open device list', item_ids(el) == ['current'], error_of(el))
    el = publish(owner, 'urn:xmpp:nick', 'n', "<nick xmlns='http://jabber.org/protocol/nick'>"
                 "Owner</nick>", what='nick')
    el = items(stranger, 'u2', 'urn:xmpp:nick', what='stranger nick')
    r.check('a presence node refuses a stranger (presence-subscription-required)',
            'presence-subscription-required' in error_of(el), error_of(el))
    el = items(friend, 'u2', 'urn:xmpp:nick', what='friend nick')
    r.check('a presence node answers a contact', item_ids(el) == ['n'], error_of(el))
    el = publish(owner, NS_OMEMO_DEVICES, 'current', devices,
                 [('pubsub#access_model', 'presence')], what='conflicting')
    r.check('publish-options that conflict: precondition-not-met',
            'precondition-not-met' in error_of(el), error_of(el))
    for s in (owner, friend, stranger):
        s.end()


def bookmarks(r, port):
    owner, friend = raw(port, 'u5'), raw(port, 'u6')
    befriend(owner, friend, 'u5', 'u6')
    fields = [('pubsub#persist_items', 'true'), ('pubsub#max_items', 'max'),
              ('pubsub#send_last_published_item', 'never'), ('pubsub#access_model', 'whitelist')]
    for room in ('a@conference.localhost', 'b@conference.localhost'):
        el = publish(owner, NS_BOOKMARKS, room, "<conference xmlns='%s' name='%s' autojoin='true'>"
                     "<nick>me</nick></conference>" % (NS_BOOKMARKS, room), fields,
                     what='bookmark')
        r.check('bookmarks: %s published' % room, el.get('type') == 'result', error_of(el))
    el = items(owner, 'u5', NS_BOOKMARKS, what='own bookmarks')
    r.check('bookmarks: the owner gets them all', sorted(item_ids(el)) ==
            ['a@conference.localhost', 'b@conference.localhost'], item_ids(el))
    el = items(friend, 'u5', NS_BOOKMARKS, what='friend bookmarks')
    r.check('bookmarks: a contact gets none (whitelist)', 'closed-node' in error_of(el),
            error_of(el))
    owner.end()
    friend.end()


def suite(report, build):
    with System(build, 'pep', report) as system:
        sm_port, port, tls = free_ports(3)
        system.use_sm(sm_xml(system.path('db.sqlite'), [service('front', sm_port, 's', 'front')],
                             level='info'))
        system.use_front('front', front_xml('front', 's', sm_port, '127.0.0.1', port, tls,
                                            system.path('none.pem')), port)
        ok, out, _ = system.import_accounts(('u%d@localhost' % i, 'pw%d' % i) for i in range(8))
        if not (report.check('import 8 accounts', ok, out) and
                report.check('the SM starts', system.start_sm(ready_port=sm_port, seconds=10)) and
                report.check('the front starts', system.start_front('front', probe_port=tls,
                                                                    seconds=10))):
            return
        server = Server('127.0.0.1', port, tls, None, wait=15)
        for name, fn, args in (('avatars', avatars, (server,)),
                               ('Conversations checks', conversations_checks, (tls,)),
                               ('bookmarks', bookmarks, (tls,)),
                               ('server caps', server_caps, (tls,))):
            try:
                fn(report, *args)
            except Failure as e:
                report.not_ok('%s ran to its end' % name, str(e))
        report.check('the front exits 0 on SIGTERM', system.front('front').stop() == 0)
        report.check('the SM exits 0 on SIGTERM', system.sm.stop() == 0)
        system.check_sanitizers(report)


if __name__ == '__main__':
    main('pep', suite)
