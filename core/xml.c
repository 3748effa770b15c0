/* core/xml.c — the arena, the element tree and the builder that turns expat callbacks into a tree.
 *
 * Namespace URIs are the one string a tree repeats: every element and namespaced attribute names
 * one, and a single prefix declared with a long URI can be used by thousands of elements. So
 * every URI stored in an arena goes through xml_arena_ns, which keeps one copy per distinct URI.
 * The common cases do not even reach the arena's set: an element in its parent's namespace
 * takes the parent's pointer.
 */
#include "core/xml.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/xml_ns.h"

/* A chunk of arena memory; the arena keeps a list of them, newest first. */
typedef struct arena_chunk {
    struct arena_chunk *older;
    size_t size, used;
    _Alignas(max_align_t) unsigned char data[];
} arena_chunk;

struct xml_arena {
    arena_chunk *chunk;
    size_t handed_out;
    xml_ns_set ns; /* the namespace URIs stored in the arena, each once */
};

static arena_chunk *chunk_new(size_t size, arena_chunk *older)
{
    arena_chunk *c = mem_alloc(sizeof(*c) + size);
    c->older = older;
    c->size = size;
    c->used = 0;
    return c;
}

xml_arena *xml_arena_new(size_t first_chunk)
{
    xml_arena *a = mem_alloc(sizeof(*a));
    a->chunk = chunk_new(first_chunk < 256 ? 256 : first_chunk, NULL);
    a->handed_out = 0;
    xml_ns_set_init(&a->ns);
    return a;
}

void xml_arena_free(xml_arena *arena)
{
    if (!arena)
        return;
    xml_ns_set_free(&arena->ns);
    arena_chunk *c = arena->chunk;
    while (c) {
        arena_chunk *older = c->older;
        free(c);
        c = older;
    }
    free(arena);
}

void *xml_arena_alloc(xml_arena *arena, size_t size)
{
    size_t need = (size + 7) & ~(size_t)7;
    arena_chunk *c = arena->chunk;
    if (c->size - c->used < need) {
        size_t grow = c->size * 2;
        while (grow < need)
            grow *= 2;
        c = arena->chunk = chunk_new(grow, c);
    }
    void *p = c->data + c->used;
    c->used += need;
    arena->handed_out += need;
    memset(p, 0, size);
    return p;
}

char *xml_arena_strndup(xml_arena *arena, const char *s, size_t n)
{
    char *d = xml_arena_alloc(arena, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *xml_arena_strdup(xml_arena *arena, const char *s)
{
    return xml_arena_strndup(arena, s, strlen(s));
}

size_t xml_arena_bytes(const xml_arena *arena)
{
    return arena->handed_out + xml_ns_set_heap_bytes(&arena->ns);
}

const char *xml_arena_ns(xml_arena *arena, const char *uri, size_t len)
{
    if (len == 0)
        return "";
    uint32_t found = xml_ns_set_find(&arena->ns, uri, len);
    if (found != XML_NS_NONE)
        return xml_ns_set_key(&arena->ns, found)->uri;
    char *copy = xml_arena_strndup(arena, uri, len);
    xml_ns_set_add(&arena->ns, copy, len);
    return copy;
}

/* The namespace of a new element under parent: the parent's own string when it is the same. */
static const char *element_ns(xml_arena *arena, const xml_node *parent, const char *ns)
{
    if (!ns || !ns[0])
        return "";
    if (parent && (parent->ns == ns || strcmp(parent->ns, ns) == 0))
        return parent->ns;
    return xml_arena_ns(arena, ns, strlen(ns));
}

static void append_child(xml_node *parent, xml_node *child)
{
    child->parent = parent;
    if (!parent)
        return;
    if (parent->last_child)
        parent->last_child->next = child;
    else
        parent->children = child;
    parent->last_child = child;
}

xml_node *xml_element_new(xml_arena *arena, xml_node *parent, const char *ns, const char *name)
{
    xml_node *el = xml_arena_alloc(arena, sizeof(*el));
    el->kind = XML_ELEMENT;
    el->ns = element_ns(arena, parent, ns);
    el->name = xml_arena_strdup(arena, name);
    append_child(parent, el);
    return el;
}

xml_node *xml_text_new(xml_arena *arena, xml_node *parent, const char *text, size_t len)
{
    xml_node *t = xml_arena_alloc(arena, sizeof(*t));
    t->kind = XML_TEXT;
    t->text = xml_arena_strndup(arena, text, len);
    t->text_len = len;
    append_child(parent, t);
    return t;
}

/* An attribute without a namespace may be named with NULL or "" (elements use ""): both mean
 * none, so that one name never becomes two attributes, which would serialize as malformed XML. */
static const char *attr_ns(const char *ns)
{
    return ns && ns[0] ? ns : NULL;
}

static int same_ns(const char *a, const char *b)
{
    a = attr_ns(a);
    b = attr_ns(b);
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static xml_attr *attr_find(const xml_node *el, const char *ns, const char *name)
{
    for (uint32_t i = 0; i < el->nattrs; i++)
        if (strcmp(el->attrs[i].name, name) == 0 && same_ns(el->attrs[i].ns, ns))
            return &el->attrs[i];
    return NULL;
}

void xml_attr_set(xml_arena *arena, xml_node *el, const char *ns, const char *name, const char *value)
{
    xml_attr *a = attr_find(el, ns, name);
    if (!a) {
        if (el->nattrs == el->attrs_cap) {
            uint32_t cap = el->attrs_cap ? el->attrs_cap * 2 : 4;
            xml_attr *grown = xml_arena_alloc(arena, cap * sizeof(*grown));
            if (el->nattrs)
                memcpy(grown, el->attrs, el->nattrs * sizeof(*grown));
            el->attrs = grown;
            el->attrs_cap = cap;
        }
        a = &el->attrs[el->nattrs++];
        a->ns = attr_ns(ns) ? xml_arena_ns(arena, ns, strlen(ns)) : NULL;
        a->name = xml_arena_strdup(arena, name);
    }
    a->value = xml_arena_strdup(arena, value);
}

void xml_attr_remove(xml_node *el, const char *ns, const char *name)
{
    xml_attr *a = attr_find(el, ns, name);
    if (!a)
        return;
    size_t index = (size_t)(a - el->attrs);
    memmove(a, a + 1, (el->nattrs - index - 1) * sizeof(*a));
    el->nattrs--;
}

void xml_node_detach(xml_node *node)
{
    xml_node *parent = node->parent;
    if (!parent)
        return;
    xml_node *prev = NULL;
    for (xml_node *c = parent->children; c; prev = c, c = c->next) {
        if (c != node)
            continue;
        if (prev)
            prev->next = c->next;
        else
            parent->children = c->next;
        if (parent->last_child == c)
            parent->last_child = prev;
        break;
    }
    node->parent = NULL;
    node->next = NULL;
}

/* A child in its parent's namespace (the same string, in a tree from one arena) takes the new
 * parent's string without comparing; every other URI is interned by xml_element_new. */
static xml_node *copy_node(xml_arena *arena, xml_node *parent, const xml_node *node, const xml_node *from)
{
    if (node->kind == XML_TEXT) {
        xml_node *t = xml_text_new(arena, parent, node->text, node->text_len);
        t->line = node->line;
        return t;
    }
    const char *ns = from && node->ns == from->ns ? parent->ns : node->ns;
    xml_node *el = xml_element_new(arena, parent, ns, node->name);
    el->line = node->line;
    for (uint32_t i = 0; i < node->nattrs; i++)
        xml_attr_set(arena, el, node->attrs[i].ns, node->attrs[i].name, node->attrs[i].value);
    for (const xml_node *c = node->children; c; c = c->next)
        copy_node(arena, el, c, node);
    return el;
}

xml_node *xml_node_copy(xml_arena *arena, xml_node *parent, const xml_node *node)
{
    return copy_node(arena, parent, node, NULL);
}

void xml_rename_ns(xml_node *node, const char *from, const char *to)
{
    if (node->kind != XML_ELEMENT)
        return;
    if (strcmp(node->ns, from) == 0)
        node->ns = to;
    for (xml_node *c = node->children; c; c = c->next)
        xml_rename_ns(c, from, to);
}

const char *xml_attr_get(const xml_node *el, const char *name)
{
    const xml_attr *a = attr_find(el, NULL, name);
    return a ? a->value : NULL;
}

const char *xml_attr_get_ns(const xml_node *el, const char *ns, const char *name)
{
    const xml_attr *a = attr_find(el, ns, name);
    return a ? a->value : NULL;
}

static int element_matches(const xml_node *n, const char *ns, const char *name)
{
    return n->kind == XML_ELEMENT && (!ns || strcmp(n->ns, ns) == 0) &&
           (!name || strcmp(n->name, name) == 0);
}

xml_node *xml_child(const xml_node *el, const char *ns, const char *name)
{
    for (xml_node *c = el->children; c; c = c->next)
        if (element_matches(c, ns, name))
            return c;
    return NULL;
}

xml_node *xml_next(const xml_node *child, const char *ns, const char *name)
{
    for (xml_node *c = child->next; c; c = c->next)
        if (element_matches(c, ns, name))
            return c;
    return NULL;
}

const char *xml_text(xml_arena *arena, const xml_node *el)
{
    size_t total = 0, texts = 0;
    const xml_node *only = NULL;
    for (const xml_node *c = el->children; c; c = c->next)
        if (c->kind == XML_TEXT) {
            total += c->text_len;
            texts++;
            only = c;
        }
    if (texts == 0)
        return "";
    if (texts == 1)
        return only->text;
    char *out = xml_arena_alloc(arena, total + 1), *p = out;
    for (const xml_node *c = el->children; c; c = c->next)
        if (c->kind == XML_TEXT) {
            memcpy(p, c->text, c->text_len);
            p += c->text_len;
        }
    return out;
}

int xml_is(const xml_node *el, const char *ns, const char *name)
{
    return el && element_matches(el, ns, name);
}

/* Splits like xml_split_name; the namespace is parent_ns itself when it is the same URI, which is
 * found by comparing the two strings once instead of searching the arena's set. */
static void split_name(xml_arena *arena, const char *expat_name, const char *parent_ns, const char **ns,
                       const char **local)
{
    const char *sep = strchr(expat_name, XML_NS_SEP);
    if (!sep) {
        *ns = "";
        *local = xml_arena_strdup(arena, expat_name);
        return;
    }
    size_t len = (size_t)(sep - expat_name);
    if (parent_ns && strncmp(parent_ns, expat_name, len) == 0 && parent_ns[len] == '\0')
        *ns = parent_ns;
    else
        *ns = xml_arena_ns(arena, expat_name, len);
    *local = xml_arena_strdup(arena, sep + 1);
}

void xml_split_name(xml_arena *arena, const char *expat_name, const char **ns, const char **local)
{
    split_name(arena, expat_name, NULL, ns, local);
}

void xml_builder_init(xml_builder *b, xml_arena *arena)
{
    memset(b, 0, sizeof(*b));
    b->arena = arena;
}

static void flush_text(xml_builder *b)
{
    if (!b->pending_len)
        return;
    if (b->current) {
        xml_node *t = xml_text_new(b->arena, b->current, b->pending, b->pending_len);
        t->line = b->pending_line;
    }
    b->pending_len = 0;
}

xml_node *xml_builder_start(xml_builder *b, const char *name, const char **atts, uint32_t line)
{
    flush_text(b);
    xml_node *el = xml_arena_alloc(b->arena, sizeof(*el));
    el->kind = XML_ELEMENT;
    el->line = line;
    split_name(b->arena, name, b->current ? b->current->ns : NULL, &el->ns, &el->name);
    uint32_t count = 0;
    while (atts[count * 2])
        count++;
    if (count) {
        el->attrs = xml_arena_alloc(b->arena, count * sizeof(xml_attr));
        el->attrs_cap = count;
        for (uint32_t i = 0; i < count; i++) {
            xml_attr *a = &el->attrs[el->nattrs++];
            const char *ns;
            xml_split_name(b->arena, atts[i * 2], &ns, &a->name);
            a->ns = ns[0] ? ns : NULL;
            a->value = xml_arena_strdup(b->arena, atts[i * 2 + 1]);
        }
    }
    append_child(b->current, el);
    if (!b->root)
        b->root = el;
    b->current = el;
    b->depth++;
    return el;
}

void xml_builder_text(xml_builder *b, const char *s, size_t len, uint32_t line)
{
    if (!b->current || !len)
        return;
    if (!b->pending_len)
        b->pending_line = line;
    if (b->pending_len + len > b->pending_cap) {
        size_t cap = b->pending_cap ? b->pending_cap : 256;
        while (cap < b->pending_len + len)
            cap *= 2;
        b->pending = mem_realloc(b->pending, cap);
        b->pending_cap = cap;
    }
    memcpy(b->pending + b->pending_len, s, len);
    b->pending_len += len;
}

xml_node *xml_builder_end(xml_builder *b)
{
    flush_text(b);
    xml_node *closed = b->current;
    if (closed) {
        b->current = closed->parent;
        b->depth--;
    }
    return closed;
}

void xml_builder_reset(xml_builder *b, xml_arena *arena)
{
    b->arena = arena;
    b->root = b->current = NULL;
    b->depth = 0;
    b->pending_len = 0;
}

void xml_builder_free(xml_builder *b)
{
    free(b->pending);
    b->pending = NULL;
    b->pending_cap = b->pending_len = 0;
}
