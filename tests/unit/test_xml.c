/* tests/unit/test_xml.c — core/xml.c: the arena, building and reading trees, copying, and the
 * builder that turns expat-style callbacks into a tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/xml.h"

/* Arena bytes per input byte, at most: a node (88 bytes) and its name for each 4-byte "<x/>",
 * and as much again for a one-byte text node between two of them ("<x/>a<x/>a..."). */
#define ARENA_PER_INPUT_BYTE 40

static void test_arena(void **state)
{
    xml_arena *a = xml_arena_new(0); /* below the minimum chunk: still works */
    assert_int_equal(xml_arena_bytes(a), 0);
    unsigned char *p = xml_arena_alloc(a, 1);
    assert_int_equal((uintptr_t)p % 8, 0);
    assert_int_equal(p[0], 0);
    assert_int_equal(xml_arena_bytes(a), 8);
    /* Many small and a few large allocations: all aligned, zeroed and distinct. */
    unsigned char *prev = p;
    for (size_t i = 1; i < 2000; i++) {
        size_t size = i % 97 == 0 ? 5000 + i : i % 13 + 1;
        unsigned char *q = xml_arena_alloc(a, size);
        assert_int_equal((uintptr_t)q % 8, 0);
        for (size_t j = 0; j < size; j++)
            assert_int_equal(q[j], 0);
        memset(q, 0xab, size);
        assert_true(q != prev);
        prev = q;
    }
    assert_true(xml_arena_bytes(a) > 2000);
    char *s = xml_arena_strndup(a, "hello world", 5);
    assert_string_equal(s, "hello");
    assert_string_equal(xml_arena_strdup(a, ""), "");
    assert_string_equal(xml_arena_strdup(a, "x\xe2\x82\xac"), "x\xe2\x82\xac");
    xml_arena_free(a);
    xml_arena_free(NULL);
}

static void test_build_and_read(void **state)
{
    xml_arena *a = xml_arena_new(64);
    xml_node *iq = xml_element_new(a, NULL, "jabber:client", "iq");
    assert_null(iq->parent);
    assert_int_equal(iq->kind, XML_ELEMENT);
    assert_int_equal(iq->line, 0);
    xml_node *t1 = xml_text_new(a, iq, "ab", 2);
    xml_node *q = xml_element_new(a, iq, "jabber:iq:roster", "query");
    xml_node *t2 = xml_text_new(a, iq, "cd\0ef", 5);
    xml_node *none = xml_element_new(a, iq, NULL, "none");
    xml_node *q2 = xml_element_new(a, iq, "jabber:iq:roster", "query");
    assert_ptr_equal(iq->children, t1);
    assert_ptr_equal(t1->next, q);
    assert_ptr_equal(iq->last_child, q2);
    assert_ptr_equal(q->parent, iq);
    assert_string_equal(none->ns, "");
    assert_int_equal(t2->text_len, 5);
    assert_memory_equal(t2->text, "cd\0ef", 6);

    assert_ptr_equal(xml_child(iq, NULL, NULL), q);
    assert_ptr_equal(xml_child(iq, "jabber:iq:roster", NULL), q);
    assert_ptr_equal(xml_child(iq, NULL, "none"), none);
    assert_ptr_equal(xml_child(iq, "", "none"), none);
    assert_null(xml_child(iq, "jabber:client", "query"));
    assert_ptr_equal(xml_next(q, "jabber:iq:roster", "query"), q2);
    assert_ptr_equal(xml_next(q, NULL, NULL), none);
    assert_null(xml_next(q2, NULL, NULL));
    assert_true(xml_is(q, "jabber:iq:roster", "query"));
    assert_true(xml_is(q, NULL, "query"));
    assert_false(xml_is(q, "jabber:client", "query"));
    assert_false(xml_is(t1, NULL, NULL));
    assert_false(xml_is(NULL, NULL, NULL));

    /* Direct text only, concatenated in order. */
    assert_string_equal(xml_text(a, q), "");
    xml_text_new(a, q, "only", 4);
    assert_string_equal(xml_text(a, q), "only");
    const char *all = xml_text(a, iq);
    assert_memory_equal(all, "abcd\0ef", 8);
    xml_arena_free(a);
}

static void test_attrs(void **state)
{
    xml_arena *a = xml_arena_new(0);
    xml_node *m = xml_element_new(a, NULL, "jabber:client", "message");
    char value[] = "juliet@example.com";
    xml_attr_set(a, m, NULL, "to", value);
    value[0] = 'J'; /* copied */
    assert_string_equal(xml_attr_get(m, "to"), "juliet@example.com");
    xml_attr_set(a, m, XML_NS_XML, "lang", "en");
    xml_attr_set(a, m, "urn:x", "to", "namespaced");
    assert_string_equal(xml_attr_get(m, "to"), "juliet@example.com");
    assert_string_equal(xml_attr_get_ns(m, "urn:x", "to"), "namespaced");
    assert_string_equal(xml_attr_get_ns(m, XML_NS_XML, "lang"), "en");
    assert_null(xml_attr_get(m, "lang"));
    assert_null(xml_attr_get(m, "from"));
    /* Replacing keeps the position and count. */
    xml_attr_set(a, m, NULL, "to", "romeo@example.net");
    assert_int_equal(m->nattrs, 3);
    assert_string_equal(m->attrs[0].value, "romeo@example.net");
    /* "" and NULL both mean "no namespace": one attribute, never two with the same name. */
    xml_attr_set(a, m, "", "to", "empty-ns");
    assert_int_equal(m->nattrs, 3);
    assert_null(m->attrs[0].ns);
    assert_string_equal(xml_attr_get(m, "to"), "empty-ns");
    assert_string_equal(xml_attr_get_ns(m, "", "to"), "empty-ns");
    xml_attr_set(a, m, "", "type", "chat");
    assert_null(m->attrs[3].ns);
    assert_string_equal(xml_attr_get(m, "type"), "chat");
    /* Growing past the first capacity keeps everything. */
    for (int i = 0; i < 20; i++) {
        char name[8], v[8];
        snprintf(name, sizeof(name), "a%d", i);
        snprintf(v, sizeof(v), "%d", i);
        xml_attr_set(a, m, NULL, name, v);
    }
    assert_int_equal(m->nattrs, 24);
    assert_true(m->attrs_cap >= 24);
    assert_string_equal(xml_attr_get(m, "a19"), "19");
    assert_string_equal(xml_attr_get_ns(m, "urn:x", "to"), "namespaced");
    /* Removing keeps the order of the others. */
    xml_attr_remove(m, XML_NS_XML, "lang");
    xml_attr_remove(m, NULL, "absent");
    assert_int_equal(m->nattrs, 23);
    assert_string_equal(m->attrs[0].name, "to");
    assert_string_equal(m->attrs[1].name, "to");
    assert_string_equal(m->attrs[1].ns, "urn:x");
    assert_string_equal(m->attrs[2].name, "type");
    assert_null(xml_attr_get_ns(m, XML_NS_XML, "lang"));
    xml_attr_remove(m, NULL, "a19");
    assert_int_equal(m->nattrs, 22);
    assert_string_equal(m->attrs[21].name, "a18");
    xml_arena_free(a);
}

static void test_detach(void **state)
{
    xml_arena *a = xml_arena_new(0);
    xml_node *p = xml_element_new(a, NULL, "", "p");
    xml_node *c1 = xml_element_new(a, p, "", "c1");
    xml_node *c2 = xml_element_new(a, p, "", "c2");
    xml_node *c3 = xml_element_new(a, p, "", "c3");
    xml_node_detach(c2); /* middle */
    assert_ptr_equal(p->children, c1);
    assert_ptr_equal(c1->next, c3);
    assert_ptr_equal(p->last_child, c3);
    assert_null(c2->parent);
    assert_null(c2->next);
    xml_node_detach(c3); /* last */
    assert_ptr_equal(p->last_child, c1);
    assert_null(c1->next);
    xml_node *c4 = xml_element_new(a, p, "", "c4"); /* appending after a detach */
    assert_ptr_equal(c1->next, c4);
    xml_node_detach(c1); /* first */
    assert_ptr_equal(p->children, c4);
    xml_node_detach(c4); /* only */
    assert_null(p->children);
    assert_null(p->last_child);
    xml_node_detach(c4); /* already detached */
    xml_node_detach(p);  /* no parent */
    xml_arena_free(a);
}

static void test_copy(void **state)
{
    xml_arena *a = xml_arena_new(0), *b = xml_arena_new(0);
    xml_node *m = xml_element_new(a, NULL, "jabber:client", "message");
    m->line = 7;
    xml_attr_set(a, m, NULL, "to", "x");
    xml_attr_set(a, m, "urn:x", "y", "z");
    xml_node *body = xml_element_new(a, m, "jabber:client", "body");
    xml_node *t = xml_text_new(a, body, "hi\0there", 8);
    t->line = 9;
    xml_element_new(a, m, "urn:e", "empty");

    xml_node *holder = xml_element_new(b, NULL, "", "holder");
    xml_node *c = xml_node_copy(b, holder, m);
    xml_arena_free(a); /* the copy owns nothing of the original */
    assert_ptr_equal(c->parent, holder);
    assert_ptr_equal(holder->children, c);
    assert_int_equal(c->line, 7);
    assert_string_equal(c->ns, "jabber:client");
    assert_string_equal(c->name, "message");
    assert_int_equal(c->nattrs, 2);
    assert_string_equal(xml_attr_get(c, "to"), "x");
    assert_string_equal(xml_attr_get_ns(c, "urn:x", "y"), "z");
    xml_node *cb = xml_child(c, "jabber:client", "body");
    assert_non_null(cb);
    assert_int_equal(cb->children->kind, XML_TEXT);
    assert_int_equal(cb->children->text_len, 8);
    assert_memory_equal(cb->children->text, "hi\0there", 8);
    assert_int_equal(cb->children->line, 9);
    assert_non_null(xml_child(c, "urn:e", "empty"));
    assert_null(xml_child(c, "urn:e", "empty")->children);
    assert_null(xml_node_copy(b, NULL, c)->parent);
    xml_arena_free(b);
}

/* Copies intern namespace URIs in the destination arena: a tree that repeats a long URI is
 * copied with one string for it, wherever in the tree and however often it appears. */
static void test_copy_interns(void **state)
{
    char uri[1001];
    memset(uri, 'u', 1000);
    uri[1000] = '\0';
    xml_arena *a = xml_arena_new(0), *b = xml_arena_new(0);
    xml_node *iq = xml_element_new(a, NULL, "jabber:client", "iq");
    for (int i = 0; i < 500; i++) {
        xml_node *x = xml_element_new(a, iq, uri, "x");
        xml_element_new(a, x, "jabber:client", "y"); /* back to the root's namespace */
        xml_attr_set(a, x, uri, "a", "v");
    }
    size_t before = xml_arena_bytes(b);
    xml_node *c = xml_node_copy(b, NULL, iq);
    assert_true(xml_arena_bytes(b) - before < 500 * 400); /* nodes, names, attributes: no URI copies */
    const char *shared = c->children->ns;
    assert_string_equal(shared, uri);
    for (xml_node *x = c->children; x; x = x->next) {
        assert_ptr_equal(x->ns, shared);
        assert_ptr_equal(x->attrs[0].ns, shared);
        assert_ptr_equal(x->children->ns, c->ns);
    }
    xml_arena_free(a);
    xml_arena_free(b);
}

/* Elements and attributes set by hand share the arena's string for a URI as well. */
static void test_arena_ns(void **state)
{
    xml_arena *a = xml_arena_new(0);
    const char *u1 = xml_arena_ns(a, "urn:one\x1frest", 7);
    assert_string_equal(u1, "urn:one");
    assert_ptr_equal(xml_arena_ns(a, "urn:one", 7), u1);
    assert_string_equal(xml_arena_ns(a, "urn:x", 0), "");
    xml_node *e = xml_element_new(a, NULL, "urn:one", "e");
    assert_ptr_equal(e->ns, u1);
    xml_attr_set(a, e, "urn:one", "a", "1");
    assert_ptr_equal(e->attrs[0].ns, u1);
    xml_node *none = xml_element_new(a, e, NULL, "none");
    assert_string_equal(none->ns, "");
    /* Past the inline set: a hundred URIs, each stored once. */
    char name[32];
    const char *first[100];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 100; i++) {
            snprintf(name, sizeof(name), "urn:many:%d", i);
            const char *got = xml_arena_ns(a, name, strlen(name));
            if (round == 0)
                first[i] = got;
            assert_ptr_equal(got, first[i]);
            assert_string_equal(got, name);
        }
    xml_arena_free(a);
}

static void test_split_name(void **state)
{
    xml_arena *a = xml_arena_new(0);
    const char *ns, *local;
    xml_split_name(a, "jabber:client\x1fmessage", &ns, &local);
    assert_string_equal(ns, "jabber:client");
    assert_string_equal(local, "message");
    xml_split_name(a, "plain", &ns, &local);
    assert_string_equal(ns, "");
    assert_string_equal(local, "plain");
    xml_split_name(a, "urn:a:b\x1f\xc3\xa9l\xc3\xa9ment", &ns, &local);
    assert_string_equal(ns, "urn:a:b");
    assert_string_equal(local, "\xc3\xa9l\xc3\xa9ment");
    xml_arena_free(a);
}

/* Feeds the builder what expat reports for "<iq xmlns:p='uri'>" and n children made by child(),
 * and returns the input bytes of that XML. */
static size_t build_iq(xml_builder *b, const char *uri, int n, size_t (*child)(xml_builder *, const char *))
{
    const char *noatts[] = {NULL};
    xml_builder_start(b, "jabber:client\x1fiq", noatts, 1);
    size_t input = strlen("<iq xmlns:p=''></iq>") + strlen(uri);
    for (int i = 0; i < n; i++)
        input += child(b, uri);
    xml_builder_end(b);
    return input;
}

static char *expat_name(const char *uri, const char *local)
{
    static char name[1100];
    snprintf(name, sizeof(name), "%s\x1f%s", uri, local);
    return name;
}

static size_t prefixed_child(xml_builder *b, const char *uri) /* <p:x/> */
{
    const char *noatts[] = {NULL};
    xml_builder_start(b, expat_name(uri, "x"), noatts, 1);
    xml_builder_end(b);
    return 6;
}

static size_t attr_child(xml_builder *b, const char *uri) /* <x p:a='v'/> */
{
    const char *atts[] = {expat_name(uri, "a"), "v", NULL};
    xml_builder_start(b, "jabber:client\x1fx", atts, 1);
    xml_builder_end(b);
    return 12;
}

static size_t nested_child(xml_builder *b, const char *uri) /* <p:x>, its </p:x> at the end */
{
    const char *noatts[] = {NULL};
    xml_builder_start(b, expat_name(uri, "x"), noatts, 1);
    return 11;
}

static size_t text_child(xml_builder *b, const char *uri) /* <x/>a: the most arena per byte */
{
    const char *noatts[] = {NULL};
    xml_builder_start(b, "x", noatts, 1);
    xml_builder_end(b);
    xml_builder_text(b, "a", 1, 1);
    return 5;
}

/* Every namespace of the tree (elements and attributes) equal to uri is the one string *copy. */
static void assert_one_copy(const xml_node *n, const char *uri, const char **copy)
{
    if (n->kind != XML_ELEMENT)
        return;
    for (uint32_t i = 0; i <= n->nattrs; i++) {
        const char *ns = i < n->nattrs ? n->attrs[i].ns : n->ns;
        if (!ns || strcmp(ns, uri) != 0)
            continue;
        if (!*copy)
            *copy = ns;
        assert_ptr_equal(ns, *copy);
    }
    for (const xml_node *c = n->children; c; c = c->next)
        assert_one_copy(c, uri, copy);
}

/* Security issue 12: a 1000-byte URI declared once and used by 1,030 elements (or attributes)
 * used to be copied for each of them, 11 KB of input making 1 MB of arena. It is stored once,
 * and the arena stays within ARENA_PER_INPUT_BYTE of the input. */
static void test_builder_interns(void **state)
{
    char uri[1001];
    memset(uri, 'u', 1000);
    memcpy(uri, "urn:", 4);
    uri[1000] = '\0';
    size_t (*shapes[])(xml_builder *, const char *) = {prefixed_child, attr_child, nested_child, text_child};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        xml_arena *a = xml_arena_new(1024);
        xml_builder b;
        xml_builder_init(&b, a);
        int n = shapes[s] == nested_child ? 30 : 1030;
        size_t input = build_iq(&b, uri, n, shapes[s]);
        while (b.current)
            xml_builder_end(&b);
        assert_true(xml_arena_bytes(a) <= ARENA_PER_INPUT_BYTE * input);
        const char *copy = NULL;
        assert_one_copy(b.root, uri, &copy);
        assert_true(copy || shapes[s] == text_child);
        xml_builder_free(&b);
        xml_arena_free(a);
    }
}

/* The builder as the parsers drive it: expat's names and attribute arrays. */
static void test_builder(void **state)
{
    xml_arena *a = xml_arena_new(0);
    xml_builder b;
    xml_builder_init(&b, a);
    xml_builder_text(&b, "ignored before the root", 23, 1);
    const char *matts[] = {"to", "juliet@example.com", XML_NS_XML "\x1flang", "en", "urn:x\x1f" "a", "1", NULL};
    xml_node *m = xml_builder_start(&b, "jabber:client\x1fmessage", matts, 2);
    assert_ptr_equal(b.root, m);
    assert_ptr_equal(b.current, m);
    assert_int_equal(b.depth, 1);
    assert_int_equal(m->line, 2);
    assert_int_equal(m->nattrs, 3);
    assert_null(m->attrs[0].ns);
    assert_string_equal(m->attrs[1].ns, XML_NS_XML);
    assert_string_equal(m->attrs[1].name, "lang");
    assert_string_equal(xml_attr_get_ns(m, "urn:x", "a"), "1");
    /* Text in pieces becomes one node, with the line of its first piece. */
    const char *noatts[] = {NULL};
    xml_builder_start(&b, "jabber:client\x1f" "body", noatts, 3);
    xml_builder_text(&b, "Hel", 3, 3);
    xml_builder_text(&b, "", 0, 4);
    xml_builder_text(&b, "lo", 2, 4);
    char big[700];
    memset(big, 'z', sizeof(big));
    xml_builder_text(&b, big, sizeof(big), 5);
    xml_node *body = xml_builder_end(&b);
    assert_string_equal(body->name, "body");
    assert_ptr_equal(b.current, m);
    assert_int_equal(b.depth, 1);
    assert_non_null(body->children);
    assert_null(body->children->next);
    assert_int_equal(body->children->line, 3);
    assert_int_equal(body->children->text_len, 5 + sizeof(big));
    assert_memory_equal(body->children->text, "Hello", 5);
    assert_memory_equal(body->children->text + 5, big, sizeof(big));
    assert_int_equal(body->children->text[5 + sizeof(big)], '\0');
    /* Mixed content keeps its order. */
    xml_builder_text(&b, "a", 1, 6);
    xml_builder_start(&b, "empty", noatts, 6);
    assert_ptr_equal(xml_builder_end(&b)->parent, m);
    xml_builder_text(&b, "b", 1, 6);
    assert_ptr_equal(xml_builder_end(&b), m);
    assert_null(b.current);
    assert_int_equal(b.depth, 0);
    assert_null(xml_builder_end(&b)); /* nothing open */
    const char *kinds = "ETET";
    size_t i = 0;
    for (xml_node *c = m->children; c; c = c->next, i++)
        assert_int_equal(c->kind == XML_ELEMENT ? 'E' : 'T', kinds[i]);
    assert_int_equal(i, 4);
    assert_string_equal(m->last_child->text, "b");
    assert_string_equal(m->children->ns, "jabber:client");
    assert_string_equal(xml_child(m, "", "empty")->name, "empty");

    /* A reset forgets the tree and any pending text; the next tree goes into the new arena. */
    xml_arena *a2 = xml_arena_new(0);
    xml_builder_start(&b, "x", noatts, 1);
    xml_builder_text(&b, "pending", 7, 1);
    xml_builder_reset(&b, a2);
    assert_null(b.root);
    assert_null(b.current);
    assert_int_equal(b.depth, 0);
    xml_node *y = xml_builder_start(&b, "y", noatts, 1);
    xml_builder_end(&b);
    assert_ptr_equal(b.root, y);
    assert_null(y->children);
    xml_builder_free(&b);
    assert_null(b.pending);
    xml_builder_free(&b); /* twice is fine */
    xml_arena_free(a);
    xml_arena_free(a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_build_and_read),
        cmocka_unit_test(test_attrs),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_copy_interns),
        cmocka_unit_test(test_arena_ns),
        cmocka_unit_test(test_split_name),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_builder_interns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
