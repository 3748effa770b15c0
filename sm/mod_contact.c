/* sm/mod_contact.c — contact addresses for the service (XEP-0157): the operator's abuse, admin,
 * feedback, sales, security, status and support addresses, published as an XEP-0128 form in the
 * server's disco#info, where clients and other servers' operators look for them.
 *
 * sm.xml: <contact> at the root for every host, or inside a <host> for that host alone (a host's
 * own <contact> replaces the root one); each address is an element named by its kind, holding a
 * URI, repeated as needed:
 *   <contact><abuse>mailto:abuse@example.org</abuse><abuse>xmpp:abuse@example.org</abuse>
 *            <security>https://example.org/security.txt</security></contact> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mem.h"
#include "sm/module.h"
#include "sm/modules.h"

#define NS_DATA "jabber:x:data"
#define SERVERINFO "http://jabber.org/network/serverinfo"
#define URI_MAX 1023

static const char *const kinds[] = {"abuse",    "admin",  "feedback", "sales",
                                    "security", "status", "support"};
enum { KINDS = sizeof kinds / sizeof kinds[0] };

/* One <contact> element's addresses, by kind (strings owned by the configuration). */
typedef struct contact_set {
    const char **addresses[KINDS];
    size_t count[KINDS];
    bool present;       /* the element is there (even empty: a host may publish none) */
} contact_set;

/* The module's data: the root's set, then one per configured host (sm_config.hosts' order). */
typedef struct contact_data {
    contact_set root;
    contact_set *hosts;
    int nhosts;
} contact_data;

/* A URI as XEP-0157 wants (mailto:, xmpp:, https:...): a scheme, a colon, no spaces. */
static bool uri_ok(const char *v)
{
    const char *colon = strchr(v, ':');
    if (!colon || colon == v || !colon[1] || strlen(v) > URI_MAX)
        return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ')
            return false;
    return true;
}

static void read_set(config *cfg, const xml_node *parent, contact_set *set)
{
    const xml_node *el = config_first(cfg, parent, "contact");
    if (!el)
        return;
    set->present = true;
    for (size_t k = 0; k < KINDS; k++) {
        for (xml_node *n = config_first(cfg, el, kinds[k]); n; n = config_next(n))
            set->count[k]++;
        set->addresses[k] = mem_array(set->count[k] + 1, sizeof(char *));
        size_t i = 0;
        for (xml_node *n = config_first(cfg, el, kinds[k]); n; n = config_next(n)) {
            const char *v = config_str(cfg, n, NULL, "");
            if (!uri_ok(v))
                config_fail(cfg, n, "expected a URI (mailto:, xmpp:, https:...), got \"%s\"", v);
            set->addresses[k][i++] = v;
        }
    }
}

static void free_set(contact_set *set)
{
    for (size_t k = 0; k < KINDS; k++)
        free(set->addresses[k]);
}

static bool contact_init(sm *s, const sm_module *self, config *cfg)
{
    const sm_config *c = sm_cfg(s);
    contact_data *d = mem_zalloc(sizeof(*d));
    d->nhosts = c->nhosts;
    d->hosts = mem_array((size_t)c->nhosts + 1, sizeof(contact_set));
    if (cfg) {
        read_set(cfg, NULL, &d->root);
        for (int i = 0; i < c->nhosts; i++)
            read_set(cfg, c->hosts[i].el, &d->hosts[i]);
    }
    sm_module_set_data(s, self, d);
    return true;
}

static void contact_fini(sm *s, const sm_module *self)
{
    contact_data *d = sm_module_data(s, self);
    if (!d)
        return;
    free_set(&d->root);
    for (int i = 0; i < d->nhosts; i++)
        free_set(&d->hosts[i]);
    free(d->hosts);
    free(d);
}

static void field(xml_arena *a, xml_node *form, const char *var, const char *type,
                  const char *const *values, size_t n)
{
    xml_node *f = xml_element_new(a, form, NS_DATA, "field");
    xml_attr_set(a, f, NULL, "var", var);
    xml_attr_set(a, f, NULL, "type", type);
    for (size_t i = 0; i < n; i++)
        xml_text_new(a, xml_element_new(a, f, NS_DATA, "value"), values[i], strlen(values[i]));
}

/* disco-info (mod_disco): the form, when the host asked has addresses. */
static bool contact_disco_info(sm *s, sm_event *ev)
{
    const contact_data *d = sm_module_data(s, &mod_contact);
    const contact_set *set = &d->root;
    const sm_config *c = sm_cfg(s);
    for (int i = 0; i < c->nhosts; i++)
        if (d->hosts[i].present && strcasecmp(c->hosts[i].name, ev->host) == 0)
            set = &d->hosts[i];
    size_t total = 0;
    for (size_t k = 0; k < KINDS; k++)
        total += set->count[k];
    if (!total)
        return false;
    xml_node *form = xml_element_new(ev->arena, ev->node, NS_DATA, "x");
    xml_attr_set(ev->arena, form, NULL, "type", "result");
    static const char *const form_type[] = {SERVERINFO};
    field(ev->arena, form, "FORM_TYPE", "hidden", form_type, 1);
    for (size_t k = 0; k < KINDS; k++) {
        if (!set->count[k])
            continue;
        char var[32];
        snprintf(var, sizeof var, "%s-addresses", kinds[k]);
        field(ev->arena, form, var, "list-multi", set->addresses[k], set->count[k]);
    }
    return false;
}

static const char *const contact_options[] = {
    "contact/abuse",        "contact/admin",         "contact/feedback",      "contact/sales",
    "contact/security",     "contact/status",        "contact/support",       "host/contact/abuse",
    "host/contact/admin",   "host/contact/feedback", "host/contact/sales",    "host/contact/security",
    "host/contact/status",  "host/contact/support",  NULL,
};

static const sm_handler contact_handlers[] = {
    {"disco-info", .hook = contact_disco_info},
    {NULL},
};

const sm_module mod_contact = {
    .name = "contact",
    .options = contact_options,
    .init = contact_init,
    .fini = contact_fini,
    .handlers = contact_handlers,
};
