/*
 * Strict TOML-subset reader. The text is taken one line at a time: a line is
 * first checked as a whole (valid UTF-8, no control characters but tab, a
 * carriage return only before the newline), then read by a small
 * recursive-descent cursor that never looks past the line's end. Nothing
 * recurses on the input's nesting (arrays hold scalars only), so hostile
 * input costs time linear in its length.
 *
 * The document is a jansson object tree. Beside it the reader keeps `lines`
 * (path -> line, for messages that name the line of a key, e.g. from
 * manifest validation) and `defined` (tables named by a header, so a second
 * [a] is refused while [a.b] followed by [a] is allowed, as in TOML).
 *
 * No shared state: each call owns its cursor and output.
 */
#include "we_toml.h"
#include "we_buf.h"
#include "we_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cursor {
    const char *name;
    const char *p;   /* next byte of the current line */
    const char *end; /* end of the current line (exclusive, before \r\n) */
    int line;
    json_t *root, *lines, *defined;
    json_t *cur; /* table that key = value lines go into */
    we_buf path; /* path of cur, "" for the root */
    we_err *err;
} cursor;

static int fail(cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(cursor *c, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return we_err_set(c->err, WE_EINVAL, "%s:%d: %s", c->name, c->line, msg);
}

/* --- line checks ---------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when invalid:
 * overlong forms, surrogates and code points above U+10FFFF are refused. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || s[0] > 0xF4 || len > n)
        return 0;
    uint32_t cp = s[0] & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int check_line(cursor *c, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] == '\r' && i + 1 == n)
            break; /* CRLF: the caller strips it */
        if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7F)
            return fail(c, "control character 0x%02x is not allowed", u[i]);
        size_t l = utf8_len(u + i, n - i);
        if (l == 0)
            return fail(c, "invalid UTF-8");
        i += l;
    }
    return 0;
}

/* --- lexing within a line -------------------------------------------------- */

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool at_end_or_comment(cursor *c)
{
    skip_ws(c);
    return c->p == c->end || *c->p == '#';
}

static bool is_bare(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* A bare key into out (NUL-terminated, replacing out's contents). */
static int bare_key(cursor *c, we_buf *out)
{
    const char *s = c->p;
    while (c->p < c->end && is_bare(*c->p))
        c->p++;
    if (c->p == s) {
        if (s < c->end && (*s == '"' || *s == '\''))
            return fail(c, "quoted keys are not supported");
        return fail(c, "expected a key");
    }
    we_buf_reset(out);
    we_buf_add(out, s, (size_t)(c->p - s));
    return 0;
}

/* --- values ---------------------------------------------------------------- */

static void add_utf8(we_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    }
    we_buf_add(b, u, n);
}

static int hex4(cursor *c, uint32_t *cp)
{
    *cp = 0;
    for (int i = 0; i < 4; i++, c->p++) {
        char ch = c->p < c->end ? *c->p : '\0';
        int v = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (v < 0)
            return fail(c, "\\u needs 4 hex digits");
        *cp = *cp * 16 + (uint32_t)v;
    }
    if (*cp == 0 || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return fail(c, "\\u%04X is not an allowed character", (unsigned)*cp);
    return 0;
}

static int escape(cursor *c, we_buf *b)
{
    static const char from[] = "\"\\ntr", to[] = "\"\\\n\t\r";
    if (c->p >= c->end)
        return fail(c, "unterminated string");
    char ch = *c->p++;
    const char *k = strchr(from, ch);
    if (k) {
        we_buf_addc(b, to[k - from]);
        return 0;
    }
    if (ch != 'u')
        return fail(c, "unsupported escape sequence \\%c", ch);
    uint32_t cp;
    if (hex4(c, &cp) != 0)
        return WE_EINVAL;
    add_utf8(b, cp);
    return 0;
}

static int string_value(cursor *c, json_t **out)
{
    if (c->end - c->p >= 3 && memcmp(c->p, "\"\"\"", 3) == 0)
        return fail(c, "multi-line strings are not supported");
    we_buf b;
    we_buf_init(&b);
    int rc = 0;
    for (c->p++;;) {
        if (c->p >= c->end) {
            rc = fail(c, "unterminated string");
            break;
        }
        char ch = *c->p++;
        if (ch == '"')
            break;
        if (ch == '\\')
            rc = escape(c, &b);
        else
            we_buf_addc(&b, ch);
        if (rc != 0)
            break;
    }
    if (rc == 0 && !(*out = json_stringn(b.data ? b.data : "", b.len)))
        rc = fail(c, "invalid string");
    we_buf_fini(&b);
    return rc;
}

static bool is_delim(cursor *c)
{
    return c->p == c->end || *c->p == ' ' || *c->p == '\t' || *c->p == ',' || *c->p == ']' ||
           *c->p == '#';
}

static int word_value(cursor *c, json_t **out)
{
    static const struct {
        const char *w;
        int v;
    } words[] = {
        {"true", 1},
        {"false", 0},
        {"inf", -1},
        {"nan", -1},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].w);
        if ((size_t)(c->end - c->p) < n || memcmp(c->p, words[i].w, n) != 0)
            continue;
        c->p += n;
        if (!is_delim(c))
            break;
        if (words[i].v < 0)
            return fail(c, "floats are not supported");
        *out = json_boolean(words[i].v);
        return 0;
    }
    return fail(c, "invalid value");
}

/* Why the characters after an integer's digits make it something else. */
static int number_tail(cursor *c)
{
    char ch = *c->p;
    if (ch == '.' || ch == 'e' || ch == 'E')
        return fail(c, "floats are not supported");
    if (ch == '-' || ch == ':')
        return fail(c, "dates and times are not supported");
    if (ch == '_')
        return fail(c, "underscores in numbers are not supported");
    return fail(c, "invalid number");
}

static int int_value(cursor *c, json_t **out)
{
    bool neg = *c->p == '-';
    if (*c->p == '-' || *c->p == '+')
        c->p++;
    const char *digits = c->p;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (v > (limit - d) / 10)
            return fail(c, "integer out of range (64-bit)");
        v = v * 10 + d;
    }
    if (c->p == digits)
        return c->p < c->end && (*c->p == 'i' || *c->p == 'n') ? fail(c, "floats are not supported")
                                                               : fail(c, "invalid number");
    if (*digits == '0' && c->p - digits > 1)
        return fail(c, "leading zeros are not allowed");
    if (*digits == '0' && c->p < c->end && (*c->p == 'x' || *c->p == 'o' || *c->p == 'b'))
        return fail(c, "only decimal integers are supported");
    if (!is_delim(c))
        return number_tail(c);
    if (neg)
        *out = json_integer(v > (uint64_t)INT64_MAX ? INT64_MIN : -(json_int_t)v);
    else
        *out = json_integer((json_int_t)v);
    return 0;
}

static int scalar(cursor *c, json_t **out)
{
    *out = NULL;
    if (c->p >= c->end)
        return fail(c, "missing value");
    char ch = *c->p;
    if (ch == '"')
        return string_value(c, out);
    if (ch == '\'')
        return fail(c, "literal strings are not supported");
    if (ch == '{')
        return fail(c, "inline tables are not supported");
    if (ch == '[')
        return fail(c, "nested arrays are not supported");
    if (ch == '-' || ch == '+' || (ch >= '0' && ch <= '9'))
        return int_value(c, out);
    return word_value(c, out);
}

static int array_value(cursor *c, json_t **out)
{
    json_t *a = json_array();
    c->p++;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == ']')
            break;
        json_t *v;
        if (c->p >= c->end || *c->p == '#') {
            json_decref(a);
            return fail(c, "unterminated array (arrays must be on one line)");
        }
        if (scalar(c, &v) != 0) {
            json_decref(a);
            return WE_EINVAL;
        }
        json_array_append_new(a, v);
        skip_ws(c);
        if (c->p < c->end && *c->p == ',')
            c->p++;
        else if (c->p < c->end && *c->p != ']' && *c->p != '#') {
            json_decref(a);
            return fail(c, "expected ',' or ']' in array");
        }
    }
    c->p++;
    *out = a;
    return 0;
}

static int value(cursor *c, json_t **out)
{
    if (c->p < c->end && *c->p == '[')
        return array_value(c, out);
    return scalar(c, out);
}

/* --- lines ------------------------------------------------------------------ */

static void path_join(we_buf *out, const char *base, const char *key)
{
    we_buf_reset(out);
    if (base[0]) {
        we_buf_adds(out, base);
        we_buf_addc(out, '.');
    }
    we_buf_adds(out, key);
}

static int line_of(cursor *c, const char *path)
{
    return (int)json_integer_value(json_object_get(c->lines, path));
}

static int key_value(cursor *c)
{
    we_buf key, path;
    we_buf_init(&key);
    we_buf_init(&path);
    json_t *v = NULL;
    int rc = bare_key(c, &key);
    if (rc != 0)
        goto done;
    skip_ws(c);
    if (c->p < c->end && *c->p == '.') {
        rc = fail(c, "dotted keys are not supported; use a [table] header");
        goto done;
    }
    if (c->p >= c->end || *c->p != '=') {
        rc = fail(c, "expected '=' after key '%s'", key.data);
        goto done;
    }
    c->p++;
    skip_ws(c);
    if ((rc = value(c, &v)) != 0)
        goto done;
    if (!at_end_or_comment(c)) {
        rc = fail(c, "unexpected text after the value of '%s'", key.data);
        goto done;
    }
    path_join(&path, c->path.data, key.data);
    if (json_object_get(c->cur, key.data)) {
        rc = fail(c, "duplicate key '%s' (first at line %d)", key.data, line_of(c, path.data));
        goto done;
    }
    json_object_set_new(c->cur, key.data, v);
    json_object_set_new(c->lines, path.data, json_integer(c->line));
    v = NULL;
done:
    json_decref(v);
    we_buf_fini(&key);
    we_buf_fini(&path);
    return rc;
}

/* Descends into (creating) the table key of c->cur, for a header. */
static int enter_table(cursor *c, const char *key, we_buf *path)
{
    json_t *t = json_object_get(c->cur, key);
    path_join(path, c->path.data, key);
    if (!t) {
        t = json_object();
        json_object_set_new(c->cur, key, t);
        json_object_set_new(c->lines, path->data, json_integer(c->line));
    } else if (!json_is_object(t)) {
        return fail(c, "'%s' is already a value (line %d), not a table", path->data,
                    line_of(c, path->data));
    }
    c->cur = t;
    we_buf_reset(&c->path);
    we_buf_adds(&c->path, path->data);
    return 0;
}

static int header_name(cursor *c)
{
    we_buf key, path;
    we_buf_init(&key);
    we_buf_init(&path);
    int rc = 0;
    c->cur = c->root;
    we_buf_reset(&c->path);
    for (;;) {
        skip_ws(c);
        if ((rc = bare_key(c, &key)) != 0 || (rc = enter_table(c, key.data, &path)) != 0)
            break;
        skip_ws(c);
        if (c->p < c->end && *c->p == '.') {
            c->p++;
            continue;
        }
        if (c->p >= c->end || *c->p != ']')
            rc = fail(c, "expected ']' to close the table header");
        break;
    }
    we_buf_fini(&key);
    we_buf_fini(&path);
    return rc;
}

static int header(cursor *c)
{
    c->p++;
    if (c->p < c->end && *c->p == '[')
        return fail(c, "arrays of tables are not supported");
    if (header_name(c) != 0)
        return WE_EINVAL;
    c->p++;
    if (!at_end_or_comment(c))
        return fail(c, "unexpected text after the table header");
    const char *path = c->path.data;
    json_t *first = json_object_get(c->defined, path);
    if (first)
        return fail(c, "table [%s] defined twice (first at line %d)", path,
                    (int)json_integer_value(first));
    json_object_set_new(c->defined, path, json_integer(c->line));
    json_object_set_new(c->lines, path, json_integer(c->line));
    return 0;
}

static int parse_line(cursor *c, const char *s, size_t n)
{
    if (check_line(c, s, n) != 0)
        return WE_EINVAL;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    c->p = s;
    c->end = s + n;
    if (at_end_or_comment(c))
        return 0;
    if (*c->p == '[')
        return header(c);
    return key_value(c);
}

/* --- entry points ------------------------------------------------------------ */

int we_toml_parse(const char *name, const char *text, size_t len, we_toml **out, we_err *err)
{
    cursor c = {.name = name, .err = err};
    c.root = c.cur = json_object();
    c.lines = json_object();
    c.defined = json_object();
    we_buf_init(&c.path);
    we_buf_adds(&c.path, ""); /* data is never NULL from here on */
    int rc = 0;
    const char *s = text, *end = text + len;
    while (rc == 0 && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        c.line++;
        rc = parse_line(&c, s, (size_t)(e - s));
        s = nl ? nl + 1 : end;
    }
    we_buf_fini(&c.path);
    json_decref(c.defined);
    if (rc != 0) {
        json_decref(c.root);
        json_decref(c.lines);
        return rc;
    }
    we_toml *t = calloc(1, sizeof *t);
    WE_ASSERT(t != NULL);
    t->root = c.root;
    t->lines = c.lines;
    t->name = we_strdup(name);
    *out = t;
    return 0;
}

static int read_file(const char *path, we_buf *b, we_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return we_err_set(err, errno == ENOENT ? WE_ENOENT : WE_EIO, "%s: %s", path,
                          strerror(errno));
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        we_buf_add(b, chunk, n);
    int rc = ferror(f) ? we_err_set(err, WE_EIO, "%s: read error", path) : 0;
    fclose(f);
    return rc;
}

int we_toml_load(const char *path, we_toml **out, we_err *err)
{
    we_buf b;
    we_buf_init(&b);
    int rc = read_file(path, &b, err);
    if (rc == 0)
        rc = we_toml_parse(path, b.data ? b.data : "", b.len, out, err);
    we_buf_fini(&b);
    return rc;
}

void we_toml_free(we_toml *t)
{
    if (!t)
        return;
    json_decref(t->root);
    json_decref(t->lines);
    free(t->name);
    free(t);
}

int we_toml_line(const we_toml *t, const char *path)
{
    return t ? (int)json_integer_value(json_object_get(t->lines, path)) : 0;
}
