/* sm/pep_config.c — a PEP node's configuration (XEP-0060 §16.4 pubsub#node_config, the subset
 * PEP needs): defaults as XEP-0163 and the clients expect, the node_config data form both ways,
 * XEP-0223 publish-options as preconditions, and the record stored with the node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "sm/pep.h"

#define CONFIG_RECORD_VERSION 1

void pep_config_default(pep_config *c)
{
    *c = (pep_config){.access = PEP_ACCESS_PRESENCE, .persist_items = true, .max_items = 1,
                      .send_last = PEP_SEND_ON_SUB_AND_PRESENCE, .notify_retract = true};
}

void pep_config_put(buf *out, const pep_config *c)
{
    bytes_put_u8(out, CONFIG_RECORD_VERSION);
    bytes_put_u8(out, (uint8_t)c->access);
    bytes_put_u8(out, c->persist_items);
    bytes_put_u32(out, c->max_items);
    bytes_put_u8(out, (uint8_t)c->send_last);
    bytes_put_u8(out, c->notify_retract);
}

bool pep_config_get(const uint8_t *data, size_t len, pep_config *c)
{
    bytes_reader r = bytes_reader_of(data, len);
    bool ok = bytes_get_u8(&r) == CONFIG_RECORD_VERSION;
    uint8_t access = bytes_get_u8(&r);
    c->persist_items = bytes_get_bool(&r);
    c->max_items = bytes_get_u32(&r);
    uint8_t send_last = bytes_get_u8(&r);
    c->notify_retract = bytes_get_bool(&r);
    c->access = (pep_access)access;
    c->send_last = (pep_send_last)send_last;
    return ok && bytes_done(&r) && access <= PEP_ACCESS_WHITELIST &&
           send_last <= PEP_SEND_ON_SUB_AND_PRESENCE;
}

uint32_t pep_config_keep(const pep_config *c, uint32_t items_max)
{
    return c->max_items < items_max ? c->max_items : items_max;
}

/* ---- values ---- */

static const char *const access_names[] = {"presence", "open", "roster", "whitelist"};
static const char *const send_last_names[] = {"never", "on_sub", "on_sub_and_presence"};

static int name_index(const char *const *names, size_t n, const char *v)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], v) == 0)
            return (int)i;
    return -1;
}

static bool parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* "max" or 1..2^32-2. */
static bool parse_max_items(const char *v, uint32_t *out)
{
    if (strcmp(v, "max") == 0) {
        *out = PEP_MAX_ITEMS_MAX;
        return true;
    }
    char *end;
    if (*v < '0' || *v > '9')
        return false;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n == 0 || n >= PEP_MAX_ITEMS_MAX)
        return false;
    *out = (uint32_t)n;
    return true;
}

/* The configuration a form field sets, applied to c; 0 when the field is not one of ours, -1
 * when its value is not valid, 1 when set. */
static int set_field(pep_config *c, const char *var, const char *v)
{
    int i;
    if (strcmp(var, "pubsub#access_model") == 0) {
        if ((i = name_index(access_names, 4, v)) < 0)
            return -1;
        c->access = (pep_access)i;
    } else if (strcmp(var, "pubsub#persist_items") == 0) {
        return parse_bool(v, &c->persist_items) ? 1 : -1;
    } else if (strcmp(var, "pubsub#max_items") == 0) {
        return parse_max_items(v, &c->max_items) ? 1 : -1;
    } else if (strcmp(var, "pubsub#send_last_published_item") == 0) {
        if ((i = name_index(send_last_names, 3, v)) < 0)
            return -1;
        c->send_last = (pep_send_last)i;
    } else if (strcmp(var, "pubsub#notify_retract") == 0) {
        return parse_bool(v, &c->notify_retract) ? 1 : -1;
    } else if (strcmp(var, "pubsub#deliver_payloads") == 0 ||
               strcmp(var, "pubsub#deliver_notifications") == 0) {
        /* Always on here: a form may say so, not otherwise. */
        bool on;
        return parse_bool(v, &on) && on ? 1 : -1;
    } else {
        return 0;
    }
    return 1;
}

/* The form's fields but FORM_TYPE, each with its first value ("" when none), through fn; stops
 * at the first that fn refuses. */
static bool each_field(xml_arena *a, const xml_node *x,
                       bool (*fn)(void *ctx, const char *var, const char *v), void *ctx,
                       const char **failed)
{
    for (const xml_node *f = xml_child(x, NS_DATA, "field"); f; f = xml_next(f, NS_DATA, "field")) {
        const char *var = xml_attr_get(f, "var");
        if (!var || strcmp(var, "FORM_TYPE") == 0)
            continue;
        const xml_node *value = xml_child(f, NS_DATA, "value");
        if (!fn(ctx, var, value ? xml_text(a, value) : "")) {
            *failed = var;
            return false;
        }
    }
    return true;
}

static bool apply_one(void *ctx, const char *var, const char *v)
{
    return set_field(ctx, var, v) >= 0;
}

bool pep_config_apply(pep_config *c, xml_arena *a, const xml_node *x, const char **field)
{
    pep_config next = *c;
    if (!each_field(a, x, apply_one, &next, field))
        return false;
    *c = next;
    return true;
}

static bool holds(void *ctx, const char *var, const char *v)
{
    const pep_config *c = ctx;
    pep_config want = *c;
    if (set_field(&want, var, v) != 1)
        return false;
    return want.access == c->access && want.persist_items == c->persist_items &&
           want.max_items == c->max_items && want.send_last == c->send_last &&
           want.notify_retract == c->notify_retract;
}

bool pep_config_matches(const pep_config *c, xml_arena *a, const xml_node *x,
                        const char **field)
{
    return each_field(a, x, holds, (void *)c, field);
}

/* ---- the form ---- */

static xml_node *field(xml_arena *a, xml_node *x, const char *var, const char *type,
                       const char *value)
{
    xml_node *f = xml_element_new(a, x, NS_DATA, "field");
    xml_attr_set(a, f, NULL, "var", var);
    if (type)
        xml_attr_set(a, f, NULL, "type", type);
    xml_node *v = xml_element_new(a, f, NS_DATA, "value");
    xml_text_new(a, v, value, strlen(value));
    return f;
}

static void options(xml_arena *a, xml_node *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        xml_node *o = xml_element_new(a, f, NS_DATA, "option");
        xml_node *v = xml_element_new(a, o, NS_DATA, "value");
        xml_text_new(a, v, names[i], strlen(names[i]));
    }
}

void pep_config_form(xml_arena *a, xml_node *parent, const pep_config *c)
{
    xml_node *x = xml_element_new(a, parent, NS_DATA, "x");
    xml_attr_set(a, x, NULL, "type", "form");
    field(a, x, "FORM_TYPE", "hidden", PEP_FORM_CONFIG);
    options(a, field(a, x, "pubsub#access_model", "list-single", access_names[c->access]),
            access_names, 4);
    field(a, x, "pubsub#persist_items", "boolean", c->persist_items ? "1" : "0");
    char max[16];
    if (c->max_items == PEP_MAX_ITEMS_MAX)
        strcpy(max, "max");
    else
        snprintf(max, sizeof max, "%u", c->max_items);
    field(a, x, "pubsub#max_items", "text-single", max);
    options(a, field(a, x, "pubsub#send_last_published_item", "list-single",
                     send_last_names[c->send_last]),
            send_last_names, 3);
    field(a, x, "pubsub#notify_retract", "boolean", c->notify_retract ? "1" : "0");
    field(a, x, "pubsub#deliver_payloads", "boolean", "1");
    field(a, x, "pubsub#deliver_notifications", "boolean", "1");
}
