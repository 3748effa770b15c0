/* tests/bench/loadgen/lg_pep.c — the --pep client's caps, disco#info answer, publish and
 * notification parsing, and the contact ring (see lg_pep.h). */
#include "tests/bench/loadgen/lg_pep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/xml_write.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define LG_PEP_MAX_FEATURES 64

static const char *const client_features[LG_PEP_NFEATURES] = LG_PEP_FEATURES;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void lg_pep_ver(const char *identity, const char *const *features, size_t n, char *out)
{
    const char *sorted[LG_PEP_MAX_FEATURES];
    if (n > LG_PEP_MAX_FEATURES)
        n = LG_PEP_MAX_FEATURES;
    memcpy(sorted, features, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_str);   /* i;octet: strcmp's byte order */
    buf s = BUF_INIT;
    buf_appendf(&s, "%s<", identity);
    for (size_t i = 0; i < n; i++)
        buf_appendf(&s, "%s<", sorted[i]);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(buf_data(&s), buf_len(&s), md, &len, EVP_sha1(), NULL);
    buf_free(&s);
    EVP_EncodeBlock((unsigned char *)out, md, (int)len);   /* 20 bytes: 28 characters and a NUL */
}

const char *lg_pep_client_ver(void)
{
    static char ver[LG_PEP_VER_LEN + 1];
    if (!ver[0])
        lg_pep_ver(LG_PEP_IDENTITY, client_features, LG_PEP_NFEATURES, ver);
    return ver;
}

void lg_pep_presence(buf *out)
{
    buf_appendf(out, "<presence><c xmlns='" NS_CAPS "' hash='sha-1' node='" LG_PEP_CAPS_NODE
                     "' ver='%s'/></presence>", lg_pep_client_ver());
}

static void append_attr(buf *out, const char *name, const char *value)
{
    if (!value)
        return;
    buf_appendf(out, " %s='", name);
    xml_write_attr_value(out, value, strlen(value));
    buf_append(out, "'", 1);
}

bool lg_pep_disco_answer(const xml_node *iq, buf *out)
{
    const char *type = xml_attr_get(iq, "type");
    const xml_node *q = xml_child(iq, NS_DISCO_INFO, "query");
    if (!q || !type || strcmp(type, "get") != 0)
        return false;
    buf_append(out, "<iq type='result'", 17);
    append_attr(out, "id", xml_attr_get(iq, "id"));
    append_attr(out, "to", xml_attr_get(iq, "from"));
    buf_append(out, "><query xmlns='" NS_DISCO_INFO "'", sizeof("><query xmlns='" NS_DISCO_INFO "'") - 1);
    append_attr(out, "node", xml_attr_get(q, "node"));
    buf_appendf(out, "><identity category='client' type='pc' name='loadgen'/>");
    for (size_t i = 0; i < LG_PEP_NFEATURES; i++)
        buf_appendf(out, "<feature var='%s'/>", client_features[i]);
    buf_appendf(out, "</query></iq>");
    return true;
}

void lg_pep_publish(buf *out, const char *run, uint32_t round, uint32_t publisher, uint64_t seq,
                    uint64_t t_ns)
{
    buf_appendf(out,
                "<iq type='set' id='%s-%" PRIu32 "-%" PRIu64 "'><pubsub xmlns='" NS_PUBSUB
                "'><publish node='" LG_PEP_NODE "'><item id='current'><bench xmlns='" LG_PEP_NODE
                "'>%s %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu64 "</bench></item></publish>"
                "</pubsub></iq>",
                run, round, seq, run, round, publisher, seq, t_ns);
}

bool lg_pep_parse_id(const char *id, const char *run, uint32_t *round, uint64_t *seq)
{
    char tail;
    if (!id || strncmp(id, run, LG_PEP_RUN_LEN) != 0 || id[LG_PEP_RUN_LEN] != '-')
        return false;
    return sscanf(id + LG_PEP_RUN_LEN + 1, "%" SCNu32 "-%" SCNu64 "%c", round, seq, &tail) == 2;
}

lg_pep_kind lg_pep_parse_event(const xml_node *message, xml_arena *arena, const char *run,
                               lg_pep_item *item)
{
    const xml_node *ev = xml_child(message, NS_PUBSUB_EVENT, "event");
    const xml_node *items = ev ? xml_child(ev, NS_PUBSUB_EVENT, "items") : NULL;
    const char *node = items ? xml_attr_get(items, "node") : NULL;
    if (!node || strcmp(node, LG_PEP_NODE) != 0)
        return LG_PEP_NOT_EVENT;
    const xml_node *it = xml_child(items, NS_PUBSUB_EVENT, "item");
    const xml_node *payload = it ? xml_child(it, LG_PEP_NODE, "bench") : NULL;
    if (!payload)
        return LG_PEP_FOREIGN;
    char got_run[LG_PEP_RUN_LEN + 2], tail;
    if (sscanf(xml_text(arena, payload), "%9s %" SCNu32 " %" SCNu32 " %" SCNu64 " %" SCNu64 "%c",
               got_run, &item->round, &item->publisher, &item->seq, &item->t_ns, &tail) != 5 ||
        strcmp(got_run, run) != 0)
        return LG_PEP_FOREIGN;
    return LG_PEP_EVENT;
}

int lg_pep_contact_slot(uint32_t n, uint32_t k, uint32_t publisher, uint32_t receiver)
{
    if (publisher == receiver)
        return (int)k;
    uint32_t ahead = (uint32_t)(((uint64_t)receiver + n - publisher) % n);
    uint32_t behind = n - ahead;
    if (ahead <= k / 2)
        return (int)(ahead - 1);
    if (behind <= k / 2)
        return (int)(k / 2 + behind - 1);
    return -1;
}

uint32_t lg_pep_contact(uint32_t n, uint32_t k, uint32_t publisher, uint32_t slot)
{
    uint64_t d = slot < k / 2 ? slot + 1 : n - (slot - k / 2 + 1);
    return (uint32_t)(((uint64_t)publisher + d) % n);
}
