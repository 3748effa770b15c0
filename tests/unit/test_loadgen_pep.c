/* tests/unit/test_loadgen_pep.c — the load generator's PEP client (tests/bench/loadgen/lg_pep.c):
 * the XEP-0115 §5.1 ver (the §5.2 example, and our own client's against its verification string
 * written out by hand), the caps presence and the disco#info answer that must prove it, the
 * publish's id and a notification read back into its fields, and the contact ring (K contacts
 * each, mutual, slot and contact inverse of each other).
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

#include "tests/bench/loadgen/lg_pep.c"

static void test_ver_xep_example(void **state)
{
    /* XEP-0115 §5.2: Exodus 0.9.1, features given out of order. */
    const char *features[] = {"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps",
                              "http://jabber.org/protocol/disco#items",
                              "http://jabber.org/protocol/disco#info"};
    char ver[LG_PEP_VER_LEN + 1];
    lg_pep_ver("client/pc//Exodus 0.9.1", features, 4, ver);
    assert_string_equal(ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

static void test_client_ver(void **state)
{
    /* The verification string in §5.1's order (identity, then features sorted by octets). */
    static const char s[] = "client/pc//loadgen<http://jabber.org/protocol/caps<"
                            "http://jabber.org/protocol/disco#info<urn:xmpp:bench:pep<"
                            "urn:xmpp:bench:pep+notify<urn:xmpp:ping<";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len;
    char want[LG_PEP_VER_LEN + 1];
    EVP_Digest(s, sizeof(s) - 1, md, &len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)want, md, (int)len);
    assert_string_equal(lg_pep_client_ver(), want);
    buf b = BUF_INIT;
    lg_pep_presence(&b);
    buf_append(&b, "", 1);
    assert_non_null(strstr(buf_data(&b), want));
    assert_non_null(strstr(buf_data(&b), "hash='sha-1' node='" LG_PEP_CAPS_NODE "'"));
    buf_free(&b);
}

static void test_disco_answer(void **state)
{
    xml_arena *a = xml_arena_new(1024);
    xml_node *iq = xml_element_new(a, NULL, "jabber:client", "iq");
    xml_attr_set(a, iq, NULL, "type", "get");
    xml_attr_set(a, iq, NULL, "id", "q'1");
    xml_attr_set(a, iq, NULL, "from", "localhost");
    xml_node *q = xml_element_new(a, iq, NS_DISCO_INFO, "query");
    xml_attr_set(a, q, NULL, "node", LG_PEP_CAPS_NODE "#x");
    buf b = BUF_INIT;
    assert_true(lg_pep_disco_answer(iq, &b));
    buf_append(&b, "", 1);
    const char *out = buf_data(&b);
    assert_non_null(strstr(out, "<iq type='result' id='q&apos;1' to='localhost'>"));
    assert_non_null(strstr(out, "node='" LG_PEP_CAPS_NODE "#x'>"));
    assert_non_null(strstr(out, "<feature var='urn:xmpp:bench:pep+notify'/>"));
    assert_non_null(strstr(out, "<identity category='client' type='pc' name='loadgen'/>"));
    buf_free(&b);
    /* Not a disco#info get: left alone. */
    xml_attr_set(a, iq, NULL, "type", "set");
    assert_false(lg_pep_disco_answer(iq, &b));
    assert_int_equal(buf_len(&b), 0);
    xml_arena_free(a);
}

static void test_publish_and_event(void **state)
{
    buf b = BUF_INIT;
    lg_pep_publish(&b, "RUNabcd1", 2, 17, 42, 123456789012ull);
    buf_append(&b, "", 1);
    assert_non_null(strstr(buf_data(&b), "<iq type='set' id='RUNabcd1-2-42'>"));
    assert_non_null(strstr(buf_data(&b), "<publish node='urn:xmpp:bench:pep'><item id='current'>"));
    assert_non_null(strstr(buf_data(&b), ">RUNabcd1 2 17 42 123456789012</bench>"));
    buf_free(&b);
    uint32_t round;
    uint64_t seq;
    assert_true(lg_pep_parse_id("RUNabcd1-2-42", "RUNabcd1", &round, &seq));
    assert_int_equal(round, 2);
    assert_int_equal(seq, 42);
    assert_false(lg_pep_parse_id("RUNabcd2-2-42", "RUNabcd1", &round, &seq));
    assert_false(lg_pep_parse_id("RUNabcd1-2-42x", "RUNabcd1", &round, &seq));
    assert_false(lg_pep_parse_id(NULL, "RUNabcd1", &round, &seq));

    /* The notification as a server sends it. */
    xml_arena *a = xml_arena_new(1024);
    xml_node *m = xml_element_new(a, NULL, "jabber:client", "message");
    xml_node *ev = xml_element_new(a, m, NS_PUBSUB_EVENT, "event");
    xml_node *items = xml_element_new(a, ev, NS_PUBSUB_EVENT, "items");
    xml_attr_set(a, items, NULL, "node", LG_PEP_NODE);
    xml_node *item = xml_element_new(a, items, NS_PUBSUB_EVENT, "item");
    xml_node *payload = xml_element_new(a, item, LG_PEP_NODE, "bench");
    static const char text[] = "RUNabcd1 2 17 42 123456789012";
    xml_text_new(a, payload, text, sizeof(text) - 1);
    lg_pep_item it;
    assert_int_equal(lg_pep_parse_event(m, a, "RUNabcd1", &it), LG_PEP_EVENT);
    assert_int_equal(it.round, 2);
    assert_int_equal(it.publisher, 17);
    assert_int_equal(it.seq, 42);
    assert_true(it.t_ns == 123456789012ull);
    assert_int_equal(lg_pep_parse_event(m, a, "RUNother", &it), LG_PEP_FOREIGN);
    xml_attr_set(a, items, NULL, "node", "urn:xmpp:avatar:metadata");
    assert_int_equal(lg_pep_parse_event(m, a, "RUNabcd1", &it), LG_PEP_NOT_EVENT);
    assert_int_equal(lg_pep_parse_event(payload, a, "RUNabcd1", &it), LG_PEP_NOT_EVENT);
    xml_arena_free(a);
}

static void test_ring(void **state)
{
    static const uint32_t sizes[][2] = {{3, 2}, {5, 4}, {10, 2}, {101, 50}, {2000, 100}};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        uint32_t n = sizes[t][0], k = sizes[t][1];
        for (uint32_t p = 0; p < n; p++) {
            uint32_t contacts = 0;
            for (uint32_t q = 0; q < n; q++) {
                int slot = lg_pep_contact_slot(n, k, p, q);
                if (q == p) {
                    assert_int_equal(slot, (int)k);
                    continue;
                }
                /* Mutual: q is p's contact exactly when p is q's. */
                assert_int_equal(slot >= 0, lg_pep_contact_slot(n, k, q, p) >= 0);
                if (slot >= 0) {
                    contacts++;
                    assert_true(slot < (int)k);
                    assert_int_equal(lg_pep_contact(n, k, p, (uint32_t)slot), q);
                }
            }
            assert_int_equal(contacts, k);
        }
    }
    /* The slot order scenario_pep.py's peerlib.ring writes: +1..+K/2, then -1..-K/2. */
    assert_int_equal(lg_pep_contact(10, 4, 0, 0), 1);
    assert_int_equal(lg_pep_contact(10, 4, 0, 1), 2);
    assert_int_equal(lg_pep_contact(10, 4, 0, 2), 9);
    assert_int_equal(lg_pep_contact(10, 4, 0, 3), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ver_xep_example),
        cmocka_unit_test(test_client_ver),
        cmocka_unit_test(test_disco_answer),
        cmocka_unit_test(test_publish_and_event),
        cmocka_unit_test(test_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
