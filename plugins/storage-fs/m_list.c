/*
 * storage.list and storage.delete {prefix}: one depth-first walk of the tree
 * under the root, in key order.
 *
 * Keys sort bytewise (strcmp). Visiting each directory's entries sorted by
 * name — a directory's name taken with its trailing '/' — yields the keys in
 * exactly that order, so a page can stop after `limit` keys and `after` can
 * skip whole subtrees without reading them. Only directories whose path is
 * compatible with the prefix are opened, and only entries that may match are
 * stat()ed. Symbolic links, special files, entries that cannot be keys
 * (invalid UTF-8, control characters, in-progress writes) are skipped.
 * Prefixes match like S3's: "jobs/ab" matches "jobs/abc/x"; end a prefix
 * with '/' to mean one directory.
 *
 * A prefix delete unlinks every matching file and removes each directory
 * whose whole subtree matched, once it is empty (a concurrent put into it
 * keeps it alive, ENOTEMPTY is not an error).
 */
#include "sfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct entry {
    char *name; /* while sorting, a directory's name ends with '/' */
    size_t len; /* without the '/' */
    bool dir;
    struct stat sb;
} entry;

typedef struct walk {
    we_plugin_call *call;
    const char *prefix;
    size_t plen;
    const char *after; /* NULL: from the first key */
    size_t limit;      /* keys to visit before stopping */
    size_t found;
    bool remove;
    json_t *items;
    char key[SFS_KEY_MAX + 2]; /* the path being visited */
} walk;

static int walk_dir(walk *w, int dirfd, size_t base);

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static void entries_free(entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

/* Whether base+name can be, or lead to, a key with the prefix. */
static bool may_match(walk *w, size_t base, const char *name, size_t len)
{
    if (base + len > SFS_KEY_MAX)
        return false;
    memcpy(w->key + base, name, len);
    size_t klen = base + len;
    return strncmp(w->key, w->prefix, klen < w->plen ? klen : w->plen) == 0;
}

static int add_entry(entry **e, size_t *n, size_t *cap, const char *name, const struct stat *sb)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        entry *ne = realloc(*e, nc * sizeof *ne);
        if (!ne)
            return -1;
        *e = ne;
        *cap = nc;
    }
    entry *x = &(*e)[*n];
    x->len = strlen(name);
    x->dir = S_ISDIR(sb->st_mode);
    x->sb = *sb;
    if (!(x->name = malloc(x->len + 2)))
        return -1;
    memcpy(x->name, name, x->len);
    x->name[x->len] = x->dir ? '/' : '\0';
    x->name[x->len + 1] = '\0';
    (*n)++;
    return 0;
}

static int read_entries(walk *w, int dirfd, size_t base, entry **e, size_t *n)
{
    size_t cap = 0;
    struct dirent *de;
    struct stat sb;
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return sfs_fail_io(w->call, "cannot read directory", w->key, errno);
    }
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (!sfs_segment_valid(de->d_name, len) || !may_match(w, base, de->d_name, len) ||
            fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
            !(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode)))
            continue;
        if (add_entry(e, n, &cap, de->d_name, &sb) < 0)
            rc = sfs_fail_io(w->call, "cannot list", w->key, ENOMEM);
    }
    closedir(d);
    if (*n > 1)
        qsort(*e, *n, sizeof **e, entry_cmp);
    for (size_t i = 0; i < *n; i++)
        (*e)[i].name[(*e)[i].len] = '\0';
    return rc;
}

static int visit_file(walk *w, int dirfd, const entry *e)
{
    if (strncmp(w->key, w->prefix, w->plen) != 0 || (w->after && strcmp(w->key, w->after) <= 0))
        return 0;
    w->found++;
    if (w->remove) {
        if (unlinkat(dirfd, e->name, 0) < 0 && errno != ENOENT)
            return sfs_fail_io(w->call, "cannot delete", w->key, errno);
        return 0;
    }
    if (w->found == w->limit)
        return 0; /* the key after the page: it only says there is a next page */
    char mod[32];
    sfs_rfc3339(e->sb.st_mtime, mod);
    json_array_append_new(w->items, json_pack("{s:s, s:I, s:s}", "key", w->key, "size_bytes",
                                              (json_int_t)e->sb.st_size, "modified", mod));
    return 0;
}

/* w->key holds the directory's path with its '/', clen bytes. */
static int visit_dir(walk *w, int dirfd, size_t clen, const entry *e)
{
    /* every key below sorts at or before `after`: skip the subtree */
    if (w->after && strncmp(w->after, w->key, clen) != 0 && strcmp(w->key, w->after) < 0)
        return 0;
    int sub = openat(dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) /* gone, or swapped for a link or a file since we read it */
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR
                   ? 0
                   : sfs_fail_io(w->call, "cannot open directory", w->key, errno);
    int rc = walk_dir(w, sub, clen);
    close(sub);
    w->key[clen] = '\0';
    if (rc == 0 && w->remove && clen >= w->plen && unlinkat(dirfd, e->name, AT_REMOVEDIR) < 0 &&
        errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
        rc = sfs_fail_io(w->call, "cannot remove directory", w->key, errno);
    return rc;
}

static int visit(walk *w, int dirfd, size_t base, const entry *e)
{
    size_t klen = base + e->len;
    memcpy(w->key + base, e->name, e->len);
    if (!e->dir) {
        w->key[klen] = '\0';
        return visit_file(w, dirfd, e);
    }
    if (klen + 2 > SFS_KEY_MAX)
        return 0; /* nothing below can be a key */
    w->key[klen] = '/';
    w->key[klen + 1] = '\0';
    return visit_dir(w, dirfd, klen + 1, e);
}

static int walk_dir(walk *w, int dirfd, size_t base)
{
    entry *e = NULL;
    size_t n = 0;
    if (we_plugin_cancelled(w->call))
        return we_plugin_fail_code(w->call, WE_RPC_CANCELLED, "cancelled");
    int rc = read_entries(w, dirfd, base, &e, &n);
    for (size_t i = 0; i < n && rc == 0 && w->found < w->limit; i++)
        rc = visit(w, dirfd, base, &e[i]);
    entries_free(e, n);
    return rc;
}

/* Starts in the prefix's directory ("jobs/1/" or "jobs/1/seg" start in
 * jobs/1), reached with resolve.c's walk: a link on the way is refused,
 * a missing directory means nothing matches. */
static int walk_prefix(walk *w)
{
    const char *leaf;
    int dirfd;
    int rc = sfs_open_parent(w->call, we_plugin_state(w->call), w->prefix, SFS_WALK_PROBE,
                             &dirfd, &leaf);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    size_t base = (size_t)(leaf - w->prefix);
    memcpy(w->key, w->prefix, base);
    w->key[base] = '\0';
    rc = walk_dir(w, dirfd, base);
    close(dirfd);
    return rc;
}

/* "jobs/1/" names a directory: remove it too once it is empty. */
static int remove_prefix_dir(walk *w)
{
    char dir[SFS_KEY_MAX + 1];
    const char *leaf;
    int dirfd;
    if (w->plen < 2 || w->prefix[w->plen - 1] != '/')
        return 0;
    memcpy(dir, w->prefix, w->plen - 1);
    dir[w->plen - 1] = '\0';
    if (sfs_open_parent(w->call, we_plugin_state(w->call), dir, SFS_WALK_PROBE, &dirfd, &leaf) != 0)
        return 0;
    int rc = 0;
    if (unlinkat(dirfd, leaf, AT_REMOVEDIR) < 0 && errno != ENOENT && errno != ENOTEMPTY &&
        errno != EEXIST && errno != ENOTDIR)
        rc = sfs_fail_io(w->call, "cannot remove directory", dir, errno);
    close(dirfd);
    return rc;
}

int sfs_delete_prefix(we_plugin_call *call, const char *prefix, json_t **result)
{
    walk w = { .call = call, .prefix = prefix, .plen = strlen(prefix), .limit = SIZE_MAX,
               .remove = true };
    if (walk_prefix(&w) < 0 || remove_prefix_dir(&w) < 0)
        return -1;
    *result = json_pack("{s:s, s:b, s:I}", "prefix", prefix, "deleted", w.found > 0, "count",
                        (json_int_t)w.found);
    return 0;
}

/* prefix (default ""), limit (1..SFS_LIST_MAX), after (a key or null). */
static int list_params(we_plugin_call *call, json_t *params, walk *w)
{
    json_t *prefix = json_object_get(params, "prefix"), *limit = json_object_get(params, "limit");
    json_t *after = json_object_get(params, "after");
    char why[128];
    if (prefix && !json_is_string(prefix))
        return we_plugin_fail_params(call, "prefix: must be a string");
    w->prefix = prefix ? json_string_value(prefix) : "";
    w->plen = prefix ? json_string_length(prefix) : 0;
    if (!sfs_prefix_valid(w->prefix, w->plen, true, why, sizeof why))
        return we_plugin_fail(call, "WE-STO-001", false, "invalid prefix: %s", why);
    if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                  json_integer_value(limit) > SFS_LIST_MAX))
        return we_plugin_fail_params(call, "limit: must be an integer in 1..%d", SFS_LIST_MAX);
    w->limit = (limit ? (size_t)json_integer_value(limit) : SFS_LIST_DEFAULT) + 1;
    if (after && !json_is_null(after) &&
        (!json_is_string(after) ||
         !sfs_key_valid(json_string_value(after), json_string_length(after), why, sizeof why)))
        return we_plugin_fail_params(call, "after: must be null or a key from a previous page");
    w->after = json_is_string(after) ? json_string_value(after) : NULL;
    return 0;
}

int sfs_m_list(we_plugin_call *call, json_t *params, json_t **result)
{
    walk w = { .call = call };
    if (list_params(call, params, &w) < 0)
        return -1;
    w.items = json_array();
    if (walk_prefix(&w) < 0) {
        json_decref(w.items);
        return -1;
    }
    size_t n = json_array_size(w.items);
    json_t *next = w.found >= w.limit && n > 0
                       ? json_copy(json_object_get(json_array_get(w.items, n - 1), "key"))
                       : json_null();
    *result = json_pack("{s:o, s:o}", "items", w.items, "next", next);
    return 0;
}
