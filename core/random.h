/* core/random.h — bytes from the operating system's CSPRNG (getrandom), for anything an attacker
 * must not predict: expat hash salts, stream ids, SCRAM nonces and salts. */
#ifndef JABSHARD_CORE_RANDOM_H
#define JABSHARD_CORE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills buf; aborts if the kernel cannot supply randomness (there is no safe fallback). */
void random_bytes(void *buf, size_t len);
uint64_t random_u64(void);
/* Writes len random characters from [A-Za-z0-9] and a NUL into out (out holds len + 1). */
void random_token(char *out, size_t len);

#endif
