/*
 * What went wrong with an ffmpeg run: a ring buffer keeping the last 4 KiB
 * of its stderr, and the classifier that turns an exit status plus that
 * tail into a WebEncode error code (DESIGN.md §5: input errors fail the job
 * at once, crashes are retried on another worker).
 *
 * Classification (exit 0 is success and never reaches here):
 *   - killed by a signal the plugin did not send (crash, OOM killer):
 *     WE-JOB-011, retryable — another worker may well succeed;
 *   - a nonzero exit whose stderr shows a bad input — FFmpeg could not open,
 *     read or decode the source ("Invalid data found when processing input",
 *     "moov atom not found", "does not contain any stream", "corrupt", any
 *     line "<input>: <reason>", …): WE-JOB-010, not retryable, because the
 *     same bytes fail the same way everywhere;
 *   - a nonzero exit caused by the arguments — unknown encoder, unknown
 *     option or filter, an encoder refusing its parameters: WE-JOB-012, not
 *     retryable (the profile is wrong, not the machine);
 *   - anything else (disk full, a network drop mid-read, an exit we do not
 *     recognise): WE-JOB-011, retryable.
 * The earliest matching line decides: FFmpeg reports the cause first and the
 * consequences ("Conversion failed!") after it. The reason carries that line
 * and the last meaningful one, so the error shows FFmpeg's own words.
 *
 * Threads: no shared state; an enc_tail belongs to one call.
 */
#include "encoder.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* ---- stderr tail ---------------------------------------------------------- */

void enc_tail_init(enc_tail *t)
{
    t->start = 0;
    t->len = 0;
    t->wrapped = false;
}

void enc_tail_add(enc_tail *t, const char *data, size_t n)
{
    if (n >= ENC_TAIL_SIZE) { /* only the last ENC_TAIL_SIZE bytes can stay */
        data += n - ENC_TAIL_SIZE;
        t->wrapped = t->wrapped || t->len > 0 || n > ENC_TAIL_SIZE;
        n = ENC_TAIL_SIZE;
        t->len = 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t pos = (t->start + t->len) % ENC_TAIL_SIZE;
        t->buf[pos] = data[i];
        if (t->len < ENC_TAIL_SIZE) {
            t->len++;
        } else {
            t->start = (t->start + 1) % ENC_TAIL_SIZE;
            t->wrapped = true;
        }
    }
}

void enc_tail_text(const enc_tail *t, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++) {
        char ch = t->buf[(t->start + i) % ENC_TAIL_SIZE];
        out[n++] = ch ? ch : ' ';
    }
    out[n] = '\0';
    if (t->wrapped) { /* the first line lost its beginning */
        char *nl = strchr(out, '\n');
        size_t skip = nl ? (size_t)(nl + 1 - out) : n;
        memmove(out, out + skip, n - skip + 1);
    }
}

/* ---- classifier ----------------------------------------------------------- */

typedef struct pattern {
    const char *text;
    const char *we_code;
} pattern;

/* Matched case-insensitively; order matters only within one line (the
 * earliest line wins). */
static const pattern patterns[] = {
    /* the input: cannot be opened, read or decoded */
    {"Invalid data found when processing input", "WE-JOB-010"},
    {"moov atom not found", "WE-JOB-010"},
    {"does not contain any stream", "WE-JOB-010"},
    {"Error opening input", "WE-JOB-010"},
    {"could not find codec parameters", "WE-JOB-010"},
    {"Decoding error", "WE-JOB-010"},
    {"Error while decoding", "WE-JOB-010"},
    {"corrupt", "WE-JOB-010"},
    {"Invalid NAL unit", "WE-JOB-010"},
    {"matches no streams", "WE-JOB-010"},
    /* the arguments: encoder, options, filters, output format */
    {"Unknown encoder", "WE-JOB-012"},
    {"Unknown decoder", "WE-JOB-012"},
    {"Unrecognized option", "WE-JOB-012"},
    {"Option not found", "WE-JOB-012"},
    {"Missing argument for option", "WE-JOB-012"},
    {"Error parsing option", "WE-JOB-012"},
    {"Unable to parse option value", "WE-JOB-012"},
    {"Error setting option", "WE-JOB-012"},
    {"Error setting preset", "WE-JOB-012"},
    {"Error while opening encoder", "WE-JOB-012"},
    {"No such filter", "WE-JOB-012"},
    {"Error initializing filter", "WE-JOB-012"},
    {"Error parsing filterchain", "WE-JOB-012"},
    {"Unknown input format", "WE-JOB-012"},
    {"Unable to find a suitable output format", "WE-JOB-012"},
    {"Automatic encoder selection failed", "WE-JOB-012"},
    {"Invalid encoder type", "WE-JOB-012"},
    {"Encoder not found", "WE-JOB-012"},
};

/* Lines that say nothing about the cause. */
static bool is_noise(const char *line)
{
    static const char *const noise[] = {"Conversion failed!", "Exiting normally",
                                        "frames left in the queue on closing",
                                        "To ignore this, add a trailing"};
    if (line[strspn(line, " \t\r")] == '\0')
        return true;
    for (size_t i = 0; i < sizeof noise / sizeof *noise; i++)
        if (strstr(line, noise[i]))
            return true;
    return false;
}

/* "<input>: reason" — FFmpeg's way of saying it could not open the input. */
static bool names_input(const char *line, const char *input)
{
    size_t n = input ? strlen(input) : 0;
    return n > 0 && strncmp(line, input, n) == 0 && strncmp(line + n, ": ", 2) == 0;
}

static const char *line_code(const char *line, const char *input)
{
    if (names_input(line, input))
        return "WE-JOB-010";
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++)
        if (strcasestr(line, patterns[i].text))
            return patterns[i].we_code;
    return NULL;
}

/* Copies line (up to its end) into dst, trimmed, at most max bytes. */
static void copy_line(char *dst, size_t max, const char *line)
{
    size_t n = strcspn(line, "\n");
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    snprintf(dst, max, "%.*s", (int)n, line);
}

/* Finds the earliest classified line and the last meaningful one. */
static const char *scan_tail(const char *tail, const char *input, char *cause, char *last,
                             size_t max)
{
    const char *code = NULL;
    char line[512];
    for (const char *p = tail; p && *p;) {
        copy_line(line, sizeof line, p);
        const char *c = is_noise(line) ? NULL : line_code(line, input);
        if (c && !code) {
            code = c;
            snprintf(cause, max, "%s", line);
        }
        if (!is_noise(line))
            snprintf(last, max, "%s", line);
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return code;
}

static void set_reason(enc_verdict *v, const char *head, const char *cause, const char *last)
{
    if (cause[0] && last[0] && strcmp(cause, last) != 0)
        snprintf(v->reason, sizeof v->reason, "%s: %.280s … %.280s", head, cause, last);
    else if (cause[0] || last[0])
        snprintf(v->reason, sizeof v->reason, "%s: %.500s", head, cause[0] ? cause : last);
    else
        snprintf(v->reason, sizeof v->reason, "%s (no message on stderr)", head);
}

void enc_classify(int status, const char *tail, const char *input, enc_verdict *v)
{
    char cause[512] = "", last[512] = "", head[64];
    const char *code = scan_tail(tail ? tail : "", input, cause, last, sizeof cause);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig); /* thread-safe, unlike strsignal */
        snprintf(head, sizeof head, "ffmpeg killed by signal %d (SIG%s)", sig,
                 abbrev ? abbrev : "?");
        v->we_code = "WE-JOB-011";
        v->retryable = true;
        set_reason(v, head, "", last);
        return;
    }
    snprintf(head, sizeof head, "ffmpeg exited with status %d",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    v->we_code = code ? code : "WE-JOB-011";
    v->retryable = code == NULL;
    set_reason(v, head, cause, last);
}
