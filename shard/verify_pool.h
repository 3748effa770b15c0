/* shard/verify_pool.h — worker threads for PLAIN's password check (a PBKDF2, about a millisecond),
 * so an IO thread never stalls its other connections behind one.
 *
 * An IO thread submits a job; a worker runs sasl_plain_verify and hands the job back through the
 * done callback, on the worker's thread (the IO thread's callback queues it under its own lock and
 * wakes its loop). Jobs are taken first come, first served.
 *
 * Thread rules: submit from any thread; the pool's queue is guarded by its mutex; a job belongs to
 * the submitter until submitted, to the pool until done is called, then to the callback.
 */
#ifndef JABSHARD_SHARD_VERIFY_POOL_H
#define JABSHARD_SHARD_VERIFY_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/scram.h"

typedef struct verify_job {
    struct verify_job *next;
    void *owner;                 /* the submitter's, for the callback */
    uint64_t sid;
    char *password;              /* malloc'd; wiped and freed by verify_job_free */
    scram_hash hash;
    scram_credentials creds;
    bool ok;                     /* the result */
} verify_job;

typedef void (*verify_done_fn)(verify_job *job);

typedef struct verify_pool verify_pool;

/* Starts workers threads; NULL with errno if none could start. */
verify_pool *verify_pool_new(unsigned workers, verify_done_fn done);
void verify_pool_submit(verify_pool *pool, verify_job *job);
/* Stops the workers (jobs still queued are dropped, freed) and frees the pool. */
void verify_pool_free(verify_pool *pool);
void verify_job_free(verify_job *job);

#endif
