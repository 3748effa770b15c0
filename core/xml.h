/* core/xml.h — compact XML element trees: how stanzas and configuration files are held in memory.
 *
 * A tree lives in one arena: its nodes, names, attribute values and text are bump-allocated from
 * the arena and freed together with it, so a stanza costs a handful of allocations however large it
 * is. Names are kept as expat's namespace mode gives them: namespace URI and local name apart, never
 * a prefix (the serializer, core/xml_write.h, chooses prefixes). Strings are NUL-terminated UTF-8.
 *
 * Namespace URIs are interned per arena: everything here that stores one (elements, attributes,
 * the builder, copies) keeps a single string per distinct URI in the arena, so equal URIs of one
 * tree are equal pointers, and an arena holds a parsed stanza in at most 40 bytes per input byte
 * (a node for each 4-byte "<x/>" is the most; tests/unit/test_xml.c checks it) however often the
 * stanza repeats a long URI.
 *
 * An xml_builder turns expat's start/text/end callbacks into a tree; both the stream parser
 * (core/xmlstream.h) and the config loader (core/config.h) use it.
 *
 * Thread rules: an arena and its tree belong to one thread at a time; nothing here is shared.
 */
#ifndef JABSHARD_CORE_XML_H
#define JABSHARD_CORE_XML_H

#include <stddef.h>
#include <stdint.h>

/* expat is created with this namespace separator: "uri\x1flocal". */
#define XML_NS_SEP '\x1f'
#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"

typedef struct xml_arena xml_arena;

typedef struct xml_attr {
    const char *ns;    /* namespace URI, or NULL for an unprefixed attribute */
    const char *name;  /* local name */
    const char *value;
} xml_attr;

typedef enum { XML_ELEMENT, XML_TEXT } xml_kind;

typedef struct xml_node {
    struct xml_node *parent, *next, *children, *last_child;
    xml_kind kind;
    uint32_t line;      /* source line of the start tag (elements) or text start; 0 if built */
    /* Elements */
    const char *ns;     /* namespace URI, "" when none */
    const char *name;   /* local name */
    xml_attr *attrs;
    uint32_t nattrs, attrs_cap;
    /* Text */
    const char *text;
    size_t text_len;
} xml_node;

/* Arena. xml_arena_new never returns NULL (allocation failure aborts: see core/mem). */
xml_arena *xml_arena_new(size_t first_chunk);
void xml_arena_free(xml_arena *arena);
void *xml_arena_alloc(xml_arena *arena, size_t size);               /* 8-byte aligned, zeroed */
char *xml_arena_strndup(xml_arena *arena, const char *s, size_t n);
char *xml_arena_strdup(xml_arena *arena, const char *s);
size_t xml_arena_bytes(const xml_arena *arena);                     /* bytes handed out so far */
/* The arena's string for the namespace URI of len bytes at uri ("" when len is 0): a copy made
 * the first time that URI is stored in this arena, the same pointer every time after. */
const char *xml_arena_ns(xml_arena *arena, const char *uri, size_t len);

/* Building trees by hand (replies, pushes, errors). */
xml_node *xml_element_new(xml_arena *arena, xml_node *parent, const char *ns, const char *name);
xml_node *xml_text_new(xml_arena *arena, xml_node *parent, const char *text, size_t len);
/* Sets (or replaces) an attribute; value is copied. ns NULL for unprefixed. */
void xml_attr_set(xml_arena *arena, xml_node *el, const char *ns, const char *name, const char *value);
/* Removes an attribute if present. */
void xml_attr_remove(xml_node *el, const char *ns, const char *name);
/* Unlinks node from its parent. */
void xml_node_detach(xml_node *node);
/* Moves node and every element below it that is in namespace from into namespace to (a stanza
 * crossing from one stream's content namespace to another's: jabber:component:accept,
 * jabber:server, jabber:client). to must live as long as the tree (a literal). */
void xml_rename_ns(xml_node *node, const char *from, const char *to);
/* Deep copy of node (and its subtree) into another arena. */
xml_node *xml_node_copy(xml_arena *arena, xml_node *parent, const xml_node *node);

/* Reading trees. */
const char *xml_attr_get(const xml_node *el, const char *name);    /* unprefixed attribute or NULL */
const char *xml_attr_get_ns(const xml_node *el, const char *ns, const char *name);
/* First child element with that namespace (NULL = any) and local name (NULL = any). */
xml_node *xml_child(const xml_node *el, const char *ns, const char *name);
/* Next sibling element after child with the same matching rule. */
xml_node *xml_next(const xml_node *child, const char *ns, const char *name);
/* All direct text of el concatenated into the arena (never NULL; "" when none). */
const char *xml_text(xml_arena *arena, const xml_node *el);
int xml_is(const xml_node *el, const char *ns, const char *name);

/* Builder: expat callbacks in, tree out. The builder holds no expat state itself. */
typedef struct xml_builder {
    xml_arena *arena;
    xml_node *root;       /* first element started, once started */
    xml_node *current;    /* innermost open element, NULL when none */
    unsigned depth;       /* open elements */
    char *pending;        /* character data not yet turned into a text node */
    size_t pending_len, pending_cap;
    uint32_t pending_line;
} xml_builder;

void xml_builder_init(xml_builder *b, xml_arena *arena);
/* name is "uri\x1flocal" or "local"; atts is expat's NULL-terminated name/value array. */
xml_node *xml_builder_start(xml_builder *b, const char *name, const char **atts, uint32_t line);
void xml_builder_text(xml_builder *b, const char *s, size_t len, uint32_t line);
/* Closes the innermost element and returns it. */
xml_node *xml_builder_end(xml_builder *b);
/* Forgets the tree (the arena is the caller's) and frees the builder's pending-text buffer. */
void xml_builder_reset(xml_builder *b, xml_arena *arena);
void xml_builder_free(xml_builder *b);

/* Splits an expat name into namespace ("" if none) and local name, copying into the arena. */
void xml_split_name(xml_arena *arena, const char *expat_name, const char **ns, const char **local);

#endif
