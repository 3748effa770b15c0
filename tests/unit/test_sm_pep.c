/* tests/unit/test_sm_pep.c — personal eventing (sm/mod_pep.c and its files) in the harness:
 * publishing (nodes made on first publish, item ids made when absent), items by contacts under
 * each access model, publish-options as preconditions, the node's bound on items, retract, the
 * owner's configure, purge and delete, the errors of XEP-0060 §7, the account's disco#info,
 * persistence across an SM restart, notifications by entity capabilities (mod_caps), and the
 * bound on owners kept in memory. */
#include "tests/support/sm_harness.h"

#include "sm/caps_ver.h"
#include "sm/pep.h"

#define PUBSUB "http://jabber.org/protocol/pubsub"

/* sid publishes <x xmlns='urn:t'>body</x> to node (item id, NULL: none) with publish-options
 * fields (pairs "var", "value", ending in NULL), iq id 'p'. */
static void publish_opts(uint64_t sid, const char *node, const char *id, const char *body,
                         const char *const *opts)
{
    char xml[4096], item[64] = "";
    if (id)
        snprintf(item, sizeof item, " id='%s'", id);
    int n = snprintf(xml, sizeof xml,
                     "<iq type='set' id='p'><pubsub xmlns='" PUBSUB "'><publish node='%s'>"
                     "<item%s><x xmlns='urn:t'>%s</x></item></publish>",
                     node, item, body);
    if (opts) {
        n += snprintf(xml + n, sizeof xml - (size_t)n,
                      "<publish-options><x xmlns='jabber:x:data' type='submit'>"
                      "<field var='FORM_TYPE' type='hidden'><value>" PUBSUB
                      "#publish-options</value></field>");
        for (size_t i = 0; opts[i]; i += 2)
            n += snprintf(xml + n, sizeof xml - (size_t)n,
                          "<field var='%s'><value>%s</value></field>", opts[i], opts[i + 1]);
        n += snprintf(xml + n, sizeof xml - (size_t)n, "</x></publish-options>");
    }
    snprintf(xml + n, sizeof xml - (size_t)n, "</pubsub></iq>");
    smh_clear();
    smh_send(sid, xml);
}

static void publish(uint64_t sid, const char *node, const char *id, const char *body)
{
    publish_opts(sid, node, id, body, NULL);
}

/* sid asks owner's node for its items (extra: attributes or children of <items/>). */
static void get_items(uint64_t sid, const char *owner, const char *node, const char *attrs,
                      const char *children)
{
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<iq type='get' id='g' to='%s@example.org'><pubsub xmlns='" PUBSUB "'>"
             "<items node='%s'%s>%s</items></pubsub></iq>",
             owner, node, attrs ? attrs : "", children ? children : "");
    smh_clear();
    smh_send(sid, xml);
}

static void owner_iq(uint64_t sid, const char *type, const char *inner)
{
    char xml[2048];
    snprintf(xml, sizeof xml,
             "<iq type='%s' id='o'><pubsub xmlns='" PUBSUB "#owner'>%s</pubsub></iq>", type,
             inner);
    smh_clear();
    smh_send(sid, xml);
}

/* carol (sid 3) online, no subscription to anyone. */
static void carol_online(void)
{
    smh_online(3, "carol", "c");
    smh_clear();
}

static void test_publish_and_items(void **state)
{
    smh_befriend();
    publish(1, "urn:t:n", "i1", "one");
    EXPECT('S', 1, "type='result'", "<item id='i1'/>");
    /* A server-made id when the item has none. */
    publish(1, "urn:t:n", NULL, "two");
    EXPECT('S', 1, "type='result'", "<item id='");
    /* The node keeps one item by default: the newest. */
    get_items(1, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 1, ">two<", "<items node='urn:t:n'");
    NONE('S', 1, ">one<");
    /* A contact subscribed to alice's presence reads it (presence access, the default). */
    get_items(2, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 2, ">two<", NULL);
    /* Another may not. */
    carol_online();
    get_items(3, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 3, "not-authorized", "presence-subscription-required");
    get_items(3, "alice", "urn:t:nothing", NULL, NULL);
    EXPECT('S', 3, "item-not-found", NULL);
}

static void test_access_models(void **state)
{
    smh_befriend();
    carol_online();
    static const char *const open[] = {"pubsub#access_model", "open", NULL};
    publish_opts(1, "urn:t:open", "i", "everyone", open);
    get_items(3, "alice", "urn:t:open", NULL, NULL);
    EXPECT('S', 3, ">everyone<", NULL);
    static const char *const white[] = {"pubsub#access_model", "whitelist", NULL};
    publish_opts(1, "urn:t:mine", "i", "secret", white);
    get_items(2, "alice", "urn:t:mine", NULL, NULL);
    EXPECT('S', 2, "not-allowed", "closed-node");
    NONE('S', 2, "secret");
    get_items(1, "alice", "urn:t:mine", NULL, NULL);
    EXPECT('S', 1, ">secret<", NULL);
    /* The account's disco#items: the nodes the asker may read. */
    smh_clear();
    smh_send(2, "<iq type='get' id='di' to='alice@example.org'><query "
                "xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    EXPECT('S', 2, "<item jid='alice@example.org' node='urn:t:open'/>", NULL);
    NONE('S', 2, "urn:t:mine");
    smh_send(1, "<iq type='get' id='dj'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    EXPECT('S', 1, "node='urn:t:open'", NULL);
    EXPECT('S', 1, "node='urn:t:mine'", NULL);
}

static void test_publish_options(void **state)
{
    smh_online(1, "alice", "a");
    static const char *const opts[] = {"pubsub#persist_items", "true", "pubsub#max_items", "max",
                                       "pubsub#access_model", "whitelist", NULL};
    publish_opts(1, "urn:xmpp:bookmarks:1", "room@muc", "b", opts);
    EXPECT('S', 1, "type='result'", NULL);
    publish_opts(1, "urn:xmpp:bookmarks:1", "room2@muc", "b", opts);
    EXPECT('S', 1, "type='result'", NULL);
    get_items(1, "alice", "urn:xmpp:bookmarks:1", NULL, NULL);
    EXPECT('S', 1, "room@muc", "room2@muc");
    /* A precondition the node does not meet, and a field this service has not. */
    static const char *const other[] = {"pubsub#access_model", "open", NULL};
    publish_opts(1, "urn:xmpp:bookmarks:1", "x", "b", other);
    EXPECT('S', 1, "conflict", "precondition-not-met");
    static const char *const unknown[] = {"pubsub#frobnicate", "1", NULL};
    publish_opts(1, "urn:xmpp:bookmarks:1", "x", "b", unknown);
    EXPECT('S', 1, "conflict", "precondition-not-met");
    /* The configuration shows what the options made. */
    owner_iq(1, "get", "<configure node='urn:xmpp:bookmarks:1'/>");
    EXPECT('S', 1, "pubsub#access_model", "<value>whitelist</value>");
    EXPECT('S', 1, "pubsub#max_items", "<value>max</value>");
}

static void test_max_items_and_retract(void **state)
{
    smh_online(1, "alice", "a");
    static const char *const two[] = {"pubsub#max_items", "2", NULL};
    publish_opts(1, "urn:t:n", "a", "A", two);
    publish(1, "urn:t:n", "b", "B");
    publish(1, "urn:t:n", "c", "C");
    get_items(1, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 1, ">B<", ">C<");
    NONE('S', 1, ">A<");
    get_items(1, "alice", "urn:t:n", " max_items='1'", NULL);
    EXPECT('S', 1, ">C<", NULL);
    NONE('S', 1, ">B<");
    get_items(1, "alice", "urn:t:n", NULL, "<item id='b'/>");
    EXPECT('S', 1, ">B<", NULL);
    NONE('S', 1, ">C<");
    /* Retracting the newest makes the one before it the last. */
    smh_clear();
    smh_send(1, "<iq type='set' id='r'><pubsub xmlns='" PUBSUB "'><retract node='urn:t:n'>"
                "<item id='c'/></retract></pubsub></iq>");
    EXPECT('S', 1, "type='result'", "id='r'");
    get_items(1, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 1, ">B<", NULL);
    NONE('S', 1, ">C<");
    smh_clear();
    smh_send(1, "<iq type='set' id='r'><pubsub xmlns='" PUBSUB "'><retract node='urn:t:n'>"
                "<item id='c'/></retract></pubsub></iq>");
    EXPECT('S', 1, "item-not-found", NULL);
}

static void test_owner_operations(void **state)
{
    smh_befriend();
    publish(1, "urn:t:n", "a", "A");
    /* Only the owner publishes and manages. */
    smh_clear();
    smh_send(2, "<iq type='set' id='x' to='alice@example.org'><pubsub xmlns='" PUBSUB "'>"
                "<publish node='urn:t:n'><item><x xmlns='urn:t'/></item></publish></pubsub></iq>");
    EXPECT('S', 2, "forbidden", NULL);
    smh_clear();
    smh_send(2, "<iq type='set' id='x' to='alice@example.org'><pubsub xmlns='" PUBSUB "#owner'>"
                "<delete node='urn:t:n'/></pubsub></iq>");
    EXPECT('S', 2, "forbidden", NULL);
    /* Configure: the node becomes whitelist-only; bob cannot read it any more. */
    owner_iq(1, "set", "<configure node='urn:t:n'><x xmlns='jabber:x:data' type='submit'>"
                       "<field var='FORM_TYPE' type='hidden'><value>" PUBSUB
                       "#node_config</value></field><field var='pubsub#access_model'>"
                       "<value>whitelist</value></field></x></configure>");
    EXPECT('S', 1, "type='result'", NULL);
    get_items(2, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 2, "closed-node", NULL);
    owner_iq(1, "set", "<configure node='urn:t:n'><x xmlns='jabber:x:data' type='submit'>"
                       "<field var='pubsub#max_items'><value>zero</value></field></x></configure>");
    EXPECT('S', 1, "not-acceptable", NULL);
    owner_iq(1, "get", "<default/>");
    EXPECT('S', 1, "<default>", "<value>presence</value>");
    /* Purge, then delete. */
    owner_iq(1, "set", "<purge node='urn:t:n'/>");
    EXPECT('S', 1, "type='result'", NULL);
    get_items(1, "alice", "urn:t:n", NULL, NULL);
    NONE('S', 1, ">A<");
    owner_iq(1, "set", "<delete node='urn:t:n'/>");
    EXPECT('S', 1, "type='result'", NULL);
    get_items(1, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 1, "item-not-found", NULL);
}

static void test_errors(void **state)
{
    smh_start("<pep><item_bytes>1024</item_bytes><nodes_max>2</nodes_max></pep>", NULL);
    smh_online(1, "alice", "a");
    smh_clear();
    smh_send(1, "<iq type='set' id='e'><pubsub xmlns='" PUBSUB "'><publish>"
                "<item><x xmlns='urn:t'/></item></publish></pubsub></iq>");
    EXPECT('S', 1, "bad-request", "nodeid-required");
    smh_clear();
    smh_send(1, "<iq type='set' id='e'><pubsub xmlns='" PUBSUB "'><publish node='n'>"
                "<item><x xmlns='urn:t'/><y xmlns='urn:t'/></item></publish></pubsub></iq>");
    EXPECT('S', 1, "bad-request", "invalid-payload");
    smh_clear();
    smh_send(1, "<iq type='set' id='e'><pubsub xmlns='" PUBSUB "'><publish node='n'>"
                "<item/></publish></pubsub></iq>");
    EXPECT('S', 1, "bad-request", "payload-required");
    char big[1400];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    publish(1, "n", "i", big);
    EXPECT('S', 1, "not-acceptable", "payload-too-big");
    publish(1, "n1", "i", "1");
    publish(1, "n2", "i", "2");
    publish(1, "n3", "i", "3");
    EXPECT('S', 1, "policy-violation", NULL);
    smh_clear();
    smh_send(1, "<iq type='set' id='e'><pubsub xmlns='" PUBSUB "'><subscribe node='n1' "
                "jid='alice@example.org'/></pubsub></iq>");
    EXPECT('S', 1, "feature-not-implemented", "feature='subscribe'");
    smh_clear();
    smh_send(1, "<iq type='get' id='e' to='nobody@example.org'><pubsub xmlns='" PUBSUB "'>"
                "<items node='n1'/></pubsub></iq>");
    EXPECT('S', 1, "type='error'", NULL);
}

static void test_disco_and_persistence(void **state)
{
    smh_befriend();
    smh_clear();
    smh_send(2, "<iq type='get' id='d' to='alice@example.org'>"
                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 2, "category='pubsub' type='pep'", PUBSUB "#publish-options");
    publish(1, "urn:t:n", "kept", "stays");
    smh_stop();
    smh_start("", NULL);
    smh_online(1, "alice", "a");
    get_items(1, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 1, ">stays<", "id='kept'");
}

/* XEP-0115's ver of a disco#info <query/> (its node attribute aside). */
static void ver_of(const char *query, char *ver)
{
    sm_stanza *q = sm_parse(smh.core, query, strlen(query));
    assert_non_null(q);
    xml_arena *scratch = xml_arena_new(4096);
    caps_ver_limits lim = {1000, 1 << 20};
    caps_ver_result res;
    assert_int_equal(caps_ver(q->node, CAPS_SHA1, &lim, scratch, &res), CAPS_VER_OK);
    strcpy(ver, res.ver);
    xml_arena_free(scratch);
    sm_stanza_free(q);
}

/* The client of session sid announces caps with features (ending in NULL); the SM asks its
 * disco#info and the test answers it. */
static void has_caps(uint64_t sid, const char *const *features)
{
    char inner[2048] = "<identity category='client' type='pc'/>";
    for (size_t i = 0; features[i]; i++)
        snprintf(inner + strlen(inner), sizeof inner - strlen(inner), "<feature var='%s'/>",
                 features[i]);
    char query[2200], ver[CAPS_VER_MAX];
    snprintf(query, sizeof query, "<query xmlns='http://jabber.org/protocol/disco#info'>%s</query>",
             inner);
    ver_of(query, ver);
    char presence[256];
    snprintf(presence, sizeof presence,
             "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:t' "
             "ver='%s'/></presence>", ver);
    smh_clear();
    smh_send(sid, presence);
    int q = smh_find('S', sid, "disco#info", "<iq");
    assert_true(q >= 0);
    const char *idp = strstr(smh.recs[q].text, " id='");
    assert_non_null(idp);
    char id[64], answer[2600];
    sscanf(idp + 5, "%63[^']", id);
    snprintf(answer, sizeof answer,
             "<iq type='result' id='%s' to='example.org'><query "
             "xmlns='http://jabber.org/protocol/disco#info' node='urn:t#%s'>%s</query></iq>",
             id, ver, inner);
    smh_send(sid, answer);
}

static void test_notifications(void **state)
{
    smh_befriend();
    carol_online();
    publish(1, "urn:t:mood", "m1", "happy");
    /* bob cares: the last item comes once his caps are known. */
    static const char *const wants[] = {"urn:t:mood+notify", NULL};
    has_caps(2, wants);
    EXPECT('S', 2, "http://jabber.org/protocol/pubsub#event", ">happy<");
    /* A new item reaches him; not carol (no subscription), not the node he did not ask for. */
    publish(1, "urn:t:mood", "m2", "sad");
    EXPECT('S', 2, "#event", ">sad<");
    NONE('S', 3, ">sad<");
    publish(1, "urn:t:other", "o", "quiet");
    NONE('S', 2, ">quiet<");
    /* Retraction is notified. */
    smh_clear();
    smh_send(1, "<iq type='set' id='r'><pubsub xmlns='" PUBSUB "'><retract node='urn:t:mood' "
                "notify='true'><item id='m2'/></retract></pubsub></iq>");
    EXPECT('S', 2, "<retract id='m2'/>", NULL);
    /* A whitelist node: nothing to bob. */
    static const char *const white[] = {"pubsub#access_model", "whitelist", NULL};
    publish_opts(1, "urn:t:mood2", "w", "hidden", white);
    NONE('S', 2, ">hidden<");
}

/* carol's client cares for the node but she is not subscribed to alice: nothing; once alice
 * approves her subscription, carol's session gets alice's last item. */
static void test_last_item_on_subscription(void **state)
{
    smh_befriend();
    publish(1, "urn:t:mood", "m1", "happy");
    carol_online();
    static const char *const wants[] = {"urn:t:mood+notify", NULL};
    has_caps(3, wants);
    NONE('S', 3, ">happy<");
    smh_clear();
    smh_send(3, "<presence to='alice@example.org' type='subscribe'/>");
    smh_send(1, "<presence to='carol@example.org' type='subscribed'/>");
    EXPECT('S', 3, "#event", ">happy<");
}

static void private_iq(uint64_t sid, const char *type, const char *storage)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq type='%s' id='pv'><query xmlns='jabber:iq:private'>%s</query></iq>",
             type, storage);
    smh_clear();
    smh_send(sid, xml);
}

/* XEP-0411: private XML bookmarks and PEP's urn:xmpp:bookmarks:1 are the same bookmarks. */
static void test_bookmarks_compat(void **state)
{
    smh_online(1, "alice", "a");
    private_iq(1, "set", "<storage xmlns='storage:bookmarks'>"
                         "<conference jid='r1@muc.example.org' name='One' autojoin='true'>"
                         "<nick>al</nick></conference>"
                         "<conference jid='r2@muc.example.org'/></storage>");
    EXPECT('S', 1, "id='pv'", "type='result'");
    get_items(1, "alice", "urn:xmpp:bookmarks:1", NULL, NULL);
    EXPECT('S', 1, "<item id='r1@muc.example.org'>", "<conference xmlns='urn:xmpp:bookmarks:1' "
                                                     "name='One' autojoin='true'><nick>al</nick>");
    EXPECT('S', 1, "<item id='r2@muc.example.org'>", NULL);
    /* Published through PEP, it shows in private XML. */
    smh_send(1, "<iq type='set' id='p3'><pubsub xmlns='" PUBSUB "'><publish node='urn:xmpp:"
                "bookmarks:1'><item id='r3@muc.example.org'><conference xmlns='urn:xmpp:"
                "bookmarks:1'/></item></publish></pubsub></iq>");
    private_iq(1, "get", "<storage xmlns='storage:bookmarks'/>");
    EXPECT('S', 1, "jid='r1@muc.example.org' name='One' autojoin='true'", "<nick>al</nick>");
    EXPECT('S', 1, "jid='r3@muc.example.org'", NULL);
    /* A set without r2 and r3 retracts them. */
    private_iq(1, "set", "<storage xmlns='storage:bookmarks'>"
                         "<conference jid='r1@muc.example.org' name='One' autojoin='true'/></storage>");
    get_items(1, "alice", "urn:xmpp:bookmarks:1", NULL, NULL);
    EXPECT('S', 1, "r1@muc.example.org", NULL);
    NONE('S', 1, "r2@muc.example.org");
    NONE('S', 1, "r3@muc.example.org");
    /* The node is the owner's only, and the account says it converts. */
    owner_iq(1, "get", "<configure node='urn:xmpp:bookmarks:1'/>");
    EXPECT('S', 1, "<value>whitelist</value>", "<value>max</value>");
    smh_clear();
    smh_send(1, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "urn:xmpp:bookmarks:1#compat", NULL);
}

/* XEP-0398: alice's PEP avatar becomes her vCard PHOTO, and her presence carries its hash. The
 * image is the bytes "avatar" (its SHA-1 the item id, as XEP-0084 names it). */
static void test_avatar_to_vcard(void **state)
{
    static const char hash[] = "9c3bb49ffea1144231cbe02d904b8d9018744e9d";
    smh_befriend();
    /* A metadata item naming an image that is not there: nothing converted. */
    smh_send(1, "<iq type='set' id='m0'><pubsub xmlns='" PUBSUB "'><publish node='urn:xmpp:"
                "avatar:metadata'><item id='0000'><metadata xmlns='urn:xmpp:avatar:metadata'>"
                "<info id='0000' bytes='6' type='image/png'/></metadata></item></publish></pubsub>"
                "</iq>");
    smh_send(1, "<iq type='set' id='d'><pubsub xmlns='" PUBSUB "'><publish node='urn:xmpp:avatar:"
                "data'><item id='9c3bb49ffea1144231cbe02d904b8d9018744e9d'><data xmlns='urn:xmpp:"
                "avatar:data'>YXZhdGFy</data></item></publish></pubsub></iq>");
    smh_clear();
    smh_send(1, "<iq type='get' id='v0'><vCard xmlns='vcard-temp'/></iq>");
    NONE('S', 1, "BINVAL");
    smh_send(1, "<iq type='set' id='m'><pubsub xmlns='" PUBSUB "'><publish node='urn:xmpp:avatar:"
                "metadata'><item id='9c3bb49ffea1144231cbe02d904b8d9018744e9d'><metadata xmlns="
                "'urn:xmpp:avatar:metadata'><info id='9c3bb49ffea1144231cbe02d904b8d9018744e9d' "
                "bytes='6' type='image/png'/></metadata></item></publish></pubsub></iq>");
    smh_clear();
    smh_send(2, "<iq type='get' id='v' to='alice@example.org'><vCard xmlns='vcard-temp'/></iq>");
    EXPECT('S', 2, "<PHOTO><TYPE>image/png</TYPE><BINVAL>YXZhdGFy</BINVAL></PHOTO>", NULL);
    /* Her presence carries the hash; one saying "not ready" (empty photo) is left as it is. */
    smh_clear();
    smh_send(1, "<presence><show>away</show></presence>");
    EXPECT('S', 2, "vcard-temp:x:update", hash);
    smh_clear();
    smh_send(1, "<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>");
    EXPECT('S', 2, "<photo/>", NULL);
    NONE('S', 2, hash);
    smh_clear();
    smh_send(1, "<iq type='get' id='di'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    EXPECT('S', 1, "urn:xmpp:pep-vcard-conversion:0", NULL);
}

static bool owner_in_memory(const char *bare)
{
    jid j;
    assert_int_equal(jid_parse(bare, strlen(bare), &j), JID_OK);
    bool in = pep_owner_find(smh.core, &j) != NULL;
    jid_free(&j);
    return in;
}

/* Past <cache_owners>, an account's nodes leave memory once its last session ended, never while
 * it has one; a reader then gets them from storage again. */
static void test_owner_cache(void **state)
{
    smh_stop();
    smh_start("<pep><cache_owners>1</cache_owners></pep>", NULL);
    smh_befriend();
    publish(1, "urn:t:n", "a1", "from-alice");
    publish(2, "urn:t:n", "b1", "from-bob");
    sm_tick(smh.core, 1000);
    assert_true(owner_in_memory("alice@example.org"));
    assert_true(owner_in_memory("bob@example.org"));
    sm_end(smh.core, smh.front, 1, SMPROTO_END_GONE);
    smh_drain();
    sm_tick(smh.core, 2000);
    assert_false(owner_in_memory("alice@example.org"));
    assert_true(owner_in_memory("bob@example.org"));
    get_items(2, "alice", "urn:t:n", NULL, NULL);
    EXPECT('S', 2, ">from-alice<", "id='a1'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_and_items, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_access_models, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_publish_options, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_max_items_and_retract, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_owner_operations, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_errors, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_disco_and_persistence, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_notifications, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_last_item_on_subscription, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_bookmarks_compat, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_avatar_to_vcard, smh_setup, smh_teardown),
        cmocka_unit_test_setup_teardown(test_owner_cache, smh_setup, smh_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
