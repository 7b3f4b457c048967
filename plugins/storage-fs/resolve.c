/*
 * From a key to file descriptors, without ever following a symbolic link.
 *
 * The walk opens the root (a realpath, fixed at init), then each directory
 * segment of the key with openat(O_DIRECTORY | O_NOFOLLOW) relative to the
 * previous one, and the last segment is only ever used with *at() calls on
 * that directory fd with AT_SYMLINK_NOFOLLOW / O_NOFOLLOW. So a symbolic link
 * anywhere in a key — pointing outside the root or not — is refused with
 * WE-STO-001, and a link swapped in while we walk is refused too (no
 * check-then-use race on the path). Refusing every link, even one that stays
 * inside the root, keeps the rule simple and the proof local.
 *
 * Also the error helpers every method uses, so messages read the same.
 */
#include "sfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sfs_fail_io(we_plugin_call *call, const char *what, const char *name, int err)
{
    char buf[128];
    const char *msg = strerror_r(err, buf, sizeof buf); /* GNU variant */
    return we_plugin_fail(call, "WE-STO-500", true, "%s \"%s\": %s", what, name, msg);
}

int sfs_fail_not_found(we_plugin_call *call, const char *key)
{
    return we_plugin_fail(call, "WE-STO-404", false, "key not found: %s", key);
}

int sfs_fail_conflict(we_plugin_call *call, const char *key, const char *why)
{
    return we_plugin_fail(call, "WE-STO-409", false, "key \"%s\": %s", key, why);
}

int sfs_fail_symlink(we_plugin_call *call, const char *key, const char *name)
{
    return we_plugin_fail(call, "WE-STO-001", false,
                          "invalid key \"%s\": escapes the storage root through symbolic link "
                          "\"%s\" (symbolic links are refused)",
                          key, name);
}

void sfs_rfc3339(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int sfs_param_key(we_plugin_call *call, json_t *params, const char *field, const char **key)
{
    json_t *v = json_object_get(params, field);
    char why[128], shown[160];
    if (!json_is_string(v))
        return we_plugin_fail_params(call, "%s: required, a string", field);
    if (!sfs_key_valid(json_string_value(v), json_string_length(v), why, sizeof why)) {
        sfs_display(json_string_value(v), json_string_length(v), shown, sizeof shown);
        return we_plugin_fail(call, "WE-STO-001", false, "invalid key \"%s\": %s", shown, why);
    }
    *key = json_string_value(v);
    return 0;
}

static int open_subdir(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Why a segment would not open: -1 with the call failed, or -2 for
 * "missing" in probe mode. A file where a directory should be means the key
 * cannot exist (404 / missing) unless we were asked to create it (409). */
static int step_error(we_plugin_call *call, int dirfd, const char *name, const char *key,
                      enum sfs_walk mode, int err)
{
    struct stat sb;
    if (err == ELOOP || err == ENOTDIR) {
        if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
            return sfs_fail_symlink(call, key, name);
        if (mode == SFS_WALK_CREATE)
            return sfs_fail_conflict(call, key, "a file stands where a directory must be");
        err = ENOENT;
    }
    if (err == ENOENT)
        return mode == SFS_WALK_PROBE ? -2 : sfs_fail_not_found(call, key);
    return sfs_fail_io(call, "cannot open directory", name, err);
}

static int step(we_plugin_call *call, int dirfd, const char *name, const char *key,
                enum sfs_walk mode)
{
    int fd = open_subdir(dirfd, name);
    if (fd < 0 && errno == ENOENT && mode == SFS_WALK_CREATE) {
        if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
            return sfs_fail_io(call, "cannot create directory", name, errno);
        fd = open_subdir(dirfd, name);
    }
    return fd >= 0 ? fd : step_error(call, dirfd, name, key, mode, errno);
}

int sfs_open_parent(we_plugin_call *call, const sfs_state *st, const char *key,
                    enum sfs_walk mode, int *dirfd, const char **leaf)
{
    char name[SFS_KEY_MAX + 1];
    const char *seg = key, *slash;
    int cur = open(st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
        return sfs_fail_io(call, "cannot open storage root", st->root, errno);
    while ((slash = strchr(seg, '/')) != NULL) {
        memcpy(name, seg, (size_t)(slash - seg));
        name[slash - seg] = '\0';
        int next = step(call, cur, name, key, mode);
        close(cur);
        if (next < 0)
            return next == -2 ? 1 : -1;
        cur = next;
        seg = slash + 1;
    }
    *dirfd = cur;
    *leaf = seg;
    return 0;
}

int sfs_leaf_stat(we_plugin_call *call, int dirfd, const char *leaf, const char *key,
                  struct stat *sb)
{
    if (fstatat(dirfd, leaf, sb, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 1 : sfs_fail_io(call, "cannot stat", key, errno);
    if (S_ISLNK(sb->st_mode))
        return sfs_fail_symlink(call, key, leaf);
    return 0;
}

/* O_NONBLOCK so a FIFO planted in the root cannot hang the call; regular
 * files ignore it. */
static int open_leaf(we_plugin_call *call, int dirfd, const char *leaf, const char *key)
{
    int fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    struct stat sb;
    if (errno == ELOOP && fstatat(dirfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
        return sfs_fail_symlink(call, key, leaf);
    return errno == ENOENT ? sfs_fail_not_found(call, key)
                           : sfs_fail_io(call, "cannot open", key, errno);
}

int sfs_open_key(we_plugin_call *call, const sfs_state *st, const char *key, struct stat *sb)
{
    int dirfd, fd;
    const char *leaf;
    if (sfs_open_parent(call, st, key, SFS_WALK_READ, &dirfd, &leaf) != 0)
        return -1;
    fd = open_leaf(call, dirfd, leaf, key);
    close(dirfd);
    if (fd < 0)
        return -1;
    if (fstat(fd, sb) < 0) {
        int err = errno;
        close(fd);
        return sfs_fail_io(call, "cannot stat", key, err);
    }
    if (S_ISREG(sb->st_mode))
        return fd;
    close(fd);
    return sfs_fail_conflict(call, key,
                             S_ISDIR(sb->st_mode) ? "is a directory" : "is not a regular file");
}
