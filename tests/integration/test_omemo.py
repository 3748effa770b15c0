"""tests/integration/test_omemo.py — two real clients (Profanity, built with libsignal-protocol-c)
establish an OMEMO session (XEP-0384, the eu.siacs.conversations.axolotl namespace) through
jabshard, which gives them what OMEMO asks of the server: PEP (XEP-0163) nodes for the device
lists and the bundles, their notifications by entity capabilities, items retrieval between
contacts, and the delivery, live or offline, of the encrypted messages.

Each Profanity runs in a tmux session of the suite's own tmux server, with its HOME in the suite's
directory, connecting over STARTTLS (the front's self-signed certificate trusted):
1. u0 and u1 log in and become contacts with /sub request and /sub allow both ways;
2. /omemo gen on both: each publishes its device list and bundle, and each receives the other's
   device list as a PEP notification (the +notify of its capabilities) from the other's bare JID;
3. each starts OMEMO with the other (/omemo start): the other's bundle comes from an items
   request to the other's bare JID, and the fingerprint it shows for the other is the one the
   other shows as its own; each trusts it (/omemo trust);
4. u0 sends u1 a message, u1 answers: each sender's screen marks it OMEMO, the receiver's shows
   the plaintext marked OMEMO, and the stanza the receiver got (its debug log) has an <encrypted/>
   from the sender's device with a key for the receiver's and not the plaintext;
5. u1 quits; u0 sends another: the SM's offline store holds it encrypted, without the plaintext;
   u1 comes back, gets u0's device list again (the newest item, once its capabilities are
   known) and reads the message.

Usage: test_omemo.py BUILD_DIR. Prints ok/not ok lines and "omemo: N passed, N failed"."""

import re
import secrets
import sqlite3
import xml.etree.ElementTree as ET

from jabtest.profanity import Profanity, Tmux, start_system, stop_system
from jabtest.proc import wait_until
from jabtest.report import Failure
from jabtest.suite import main
from jabtest.system import System

NS_OMEMO = 'eu.siacs.conversations.axolotl'
DEVICELIST = NS_OMEMO + '.devicelist'
FINGERPRINT = r'[0-9a-f]{8}(?:-[0-9a-f]{8}){7}'


def log_in(r, clients):
    for c in clients:
        c.start()
    for c in clients:
        c.wait_screen(r'%s/prof logged in successfully' % re.escape(c.jid), 'login')
    r.ok('both Profanitys log in over STARTTLS')


def befriend(r, a, b):
    """Mutual presence subscription, typed as a person would."""
    for asker, allower in ((a, b), (b, a)):
        asker.type_line('/sub request %s' % allower.jid)
        allower.wait_screen('Received authorization request from %s' % re.escape(asker.jid),
                            'subscription request from %s' % asker.jid)
        allower.type_line('/sub allow %s' % asker.jid)
    for c, other in ((a, b), (b, a)):
        c.wait_screen(r'\+\+ %s \(prof\) is online' % re.escape(other.jid),
                      "the contact's presence")
    r.ok('u0 and u1 are contacts (subscription both), each sees the other online')


def generate(r, clients):
    """/omemo gen on each; their device ids."""
    for c in clients:
        c.type_line('/omemo gen')
    ids = {c.jid: c.wait_screen(r'Your Device ID is (\d+)', 'OMEMO keys').group(1)
           for c in clients}
    r.ok('/omemo gen on both', ' '.join('%s=%s' % kv for kv in ids.items()))
    return ids


def device_list_from(owner, device):
    """A predicate: a stanza is owner's PEP notification of a device list with device."""
    return lambda s: (s.startswith('<message') and 'type="headline"' in s and
                      'from="%s"' % owner in s and 'node="%s"' % DEVICELIST in s and
                      '<device id="%s"/>' % device in s)


def device_lists(r, a, b, ids):
    for c, other in ((a, b), (b, a)):
        got = c.wait_received(device_list_from(other.jid, ids[other.jid]))
        r.check("%s receives %s's device list as a PEP notification" % (c.jid, other.jid), got,
                'no such notification in its debug log')


def own_fingerprint(c):
    c.type_line('/omemo fingerprint')
    return c.wait_screen(r'Your OMEMO fingerprint: (%s)' % FINGERPRINT, 'own fingerprint').group(1)


def fingerprint_of(c, other, seconds=10):
    """The fingerprint c shows for other, asked again each second until other's bundle has
    arrived."""
    pattern = r"%s's OMEMO fingerprint: (%s)" % (re.escape(other.jid), FINGERPRINT)

    def ask():
        c.type_line('/omemo fingerprint %s' % other.jid)
        return wait_until(lambda: re.search(pattern, c.screen()), 1, step=0.1)
    found = wait_until(ask, seconds)
    if not found:
        raise Failure('%s shows no fingerprint for %s within %s s' % (c.jid, other.jid, seconds))
    return found.group(1)


def start_omemo(r, c, other, ids, expected):
    """c opens a chat with other, starts OMEMO, checks and trusts other's fingerprint."""
    c.type_line('/msg %s' % other.jid)
    c.type_line('/omemo start')
    c.wait_screen(r'%s \[online\] \[OMEMO\]' % re.escape(other.jid), 'an OMEMO chat window')
    bundle = c.wait_received(lambda s: (s.startswith('<iq') and 'type="result"' in s and
                                        'from="%s"' % other.jid in s and
                                        'node="%s.bundles:%s"' % (NS_OMEMO, ids[other.jid]) in s))
    r.check("%s gets %s's bundle from its PEP node" % (c.jid, other.jid), bundle,
            'no items result for it in its debug log')
    fp = fingerprint_of(c, other)
    r.check("%s sees %s's own fingerprint" % (c.jid, other.jid), fp == expected,
            '%s, not %s' % (fp, expected))
    c.type_line('/omemo trust %s %s' % (other.jid, fp))
    c.wait_screen(r"%s's OMEMO fingerprint: %s \(trusted\)" % (re.escape(other.jid), fp),
                  'trust of %s' % other.jid)


def encrypted_from(sender):
    return lambda s: (s.startswith('<message') and 'from="%s/prof"' % sender in s and
                      '<encrypted xmlns="%s"' % NS_OMEMO in s)


def check_encrypted(r, what, stanza, text, sid, rid):
    """stanza (text) carries an OMEMO message from device sid with a key for device rid, and
    neither the plaintext nor a body with it."""
    el = ET.fromstring(stanza)
    enc = el.find('{%s}encrypted' % NS_OMEMO)
    header = enc.find('{%s}header' % NS_OMEMO) if enc is not None else None
    rids = [k.get('rid') for k in header.iter('{%s}key' % NS_OMEMO)] if header is not None else []
    payload = enc.findtext('{%s}payload' % NS_OMEMO) if enc is not None else None
    r.check('%s: <encrypted/> from device %s with a key for %s and a payload, no plaintext'
            % (what, sid, rid),
            header is not None and header.get('sid') == sid and rid in rids and payload and
            text not in stanza, stanza[:600])


def converse(r, sender, receiver, ids):
    """sender types a message in its OMEMO window; receiver, in its window with sender, reads
    it decrypted."""
    text = 'omemo-%s' % secrets.token_hex(4)
    before = len(receiver.received(encrypted_from(sender.jid)))
    sender.type_line(text)
    sender.wait_screen(r'~ me: %s' % text, 'the sent message marked OMEMO')
    receiver.wait_screen(r'~ %s/prof: %s' % (re.escape(sender.jid), text),
                         'the message decrypted')
    r.ok('%s -> %s: sent marked OMEMO, received decrypted' % (sender.jid, receiver.jid))
    got = receiver.wait_received(encrypted_from(sender.jid), before, 5)
    if not got:
        raise Failure('%s: the encrypted message is not in its debug log' % receiver.jid)
    check_encrypted(r, 'what %s received' % receiver.jid, got[0], text, ids[sender.jid],
                    ids[receiver.jid])


def offline_rows(system, user):
    """The stanzas the SM's offline store holds for user (an account name)."""
    db = sqlite3.connect('file:%s?mode=ro' % system.path('db.sqlite'), uri=True, timeout=5)
    try:
        return [row[0] for row in db.execute(
            'SELECT o.xml FROM offline o JOIN users u ON u.id = o.user_id '
            'WHERE u.username = ? ORDER BY o.id', (user,))]
    finally:
        db.close()


def stored_offline(r, system, sender, receiver, ids):
    """receiver quits; sender's message waits encrypted in the offline store; its text."""
    receiver.type_line('/quit')
    r.check('%s quits' % receiver.jid, receiver.exited())
    text = 'omemo-offline-%s' % secrets.token_hex(4)
    sender.type_line(text)
    sender.wait_screen(r'~ me: %s' % text, 'the sent message marked OMEMO')
    user = receiver.jid.split('@')[0]
    stored = wait_until(lambda: [x for x in offline_rows(system, user)
                                 if "xmlns='%s'" % NS_OMEMO in x], 5)
    if not stored:
        raise Failure('no encrypted message in the offline store: %s' % offline_rows(system, user))
    check_encrypted(r, 'the offline store', stored[-1], text, ids[sender.jid], ids[receiver.jid])
    return text


def come_back(r, sender, receiver, ids, text):
    """receiver logs in again: it gets sender's device list and reads text decrypted."""
    lists = device_list_from(sender.jid, ids[sender.jid])
    before = len(receiver.received(lists))
    receiver.start()
    receiver.wait_screen(r'%s/prof logged in successfully' % re.escape(receiver.jid), 'login')
    r.check("%s, back, gets %s's device list (the last item, on its capabilities)"
            % (receiver.jid, sender.jid), receiver.wait_received(lists, before))
    receiver.type_line('/msg %s' % sender.jid)
    receiver.wait_screen(r'~ %s/prof: %s' % (re.escape(sender.jid), text),
                         'the offline message decrypted')
    r.ok('%s, back, reads the offline message decrypted' % receiver.jid)


def scenario(r, system, port):
    tmux = Tmux(system.path('tmux.sock'))
    try:
        a, b = (Profanity(tmux, system.path('home-u%d' % i), 'u%d' % i, 'u%d@localhost' % i,
                          'pw%d' % i, port) for i in (0, 1))
        log_in(r, (a, b))
        befriend(r, a, b)
        ids = generate(r, (a, b))
        device_lists(r, a, b, ids)
        fps = {c.jid: own_fingerprint(c) for c in (a, b)}
        start_omemo(r, a, b, ids, fps[b.jid])
        start_omemo(r, b, a, ids, fps[a.jid])
        converse(r, a, b, ids)
        converse(r, b, a, ids)
        come_back(r, a, b, ids, stored_offline(r, system, a, b, ids))
    finally:
        tmux.close()


def suite(report, build):
    with System(build, 'omemo', report) as system:
        ports = start_system(report, system)
        if ports is None:
            return
        report.run('the OMEMO session', scenario, report, system, ports[0])
        stop_system(report, system)


if __name__ == '__main__':
    main('omemo', suite)
