/* shard/verify_pool.c — the PLAIN verification workers (see verify_pool.h). */
#include "shard/verify_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/mem.h"
#include "shard/sasl.h"

struct verify_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    verify_job *head, **tail;    /* guarded by lock */
    bool stopping;               /* guarded by lock */
    verify_done_fn done;
    pthread_t *threads;
    unsigned nthreads;
};

void verify_job_free(verify_job *job)
{
    if (!job)
        return;
    if (job->password) {
        OPENSSL_cleanse(job->password, strlen(job->password));
        free(job->password);
    }
    OPENSSL_cleanse(&job->creds, sizeof job->creds);
    free(job);
}

static void *worker(void *arg)
{
    verify_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stopping)
            break;
        verify_job *job = p->head;
        p->head = job->next;
        if (!p->head)
            p->tail = &p->head;
        pthread_mutex_unlock(&p->lock);
        job->ok = sasl_plain_verify(job->password, job->hash, &job->creds);
        p->done(job);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

verify_pool *verify_pool_new(unsigned workers, verify_done_fn done)
{
    verify_pool *p = mem_zalloc(sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->tail = &p->head;
    p->done = done;
    p->threads = mem_array(workers ? workers : 1, sizeof(pthread_t));
    for (unsigned i = 0; i < (workers ? workers : 1); i++) {
        int r = pthread_create(&p->threads[i], NULL, worker, p);
        if (r != 0) {
            if (p->nthreads)
                break;
            free(p->threads);
            free(p);
            errno = r;
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

void verify_pool_submit(verify_pool *p, verify_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    *p->tail = job;
    p->tail = &job->next;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void verify_pool_free(verify_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while (p->head) {
        verify_job *j = p->head;
        p->head = j->next;
        verify_job_free(j);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->threads);
    free(p);
}
