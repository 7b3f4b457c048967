/*
 * A growable list of owned strings: capability names, encoder names. Caller's
 * storage (wk_strlist_init/wk_strlist_fini); allocation failure aborts, as in
 * we_buf.
 */
#ifndef WK_STRLIST_H
#define WK_STRLIST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct wk_strlist {
    char **v;
    size_t n;
    size_t cap;
} wk_strlist;

void wk_strlist_init(wk_strlist *l);
/* Frees every string and the array; l is empty (and reusable) afterwards. */
void wk_strlist_fini(wk_strlist *l);
/* Appends a copy of s. */
void wk_strlist_add(wk_strlist *l, const char *s);
/* Appends a copy of the first n bytes of s. */
void wk_strlist_addn(wk_strlist *l, const char *s, size_t n);
bool wk_strlist_has(const wk_strlist *l, const char *s);
/* A new JSON array of the strings (caller owns the reference), NULL when a
 * string is not valid UTF-8 or memory runs out. */
json_t *wk_strlist_to_json(const wk_strlist *l);

#endif
