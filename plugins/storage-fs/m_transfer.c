/*
 * storage.put and storage.get: bytes in and out of the store, both atomic on
 * the side they write (io.c) and both answering with the SHA-256 of what
 * moved.
 *
 * source_path and dest_path are paths on this machine given by the trusted
 * host (kernel or worker), not by users: they must be absolute, and ordinary
 * path resolution applies to them (a host's /tmp may well be a link). Only
 * keys are confined to the root.
 */
#include "sfs.h"

#include <webencode/base64.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int path_param(we_plugin_call *call, json_t *v, const char *field, const char **out)
{
    if (!json_is_string(v))
        return we_plugin_fail_params(call, "%s: must be a string", field);
    const char *s = json_string_value(v);
    if (s[0] != '/' || strlen(s) != json_string_length(v))
        return we_plugin_fail_params(call, "%s: must be an absolute path", field);
    *out = s;
    return 0;
}

static int open_source(we_plugin_call *call, json_t *v, sfs_src *src)
{
    const char *path;
    struct stat sb;
    if (path_param(call, v, "source_path", &path) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
        return we_plugin_fail_params(call, "source_path: %s does not exist", path);
    if (fd < 0)
        return sfs_fail_io(call, "cannot open source_path", path, errno);
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return we_plugin_fail_params(call, "source_path: %s is not a regular file", path);
    }
    src->fd = fd;
    src->name = path;
    return 0;
}

static int decode_inline(we_plugin_call *call, json_t *v, sfs_src *src, uint8_t **owned)
{
    if (!json_is_string(v))
        return we_plugin_fail_params(call, "data_base64: must be a string");
    size_t len = json_string_length(v), cap = len / 4 * 3 + 3, n;
    if (len > (size_t)SFS_INLINE_MAX / 3 * 4 + 8)
        return we_plugin_fail_params(call, "data_base64: more than %d bytes; use source_path",
                                     SFS_INLINE_MAX);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return sfs_fail_io(call, "cannot decode", "data_base64", ENOMEM);
    if (we_b64_decode(json_string_value(v), len, 0, buf, cap, &n) < 0 || n > SFS_INLINE_MAX) {
        free(buf);
        return we_plugin_fail_params(call, "data_base64: not base64, or over %d bytes",
                                     SFS_INLINE_MAX);
    }
    *src = (sfs_src){ .fd = -1, .buf = buf, .len = n, .name = "data_base64" };
    *owned = buf;
    return 0;
}

static int put_source(we_plugin_call *call, json_t *params, sfs_src *src, uint8_t **owned)
{
    json_t *path = json_object_get(params, "source_path");
    json_t *data = json_object_get(params, "data_base64");
    if (!path == !data)
        return we_plugin_fail_params(call, "source_path, data_base64: give exactly one");
    return path ? open_source(call, path, src) : decode_inline(call, data, src, owned);
}

/* Creates parent directories, refuses a directory or a link at the key. */
static int put_target(we_plugin_call *call, const char *key, int *dirfd, const char **leaf)
{
    struct stat sb;
    if (sfs_open_parent(call, we_plugin_state(call), key, SFS_WALK_CREATE, dirfd, leaf) != 0)
        return -1;
    int rc = sfs_leaf_stat(call, *dirfd, *leaf, key, &sb);
    if (rc == 0 && S_ISDIR(sb.st_mode))
        rc = sfs_fail_conflict(call, key, "is a directory");
    if (rc < 0) {
        close(*dirfd);
        *dirfd = -1;
        return -1;
    }
    return 0;
}

int sfs_m_put(we_plugin_call *call, json_t *params, json_t **result)
{
    sfs_src src = { .fd = -1 };
    uint8_t *owned = NULL;
    const char *key, *leaf;
    int dirfd = -1, rc = -1;
    sfs_written w;
    if (sfs_param_key(call, params, "key", &key) < 0 ||
        put_source(call, params, &src, &owned) < 0 || put_target(call, key, &dirfd, &leaf) < 0)
        goto done;
    if (sfs_atomic_write(call, dirfd, leaf, key, &src, &w) < 0)
        goto done;
    *result = json_pack("{s:s, s:I, s:s}", "key", key, "size_bytes", (json_int_t)w.size,
                        "sha256", w.sha256);
    rc = 0;
done:
    if (dirfd >= 0)
        close(dirfd);
    if (src.fd >= 0)
        close(src.fd);
    free(owned);
    return rc;
}

/* dest_path as an open directory plus the file name within it. */
static int open_dest(we_plugin_call *call, json_t *params, int *dirfd, const char **name)
{
    const char *path;
    if (path_param(call, json_object_get(params, "dest_path"), "dest_path", &path) < 0)
        return -1;
    const char *slash = strrchr(path, '/');
    *name = slash + 1;
    if (!**name || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0)
        return we_plugin_fail_params(call, "dest_path: must name a file");
    char *dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (!dir)
        return sfs_fail_io(call, "cannot open the directory of", path, ENOMEM);
    int rc = 0;
    *dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0 && (errno == ENOENT || errno == ENOTDIR))
        rc = we_plugin_fail_params(call, "dest_path: directory %s does not exist", dir);
    else if (*dirfd < 0)
        rc = sfs_fail_io(call, "cannot open", dir, errno);
    free(dir);
    return rc;
}

int sfs_m_get(we_plugin_call *call, json_t *params, json_t **result)
{
    const char *key, *name;
    struct stat sb;
    sfs_written w;
    int dirfd = -1, rc = -1;
    sfs_src src = { .fd = -1 };
    if (sfs_param_key(call, params, "key", &key) < 0 ||
        open_dest(call, params, &dirfd, &name) < 0)
        goto done;
    if ((src.fd = sfs_open_key(call, we_plugin_state(call), key, &sb)) < 0)
        goto done;
    src.name = key;
    if (sfs_atomic_write(call, dirfd, name, json_string_value(json_object_get(params, "dest_path")),
                         &src, &w) < 0)
        goto done;
    *result = json_pack("{s:s, s:I, s:s}", "key", key, "size_bytes", (json_int_t)w.size,
                        "sha256", w.sha256);
    rc = 0;
done:
    if (dirfd >= 0)
        close(dirfd);
    if (src.fd >= 0)
        close(src.fd);
    return rc;
}
