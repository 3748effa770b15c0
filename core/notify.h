/* core/notify.h — telling the service manager how a program is doing (sd_notify(3): READY=1,
 * STOPPING=1, STATUS=). Under systemd with Type=notify the unit is started when the program says
 * READY, and `systemctl status` shows its last STATUS; anywhere else (no NOTIFY_SOCKET in the
 * environment: make run, the tests) every call does nothing.
 *
 * Not part of libcore.a: core/notify.c is linked into jabshard-c2s and jabshard-sm only, the two
 * programs that link libsystemd (the Makefile's NOTIFY_PKGS), so nothing else needs it. Call from
 * the thread that owns start-up and shutdown. */
#ifndef JABSHARD_CORE_NOTIFY_H
#define JABSHARD_CORE_NOTIFY_H

/* The program serves: what READY means is each program's (its main.c and its unit say). The
 * status line (printf format) is sent with it. */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A new status line for `systemctl status`. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Shutdown has begun (sent before the program stops serving, so systemd waits for the exit
 * instead of treating it as a crash). */
void notify_stopping(void);

#endif
