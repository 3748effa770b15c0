/* core/xml.c — the arena, the element tree and the builder that turns expat callbacks into a tree. */
#include "core/xml.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* A chunk of arena memory; the arena keeps a list of them, newest first. */
typedef struct arena_chunk {
    struct arena_chunk *older;
    size_t size, used;
    _Alignas(max_align_t) unsigned char data[];
} arena_chunk;

struct xml_arena {
    arena_chunk *chunk;
    size_t handed_out;
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
    return a;
}

void xml_arena_free(xml_arena *arena)
{
    if (!arena)
        return;
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
    return arena->handed_out;
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
    el->ns = xml_arena_strdup(arena, ns ? ns : "");
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
        a->ns = attr_ns(ns) ? xml_arena_strdup(arena, ns) : NULL;
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

xml_node *xml_node_copy(xml_arena *arena, xml_node *parent, const xml_node *node)
{
    if (node->kind == XML_TEXT) {
        xml_node *t = xml_text_new(arena, parent, node->text, node->text_len);
        t->line = node->line;
        return t;
    }
    xml_node *el = xml_element_new(arena, parent, node->ns, node->name);
    el->line = node->line;
    for (uint32_t i = 0; i < node->nattrs; i++)
        xml_attr_set(arena, el, node->attrs[i].ns, node->attrs[i].name, node->attrs[i].value);
    for (const xml_node *c = node->children; c; c = c->next)
        xml_node_copy(arena, el, c);
    return el;
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

void xml_split_name(xml_arena *arena, const char *expat_name, const char **ns, const char **local)
{
    const char *sep = strchr(expat_name, XML_NS_SEP);
    if (!sep) {
        *ns = "";
        *local = xml_arena_strdup(arena, expat_name);
        return;
    }
    *ns = xml_arena_strndup(arena, expat_name, (size_t)(sep - expat_name));
    *local = xml_arena_strdup(arena, sep + 1);
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
    xml_split_name(b->arena, name, &el->ns, &el->name);
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
