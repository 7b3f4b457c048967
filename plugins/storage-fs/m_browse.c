/*
 * storage.browse {path}: one directory's entries, for the dashboard's file
 * picker (source files on a shared disk, outputs in the store).
 *
 * Only the storage root and the configured browse_roots may be listed. The
 * path (absolute, or relative to the root; default the root) is
 * canonicalised with realpath() and must then be one of those directories or
 * below one; the opened directory is checked again through /proc/self/fd, so
 * a link swapped in after realpath() cannot widen the view. Unlike keys,
 * links inside an allowed tree are followed here — the check is on where
 * they lead. Entries are sorted by name; names that are not valid UTF-8
 * and in-progress writes are left out.
 */
#include "sfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool under(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (n == 1)
        return true; /* "/" */
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool allowed(const sfs_state *st, const char *real)
{
    if (under(st->root, real))
        return true;
    for (size_t i = 0; i < st->nbrowse; i++)
        if (under(st->browse[i], real))
            return true;
    return false;
}

static int refuse(we_plugin_call *call, const char *path)
{
    char shown[256];
    sfs_display(path, strlen(path), shown, sizeof shown);
    return we_plugin_fail(call, "WE-STO-403", false,
                          "path \"%s\" is outside the storage root and browse_roots", shown);
}

/* The canonical directory to list (malloc'd), or NULL after failing the call. */
static char *target(we_plugin_call *call, const sfs_state *st, json_t *params)
{
    json_t *p = json_object_get(params, "path");
    char *joined = NULL, *real;
    const char *path = st->root;
    if (p && !json_is_null(p) && (!json_is_string(p) || strlen(json_string_value(p)) !=
                                                            json_string_length(p))) {
        we_plugin_fail_params(call, "path: must be a string");
        return NULL;
    }
    if (json_is_string(p) && json_string_value(p)[0] == '/')
        path = json_string_value(p);
    else if (json_is_string(p) && json_string_value(p)[0] &&
             asprintf(&joined, "%s/%s", st->root, json_string_value(p)) >= 0)
        path = joined;
    real = realpath(path, NULL);
    if (!real && (errno == ENOENT || errno == ENOTDIR))
        we_plugin_fail(call, "WE-STO-404", false, "path not found: %s", path);
    else if (!real)
        sfs_fail_io(call, "cannot resolve", path, errno);
    free(joined);
    return real;
}

/* Opens real and checks that what was opened is still an allowed place. */
static int open_checked(we_plugin_call *call, const sfs_state *st, const char *real)
{
    char link[64], now[PATH_MAX];
    int fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR ? we_plugin_fail(call, "WE-STO-409", false,
                                                 "path \"%s\" is not a directory", real)
                                : sfs_fail_io(call, "cannot open", real, errno);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, now, sizeof now - 1);
    if (n > 0)
        now[n] = '\0';
    if (n <= 0 || !allowed(st, now)) {
        close(fd);
        return refuse(call, real);
    }
    return fd;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names (malloc'd each), at most SFS_BROWSE_MAX + 1. */
static char **read_names(int fd, size_t *n)
{
    size_t cap = 0;
    char **names = NULL;
    struct dirent *de;
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d && dfd >= 0)
        close(dfd);
    *n = 0;
    while (d && *n <= SFS_BROWSE_MAX && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 || !sfs_utf8_valid(nm, strlen(nm)) ||
            strncmp(nm, SFS_TMP_PREFIX, strlen(SFS_TMP_PREFIX)) == 0)
            continue;
        if (*n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[*n] = strdup(nm)))
            break;
        (*n)++;
    }
    if (d)
        closedir(d);
    if (names)
        qsort(names, *n, sizeof *names, name_cmp);
    return names;
}

static json_t *entry_json(int fd, const char *name)
{
    struct stat sb;
    char mod[32];
    if (fstatat(fd, name, &sb, 0) < 0) /* a dangling link, or gone */
        return NULL;
    sfs_rfc3339(sb.st_mtime, mod);
    bool dir = S_ISDIR(sb.st_mode);
    return json_pack("{s:s, s:b, s:I, s:s}", "name", name, "is_dir", dir, "size_bytes",
                     (json_int_t)(dir ? 0 : sb.st_size), "modified", mod);
}

static json_t *list_dir(int fd, bool *truncated)
{
    size_t n;
    char **names = read_names(fd, &n);
    json_t *entries = json_array();
    *truncated = n > SFS_BROWSE_MAX;
    for (size_t i = 0; i < n; i++) {
        json_t *e = i < SFS_BROWSE_MAX ? entry_json(fd, names[i]) : NULL;
        if (e)
            json_array_append_new(entries, e);
        free(names[i]);
    }
    free(names);
    return entries;
}

int sfs_m_browse(we_plugin_call *call, json_t *params, json_t **result)
{
    const sfs_state *st = we_plugin_state(call);
    char *real = target(call, st, params);
    int fd = -1, rc = -1;
    bool truncated;
    if (!real)
        return -1;
    if (!allowed(st, real) || !sfs_utf8_valid(real, strlen(real))) {
        refuse(call, real);
        goto done;
    }
    if ((fd = open_checked(call, st, real)) < 0)
        goto done;
    json_t *entries = list_dir(fd, &truncated);
    *result = json_pack("{s:s, s:o, s:b}", "path", real, "entries", entries, "truncated",
                        truncated);
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    free(real);
    return rc;
}
