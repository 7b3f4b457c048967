/*
 * Small helpers every binary needs: clocks, random ids, backoff, the stop
 * signal, and the host name.
 */
#ifndef WE_UTIL_H
#define WE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC / since the Unix epoch. */
int64_t we_now_mono_ms(void);
int64_t we_now_ms(void);
/* RFC 3339 UTC time with milliseconds into buf (at least 32 bytes). */
void we_time_rfc3339(char *buf, size_t n, int64_t epoch_ms);

/* n random bytes from the kernel's CSPRNG, as 2n lowercase hex chars + NUL. */
void we_random_hex(char *out, size_t nbytes);
/* A random (version 4) UUID string into out[37]. */
void we_uuid4(char out[37]);

/* Exponential backoff: min(base * 2^attempt, cap) with +-20 % jitter, in ms. */
int64_t we_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);

/* Installs SIGTERM/SIGINT handlers that set the stop flag (and SIGPIPE ignore).
 * Also SIGHUP sets the reload flag. */
void we_signals_install(void);
bool we_stopping(void);
void we_request_stop(void);
/* Returns true once per SIGHUP received. */
bool we_take_reload(void);
/* Sleeps up to ms, returning early (true) when a stop was requested. */
bool we_sleep_ms_or_stop(int64_t ms);

/* Host name (short, as gethostname), into buf. */
void we_hostname(char *buf, size_t n);

/* strdup that aborts on failure. */
char *we_strdup(const char *s);

#endif
