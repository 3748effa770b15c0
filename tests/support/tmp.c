/* tests/support/tmp.c — scratch directories removed at the end (tmp.h). The directories not yet
 * removed are listed here; an atexit handler removes them in the process that made them (not in a
 * child that exits after fork). */
#include "tests/support/tmp.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct live {
    char *dir;          /* a copy: the caller may free its own */
    struct live *next;
} live;

static live *dirs;
static pid_t owner;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_left(void)
{
    if (getpid() != owner)
        return;
    pthread_mutex_lock(&lock);
    while (dirs) {
        live *l = dirs;
        dirs = l->next;
        remove_tree(l->dir);
        free(l->dir);
        free(l);
    }
    pthread_mutex_unlock(&lock);
}

char *tmp_dir(const char *name)
{
    const char *base = getenv("TMPDIR");
    char *dir = NULL;
    if (asprintf(&dir, "%s/jabshard-%s.XXXXXX", base && *base ? base : "/tmp", name) < 0)
        return NULL;
    live *l = malloc(sizeof *l);
    if (!l || !mkdtemp(dir) || !(l->dir = strdup(dir))) {
        int e = errno;
        free(l);
        free(dir);
        errno = e;
        return NULL;
    }
    pthread_mutex_lock(&lock);
    if (!owner) {
        owner = getpid();
        atexit(remove_left);
    }
    l->next = dirs;
    dirs = l;
    pthread_mutex_unlock(&lock);
    return dir;
}

void tmp_dir_remove(char *dir)
{
    if (!dir)
        return;
    remove_tree(dir);
    pthread_mutex_lock(&lock);
    for (live **p = &dirs; *p; p = &(*p)->next)
        if (strcmp((*p)->dir, dir) == 0) {
            live *l = *p;
            *p = l->next;
            free(l->dir);
            free(l);
            break;
        }
    pthread_mutex_unlock(&lock);
    free(dir);
}

char *tmp_path(const char *dir, const char *name)
{
    char *path;
    return asprintf(&path, "%s/%s", dir, name) < 0 ? NULL : path;
}

char *tmp_write(const char *dir, const char *name, const char *fmt, ...)
{
    char *path = tmp_path(dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        free(path);
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0 || n < 0) {
        free(path);
        return NULL;
    }
    return path;
}
