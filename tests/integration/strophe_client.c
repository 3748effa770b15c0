/* tests/integration/strophe_client.c — a libstrophe client for xmpp.sh: logs in (STARTTLS, or
 * direct TLS with -t), checking the server's certificate against CAFILE, binds, pings the server
 * and says what happened on stdout, one "key=value" line each:
 *   mechanism=NAME     the SASL mechanism libstrophe chose (from the <auth/> it sent)
 *   sasl-failure=COND  the condition of a SASL <failure/>
 *   stream-error=TYPE  libstrophe's code for a stream error
 *   bound=JID          the JID bound
 *   ping=ok            the server answered the ping
 *   disconnected=ERR   the connection ended (ERR: libstrophe's socket error, 0 for none)
 * Exit status 0 when bound and pinged within 10 s, 1 otherwise, 2 for bad usage.
 *
 * libstrophe 0.12 offers no way to restrict its SASL mechanisms: it picks the strongest SCRAM it
 * knows among those offered (it has no -PLUS variants), then DIGEST-MD5, then PLAIN. With
 * -m MECH this program hides every other mechanism from it: it interposes SSL_read (libstrophe's
 * only way to read a TLS stream, and mechanisms are only offered over TLS) and turns the first
 * letter of each other <mechanism> name into 'X', which libstrophe does not know. The server is
 * untouched; only what the library sees of its feature list changes.
 *
 * Built by xmpp.sh: cc ... strophe_client.c $(pkg-config --cflags --libs libstrophe) -ldl */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <strophe.h>

static const char *strophe_only_mech;   /* -m: the one mechanism libstrophe may see */
static int strophe_done, strophe_bound, strophe_pinged;

/* Renames every <mechanism> but strophe_only_mech in the len bytes at data. */
static void strophe_hide_mechanisms(char *data, size_t len)
{
    static const char open_tag[] = "<mechanism>";
    size_t olen = sizeof(open_tag) - 1, mlen = strlen(strophe_only_mech);
    for (char *p = data; (p = memmem(p, len - (size_t)(p - data), open_tag, olen)) != NULL;) {
        char *name = p + olen;
        char *end = memchr(name, '<', len - (size_t)(name - data));
        if (!end)
            break;
        if ((size_t)(end - name) != mlen || memcmp(name, strophe_only_mech, mlen) != 0)
            name[0] = 'X';
        p = end;
    }
}

int SSL_read(SSL *ssl, void *buf, int num);
int SSL_read(SSL *ssl, void *buf, int num)
{
    static int (*real_read)(SSL *, void *, int);
    if (!real_read) {
        *(void **)&real_read = dlsym(RTLD_NEXT, "SSL_read");
        if (!real_read) {
            fprintf(stderr, "strophe_client: no SSL_read to interpose: %s\n", dlerror());
            exit(2);
        }
    }
    int n = real_read(ssl, buf, num);
    if (n > 0 && strophe_only_mech)
        strophe_hide_mechanisms(buf, (size_t)n);
    return n;
}

/* libstrophe logs what it sends and receives at debug level: the mechanism it chose and the
 * server's SASL failures are read from there. */
static void strophe_log(void *userdata, xmpp_log_level_t level, const char *area, const char *msg)
{
    const char *p;
    if (getenv("STROPHE_DEBUG"))
        fprintf(stderr, "    strophe %s: %s\n", area, msg);
    if (strncmp(msg, "SENT: <auth ", 12) == 0 && (p = strstr(msg, "mechanism=")) != NULL) {
        char quote = p[10];
        const char *name = p + 11, *end = strchr(name, quote);
        if (end)
            printf("mechanism=%.*s\n", (int)(end - name), name);
    } else if (strncmp(msg, "RECV: <failure", 14) == 0 && (p = strchr(msg + 14, '>')) != NULL &&
               p[1] == '<') {
        const char *name = p + 2;
        size_t n = strcspn(name, " />");
        printf("sasl-failure=%.*s\n", (int)n, name);
    }
}

static int strophe_on_ping(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    const char *type = xmpp_stanza_get_type(stanza);
    if (type && strcmp(type, "result") == 0) {
        printf("ping=ok\n");
        strophe_pinged = 1;
    } else {
        printf("ping=%s\n", type ? type : "(no type)");
    }
    xmpp_disconnect(conn);
    return 0;
}

static void strophe_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                            xmpp_stream_error_t *stream_error, void *userdata)
{
    if (event == XMPP_CONN_CONNECT) {
        const char *jid = xmpp_conn_get_bound_jid(conn);
        printf("bound=%s\n", jid ? jid : "");
        strophe_bound = jid != NULL;
        xmpp_id_handler_add(conn, strophe_on_ping, "ping1", NULL);
        xmpp_send_raw_string(conn, "<iq type='get' id='ping1' to='localhost'>"
                                   "<ping xmlns='urn:xmpp:ping'/></iq>");
        return;
    }
    if (stream_error)
        printf("stream-error=%d\n", (int)stream_error->type);
    printf("disconnected=%d\n", error);
    strophe_done = 1;
}

int main(int argc, char **argv)
{
    long flags = XMPP_CONN_FLAG_MANDATORY_TLS;
    const char *cafile = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "tm:c:")) != -1) {
        if (opt == 't')
            flags = XMPP_CONN_FLAG_LEGACY_SSL;
        else if (opt == 'm')
            strophe_only_mech = optarg;
        else if (opt == 'c')
            cafile = optarg;
        else
            goto usage;
    }
    if (argc - optind != 4) {
usage:
        fprintf(stderr, "usage: strophe_client [-t] [-m MECH] [-c CAFILE] HOST PORT JID PASSWORD\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    xmpp_initialize();
    xmpp_log_t log = {strophe_log, NULL};
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, &log);
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    xmpp_conn_set_flags(conn, flags);
    if (cafile)
        xmpp_conn_set_cafile(conn, cafile);
    xmpp_conn_set_jid(conn, argv[optind + 2]);
    xmpp_conn_set_pass(conn, argv[optind + 3]);
    if (xmpp_connect_client(conn, argv[optind], (unsigned short)atoi(argv[optind + 1]),
                            strophe_on_conn, NULL) != XMPP_EOK) {
        printf("connect=failed\n");
        return 1;
    }
    time_t deadline = time(NULL) + 10;
    while (!strophe_done && time(NULL) < deadline)
        xmpp_run_once(ctx, 100);
    if (!strophe_done)
        printf("timeout=10s\n");
    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return strophe_bound && strophe_pinged ? 0 : 1;
}
