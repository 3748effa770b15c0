/* core/signals.c — SIGTERM, SIGINT and SIGHUP through a signalfd (core/signals.h). */
#include "core/signals.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

int signals_take(int flags)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    return signalfd(-1, &mask, flags | SFD_CLOEXEC);
}
