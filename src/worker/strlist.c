/*
 * Owned-string list. No shared state: each list belongs to whoever holds it;
 * lists inside wk_caps are built on the main thread at start and read-only
 * afterwards, so library threads may read them without a lock.
 */
#include "strlist.h"
#include "we_err.h"

#include <stdlib.h>
#include <string.h>

void wk_strlist_init(wk_strlist *l)
{
    l->v = NULL;
    l->n = 0;
    l->cap = 0;
}

void wk_strlist_fini(wk_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    wk_strlist_init(l);
}

void wk_strlist_addn(wk_strlist *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        WE_ASSERT(v != NULL);
        l->v = v;
        l->cap = cap;
    }
    char *copy = strndup(s, n);
    WE_ASSERT(copy != NULL);
    l->v[l->n++] = copy;
}

void wk_strlist_add(wk_strlist *l, const char *s)
{
    wk_strlist_addn(l, s, strlen(s));
}

bool wk_strlist_has(const wk_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

json_t *wk_strlist_to_json(const wk_strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++) {
        if (json_array_append_new(a, json_string(l->v[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}
