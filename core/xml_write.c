/* core/xml_write.c — the serializer: element trees, stream headers and stream errors as bytes.
 *
 * The rule and its bound are in xml_write.h. An ordinary stanza is written in one walk, by the
 * classic rule, counting the declarations as they are made. Only when a URI turns out to be
 * declared often enough to be worth hoisting (a candidate) does the writer start over with a
 * plan: count_points counts every URI's declarations, weigh how many input bytes the candidates'
 * elements own, and the URIs over the line are hoisted; then the tree is written with them. All
 * output goes through a writer that counts what it may still append and stops at the first piece
 * that does not fit.
 */
#include "core/xml_write.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/xml_ns.h"

/* A URI declared p times under the classic rule, each declaration E + 10 bytes (E: the escaped
 * URI), is hoisted when p >= 2 and p * (E + 10) > HOIST_SLACK + HOIST_WEIGHT * W, W being the
 * input bytes its declaring elements own. The slack keeps a few repeated declarations as they
 * are; the weight keeps them wherever the input carried as many bytes (typically the same
 * declarations: Jingle's rtcp-fb elements, pubsub items). */
#define HOIST_SLACK 256
#define HOIST_WEIGHT 4
#define PREFIX_STREAM UINT32_MAX

/* ---- output under a budget -------------------------------------------------------------------- */

/* Output goes straight into space reserved in the buffer, committed when the writer is done or
 * needs more: one buf_reserve per WRITE_CHUNK bytes rather than a call per piece. */
#define WRITE_CHUNK 256

typedef struct writer {
    buf *out;
    char *base, *at, *end; /* reserved space in out: [base, at) written, [at, end) free */
    size_t room;           /* bytes that may still be appended */
    bool full;             /* a piece did not fit: the output will be taken back */
} writer;

/* Where a writer points before it has reserved anything: zero bytes free, never written. */
static char nowhere[1];

static writer writer_start(buf *out, size_t max_bytes)
{
    return (writer){out, nowhere, nowhere, nowhere, max_bytes, false};
}

/* Commits what was written; the writer may go on. */
static void writer_finish(writer *w)
{
    if (w->at != w->base)
        buf_commit(w->out, (size_t)(w->at - w->base));
    w->base = w->at;
}

static void make_room(writer *w, size_t n)
{
    writer_finish(w);
    w->base = w->at = buf_reserve(w->out, n > WRITE_CHUNK ? n : WRITE_CHUNK);
    w->end = w->at + buf_avail(w->out);
}

static inline void emit(writer *w, const char *s, size_t n)
{
    if (n > w->room) {
        w->full = true;
        w->room = 0;
        return;
    }
    w->room -= n;
    if ((size_t)(w->end - w->at) < n)
        make_room(w, n);
    memcpy(w->at, s, n);
    w->at += n;
}

static void put(writer *w, const char *s)
{
    emit(w, s, strlen(s));
}

/* Bytes that cannot be copied as they are: escaped, or dropped when XML 1.0 has no way to carry
 * them (C0 controls other than tab, LF, CR). Tab and LF are safe in text but not in attribute
 * values; CR is escaped in both so that the receiver's line-end normalisation cannot eat it. */
static const unsigned char text_special[256] = {
    [0x00 ... 0x08] = 1, [0x0b ... 0x1f] = 1, ['&'] = 1, ['<'] = 1, ['>'] = 1,
};
static const unsigned char attr_special[256] = {
    [0x00 ... 0x1f] = 1, ['&'] = 1, ['<'] = 1, ['>'] = 1, ['\''] = 1, ['"'] = 1,
};

/* What a special byte becomes; an unrepresentable control character has none and is dropped. */
static const struct {
    uint8_t len;
    char text[7];
} references[256] = {
    ['&'] = {5, "&amp;"}, ['<'] = {4, "&lt;"},  ['>'] = {4, "&gt;"},   ['\''] = {6, "&apos;"},
    ['"'] = {6, "&quot;"}, ['\t'] = {4, "&#9;"}, ['\n'] = {5, "&#10;"}, ['\r'] = {5, "&#13;"},
};

static void write_escaped(writer *w, const char *s, size_t len, const unsigned char *special)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end && !w->full) {
        const unsigned char *run = p;
        while (p < end && !special[*p])
            p++;
        if (p > run)
            emit(w, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        emit(w, references[*p].text, references[*p].len);
        p++;
    }
}

/* The length of an attribute value once escaped. */
static size_t escaped_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += attr_special[*p] ? references[*p].len : 1;
    return n;
}

void xml_write_text(buf *out, const char *text, size_t len)
{
    writer w = writer_start(out, SIZE_MAX);
    write_escaped(&w, text, len, text_special);
    writer_finish(&w);
}

void xml_write_attr_value(buf *out, const char *value, size_t len)
{
    writer w = writer_start(out, SIZE_MAX);
    write_escaped(&w, value, len, attr_special);
    writer_finish(&w);
}

/* Appends " name='value'" with name written as prefix:local when prefix is not NULL. */
static void write_attr(writer *w, const char *prefix, const char *name, const char *value)
{
    emit(w, " ", 1);
    if (prefix) {
        put(w, prefix);
        emit(w, ":", 1);
    }
    put(w, name);
    emit(w, "='", 2);
    write_escaped(w, value, strlen(value), attr_special);
    emit(w, "'", 1);
}

/* ---- namespaces under the classic rule ------------------------------------------------------------ */

typedef enum { NS_PLAIN, NS_XML, NS_STREAMS } ns_kind;

/* Both special namespaces begin with 'h' ("http://"); most others do not get past that test. */
static ns_kind kind_of(const char *ns)
{
    if (ns[0] == 'h') {
        if (strcmp(ns, XML_NS_XML) == 0)
            return NS_XML;
        if (strcmp(ns, XML_NS_STREAMS) == 0)
            return NS_STREAMS;
    }
    return NS_PLAIN;
}

static const char *attr_ns(const xml_attr *a)
{
    return a->ns && a->ns[0] ? a->ns : NULL;
}

/* What is bound where an element is written. */
typedef struct scope {
    const char *def;   /* the default namespace; NULL for one no element can be in (the caller's
                        * default was the XML or the stream namespace) */
    bool stream_bound; /* the stream: prefix */
} scope;

static bool is_default(const char *ns, const char *def)
{
    return def && (ns == def || strcmp(ns, def) == 0);
}

/* ---- the plan: which URIs are hoisted --------------------------------------------------------- */

typedef struct uri_use {
    const xml_node *last_el; /* the last element whose attributes counted a point here */
    size_t escaped;          /* E: the URI's length once escaped, known from its second point */
    size_t weight;           /* candidates: input bytes that their points own, at least */
    uint32_t points;         /* declarations under the classic rule */
    uint32_t prefix;         /* hoisted: n for the prefix hn, or PREFIX_STREAM; otherwise 0 */
    bool candidate;          /* declared often enough to be weighed */
} uri_use;

typedef struct plan {
    xml_ns_set uris;   /* the URIs declared somewhere, in the order first met */
    uri_use *use;      /* by index in uris: inline_use, or the heap past XML_NS_INLINE */
    uint32_t use_cap;
    uint32_t hoisted;  /* URIs hoisted, the stream namespace included */
    uint32_t named;    /* URIs hoisted with a prefix hn (n = 1, 2...) */
    bool stream_hoisted;
    bool candidates;   /* some URI is a candidate */
    uri_use inline_use[XML_NS_INLINE];
} plan;

static void plan_init(plan *pl)
{
    xml_ns_set_init(&pl->uris);
    pl->use = pl->inline_use;
    pl->use_cap = XML_NS_INLINE;
    pl->hoisted = pl->named = 0;
    pl->stream_hoisted = pl->candidates = false;
}

static void plan_free(plan *pl)
{
    xml_ns_set_free(&pl->uris);
    if (pl->use != pl->inline_use)
        free(pl->use);
}

static uri_use *use_of(plan *pl, const char *uri)
{
    uint32_t i = xml_ns_set_find_str(&pl->uris, uri);
    if (i != XML_NS_NONE)
        return &pl->use[i];
    i = xml_ns_set_add(&pl->uris, uri, strlen(uri));
    if (i == pl->use_cap) {
        uri_use *grown = mem_array(pl->use_cap * 2, sizeof(*grown));
        memcpy(grown, pl->use, pl->use_cap * sizeof(*grown));
        if (pl->use != pl->inline_use)
            free(pl->use);
        pl->use = grown;
        pl->use_cap *= 2;
    }
    memset(&pl->use[i], 0, sizeof(pl->use[i]));
    return &pl->use[i];
}

/* The use of a URI already in the plan, or NULL. */
static uri_use *find_use(plan *pl, const char *uri)
{
    uint32_t i = xml_ns_set_find_str(&pl->uris, uri);
    return i == XML_NS_NONE ? NULL : &pl->use[i];
}

static size_t declaration_bytes(const uri_use *u)
{
    return u->points * (u->escaped + 10);
}

/* One more declaration of uri (u) under the classic rule. */
static void count_point(plan *pl, uri_use *u, const char *uri)
{
    if (++u->points < 2)
        return;
    if (u->points == 2)
        u->escaped = escaped_len(uri);
    if (!u->candidate && declaration_bytes(u) > HOIST_SLACK)
        u->candidate = pl->candidates = true;
}

/* How an element is named and what it declares, given what is in scope where it goes. */
typedef struct element_form {
    const char *prefix;    /* NULL, "xml", "stream", or room */
    bool declares_default; /* xmlns='ns' */
    bool declares_stream;  /* xmlns:stream */
    char room[16];         /* a hoisted URI's prefix, hn */
} element_form;

/* The prefix a hoisted URI is written with (into room), or NULL when it is not hoisted. */
static const char *hoisted_prefix(plan *pl, const char *ns, char room[16])
{
    if (!pl->hoisted || !ns[0])
        return NULL;
    uri_use *u = find_use(pl, ns);
    if (!u || !u->prefix)
        return NULL;
    if (u->prefix == PREFIX_STREAM)
        return "stream";
    snprintf(room, 16, "h%u", (unsigned)u->prefix);
    return room;
}

/* The form of el where sc is in scope, and sc becomes the scope of its children. An element in a
 * hoisted URI takes its prefix unless that URI is the default in scope (the root in the stream's
 * own namespace); either way it leaves the default namespace as it was. With nothing hoisted,
 * on the first try and while planning, this is the classic rule. */
static void form_of(plan *pl, const xml_node *el, scope *sc, element_form *f)
{
    f->prefix = NULL;
    f->declares_default = f->declares_stream = false;
    switch (sc->def && el->ns == sc->def ? NS_PLAIN : kind_of(el->ns)) {
    case NS_XML:
        f->prefix = "xml"; /* the XML namespace may not be the default namespace */
        break;
    case NS_STREAMS:
        f->prefix = "stream";
        f->declares_stream = !sc->stream_bound;
        sc->stream_bound = true;
        break;
    default:
        if (is_default(el->ns, sc->def)) {
            sc->def = el->ns;
        } else if (!(f->prefix = hoisted_prefix(pl, el->ns, f->room))) {
            f->declares_default = true;
            sc->def = el->ns;
        }
        break;
    }
}

/* Whether the form declares a URI that can be hoisted: not the empty namespace. */
static bool declares_uri(const xml_node *el, const element_form *f)
{
    return f->declares_stream || (f->declares_default && el->ns[0]);
}

static void count_points(plan *pl, const xml_node *el, scope sc)
{
    element_form f;
    form_of(pl, el, &sc, &f);
    if (declares_uri(el, &f))
        count_point(pl, use_of(pl, el->ns), el->ns);
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const char *ns = attr_ns(&el->attrs[i]);
        if (!ns || kind_of(ns) == NS_XML)
            continue;
        uri_use *u = use_of(pl, ns);
        if (u->last_el != el) {
            u->last_el = el;
            count_point(pl, u, ns);
        }
    }
    for (const xml_node *c = el->children; c; c = c->next)
        if (c->kind == XML_ELEMENT)
            count_points(pl, c, sc);
}

/* Charges every node to the innermost element that declares a candidate URI (owner), as the
 * fewest input bytes that could have produced it: an element's tag as <name/>, attributes as
 * name='value', text as its characters. Attributes in a candidate namespace are charged to that
 * URI. No byte is charged twice, so the weights of all URIs add up to at most the input. */
static void weigh(plan *pl, const xml_node *el, scope sc, uri_use *owner)
{
    element_form f;
    form_of(pl, el, &sc, &f);
    if (declares_uri(el, &f)) {
        uri_use *u = find_use(pl, el->ns);
        if (u->candidate)
            owner = u;
    }
    size_t own = strlen(el->name) + 3;
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const xml_attr *a = &el->attrs[i];
        size_t bytes = strlen(a->name) + strlen(a->value) + 4;
        uri_use *u = attr_ns(a) && kind_of(a->ns) != NS_XML ? find_use(pl, a->ns) : NULL;
        if (u && u->candidate)
            u->weight += bytes + 2; /* and its prefix, "p:" at least */
        else
            own += bytes;
    }
    if (owner)
        owner->weight += own;
    for (const xml_node *c = el->children; c; c = c->next) {
        if (c->kind == XML_ELEMENT)
            weigh(pl, c, sc, owner);
        else if (owner)
            owner->weight += c->text_len;
    }
}

/* Fills in the plan for a tree written in scope sc: counts, weighs the candidates, hoists. */
static void plan_tree(plan *pl, const xml_node *root, scope sc)
{
    count_points(pl, root, sc);
    if (!pl->candidates)
        return;
    weigh(pl, root, sc, NULL);
    for (uint32_t i = 0; i < xml_ns_set_count(&pl->uris); i++) {
        uri_use *u = &pl->use[i];
        if (!u->candidate || declaration_bytes(u) <= HOIST_SLACK + HOIST_WEIGHT * u->weight)
            continue;
        if (kind_of(xml_ns_set_key(&pl->uris, i)->uri) == NS_STREAMS) {
            u->prefix = PREFIX_STREAM;
            pl->stream_hoisted = true;
        } else {
            u->prefix = ++pl->named;
        }
        pl->hoisted++;
    }
}

/* ---- writing -------------------------------------------------------------------------------------- */

typedef struct tree_writer {
    writer w;
    plan *pl;
    /* The first try writes by the classic rule and counts its declarations as it makes them: for
     * almost every stanza that is the whole job. The first URI that becomes a candidate ends the
     * try (w.full is set, and pl->candidates tells it from a full buffer). */
    bool first_try;
    bool root_binds_stream; /* the stream namespace is hoisted and not bound where the root goes */
} tree_writer;

/* A declaration the classic rule makes while writing: counted on the first try. */
static void declared(tree_writer *tw, const char *uri)
{
    if (!tw->first_try)
        return;
    count_point(tw->pl, use_of(tw->pl, uri), uri);
    if (tw->pl->candidates)
        tw->w.full = true;
}

/* The declarations of the hoisted URIs, on the root. */
static void write_hoisted(tree_writer *tw, bool declare_stream)
{
    if (declare_stream)
        write_attr(&tw->w, "xmlns", "stream", XML_NS_STREAMS);
    for (uint32_t i = 0; i < xml_ns_set_count(&tw->pl->uris); i++) {
        uint32_t n = tw->pl->use[i].prefix;
        if (!n || n == PREFIX_STREAM)
            continue;
        char name[16];
        snprintf(name, sizeof(name), "h%u", (unsigned)n);
        write_attr(&tw->w, "xmlns", name, xml_ns_set_key(&tw->pl->uris, i)->uri);
    }
}

/* Attributes in a hoisted namespace take its prefix; others in a namespace get the prefix
 * "ns<i>", i being the index of the element's first attribute in that namespace: unique within
 * the element, and found without a table. */
static void write_attrs(tree_writer *tw, const xml_node *el)
{
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const xml_attr *a = &el->attrs[i];
        const char *ns = attr_ns(a);
        if (!ns) {
            write_attr(&tw->w, NULL, a->name, a->value);
            continue;
        }
        if (kind_of(ns) == NS_XML) {
            write_attr(&tw->w, "xml", a->name, a->value);
            continue;
        }
        char room[16];
        const char *prefix = hoisted_prefix(tw->pl, ns, room);
        if (prefix) {
            write_attr(&tw->w, prefix, a->name, a->value);
            continue;
        }
        uint32_t first = 0;
        while (first < i && !(attr_ns(&el->attrs[first]) &&
                              (el->attrs[first].ns == ns || strcmp(el->attrs[first].ns, ns) == 0)))
            first++;
        char own[16];
        snprintf(own, sizeof(own), "ns%u", (unsigned)first);
        if (first == i) {
            declared(tw, ns);
            write_attr(&tw->w, "xmlns", own, ns);
        }
        write_attr(&tw->w, own, a->name, a->value);
    }
}

static void write_tag_name(writer *w, const char *prefix, const char *name)
{
    if (prefix) {
        put(w, prefix);
        emit(w, ":", 1);
    }
    put(w, name);
}

/* Writes node in scope sc; the root also declares the hoisted URIs. */
static void write_node(tree_writer *tw, const xml_node *node, scope sc, bool root)
{
    writer *w = &tw->w;
    if (node->kind == XML_TEXT) {
        write_escaped(w, node->text, node->text_len, text_special);
        return;
    }
    element_form f;
    form_of(tw->pl, node, &sc, &f);
    if (declares_uri(node, &f))
        declared(tw, node->ns);
    emit(w, "<", 1);
    write_tag_name(w, f.prefix, node->name);
    if (f.declares_default)
        write_attr(w, NULL, "xmlns", node->ns);
    if (root && tw->pl->hoisted)
        write_hoisted(tw, f.declares_stream || tw->root_binds_stream);
    else if (f.declares_stream)
        write_attr(w, "xmlns", "stream", XML_NS_STREAMS);
    write_attrs(tw, node);
    if (!node->children) {
        emit(w, "/>", 2);
        return;
    }
    emit(w, ">", 1);
    for (const xml_node *c = node->children; c && !w->full; c = c->next)
        write_node(tw, c, sc, false);
    emit(w, "</", 2);
    write_tag_name(w, f.prefix, node->name);
    emit(w, ">", 1);
}

bool xml_write_node_max(buf *out, const xml_node *node, const char *default_ns, bool in_stream, size_t max_bytes)
{
    if (!default_ns)
        default_ns = "";
    scope sc = {kind_of(default_ns) == NS_PLAIN ? default_ns : NULL, in_stream};
    size_t before = buf_len(out);
    plan pl;
    plan_init(&pl);
    tree_writer tw = {writer_start(out, max_bytes), &pl, true, false};
    write_node(&tw, node, sc, true);
    writer_finish(&tw.w);
    if (tw.w.full) {
        /* The first try met a URI that may be worth hoisting, or ran out of room before it
         * could know whether one is further on: plan the whole tree, and write it again unless
         * the classic output (too large, then) is what the plan says. */
        buf_truncate(out, before);
        plan_free(&pl);
        plan_init(&pl);
        plan_tree(&pl, node, sc);
        if (pl.candidates) {
            tw = (tree_writer){writer_start(out, max_bytes), &pl, false, pl.stream_hoisted && !sc.stream_bound};
            sc.stream_bound |= pl.stream_hoisted;
            write_node(&tw, node, sc, true);
            writer_finish(&tw.w);
            if (tw.w.full)
                buf_truncate(out, before);
        }
    }
    plan_free(&pl);
    return !tw.w.full;
}

void xml_write_node(buf *out, const xml_node *node, const char *default_ns, bool in_stream)
{
    xml_write_node_max(out, node, default_ns, in_stream, SIZE_MAX);
}

void xml_write_stream_open(buf *out, const xml_stream_attrs *attrs)
{
    writer w = writer_start(out, SIZE_MAX);
    put(&w, "<?xml version='1.0'?><stream:stream");
    write_attr(&w, NULL, "xmlns", attrs->content_ns);
    write_attr(&w, "xmlns", "stream", XML_NS_STREAMS);
    const struct {
        const char *prefix, *name, *value;
    } optional[] = {
        {NULL, "from", attrs->from},   {NULL, "to", attrs->to},        {NULL, "id", attrs->id},
        {NULL, "version", attrs->version}, {"xml", "lang", attrs->lang},
    };
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        if (optional[i].value)
            write_attr(&w, optional[i].prefix, optional[i].name, optional[i].value);
    emit(&w, ">", 1);
    writer_finish(&w);
}

void xml_write_stream_close(buf *out)
{
    buf_append(out, "</stream:stream>", 16);
}

void xml_write_stream_error(buf *out, const char *condition, const char *text)
{
    writer w = writer_start(out, SIZE_MAX);
    put(&w, "<stream:error><");
    put(&w, condition);
    put(&w, " xmlns='" XML_NS_STREAM_ERRORS "'/>");
    if (text) {
        put(&w, "<text xmlns='" XML_NS_STREAM_ERRORS "' xml:lang='en'>");
        write_escaped(&w, text, strlen(text), text_special);
        put(&w, "</text>");
    }
    put(&w, "</stream:error>");
    writer_finish(&w);
}
