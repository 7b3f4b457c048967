/*
 * Arguments of encoder.transcode: validation, the ffmpeg command line, and
 * the expected output duration (for percent) read from -ss/-t/-to.
 *
 * Design: the kernel builds args and is trusted to ask for sensible
 * encodes, so this is not a sandbox — an extra positional argument in args
 * would still make ffmpeg write a second output, and telling options from
 * their values needs FFmpeg's own option table. What is refused are the
 * things that would break the plugin itself: "-i" (a second input shifts
 * the stream numbering the kernel's -map assumes; the input is the "input"
 * field), "-progress" (fd 3 is the plugin's progress pipe), "-y"/"-n" (the
 * "overwrite" field says that), a stdin/pipe input (the plugin's stdin is
 * the protocol), an output that is not a local file (size, cleanup and
 * the result need a path), and the options that carry the egress policy
 * (-http_proxy, -protocol_whitelist, -protocol_blacklist: source.c sets
 * them). Every element must be a string without NUL.
 *
 * The command line is
 *   ffmpeg -hide_banner -nostdin -nostats -loglevel warning -progress pipe:3
 *          -stats_period 0.25 -y|-n <input_args> <source opts> -i <input>
 *          [-i <input2>] [-i <inputs[k]>...] <args> <output>
 * with warnings kept so the stderr tail explains failures, and the source's
 * options (source.c) after input_args, so they are the ones that count for
 * the first input. input2 and
 * inputs are the plugin's own further inputs (encoder.stitch's audio,
 * encoder.package's renditions), never the caller's args.
 *
 * Threads: no state.
 */
#include "encoder.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 4096

static const char *const base_argv[] = {"-hide_banner", "-nostdin",      "-nostats",
                                        "-loglevel",    "warning",       "-progress",
                                        "pipe:3",       "-stats_period", "0.25"};
#define NBASE (sizeof base_argv / sizeof *base_argv)

/* Why an element may not appear in args/input_args, or NULL. */
static const char *owned_option(const char *s)
{
    if (strcmp(s, "-i") == 0)
        return "the input is the \"input\" field (a second input would shift stream numbers)";
    if (strcmp(s, "-progress") == 0)
        return "the plugin reads progress itself";
    if (strcmp(s, "-y") == 0 || strcmp(s, "-n") == 0)
        return "use the \"overwrite\" field";
    if (strcmp(s, "-http_proxy") == 0 || strcmp(s, "-protocol_whitelist") == 0 ||
        strcmp(s, "-protocol_blacklist") == 0)
        return "the plugin sets it (the source's egress policy)";
    return NULL;
}

int enc_args_check(json_t *arr, const char *field, char *err, size_t n)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > MAX_ARGS) {
        snprintf(err, n, "%s: must be an array of at most %d strings", field, MAX_ARGS);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v), *why;
        if (!s || strlen(s) != json_string_length(v)) {
            snprintf(err, n, "%s[%zu]: must be a string (without NUL bytes)", field, i);
            return -1;
        }
        if ((why = owned_option(s))) {
            snprintf(err, n, "%s[%zu]: \"%s\" is not allowed: %s", field, i, s, why);
            return -1;
        }
    }
    return 0;
}

static bool is_pipe_url(const char *s)
{
    return strcmp(s, "-") == 0 || strncmp(s, "pipe:", 5) == 0 || strncmp(s, "fd:", 3) == 0;
}

int enc_input_check(const char *url, char *err, size_t n)
{
    if (!url || !*url || strlen(url) >= PATH_MAX) {
        snprintf(err, n, "must be a non-empty string shorter than %d bytes", PATH_MAX);
        return -1;
    }
    if (is_pipe_url(url)) {
        snprintf(err, n, "\"%s\" reads a pipe; the plugin's stdin carries the protocol", url);
        return -1;
    }
    return 0;
}

int enc_output_check(const char *path, char *err, size_t n)
{
    if (!path || !*path || strlen(path) >= PATH_MAX) {
        snprintf(err, n, "must be a non-empty path shorter than %d bytes", PATH_MAX);
        return -1;
    }
    if (is_pipe_url(path)) {
        snprintf(err, n, "\"%s\" is a pipe; the output must be a local file", path);
        return -1;
    }
    if (strstr(path, "://") && strncmp(path, "file://", 7) != 0) {
        snprintf(err, n, "\"%s\" is a URL; the output must be a local file", path);
        return -1;
    }
    if (path[strlen(path) - 1] == '/') {
        snprintf(err, n, "\"%s\" names a directory; the output must be a file", path);
        return -1;
    }
    return 0;
}

/* "proto:" of an FFmpeg URL other than file:, e.g. http:, concat:. */
static bool has_protocol(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
    return n >= 2 && s[n] == ':' && strncmp(s, "file:", 5) != 0;
}

bool enc_is_remote(const char *url)
{
    return strstr(url, "://") && strncmp(url, "file://", 7) != 0;
}

/* As FFmpeg's url_find_protocol reads a URL: letters, digits and "+-."
 * before a ':' name a protocol; so does "subfile," with a ':' later. */
enc_input_kind enc_input_kind_of(const char *url)
{
    size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    if (strncmp(url, "subfile,", 8) == 0 && strchr(url + 8, ':'))
        return ENC_INPUT_REFUSED;
    if (n == 0 || url[n] != ':')
        return ENC_INPUT_LOCAL;
    if (n == 4 && strncmp(url, "file", 4) == 0)
        return ENC_INPUT_LOCAL;
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0)
        return ENC_INPUT_REMOTE;
    return ENC_INPUT_REFUSED;
}

char *enc_resolve(const char *dir, const char *path)
{
    if (has_protocol(path))
        return strdup(path);
    if (strncmp(path, "file://", 7) == 0)
        path += 7;
    else if (strncmp(path, "file:", 5) == 0)
        path += 5;
    if (path[0] == '/' || !dir || !*dir)
        return strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", path);
    return s;
}

static size_t push_array(const char **argv, size_t at, json_t *arr)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) argv[at++] = json_string_value(v);
    return at;
}

char **enc_argv_build(const enc_job *j)
{
    size_t nopts = 0;
    while (j->source && j->source->opts[nopts])
        nopts++;
    size_t n = 1 + NBASE + 1 + json_array_size(j->input_args) + nopts + 4 +
               2 * json_array_size(j->inputs) + json_array_size(j->args) + 2;
    const char **argv = calloc(n, sizeof *argv);
    if (!argv)
        return NULL;
    size_t at = 0;
    argv[at++] = j->ffmpeg;
    for (size_t i = 0; i < NBASE; i++)
        argv[at++] = base_argv[i];
    argv[at++] = j->overwrite ? "-y" : "-n";
    at = push_array(argv, at, j->input_args);
    for (size_t i = 0; i < nopts; i++)
        argv[at++] = j->source->opts[i];
    argv[at++] = "-i";
    argv[at++] = j->input;
    if (j->input2) {
        argv[at++] = "-i";
        argv[at++] = j->input2;
    }
    size_t i;
    json_t *v;
    json_array_foreach(j->inputs, i, v)
    {
        argv[at++] = "-i";
        argv[at++] = json_string_value(v);
    }
    at = push_array(argv, at, j->args);
    argv[at++] = j->output;
    argv[at] = NULL;
    return (char **)argv;
}

/* ---- durations ------------------------------------------------------------- */

/* "[HH:]MM:SS[.frac]" */
static double parse_clock(const char *s)
{
    double parts[3], sec;
    int n = 0;
    char *end;
    for (const char *p = s;; p = end + 1) {
        if (!isdigit((unsigned char)*p) || n == 3)
            return -1;
        errno = 0;
        parts[n++] = strtod(p, &end);
        if (errno || *end != ':')
            break;
    }
    if (*end || n < 2)
        return -1;
    sec = parts[n - 1] + parts[n - 2] * 60;
    return n == 3 ? sec + parts[0] * 3600 : sec;
}

/* "S[.frac][s|ms|us]" */
static double parse_seconds(const char *s)
{
    char *end;
    if (!isdigit((unsigned char)*s) && *s != '.')
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !isfinite(v) || end == s)
        return -1;
    if (strcmp(end, "ms") == 0)
        return v / 1e3;
    if (strcmp(end, "us") == 0)
        return v / 1e6;
    return *end == '\0' || strcmp(end, "s") == 0 ? v : -1;
}

double enc_parse_duration(const char *s)
{
    if (!s || !*s)
        return -1;
    return strchr(s, ':') ? parse_clock(s) : parse_seconds(s);
}

const char *enc_args_value(json_t *arr, const char *opt)
{
    const char *found = NULL;
    for (size_t i = 0; i + 1 < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s && strcmp(s, opt) == 0)
            found = json_string_value(json_array_get(arr, i + 1));
    }
    return found;
}

/* The shorter of d and limit, where <= 0 means unknown. */
static double shorter(double d, double limit)
{
    if (limit <= 0)
        return d;
    return d <= 0 ? limit : enc_min(d, limit);
}

double enc_expected_duration(json_t *input_args, json_t *args, double input_s)
{
    double ss = enc_max(enc_parse_duration(enc_args_value(input_args, "-ss")), 0);
    double d = input_s > 0 ? enc_max(input_s - ss, 0) : -1;
    double t_in = enc_parse_duration(enc_args_value(input_args, "-t"));
    double to_in = enc_parse_duration(enc_args_value(input_args, "-to"));
    d = shorter(d, t_in > 0 ? t_in : (to_in > ss ? to_in - ss : -1));
    double t_out = enc_parse_duration(enc_args_value(args, "-t"));
    double to_out = enc_parse_duration(enc_args_value(args, "-to"));
    return shorter(d, t_out > 0 ? t_out : to_out);
}
