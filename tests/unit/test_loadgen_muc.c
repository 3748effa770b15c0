/* tests/unit/test_loadgen_muc.c — the load generator's group chat client
 * (tests/bench/loadgen/lg_muc.c): which room and slot a user has (every user once, rooms of sizes
 * that add up), the join, configuration and groupchat stanzas, and reading back a self-presence
 * (110, 201), a refused join, a reflected message and the ids.
 *
 * The loadgen is not part of the library, so its module is compiled into this test directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/loadgen/lg_muc.c"

static void test_rooms(void **state)
{
    static const uint32_t sizes[][2] = {{1, 1}, {1000, 1}, {1000, 10}, {1003, 10}, {7, 7}};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        uint32_t n = sizes[t][0], rooms = sizes[t][1], total = 0;
        for (uint32_t r = 0; r < rooms; r++) {
            uint32_t size = lg_muc_room_size(n, rooms, r), slots = 0;
            for (uint32_t u = r; u < n; u += rooms) {
                assert_int_equal(lg_muc_room_of(rooms, u), r);
                assert_int_equal(lg_muc_slot_of(rooms, u), slots);
                slots++;
            }
            assert_int_equal(slots, size);
            total += size;
        }
        assert_int_equal(total, n);
        assert_true(lg_muc_room_size(n, rooms, 0) >= lg_muc_room_size(n, rooms, rooms - 1));
    }
}

static char *text_of(buf *b)
{
    buf_append(b, "", 1);
    return buf_data(b);
}

static void test_stanzas(void **state)
{
    buf b = BUF_INIT;
    lg_muc_join(&b, "conference.localhost", 3, 17);
    assert_string_equal(text_of(&b), "<presence to='bench3@conference.localhost/u17'><x xmlns='"
                                     NS_MUC "'><history maxstanzas='0'/></x></presence>");
    buf_free(&b);
    lg_muc_config(&b, "conference.localhost", 0, "RUNabcd1", 0);
    assert_string_equal(text_of(&b), "<iq type='set' to='bench0@conference.localhost' "
                                     "id='RUNabcd1-cfg-0'><query xmlns='" NS_MUC_OWNER "'><x "
                                     "xmlns='" NS_DATA "' type='submit'/></query></iq>");
    buf_free(&b);
    lg_muc_config(&b, "c.example", 2, "RUNabcd1", 1000);
    assert_non_null(strstr(text_of(&b), "<field var='muc#roomconfig_maxusers'><value>1000<"));
    buf_free(&b);
    uint32_t room;
    assert_true(lg_muc_parse_config_id("RUNabcd1-cfg-12", "RUNabcd1", &room));
    assert_int_equal(room, 12);
    assert_false(lg_muc_parse_config_id("RUNabcd1-12-3", "RUNabcd1", &room));
    assert_false(lg_muc_parse_config_id("RUNother-cfg-1", "RUNabcd1", &room));

    lg_muc_message(&b, "conference.localhost", 1, "RUNabcd1", 2, 5, 42, 123456789012ull);
    assert_string_equal(text_of(&b), "<message to='bench1@conference.localhost' type='groupchat' "
                                     "id='RUNabcd1-2-42'><body>RUNabcd1 2 5 42 123456789012</body>"
                                     "</message>");
    buf_free(&b);
    uint32_t round;
    uint64_t seq;
    assert_true(lg_muc_parse_id("RUNabcd1-2-42", "RUNabcd1", &round, &seq));
    assert_int_equal(round, 2);
    assert_int_equal(seq, 42);
    assert_false(lg_muc_parse_id("RUNabcd1-cfg-1", "RUNabcd1", &round, &seq));
    assert_false(lg_muc_parse_id("RUNabcd1-2-42x", "RUNabcd1", &round, &seq));
    assert_false(lg_muc_parse_id(NULL, "RUNabcd1", &round, &seq));
}

static void test_room_jid(void **state)
{
    uint32_t room;
    assert_true(lg_muc_parse_room_jid("bench7@conference.localhost/u8", "conference.localhost",
                                      &room));
    assert_int_equal(room, 7);
    assert_true(lg_muc_parse_room_jid("bench0@conference.localhost", "conference.localhost", &room));
    assert_int_equal(room, 0);
    assert_false(lg_muc_parse_room_jid("bench7@conference.localhost.x/u8", "conference.localhost",
                                       &room));
    assert_false(lg_muc_parse_room_jid("benchx@conference.localhost", "conference.localhost",
                                       &room));
    assert_false(lg_muc_parse_room_jid("user1@localhost/lg1", "conference.localhost", &room));
    assert_false(lg_muc_parse_room_jid(NULL, "conference.localhost", &room));
}

static xml_node *presence(xml_arena *a, const char *from, const char *type, const char *const *codes)
{
    xml_node *p = xml_element_new(a, NULL, "jabber:client", "presence");
    xml_attr_set(a, p, NULL, "from", from);
    if (type)
        xml_attr_set(a, p, NULL, "type", type);
    xml_node *x = xml_element_new(a, p, NS_MUC_USER, "x");
    xml_node *item = xml_element_new(a, x, NS_MUC_USER, "item");
    xml_attr_set(a, item, NULL, "affiliation", "owner");
    for (; codes && *codes; codes++) {
        xml_node *s = xml_element_new(a, x, NS_MUC_USER, "status");
        xml_attr_set(a, s, NULL, "code", *codes);
    }
    return p;
}

static void test_presence(void **state)
{
    static const char *const created[] = {"110", "201", NULL}, *const self[] = {"110", NULL},
                             *const other[] = {"100", NULL};
    xml_arena *a = xml_arena_new(1024);
    uint32_t room = 99;
    bool made;
    const char *cond = NULL;
    const char *svc = "conference.localhost";
    assert_int_equal(lg_muc_parse_presence(presence(a, "bench2@conference.localhost/u3", NULL,
                                                    created), svc, &room, &made, &cond),
                     LG_MUC_PRESENCE_SELF);
    assert_int_equal(room, 2);
    assert_true(made);
    assert_int_equal(lg_muc_parse_presence(presence(a, "bench2@conference.localhost/u3", NULL, self),
                                           svc, &room, &made, &cond),
                     LG_MUC_PRESENCE_SELF);
    assert_false(made);
    assert_int_equal(lg_muc_parse_presence(presence(a, "bench2@conference.localhost/u5", NULL,
                                                    other), svc, &room, &made, &cond),
                     LG_MUC_PRESENCE_OTHER);
    assert_int_equal(lg_muc_parse_presence(presence(a, "bench2@conference.localhost/u3",
                                                    "unavailable", self), svc, &room, &made, &cond),
                     LG_MUC_PRESENCE_OTHER);
    assert_int_equal(lg_muc_parse_presence(presence(a, "user3@localhost/lg3", NULL, self), svc,
                                           &room, &made, &cond),
                     LG_MUC_PRESENCE_OTHER);
    xml_node *e = presence(a, "bench1@conference.localhost/u4", "error", NULL);
    xml_node *err = xml_element_new(a, e, "jabber:client", "error");
    xml_element_new(a, err, NS_STANZAS, "text");
    xml_element_new(a, err, NS_STANZAS, "service-unavailable");
    assert_int_equal(lg_muc_parse_presence(e, svc, &room, &made, &cond), LG_MUC_PRESENCE_ERROR);
    assert_int_equal(room, 1);
    assert_string_equal(cond, "service-unavailable");
    xml_arena_free(a);
}

static void test_message(void **state)
{
    xml_arena *a = xml_arena_new(1024);
    xml_node *m = xml_element_new(a, NULL, "jabber:client", "message");
    xml_attr_set(a, m, NULL, "type", "groupchat");
    xml_attr_set(a, m, NULL, "from", "bench1@conference.localhost/u6");
    xml_node *body = xml_element_new(a, m, "jabber:client", "body");
    static const char text[] = "RUNabcd1 2 5 42 123456789012";
    xml_text_new(a, body, text, sizeof(text) - 1);
    lg_muc_item it;
    assert_int_equal(lg_muc_parse_message(m, a, "RUNabcd1", &it), LG_MUC_MESSAGE);
    assert_int_equal(it.round, 2);
    assert_int_equal(it.sender, 5);
    assert_int_equal(it.seq, 42);
    assert_true(it.t_ns == 123456789012ull);
    assert_int_equal(lg_muc_parse_message(m, a, "RUNother", &it), LG_MUC_FOREIGN);
    xml_attr_set(a, m, NULL, "type", "chat");
    assert_int_equal(lg_muc_parse_message(m, a, "RUNabcd1", &it), LG_MUC_NOT_OURS);
    /* The subject that ends a join: groupchat, no body. */
    xml_node *s = xml_element_new(a, NULL, "jabber:client", "message");
    xml_attr_set(a, s, NULL, "type", "groupchat");
    xml_element_new(a, s, "jabber:client", "subject");
    assert_int_equal(lg_muc_parse_message(s, a, "RUNabcd1", &it), LG_MUC_NOT_OURS);
    xml_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rooms),
        cmocka_unit_test(test_stanzas),
        cmocka_unit_test(test_room_jid),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
