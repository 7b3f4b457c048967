/*
 * The list file of FFmpeg's concat demuxer, for encoder.stitch.
 *
 * The demuxer reads the list line by line and splits each line into tokens
 * with FFmpeg's quoting rules (ffmpeg-utils(1), "Quoting and escaping"):
 * inside single quotes every character is literal except the quote itself,
 * and a backslash outside quotes escapes the next character. So a path is
 * written in single quotes, and each ' in it closes the quotes, adds an
 * escaped \' and reopens them: /a/it's.mp4 -> '/a/it'\''s.mp4'. Nothing can
 * carry a line break through a line-based reader, so a path with CR or LF is
 * refused rather than written wrongly. Paths are absolute by the time they
 * get here; with -safe 0 the demuxer takes them as they are.
 *
 * Threads: no state.
 */
#include "encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *enc_concat_quote(const char *path)
{
    size_t quotes = 0, n = strlen(path);
    for (const char *p = path; *p; p++)
        quotes += *p == '\'';
    char *out = malloc(n + quotes * 3 + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '\'';
    for (const char *p = path; *p; p++) {
        if (*p == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *p;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* Appends "file <quoted>\n" to *buf (length *len); false when out of memory. */
static bool append_file(char **buf, size_t *len, const char *path)
{
    char *q = enc_concat_quote(path);
    size_t add = q ? strlen(q) + 6 : 0;
    char *nb = q ? realloc(*buf, *len + add + 1) : NULL;
    if (nb) {
        snprintf(nb + *len, add + 1, "file %s\n", q);
        *len += add;
        *buf = nb;
    }
    free(q);
    return nb != NULL;
}

char *enc_concat_list(const char *const *paths, size_t n, char *err, size_t errn)
{
    static const char header[] = "ffconcat version 1.0\n";
    if (n == 0) {
        snprintf(err, errn, "no segments");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!paths[i][0] || strpbrk(paths[i], "\r\n")) {
            snprintf(err, errn, "segments[%zu]: %s", i,
                     paths[i][0] ? "a line break cannot be written to a concat list" : "is empty");
            return NULL;
        }
    }
    size_t len = sizeof header - 1;
    char *buf = strdup(header);
    for (size_t i = 0; buf && i < n; i++) {
        if (!append_file(&buf, &len, paths[i])) {
            free(buf);
            buf = NULL;
        }
    }
    if (!buf)
        snprintf(err, errn, "out of memory");
    return buf;
}
