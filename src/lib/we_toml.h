/*
 * A reader for the strict TOML subset of plugin.toml and plugins.toml
 * (docs/plugin-protocol.md §1.1): `key = value` lines, `[table]` and
 * `[dotted.table]` headers, `#` comments, basic strings with the escapes
 * \" \\ \n \t \r \uXXXX, 64-bit integers, booleans, and one-line arrays of
 * those. Everything else (floats, dates, literal and multi-line strings,
 * inline tables, arrays of tables, dotted or quoted keys) is refused with
 * "file:line: message", as are duplicate keys and tables.
 */
#ifndef WE_TOML_H
#define WE_TOML_H

#include "we_err.h"

#include <jansson.h>
#include <stddef.h>

typedef struct we_toml {
    json_t *root;  /* the document: objects, strings, integers, booleans, arrays */
    json_t *lines; /* "table.key" path -> line number of the key or header */
    char *name;    /* the file name used in messages */
} we_toml;

/* Parses len bytes of text (need not be NUL-terminated). name prefixes every
 * message. Returns 0 with *out a new document (free with we_toml_free), or
 * WE_EINVAL with "name:line: message" in err. Never crashes on any input. */
int we_toml_parse(const char *name, const char *text, size_t len, we_toml **out, we_err *err);

/* Reads and parses the file at path: WE_ENOENT when it does not exist,
 * WE_EIO when it cannot be read, WE_EINVAL when it is malformed. */
int we_toml_load(const char *path, we_toml **out, we_err *err);

void we_toml_free(we_toml *t);

/* Line of the key or table header at path ("config_schema.root.type"), 0 when
 * unknown. The path joins bare keys with '.', which bare keys cannot contain. */
int we_toml_line(const we_toml *t, const char *path);

#endif
