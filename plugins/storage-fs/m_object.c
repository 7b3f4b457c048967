/*
 * storage.capabilities, stat, checksum, local_path and delete — the methods
 * about one key. Each resolves the key through resolve.c (no symbolic links)
 * and answers with the result object of docs/plugin-protocol.md §6; the
 * plugin's README lists the fields.
 */
#include "sfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int sfs_m_capabilities(we_plugin_call *call, json_t *params, json_t **result)
{
    const sfs_state *st = we_plugin_state(call);
    json_t *roots = json_array();
    for (size_t i = 0; i < st->nbrowse; i++)
        json_array_append_new(roots, json_string(st->browse[i]));
    *result = json_pack("{s:b, s:b, s:b, s:s, s:o, s:i, s:i}", "local_paths", 1, "browse", 1,
                        "presign", 0, "root", st->root, "browse_roots", roots,
                        "max_inline_bytes", SFS_INLINE_MAX, "max_key_bytes", SFS_KEY_MAX);
    return 0;
}

static json_t *stat_json(const char *key, const struct stat *sb)
{
    char mod[32];
    sfs_rfc3339(sb->st_mtime, mod);
    bool dir = S_ISDIR(sb->st_mode);
    return json_pack("{s:s, s:I, s:s, s:b}", "key", key, "size_bytes",
                     (json_int_t)(dir ? 0 : sb->st_size), "modified", mod, "is_dir", dir);
}

int sfs_m_stat(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *key, *leaf;
    int dirfd;
    struct stat sb;
    if (sfs_param_key(call, params, "key", &key) < 0 ||
        sfs_open_parent(call, we_plugin_state(call), key, SFS_WALK_READ, &dirfd, &leaf) != 0)
        return -1;
    int rc = sfs_leaf_stat(call, dirfd, leaf, key, &sb);
    close(dirfd);
    if (rc == 1)
        return sfs_fail_not_found(call, key);
    if (rc < 0)
        return -1;
    *result = stat_json(key, &sb);
    return 0;
}

int sfs_m_checksum(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *key;
    struct stat sb;
    sfs_written w;
    if (sfs_param_key(call, params, "key", &key) < 0)
        return -1;
    int fd = sfs_open_key(call, we_plugin_state(call), key, &sb);
    if (fd < 0)
        return -1;
    int rc = sfs_hash_fd(call, fd, key, &w);
    close(fd);
    if (rc == 0)
        *result = json_pack("{s:s, s:s, s:I}", "key", key, "sha256", w.sha256, "size_bytes",
                            (json_int_t)w.size);
    return rc;
}

/* create_parent: an optional boolean. */
static int param_bool(we_plugin_call *call, json_t *params, const char *field, bool *out)
{
    json_t *v = json_object_get(params, field);
    if (v && !json_is_null(v) && !json_is_boolean(v))
        return we_plugin_fail_params(call, "%s: must be a boolean", field);
    *out = json_is_true(v);
    return 0;
}

int sfs_m_local_path(we_plugin_call *call, json_t *params, json_t **result)
{
    const sfs_state *st = we_plugin_state(call);
    const char *key, *leaf;
    bool create = false;
    int dirfd;
    struct stat sb;
    if (sfs_param_key(call, params, "key", &key) < 0 ||
        param_bool(call, params, "create_parent", &create) < 0)
        return -1;
    int rc = sfs_open_parent(call, st, key, create ? SFS_WALK_CREATE : SFS_WALK_PROBE, &dirfd,
                             &leaf);
    if (rc < 0)
        return -1;
    if (rc == 0) { /* the directory exists: the leaf may not be a link */
        rc = sfs_leaf_stat(call, dirfd, leaf, key, &sb);
        close(dirfd);
        if (rc < 0)
            return -1;
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%s", st->root, key) < 0)
        return sfs_fail_io(call, "cannot build the path of", key, ENOMEM);
    *result = json_pack("{s:s, s:s, s:b}", "key", key, "path", path, "exists", rc == 0);
    free(path);
    return 0;
}

static int delete_key(we_plugin_call *call, const char *key, json_t **result)
{
    const char *leaf;
    int dirfd;
    struct stat sb;
    int rc = sfs_open_parent(call, we_plugin_state(call), key, SFS_WALK_PROBE, &dirfd, &leaf);
    if (rc == 0) {
        rc = sfs_leaf_stat(call, dirfd, leaf, key, &sb);
        if (rc == 0 && S_ISDIR(sb.st_mode))
            rc = sfs_fail_conflict(call, key, "is a directory; delete it with {prefix}");
        if (rc == 0 && unlinkat(dirfd, leaf, 0) < 0)
            rc = errno == ENOENT ? 1 : sfs_fail_io(call, "cannot delete", key, errno);
        close(dirfd);
    }
    if (rc < 0)
        return -1;
    *result = json_pack("{s:s, s:b}", "key", key, "deleted", rc == 0);
    return 0;
}

/* {key} deletes one key (idempotent: {deleted:false} when it was not there);
 * {prefix} every key under it. */
int sfs_m_delete(we_plugin_call *call, json_t *params, json_t **result)
{
    json_t *prefix = json_object_get(params, "prefix");
    const char *key;
    if (json_object_get(params, "key") && prefix)
        return we_plugin_fail_params(call, "key, prefix: give one of them, not both");
    if (!prefix)
        return sfs_param_key(call, params, "key", &key) < 0 ? -1 : delete_key(call, key, result);
    if (!json_is_string(prefix))
        return we_plugin_fail_params(call, "prefix: must be a string");
    char why[128];
    if (!sfs_prefix_valid(json_string_value(prefix), json_string_length(prefix), false, why,
                          sizeof why)) {
        char shown[160];
        sfs_display(json_string_value(prefix), json_string_length(prefix), shown, sizeof shown);
        return we_plugin_fail(call, "WE-STO-001", false, "invalid prefix \"%s\": %s", shown, why);
    }
    return sfs_delete_prefix(call, json_string_value(prefix), result);
}
