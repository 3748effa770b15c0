/* core/notify.c — READY, STOPPING and STATUS for the service manager through libsystemd's
 * sd_notify (core/notify.h). A failure to notify is not the program's failure: it is ignored. */
#include "core/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static void send_state(const char *prefix, const char *fmt, va_list ap)
{
    char status[512];
    vsnprintf(status, sizeof(status), fmt, ap);
    /* Keep the message one line per field: a newline in STATUS would start another field. */
    for (char *p = status; *p; p++)
        if (*p == '\n')
            *p = ' ';
    sd_notifyf(0, "%sSTATUS=%s", prefix, status);
}

void notify_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_state("READY=1\n", fmt, ap);
    va_end(ap);
}

void notify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_state("", fmt, ap);
    va_end(ap);
}

void notify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
}
