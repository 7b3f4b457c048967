/*
 * Parsers for the text FFmpeg prints about itself: `ffmpeg -encoders`,
 * `ffmpeg -hwaccels` and `ffmpeg -version`.
 *
 * Design: pure functions over a NUL-terminated string, line by line, so the
 * unit test feeds them captured text. The encoder table starts after the
 * " ------" separator; each row is six flag characters and a name. Anything
 * that does not look like a row is skipped rather than trusted.
 *
 * Threads: no state.
 */
#include "encoder.h"

#include <ctype.h>
#include <string.h>

/* The next whitespace-delimited word in [p, end); its length in *len. */
static const char *next_word(const char *p, const char *end, size_t *len)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    const char *s = p;
    while (p < end && !isspace((unsigned char)*p))
        p++;
    *len = (size_t)(p - s);
    return s;
}

/* "V....D": a type letter, then five of '.' or a capital letter. */
static bool is_flags(const char *s, size_t n)
{
    if (n != 6 || !strchr("VAS", s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] != '.' && !isupper((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_name(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_-.", s[i]))
            return false;
    return true;
}

static void append_word(json_t *names, const char *s, size_t n)
{
    char tmp[64];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    json_array_append_new(names, json_string(tmp));
}

static void encoder_row(const char *p, const char *end, json_t *names)
{
    size_t flen, nlen;
    const char *flags = next_word(p, end, &flen);
    if (!is_flags(flags, flen))
        return;
    const char *name = next_word(flags + flen, end, &nlen);
    if (is_name(name, nlen))
        append_word(names, name, nlen);
}

void enc_encoders_parse(const char *text, json_t *names)
{
    bool table = false;
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        size_t len;
        const char *w = next_word(p, end, &len);
        if (table)
            encoder_row(p, end, names);
        else if (len >= 6 && strspn(w, "-") == len)
            table = true;
        p = eol ? eol + 1 : end;
    }
}

void enc_hwaccels_parse(const char *text, json_t *names)
{
    bool list = false;
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        size_t len;
        const char *w = next_word(p, end, &len);
        if (!list)
            list = memchr(p, ':', (size_t)(end - p)) != NULL; /* "…methods:" header */
        else if (is_name(w, len))
            append_word(names, w, len);
        p = eol ? eol + 1 : end;
    }
}

int enc_version_parse(const char *text, char *buf, size_t n)
{
    static const char prefix[] = "ffmpeg version ";
    if (!text || strncmp(text, prefix, sizeof prefix - 1) != 0 || n == 0)
        return -1;
    const char *end = text + strcspn(text, "\n");
    size_t len;
    const char *w = next_word(text + sizeof prefix - 1, end, &len);
    if (len == 0 || len >= n)
        return -1;
    memcpy(buf, w, len);
    buf[len] = '\0';
    return 0;
}
