/* sm/adhoc.h — what mod_adhoc (ad-hoc commands, XEP-0050) offers the modules that register
 * commands (mod_admin_commands: XEP-0133). mod_adhoc owns the protocol: the command list in
 * disco, sessions (ids, bounds in number and time), actions and their errors; a command owns its
 * steps: the form it shows and what it does with the form submitted.
 *
 * A command has one form stage at most: the first execute (form NULL) answers with a form and
 * ADHOC_EXECUTING, or does the work at once and answers ADHOC_COMPLETED; the submission
 * (action complete or execute, with the form) is the second step, which completes. Each step
 * answers its call exactly once, now or after storage (adhoc_reply or adhoc_fail free it); the
 * call holds no session or user pointer, so it may outlive both.
 *
 * Thread rules: the routing thread. */
#ifndef JABSHARD_SM_ADHOC_H
#define JABSHARD_SM_ADHOC_H

#include <stdbool.h>
#include <stddef.h>

#include "sm/sm.h"

#define ADHOC_NS "http://jabber.org/protocol/commands"
#define ADHOC_NS_DATA "jabber:x:data"

typedef struct adhoc_call adhoc_call;

typedef struct adhoc_command {
    const char *node;       /* unique: "http://jabber.org/protocol/admin#add-user" */
    const char *name;       /* what disco shows */
    /* Whether requester (the sender's JID) may see and run it on host; NULL: anyone. */
    bool (*allowed)(sm *s, const jid *requester, const char *host);
    /* A step: form is NULL on the first execute, else the submitted <x type='submit'/>. */
    void (*step)(sm *s, adhoc_call *c, const xml_node *form);
    /* The FORM_TYPE of its forms: a submitted form with another is <bad-payload/> (NULL: any). */
    const char *form_type;
} adhoc_command;

/* Adds cmd (static, kept) to the commands served; mod_adhoc must be loaded (false otherwise,
 * or when the node is taken). */
bool adhoc_register(sm *s, const adhoc_command *cmd);

/* The requester (full JID as stamped) and the host the command was sent to. */
const jid *adhoc_requester(const adhoc_call *c);
const char *adhoc_host(const adhoc_call *c);

/* A submitted form's field: its first value ("" when the field has none; NULL when absent), or
 * all its values (up to max; the count). Strings live as long as the call. */
const char *adhoc_value(adhoc_call *c, const xml_node *form, const char *var);
size_t adhoc_values(adhoc_call *c, const xml_node *form, const char *var, const char **out,
                    size_t max);

/* The answer: a form (type "form" or "result", with a hidden FORM_TYPE when form_type is not
 * NULL) in the <command/>, its fields (value NULL: none) and more values, a note. */
xml_node *adhoc_form(adhoc_call *c, const char *type, const char *form_type, const char *title,
                     const char *instructions);
xml_node *adhoc_field(adhoc_call *c, xml_node *form, const char *var, const char *type,
                      const char *label, bool required, const char *value);
void adhoc_field_value(adhoc_call *c, xml_node *field, const char *value);
void adhoc_field_option(adhoc_call *c, xml_node *field, const char *value);
void adhoc_note(adhoc_call *c, const char *type, const char *text);

typedef enum { ADHOC_EXECUTING, ADHOC_COMPLETED } adhoc_status;
/* Sends the answer; a completed command's session ends. Frees c. */
void adhoc_reply(sm *s, adhoc_call *c, adhoc_status status);
/* Answers with an error (condition, and XEP-0050's application condition app when not NULL:
 * "bad-payload", ...; text when not NULL); the session ends. Frees c. */
void adhoc_fail(sm *s, adhoc_call *c, const char *type, const char *condition, const char *app,
                const char *text);
/* The submitted form is wrong: <bad-request/> with <bad-payload/> and text. Frees c. */
void adhoc_bad_form(sm *s, adhoc_call *c, const char *text);

#endif
