/* tests/support/tmp.h — scratch space for the tests and benchmarks: a directory of its own under
 * $TMPDIR (else /tmp), named after its user, removed with everything in it by tmp_dir_remove or,
 * when a test never got there, as the process exits; paths in it, and files written there in one
 * call.
 *
 * Nothing here fails a test: errors return NULL with errno set, so that benchmarks (which have no
 * cmocka) and any thread may call these. Strings returned are the caller's, to free(). */
#ifndef JABSHARD_TESTS_SUPPORT_TMP_H
#define JABSHARD_TESTS_SUPPORT_TMP_H

/* A new directory jabshard-NAME.XXXXXX (mode 0700), or NULL. */
char *tmp_dir(const char *name);

/* Removes dir and everything in it, then frees dir. NULL is ignored. */
void tmp_dir_remove(char *dir);

/* dir/name. */
char *tmp_path(const char *dir, const char *name);

/* Writes the printf-formatted text to dir/name (created or replaced); returns that path, or NULL. */
char *tmp_write(const char *dir, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
