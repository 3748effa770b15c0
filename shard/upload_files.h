/* shard/upload_files.h — the files of HTTP File Upload (XEP-0363) on the front: PUTs that carry
 * the SM's signature (core/upload_sign.h) stored, GETs and HEADs served (with ranges), and old
 * files swept away. The web listener (shard/web_conn.h) hands requests under <http><upload>
 * <path> here; the bytes go through its IO thread (writes and reads of a local directory's page
 * cache), the sweep runs on a thread of its own.
 *
 * On disk, under <dir>, one directory per slot (its 32-hex id): "data" (the file, named
 * "data.part" while the PUT is under way) and "meta" (its content type, a newline, its name). A
 * client's file name is never a path here; a GET must name the slot's file as its PUT did. Several
 * front boxes may share <dir> (NFS, a cluster file system): a slot is claimed by mkdir, the file
 * appears by rename, so no box serves a half-written file.
 *
 * Answers: 201 stored; 400 a malformed target or query; 403 a bad or expired signature, a size
 * or type other than the one signed; 409 the slot was used; 411 no Content-Length; 413 over
 * max_file_size; 416 a range outside the file; 507 the disk is full. Errors are logged with the
 * slot only (never the secret or the signature).
 *
 * Thread rules: upload_put and upload_get belong to one connection's thread; the sweeper is its
 * own thread (upload_sweeper_start/stop on the main thread).
 */
#ifndef JABSHARD_SHARD_UPLOAD_FILES_H
#define JABSHARD_SHARD_UPLOAD_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/http_request.h"
#include "shard/front_config.h"

typedef struct upload_put upload_put;
typedef struct upload_get upload_get;

/* A PUT's head (rel: the target below <path>/, still percent-encoded). Returns 0 with *out, or
 * the status to refuse with and *why a short explanation. */
int upload_put_begin(const front_upload *cfg, const char *rel, const http_request *q, int64_t now,
                     upload_put **out, const char **why);
/* A piece of its body: 0, or the status to end with (507, 413 past the signed size, 500). */
int upload_put_write(upload_put *u, const void *data, size_t len);
/* The body is complete: 201, or an error status (the slot is freed for another try). Frees u. */
int upload_put_finish(upload_put *u, const char **why);
/* The connection ended first: the partial file and its slot go. Frees u; NULL is ignored. */
void upload_put_abort(upload_put *u);

/* A GET or HEAD (rel as above; range: the Range header or NULL). Returns 200 or 206 with the
 * answer's headers (Content-Type, Content-Length, Content-Range, Content-Disposition, ...) appended
 * to headers and, for a GET, *out to read the body from; or 404 / 416 (with headers for 416). */
int upload_get_begin(const front_upload *cfg, const char *rel, const char *range, bool head_only,
                     buf *headers, upload_get **out);
/* Appends up to max more bytes of the body to out. Returns how many, 0 at the end, -1 when the
 * file cannot be read (the connection then closes: its length was promised). */
ssize_t upload_get_read(upload_get *g, buf *out, size_t max);
/* Sends up to max more bytes of the body straight from the file to the socket sock (sendfile(2):
 * no copy through this process; for plain connections, with nothing else queued before it).
 * Returns how many, 0 at the end, -1 with errno EAGAIN when the socket takes nothing now, -1 with
 * another errno when the file or the socket failed (the connection then closes). */
ssize_t upload_get_send(upload_get *g, int sock, size_t max);
void upload_get_free(upload_get *g);

/* Deletes the slots older than cfg->expire_after (and PUTs abandoned for a day) every
 * UPLOAD_SWEEP_SECONDS, the first time at once. */
#define UPLOAD_SWEEP_SECONDS 3600
typedef struct upload_sweeper upload_sweeper;
upload_sweeper *upload_sweeper_start(const front_upload *cfg);
void upload_sweeper_stop(upload_sweeper *s);
/* One pass (the thread's, and the tests'): returns the slots deleted. */
unsigned upload_sweep(const front_upload *cfg, int64_t now);

#endif
