/* sm/stanza.c — the stanza value the SM routes (sm_stanza: a tree, its arena, its parsed
 * addresses), building and copying stanzas, serializing them for storage, message kinds, and
 * stanza errors (RFC 6120 §8.3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "core/xml_write.h"
#include "sm/core.h"

void sm_format_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

char *sm_xml_string(const xml_node *node, size_t max, size_t *len)
{
    buf b = BUF_INIT;
    if (!xml_write_node_max(&b, node, SM_NS_CLIENT, false, max)) {
        buf_free(&b);
        return NULL;
    }
    buf_append(&b, "", 1);
    size_t start, n;
    char *mem = buf_detach(&b, &start, &n);
    if (start)
        memmove(mem, mem + start, n);
    if (len)
        *len = n - 1;
    return mem;
}

static void stanza_parse_addr(sm_stanza *st)
{
    const char *from = xml_attr_get(st->node, "from");
    const char *to = xml_attr_get(st->node, "to");
    jid_free(&st->from);
    jid_free(&st->to);
    st->bad_to = false;
    if (from && jid_parse(from, strlen(from), &st->from) != JID_OK)
        memset(&st->from, 0, sizeof(st->from));
    if (to && jid_parse(to, strlen(to), &st->to) != JID_OK) {
        memset(&st->to, 0, sizeof(st->to));
        st->bad_to = true;
    }
}

sm_stanza *sm_stanza_new(xml_arena *arena, xml_node *node)
{
    sm_stanza *st = mem_zalloc(sizeof(*st));
    st->arena = arena;
    st->node = node;
    stanza_parse_addr(st);
    return st;
}

sm_stanza *sm_stanza_take(sm_stanza *st)
{
    sm_stanza *n = mem_zalloc(sizeof(*n));
    *n = *st;
    n->origin = NULL;
    memset(st, 0, sizeof(*st));
    return n;
}

void sm_stanza_free(sm_stanza *st)
{
    if (!st)
        return;
    jid_free(&st->from);
    jid_free(&st->to);
    if (st->arena)
        xml_arena_free(st->arena);
    free(st);
}

static sm_stanza *copy_into(const sm_stanza *st, xml_arena *a)
{
    sm_stanza *n = mem_zalloc(sizeof(*n));
    n->arena = a;
    n->node = xml_node_copy(a, NULL, st->node);
    jid_copy(&n->from, &st->from);
    jid_copy(&n->to, &st->to);
    n->bad_to = st->bad_to;
    return n;
}

sm_stanza *sm_stanza_copy(const sm_stanza *st)
{
    return copy_into(st, xml_arena_new(1024));
}

sm_stanza *sm_stanza_keep(const sm_stanza *st)
{
    /* What the source's arena handed out bounds the copy (it holds the tree and maybe more). */
    sm_stanza *n = copy_into(st, xml_arena_new(xml_arena_bytes(st->arena)));
    n->no_copies = st->no_copies;
    return n;
}

const char *sm_stanza_type(const sm_stanza *st)
{
    const char *t = st->node ? xml_attr_get(st->node, "type") : NULL;
    return t ? t : "";
}

static bool set_addr(sm_stanza *st, const char *name, const char *value, jid *j)
{
    jid_free(j);
    if (!value) {
        xml_attr_remove(st->node, NULL, name);
        return true;
    }
    if (jid_parse(value, strlen(value), j) != JID_OK) {
        memset(j, 0, sizeof(*j));
        return false;
    }
    xml_attr_set(st->arena, st->node, NULL, name, jid_full(j));
    return true;
}

bool sm_stanza_set_to(sm_stanza *st, const char *to)
{
    st->bad_to = false;
    return set_addr(st, "to", to, &st->to);
}

bool sm_stanza_set_from(sm_stanza *st, const char *from)
{
    return set_addr(st, "from", from, &st->from);
}

sm_stanza *sm_stanza_make(const char *name, const char *from, const char *to, const char *type)
{
    xml_arena *a = xml_arena_new(512);
    xml_node *n = xml_element_new(a, NULL, SM_NS_CLIENT, name);
    if (from)
        xml_attr_set(a, n, NULL, "from", from);
    if (to)
        xml_attr_set(a, n, NULL, "to", to);
    if (type)
        xml_attr_set(a, n, NULL, "type", type);
    return sm_stanza_new(a, n);
}

bool sm_stanza_error(sm_stanza *st, const char *type, const char *condition, const char *app_ns,
                     const char *app_name)
{
    const char *t = sm_stanza_type(st);
    if (streq(t, "error") || (xml_is(st->node, SM_NS_CLIENT, "iq") && streq(t, "result")) ||
        !st->from.domain_len)
        return false;
    if (xml_arena_bytes(st->arena) > SM_BOUNCE_ECHO_MAX)
        st->node->children = st->node->last_child = NULL;
    char *from = mem_strdup(jid_full(&st->from));
    char *to = st->to.domain_len && !st->bad_to ? mem_strdup(jid_full(&st->to)) : NULL;
    sm_stanza_set_to(st, from);
    sm_stanza_set_from(st, to);
    free(from);
    free(to);
    xml_attr_set(st->arena, st->node, NULL, "type", "error");
    xml_node *err = xml_element_new(st->arena, st->node, SM_NS_CLIENT, "error");
    xml_attr_set(st->arena, err, NULL, "type", type);
    xml_element_new(st->arena, err, SM_NS_STANZAS, condition);
    if (app_ns)
        xml_element_new(st->arena, err, app_ns, app_name);
    st->origin = NULL;
    return true;
}

bool sm_stanza_to_self(const sm_stanza *st)
{
    return st->origin && (!st->to.domain_len ||
                          (jid_is_bare(&st->to) && jid_equal_bare(&st->to, &st->origin->jid)));
}

sm_stanza *sm_iq_keep(sm_stanza *st)
{
    st->origin = NULL;
    return st;
}

sm_msg_kind sm_message_kind(const sm_stanza *st)
{
    const char *type = sm_stanza_type(st);
    if (streq(type, "chat"))
        return SM_MSG_CHAT;
    if (streq(type, "groupchat"))
        return SM_MSG_GROUPCHAT;
    if (streq(type, "headline"))
        return SM_MSG_HEADLINE;
    if (streq(type, "error"))
        return SM_MSG_ERROR;
    return SM_MSG_NORMAL;  /* normal, and unknown values (RFC 6121 §5.2.2: treat as normal) */
}

int sm_presence_priority(const sm_stanza *st)
{
    xml_node *prio = xml_child(st->node, SM_NS_CLIENT, "priority");
    if (!prio)
        return 0;
    long v = strtol(xml_text(st->arena, prio), NULL, 10);
    return v < -128 ? -128 : v > 127 ? 127 : (int)v;
}

bool sm_delayed_by(const xml_node *st, const char *host)
{
    static const char ns[] = "urn:xmpp:delay";
    for (const xml_node *d = xml_child(st, ns, "delay"); d; d = xml_next(d, ns, "delay")) {
        const char *from = xml_attr_get(d, "from");
        if (from && strcmp(from, host) == 0)
            return true;
    }
    return false;
}
