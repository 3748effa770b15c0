/* sm/caps_ver.c — XEP-0115 §5.1's verification string of a disco#info result, and §5.4's checks
 * (see caps_ver.h): identities, features and XEP-0128 forms read within the limits into arrays in
 * a scratch arena, sorted (i;octet), checked for duplicates, then hashed piece by piece. */
#include "sm/caps_ver.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define NS_DATA "jabber:x:data"

typedef struct cv_identity {
    const char *category, *type, *lang, *name;
} cv_identity;

typedef struct cv_field {
    const char *var;
    const char **values;
    size_t nvalues;
} cv_field;

typedef struct cv_form {
    const char *form_type;
    cv_field *fields;
    size_t nfields;
} cv_form;

/* One reading: the budget spent so far and the first failure. */
typedef struct cv {
    xml_arena *a;
    const caps_ver_limits *lim;
    size_t items, bytes;
    caps_ver_status status;
} cv;

bool caps_hash_parse(const char *name, caps_hash *out)
{
    if (name && strcmp(name, "sha-1") == 0)
        *out = CAPS_SHA1;
    else if (name && strcmp(name, "sha-256") == 0)
        *out = CAPS_SHA256;
    else
        return false;
    return true;
}

size_t caps_ver_len(caps_hash h)
{
    return h == CAPS_SHA1 ? 28 : 44;
}

static bool cv_fail(cv *c, caps_ver_status why)
{
    if (c->status == CAPS_VER_OK)
        c->status = why;
    return false;
}

/* n more items are coming: false when they cannot fit, before anything is made for them. */
static bool cv_room(cv *c, size_t n)
{
    return n <= c->lim->max_items - c->items || cv_fail(c, CAPS_VER_TOO_BIG);
}

/* One item of len bytes in S (its '<' added). */
static bool cv_take(cv *c, size_t len)
{
    c->items++;
    c->bytes += len + 1;
    return (c->items <= c->lim->max_items && c->bytes <= c->lim->max_bytes) ||
           cv_fail(c, CAPS_VER_TOO_BIG);
}

static size_t count_children(const xml_node *el, const char *ns, const char *name)
{
    size_t n = 0;
    for (const xml_node *x = xml_child(el, ns, name); x; x = xml_next(x, ns, name))
        n++;
    return n;
}

static const char *attr_or_empty(const xml_node *el, const char *name)
{
    const char *v = xml_attr_get(el, name);
    return v ? v : "";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_identity(const void *pa, const void *pb)
{
    const cv_identity *a = pa, *b = pb;
    int d = strcmp(a->category, b->category);
    if (!d)
        d = strcmp(a->type, b->type);
    if (!d)
        d = strcmp(a->lang, b->lang);
    return d ? d : strcmp(a->name, b->name);
}

static int cmp_field(const void *a, const void *b)
{
    return strcmp(((const cv_field *)a)->var, ((const cv_field *)b)->var);
}

static int cmp_form(const void *a, const void *b)
{
    return strcmp(((const cv_form *)a)->form_type, ((const cv_form *)b)->form_type);
}

/* Sorts n elements of size bytes; true when two compare equal (§5.4: ill-formed). */
static bool sort_has_twins(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n < 2)
        return false;
    qsort(base, n, size, cmp);
    for (size_t i = 1; i < n; i++)
        if (cmp((char *)base + (i - 1) * size, (char *)base + i * size) == 0)
            return true;
    return false;
}

static bool read_identities(cv *c, const xml_node *q, cv_identity **out, size_t *n)
{
    *n = count_children(q, CAPS_NS_DISCO_INFO, "identity");
    if (!cv_room(c, *n))
        return false;
    cv_identity *ids = *out = xml_arena_alloc(c->a, *n * sizeof(*ids) + 1);
    size_t i = 0;
    for (const xml_node *x = xml_child(q, CAPS_NS_DISCO_INFO, "identity"); x;
         x = xml_next(x, CAPS_NS_DISCO_INFO, "identity"), i++) {
        const char *lang = xml_attr_get_ns(x, XML_NS_XML, "lang");
        ids[i] = (cv_identity){xml_attr_get(x, "category"), xml_attr_get(x, "type"),
                               lang ? lang : "", attr_or_empty(x, "name")};
        if (!ids[i].category || !ids[i].type)
            return cv_fail(c, CAPS_VER_ILL_FORMED);
        if (!cv_take(c, strlen(ids[i].category) + strlen(ids[i].type) + strlen(ids[i].lang) +
                            strlen(ids[i].name) + 3))
            return false;
    }
    return !sort_has_twins(ids, *n, sizeof(*ids), cmp_identity) ||
           cv_fail(c, CAPS_VER_ILL_FORMED);
}

static bool read_features(cv *c, const xml_node *q, const char ***out, size_t *n)
{
    *n = count_children(q, CAPS_NS_DISCO_INFO, "feature");
    if (!cv_room(c, *n))
        return false;
    const char **f = *out = xml_arena_alloc(c->a, *n * sizeof(*f) + 1);
    size_t i = 0;
    for (const xml_node *x = xml_child(q, CAPS_NS_DISCO_INFO, "feature"); x;
         x = xml_next(x, CAPS_NS_DISCO_INFO, "feature"), i++) {
        f[i] = xml_attr_get(x, "var");
        if (!f[i])
            return cv_fail(c, CAPS_VER_ILL_FORMED);
        if (!cv_take(c, strlen(f[i])))
            return false;
    }
    return !sort_has_twins(f, *n, sizeof(*f), cmp_str) || cv_fail(c, CAPS_VER_ILL_FORMED);
}

static bool is_form_type(const xml_node *field)
{
    const char *var = xml_attr_get(field, "var");
    return var && strcmp(var, "FORM_TYPE") == 0;
}

/* A form's FORM_TYPE: NULL (the form is left out) when it has none, no value, or is not hidden.
 * Two FORM_TYPE fields, or two different values, make the answer ill-formed (c->status). */
static const char *read_form_type(cv *c, const xml_node *form)
{
    const xml_node *field = NULL;
    for (const xml_node *f = xml_child(form, NS_DATA, "field"); f; f = xml_next(f, NS_DATA, "field"))
        if (is_form_type(f) && field) {
            cv_fail(c, CAPS_VER_ILL_FORMED);
            return NULL;
        } else if (is_form_type(f)) {
            field = f;
        }
    const char *type = NULL;
    for (const xml_node *v = field ? xml_child(field, NS_DATA, "value") : NULL; v;
         v = xml_next(v, NS_DATA, "value")) {
        const char *t = xml_text(c->a, v);
        if (type && strcmp(type, t) != 0) {
            cv_fail(c, CAPS_VER_ILL_FORMED);
            return NULL;
        }
        type = t;
    }
    return field && strcmp(attr_or_empty(field, "type"), "hidden") == 0 ? type : NULL;
}

static bool read_field(cv *c, const xml_node *f, cv_field *out)
{
    out->var = attr_or_empty(f, "var");
    out->nvalues = count_children(f, NS_DATA, "value");
    if (!cv_take(c, strlen(out->var)) || !cv_room(c, out->nvalues))
        return false;
    out->values = xml_arena_alloc(c->a, out->nvalues * sizeof(*out->values) + 1);
    size_t i = 0;
    for (const xml_node *v = xml_child(f, NS_DATA, "value"); v; v = xml_next(v, NS_DATA, "value")) {
        out->values[i] = xml_text(c->a, v);
        if (!cv_take(c, strlen(out->values[i++])))
            return false;
    }
    if (out->nvalues > 1)
        qsort(out->values, out->nvalues, sizeof(*out->values), cmp_str);
    return true;
}

/* One form into out; *kept false when it is left out. */
static bool read_form(cv *c, const xml_node *x, cv_form *out, bool *kept)
{
    out->form_type = read_form_type(c, x);
    *kept = out->form_type != NULL;
    if (c->status != CAPS_VER_OK)
        return false;
    if (!*kept)
        return true;
    size_t n = count_children(x, NS_DATA, "field") - 1;   /* but its one FORM_TYPE */
    if (!cv_take(c, strlen(out->form_type)) || !cv_room(c, n))
        return false;
    out->fields = xml_arena_alloc(c->a, n * sizeof(*out->fields) + 1);
    out->nfields = 0;
    for (const xml_node *f = xml_child(x, NS_DATA, "field"); f; f = xml_next(f, NS_DATA, "field"))
        if (!is_form_type(f) && !read_field(c, f, &out->fields[out->nfields++]))
            return false;
    /* XEP-0004 §3.2 makes a var unique in its form; two would leave the order unsaid. */
    return !sort_has_twins(out->fields, out->nfields, sizeof(*out->fields), cmp_field) ||
           cv_fail(c, CAPS_VER_ILL_FORMED);
}

static bool read_forms(cv *c, const xml_node *q, cv_form **out, size_t *n)
{
    size_t max = count_children(q, NS_DATA, "x");
    if (!cv_room(c, max))
        return false;
    cv_form *forms = *out = xml_arena_alloc(c->a, max * sizeof(*forms) + 1);
    *n = 0;
    for (const xml_node *x = xml_child(q, NS_DATA, "x"); x; x = xml_next(x, NS_DATA, "x")) {
        bool kept;
        if (!read_form(c, x, &forms[*n], &kept))
            return false;
        *n += kept;
    }
    return !sort_has_twins(forms, *n, sizeof(*forms), cmp_form) ||
           cv_fail(c, CAPS_VER_ILL_FORMED);
}

/* Appends one piece of S, and its '<' when last. */
static void put(EVP_MD_CTX *md, const char *s, bool last)
{
    EVP_DigestUpdate(md, s, strlen(s));
    EVP_DigestUpdate(md, last ? "<" : "/", 1);
}

static void hash_all(EVP_MD_CTX *md, const cv_identity *ids, size_t nids, const char **features,
                     size_t nfeatures, const cv_form *forms, size_t nforms)
{
    for (size_t i = 0; i < nids; i++) {
        put(md, ids[i].category, false);
        put(md, ids[i].type, false);
        put(md, ids[i].lang, false);
        put(md, ids[i].name, true);
    }
    for (size_t i = 0; i < nfeatures; i++)
        put(md, features[i], true);
    for (size_t i = 0; i < nforms; i++) {
        put(md, forms[i].form_type, true);
        for (size_t k = 0; k < forms[i].nfields; k++) {
            put(md, forms[i].fields[k].var, true);
            for (size_t v = 0; v < forms[i].fields[k].nvalues; v++)
                put(md, forms[i].fields[k].values[v], true);
        }
    }
}

caps_ver_status caps_ver(const xml_node *query, caps_hash h, const caps_ver_limits *lim,
                         xml_arena *scratch, caps_ver_result *out)
{
    cv c = {scratch, lim, 0, 0, CAPS_VER_OK};
    cv_identity *ids;
    cv_form *forms;
    size_t nids, nforms;
    out->ver[0] = 0;
    if (!read_identities(&c, query, &ids, &nids) ||
        !read_features(&c, query, &out->features, &out->nfeatures) ||
        !read_forms(&c, query, &forms, &nforms))
        return c.status;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_DigestInit_ex(md, h == CAPS_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
    hash_all(md, ids, nids, out->features, out->nfeatures, forms, nforms);
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    EVP_EncodeBlock((unsigned char *)out->ver, digest, (int)dlen);
    return CAPS_VER_OK;
}
