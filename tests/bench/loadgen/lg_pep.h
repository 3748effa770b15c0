/* tests/bench/loadgen/lg_pep.h — the PEP (XEP-0163) client of --pep, with no socket in it: the
 * entity capabilities (XEP-0115) every simulated client announces and the disco#info answer that
 * proves them, the publish it sends, the notification it reads, and the contact ring the
 * benchmark provisions (tests/bench/peers/scenario_pep.py writes the same rosters).
 *
 * Every client is the same client: identity client/pc "loadgen", features LG_PEP_FEATURES, of
 * which NODE+notify asks for the node's notifications. Its ver is computed here (§5.1: identities,
 * then features, sorted, each followed by '<', SHA-1, base64), never written down, so a server that
 * verifies caps (all three measured do) accepts it.
 *
 * Publishes carry, in the item's payload, the run, round, publisher, sequence number and send
 * time (CLOCK_MONOTONIC ns: generator and servers share one machine and one clock), so each
 * notification says which publish it is and how late it is.
 *
 * Contacts: with N users and K contacts (K even), user i's contacts are i±1 .. i±K/2 mod N: a
 * ring in which every user has exactly K contacts, all mutual.
 *
 * Thread rules: one thread, the event loop's; nothing here is shared. */
#ifndef JABSHARD_LOADGEN_LG_PEP_H
#define JABSHARD_LOADGEN_LG_PEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/xml.h"

#define LG_PEP_NODE "urn:xmpp:bench:pep"
#define LG_PEP_CAPS_NODE "https://jabshard.invalid/loadgen"
#define LG_PEP_IDENTITY "client/pc//loadgen"
/* The features the client announces, in no particular order (the ver sorts them). */
#define LG_PEP_FEATURES                                                                          \
    {"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info", "urn:xmpp:ping", \
     LG_PEP_NODE, LG_PEP_NODE "+notify"}
#define LG_PEP_NFEATURES 5
/* A SHA-1 ver in base64: 28 characters. */
#define LG_PEP_VER_LEN 28
#define LG_PEP_RUN_LEN 8

/* The §5.1 ver of one identity ("category/type/lang/name") and these features (any order; at
 * most 64), SHA-1, into out (LG_PEP_VER_LEN + 1). */
void lg_pep_ver(const char *identity, const char *const *features, size_t n, char *out);
/* Our client's ver (computed once). */
const char *lg_pep_client_ver(void);

/* Appends the available presence carrying our caps. */
void lg_pep_presence(buf *out);
/* When iq is a disco#info get, appends its answer (our identity and features, the query's node
 * echoed) and returns true. */
bool lg_pep_disco_answer(const xml_node *iq, buf *out);

/* Appends a publish of one item (id 'current') to LG_PEP_NODE, iq id "RUN-ROUND-SEQ". */
void lg_pep_publish(buf *out, const char *run, uint32_t round, uint32_t publisher, uint64_t seq,
                    uint64_t t_ns);
/* "RUN-ROUND-SEQ" with our RUN: fills round and seq. */
bool lg_pep_parse_id(const char *id, const char *run, uint32_t *round, uint64_t *seq);

typedef enum {
    LG_PEP_NOT_EVENT,   /* not a notification of LG_PEP_NODE's items */
    LG_PEP_EVENT,       /* one of ours: the fields are filled */
    LG_PEP_FOREIGN,     /* of LG_PEP_NODE, but not of this run or not readable */
} lg_pep_kind;

typedef struct lg_pep_item {
    uint32_t round, publisher;
    uint64_t seq, t_ns;
} lg_pep_item;

/* Reads a <message/>: whether it notifies an item of LG_PEP_NODE published by this run. */
lg_pep_kind lg_pep_parse_event(const xml_node *message, xml_arena *arena, const char *run,
                               lg_pep_item *item);

/* The ring of N users with K contacts each. The slot of receiver among publisher's contacts:
 * 0..K-1, K for the publisher itself, -1 when it is neither. */
int lg_pep_contact_slot(uint32_t n, uint32_t k, uint32_t publisher, uint32_t receiver);
/* Publisher's contact in slot (0..K-1). */
uint32_t lg_pep_contact(uint32_t n, uint32_t k, uint32_t publisher, uint32_t slot);

#endif
