/* tests/unit/test_sm_muc.c — the group chat service (sm/mod_muc.c and sm/muc_*.c) in the harness:
 * creating, configuring and joining rooms with their status codes, group messages with stanza and
 * occupant ids, history, subject, private messages, nick changes and conflicts, kicks, bans,
 * members-only rooms and invitations, roles, leaving when a session ends, destruction, disco of
 * the host, service and rooms, the limits, and rooms with their occupants across an SM restart. */
#include "tests/support/sm_harness.h"

#define ROOM "lobby@conference.example.org"
#define MUC "http://jabber.org/protocol/muc"

static void join(uint64_t sid, const char *nick, const char *inner)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<presence to='" ROOM "/%s'><x xmlns='" MUC "'>%s</x></presence>",
             nick, inner ? inner : "");
    smh_send(sid, xml);
}

static void say(uint64_t sid, const char *body)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<message to='" ROOM "' type='groupchat' id='m-%s'><body>%s</body>"
                              "</message>", body, body);
    smh_send(sid, xml);
}

static void owner_submit(uint64_t sid, const char *fields)
{
    char xml[2048];
    snprintf(xml, sizeof xml,
             "<iq type='set' id='cfg' to='" ROOM "'><query xmlns='" MUC "#owner'>"
             "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
             MUC "#roomconfig</value></field>%s</x></query></iq>", fields);
    smh_send(sid, xml);
}

static void admin_set(uint64_t sid, const char *item)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='set' id='adm' to='" ROOM "'><query xmlns='" MUC
                              "#admin'>%s</query></iq>", item);
    smh_send(sid, xml);
}

/* alice (sid 1) creates the room as Al and configures it (fields), bob (sid 2) joins as Bob. */
static void room_with_two(const char *fields)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    join(1, "Al", NULL);
    owner_submit(1, fields);
    join(2, "Bob", NULL);
    smh_clear();
}

static void test_create_configure_join(void **state)
{
    smh_online(1, "alice", "a");
    smh_online(2, "bob", "b");
    smh_clear();
    join(1, "Al", NULL);
    EXPECT('S', 1, "from='" ROOM "/Al'", "<status code='201'/>");
    EXPECT('S', 1, "affiliation='owner' role='moderator'", "<status code='110'/>");
    /* Locked until configured (§10.1): nobody else gets in, and it is not listed. */
    smh_clear();
    join(2, "Bob", NULL);
    EXPECT('S', 2, "type='error'", "item-not-found");
    smh_clear();
    smh_send(1, "<iq type='get' id='f' to='" ROOM "'><query xmlns='" MUC "#owner'/></iq>");
    EXPECT('S', 1, "muc#roomconfig_persistentroom", "muc#roomconfig_whois");
    owner_submit(1, "<field var='muc#roomconfig_roomname'><value>The Lobby</value></field>");
    EXPECT('S', 1, "id='cfg'", "type='result'");
    smh_clear();
    join(2, "Bob", NULL);
    /* Bob: Al's presence first, then his own with 110, then the (empty) subject. */
    int al = smh_find('S', 2, "from='" ROOM "/Al'", "affiliation='owner'");
    int own = smh_find('S', 2, "from='" ROOM "/Bob'", "<status code='110'/>");
    int subj = smh_find('S', 2, "<subject/>", NULL);
    assert_true(al >= 0 && own > al && subj > own);
    EXPECT('S', 2, "from='" ROOM "/Bob'", "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='");
    /* Semi-anonymous: Bob does not see Al's JID; Al, a moderator, sees Bob's. */
    NONE('S', 2, "jid='alice@example.org/a'");
    EXPECT('S', 1, "from='" ROOM "/Bob'", "jid='bob@example.org/b'");
    /* A nick someone has. */
    smh_online(3, "carol", "c");
    smh_clear();
    join(3, "Al", NULL);
    EXPECT('S', 3, "type='error'", "conflict");
    /* disco: the room's features and name, listed by the service, the service by the host. */
    smh_clear();
    smh_send(3, "<iq type='get' id='i' to='" ROOM "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 3, "name='The Lobby'", "muc_semianonymous");
    EXPECT('S', 3, "muc#roominfo_occupants", "<value>2</value>");
    smh_send(3, "<iq type='get' id='s' to='conference.example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    EXPECT('S', 3, "id='s'", "jid='" ROOM "' name='The Lobby'");
    smh_send(3, "<iq type='get' id='h' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    EXPECT('S', 3, "id='h'", "jid='conference.example.org'");
}

static void test_messages_history_pm(void **state)
{
    room_with_two("");
    say(2, "hello");
    /* Reflected to the sender too, from its occupant JID, with the room's stanza id. */
    EXPECT('S', 1, "from='" ROOM "/Bob'", "<body>hello</body>");
    EXPECT('S', 2, "id='m-hello'", "<stanza-id xmlns='urn:xmpp:sid:0' by='" ROOM "'");
    say(1, "one");
    say(1, "two");
    smh_send(1, "<message to='" ROOM "' type='groupchat'><subject>Topic</subject></message>");
    smh_online(3, "carol", "c");
    smh_clear();
    join(3, "Carol", "<history maxstanzas='2'/>");
    NONE('S', 3, "<body>hello</body>");
    EXPECT('S', 3, "<body>one</body>", "<delay xmlns='urn:xmpp:delay' from='" ROOM "'");
    EXPECT('S', 3, "<body>two</body>", NULL);
    EXPECT('S', 3, "from='" ROOM "/Al'", "<subject>Topic</subject>");
    /* Not an occupant: refused. */
    smh_online(4, "alice", "other");
    smh_clear();
    say(4, "intruder");
    EXPECT('S', 4, "type='error'", "not-acceptable");
    /* A private message, from occupant to occupant. */
    smh_clear();
    smh_send(2, "<message to='" ROOM "/Al' type='chat'><body>psst</body></message>");
    EXPECT('S', 1, "from='" ROOM "/Bob'", "<x xmlns='http://jabber.org/protocol/muc#user'/>");
    smh_send(2, "<message to='" ROOM "/Nobody' type='chat'><body>psst</body></message>");
    EXPECT('S', 2, "type='error'", "item-not-found");
    /* A self-ping (XEP-0410) is answered by the room; a ping to another occupant goes there. */
    smh_clear();
    smh_send(2, "<iq type='get' id='sp' to='" ROOM "/Bob'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 2, "id='sp'", "type='result'");
    smh_send(4, "<iq type='get' id='np' to='" ROOM "/Bob'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 4, "id='np'", "not-acceptable");
    /* An iq between occupants goes to the addressee from the asker's occupant JID, and its
     * answer back to the asking session; a vCard request goes to the addressee's account, which
     * the server answers. Nobody sees a real JID. */
    smh_clear();
    smh_send(1, "<iq type='get' id='p1' to='" ROOM "/Bob'><ping xmlns='urn:xmpp:ping'/></iq>");
    EXPECT('S', 2, "from='" ROOM "/Al'", "id='p1~m0'");
    smh_send(2, "<iq type='result' id='p1~m0' to='" ROOM "/Al'/>");
    EXPECT('S', 1, "from='" ROOM "/Bob'", "id='p1'");
    smh_clear();
    smh_send(1, "<iq type='get' id='v1' to='" ROOM "/Bob'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 1, "id='v1'", "from='" ROOM "/Bob'");
    NONE('S', 1, "bob@example.org");
    /* An answer from outside the room, or with a session index nobody has, goes nowhere. */
    smh_adduser("example.org", "dave");
    smh_online(5, "dave", "d");
    smh_clear();
    smh_send(5, "<iq type='result' id='p1~m0' to='" ROOM "/Al'/>");
    smh_send(2, "<iq type='result' id='x~m7' to='" ROOM "/Al'/>");
    NONE('S', 1, NULL);
}

static void test_nick_kick_ban(void **state)
{
    room_with_two("");
    smh_send(2, "<presence to='" ROOM "/Robert'/>");
    EXPECT('S', 1, "type='unavailable'", "nick='Robert'");
    EXPECT('S', 2, "<status code='303'/>", "<status code='110'/>");
    EXPECT('S', 1, "from='" ROOM "/Robert'", NULL);
    smh_clear();
    /* A participant may not kick. */
    admin_set(2, "<item nick='Al' role='none'/>");
    EXPECT('S', 2, "id='adm'", "not-allowed");
    admin_set(1, "<item nick='Robert' role='none'><reason>enough</reason></item>");
    EXPECT('S', 2, "type='unavailable'", "<status code='307'/>");
    EXPECT('S', 2, "<reason>enough</reason>", "<actor nick='Al'/>");
    EXPECT('S', 1, "from='" ROOM "/Robert'", "<status code='307'/>");
    EXPECT('S', 1, "id='adm'", "type='result'");
    /* Banned: out, and cannot come back. */
    join(2, "Bob", NULL);
    smh_clear();
    admin_set(1, "<item jid='bob@example.org' affiliation='outcast'/>");
    EXPECT('S', 2, "type='unavailable'", "<status code='301'/>");
    smh_clear();
    join(2, "Bob", NULL);
    EXPECT('S', 2, "type='error'", "forbidden");
    smh_send(1, "<iq type='get' id='l' to='" ROOM "'><query xmlns='" MUC "#admin'>"
                "<item affiliation='outcast'/></query></iq>");
    EXPECT('S', 1, "id='l'", "jid='bob@example.org'");
    /* The last owner stays one. */
    smh_clear();
    admin_set(1, "<item jid='alice@example.org' affiliation='member'/>");
    EXPECT('S', 1, "id='adm'", "conflict");
}

static void test_members_only_invite(void **state)
{
    room_with_two("<field var='muc#roomconfig_membersonly'><value>1</value></field>"
                  "<field var='muc#roomconfig_whois'><value>anyone</value></field>");
    smh_online(3, "carol", "c");
    smh_clear();
    join(3, "Carol", NULL);
    EXPECT('S', 3, "type='error'", "registration-required");
    smh_clear();
    smh_send(1, "<message to='" ROOM "'><x xmlns='" MUC "#user'><invite to='carol@example.org'>"
                "<reason>come</reason></invite></x></message>");
    EXPECT('S', 3, "from='" ROOM "'", "<invite from='alice@example.org'><reason>come</reason>");
    EXPECT('S', 3, "jabber:x:conference", NULL);
    smh_clear();
    join(3, "Carol", NULL);
    EXPECT('S', 3, "<status code='110'/>", "<status code='100'/>");
    EXPECT('S', 3, "from='" ROOM "/Al'", "jid='alice@example.org/a'");
}

static void test_leave_end_destroy(void **state)
{
    room_with_two("<field var='muc#roomconfig_persistentroom'><value>1</value></field>");
    /* Bob's session ends: he leaves. */
    sm_end(smh.core, smh.front, 2, 0);
    smh_drain();
    EXPECT('S', 1, "from='" ROOM "/Bob'", "type='unavailable'");
    smh_online(2, "bob", "b");
    join(2, "Bob", NULL);
    smh_clear();
    smh_send(2, "<presence to='" ROOM "/Bob' type='unavailable'/>");
    EXPECT('S', 2, "type='unavailable'", "<status code='110'/>");
    EXPECT('S', 1, "from='" ROOM "/Bob'", "type='unavailable'");
    join(2, "Bob", NULL);
    smh_clear();
    smh_send(1, "<iq type='set' id='d' to='" ROOM "'><query xmlns='" MUC "#owner'>"
                "<destroy jid='new@conference.example.org'><reason>moved</reason></destroy>"
                "</query></iq>");
    EXPECT('S', 2, "type='unavailable'", "<destroy jid='new@conference.example.org'><reason>moved");
    EXPECT('S', 1, "id='d'", "type='result'");
    smh_clear();
    say(2, "anyone?");
    EXPECT('S', 2, "type='error'", "item-not-found");
}

/* A temporary room goes with its last occupant; limits on nicks and rooms. */
static void test_temporary_and_limits(void **state)
{
    smh_start("<muc><rooms_per_user>1</rooms_per_user><nick_max>8</nick_max>"
              "<presence_max>300</presence_max></muc>", NULL);
    smh_online(1, "alice", "a");
    join(1, "Al", NULL);
    owner_submit(1, "");
    smh_clear();
    smh_send(1, "<presence to='other@conference.example.org/Al'><x xmlns='" MUC "'/></presence>");
    EXPECT('S', 1, "type='error'", "resource-constraint");
    smh_send(1, "<presence to='" ROOM "/Al' type='unavailable'/>");
    smh_clear();
    smh_send(1, "<presence to='other@conference.example.org/Al'><x xmlns='" MUC "'/></presence>");
    EXPECT('S', 1, "<status code='201'/>", NULL);
    smh_clear();
    smh_send(1, "<presence to='third@conference.example.org/LongerThanEight'/>");
    EXPECT('S', 1, "type='error'", "not-acceptable");
    smh_clear();
    char big[1024];
    snprintf(big, sizeof big, "<presence to='other@conference.example.org/Al'><status>%0400d"
                              "</status></presence>", 0);
    smh_send(1, big);
    EXPECT('S', 1, "type='error'", "policy-violation");
    /* Only the host's accounts create rooms; closed.org has its own service. */
    smh_clear();
    smh_send(1, "<presence to='x@conference.closed.org/Al'/>");
    EXPECT('S', 1, "type='error'", "not-allowed");
}

/* The service lists its public rooms by JID, a page at a time (XEP-0059). */
static void test_room_list(void **state)
{
    smh_online(1, "alice", "a");
    static const char *const rooms[] = {"c", "a", "b", "hidden"};
    for (int i = 0; i < 4; i++) {
        char xml[512];
        snprintf(xml, sizeof xml, "<presence to='%s@conference.example.org/Al'/>", rooms[i]);
        smh_send(1, xml);
    }
    smh_send(1, "<iq type='set' id='c' to='hidden@conference.example.org'><query xmlns='" MUC
                "#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_publicroom'>"
                "<value>0</value></field></x></query></iq>");
#define ITEMS_QUERY                                                                         \
    "<iq type='get' id='%s' to='conference.example.org'><query xmlns='http://"               \
    "jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'>%s</set>" \
    "</query></iq>"
    char xml[512];
    smh_clear();
    snprintf(xml, sizeof xml, ITEMS_QUERY, "p1", "<max>2</max>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='p1'", "jid='a@conference.example.org' name='a'/><item jid='b@");
    EXPECT('S', 1, "id='p1'", "<count>3</count>");
    NONE('S', 1, "hidden@");
    snprintf(xml, sizeof xml, ITEMS_QUERY, "p2", "<max>2</max><after>b@conference.example.org</after>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='p2'", "<first index='2'>c@conference.example.org</first>");
    snprintf(xml, sizeof xml, ITEMS_QUERY, "p3", "<max>1</max><before/>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='p3'", "<first index='2'>c@conference.example.org</first>");
    snprintf(xml, sizeof xml, ITEMS_QUERY, "p4", "<max>5</max><before>b@conference.example.org</before>");
    smh_send(1, xml);
    EXPECT('S', 1, "id='p4'", "<first index='0'>a@conference.example.org</first><last>a@");
}

/* The room's archive (mod_muc_mam): its group messages, for those who may read its history. */
static void test_archive(void **state)
{
    room_with_two("");
    say(2, "first");
    say(1, "second");
    smh_clear();
    smh_send(2, "<iq type='set' id='q' to='" ROOM "'><query xmlns='urn:xmpp:mam:2' queryid='Q'/></iq>");
    int a = smh_find('S', 2, "<result xmlns='urn:xmpp:mam:2' queryid='Q'", "<body>first</body>");
    int b = smh_find('S', 2, "<result xmlns='urn:xmpp:mam:2' queryid='Q'", "<body>second</body>");
    assert_true(a >= 0 && b > a);
    EXPECT('S', 2, "from='" ROOM "'", "from='" ROOM "/Bob'");
    EXPECT('S', 2, "id='q'", "<fin xmlns='urn:xmpp:mam:2' complete='true'");
    smh_send(2, "<iq type='get' id='i' to='" ROOM "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 2, "id='i'", "urn:xmpp:mam:2");
    /* Banned: no history. */
    admin_set(1, "<item jid='bob@example.org' affiliation='outcast'/>");
    smh_clear();
    smh_send(2, "<iq type='set' id='q2' to='" ROOM "'><query xmlns='urn:xmpp:mam:2'/></iq>");
    EXPECT('S', 2, "id='q2'", "forbidden");
}

/* After an SM restart the room is back with its configuration and the occupants whose sessions
 * the front re-announced; the others leave. */
static void test_restart(void **state)
{
    room_with_two("<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
                  "<field var='muc#roomconfig_roomname'><value>Kept</value></field>");
    smh_send(1, "<message to='" ROOM "' type='groupchat'><subject>Still here</subject></message>");
    smh_clear();
    smh_stop();
    smh_start("", NULL);
    sm_resync(smh.core, smh.front, 1, "alice@example.org/a", NULL, 0, "");
    smh_drain();
    /* Bob's session did not come back: he leaves; Al stays without a word. */
    EXPECT('S', 1, "from='" ROOM "/Bob'", "type='unavailable'");
    NONE('S', 1, "from='" ROOM "/Al'");
    smh_clear();
    say(1, "back");
    EXPECT('S', 1, "from='" ROOM "/Al'", "<body>back</body>");
    NONE('S', 2, "<body>back</body>");
    smh_send(1, "<iq type='get' id='i' to='" ROOM "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "name='Kept'", "muc_persistent");
    EXPECT('S', 1, "muc#roominfo_occupants", "<value>1</value>");
    EXPECT('S', 1, "<value>Still here</value>", NULL);
}

/* Records in storage that are not the SM's (a damaged database, another version): skipped and
 * logged, the room still loads. */
static void test_bad_records(void **state)
{
    xdb_request *r = xdb_request_new(XDB_ROOM_CREATE, "conference.example.org", "lobby");
    assert_int_equal(xdb_run(smh.db, r), XDB_OK);
    xdb_request_free(r);
    static const char *const keys[] = {"config", "o:1", "a:1", "o:2"};
    static const char *const values[] = {"\x01garbage", "\x01x\0y\0", "\x07", ""};
    for (int i = 0; i < 4; i++) {
        r = xdb_request_new(XDB_DOC_PUT, "conference.example.org", "lobby");
        xdb_request_set_doc(r, "muc", keys[i]);
        xdb_request_set_value(r, values[i], strlen(values[i]) + (i == 1 ? 4 : 0));
        assert_int_equal(xdb_run(smh.db, r), XDB_OK);
        xdb_request_free(r);
    }
    smh_start("", NULL);
    smh_drain();
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='get' id='i' to='" ROOM "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "muc#roominfo_occupants", "<value>0</value>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_configure_join, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_messages_history_pm, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_nick_kick_ban, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_members_only_invite, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_leave_end_destroy, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_temporary_and_limits, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_room_list, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_archive, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_restart, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bad_records, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
