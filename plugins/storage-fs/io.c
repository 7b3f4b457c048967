/*
 * Atomic writes and streaming SHA-256.
 *
 * A write goes to a new file named SFS_TMP_PREFIX<pid>-<n>-<nonce> in the
 * target's own directory (created O_EXCL | O_NOFOLLOW), is fsynced, renamed
 * over the target and the directory fsynced: a reader, a crash or a
 * concurrent writer of the same key sees either the old file or one whole new
 * one, never a mix. The rename replaces a directory entry; it never writes
 * through a link. Data moves in 1 MiB chunks, hashed on the way, and the
 * call's cancellation/deadline is checked between chunks.
 */
#include "sfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static atomic_uint tmp_counter;

static int tmp_create(int dirfd, char tmp[64])
{
    for (int i = 0; i < 100; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(tmp, 64, SFS_TMP_PREFIX "%ld-%u-%lx", (long)getpid(),
                 atomic_fetch_add(&tmp_counter, 1), (unsigned long)ts.tv_nsec);
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The next chunk of src: its length (0 at the end, -1 on a read error). */
static ssize_t next_chunk(const sfs_src *src, size_t *off, uint8_t *buf, const uint8_t **data)
{
    if (src->fd < 0) {
        size_t n = src->len - *off < CHUNK ? src->len - *off : CHUNK;
        *data = src->buf + *off;
        *off += n;
        return (ssize_t)n;
    }
    ssize_t n;
    do
        n = read(src->fd, buf, CHUNK);
    while (n < 0 && errno == EINTR);
    *data = buf;
    return n;
}

/* Moves src into out (out < 0: hash only). */
static int pump(we_plugin_call *call, const sfs_src *src, int out, const char *display,
                sfs_written *w)
{
    sfs_sha256 sha;
    size_t off = 0;
    const uint8_t *data;
    uint8_t *buf = src->fd >= 0 ? malloc(CHUNK) : NULL;
    int rc = -1;
    if (src->fd >= 0 && !buf)
        return sfs_fail_io(call, "cannot copy", display, ENOMEM);
    sfs_sha256_init(&sha);
    w->size = 0;
    for (;;) {
        if (we_plugin_cancelled(call)) {
            we_plugin_fail_code(call, WE_RPC_CANCELLED, "cancelled while copying %s", display);
            goto done;
        }
        ssize_t n = next_chunk(src, &off, buf, &data);
        if (n < 0) {
            sfs_fail_io(call, "cannot read", src->name, errno);
            goto done;
        }
        if (n == 0)
            break;
        if (out >= 0 && write_all(out, data, (size_t)n) < 0) {
            sfs_fail_io(call, "cannot write", display, errno);
            goto done;
        }
        sfs_sha256_update(&sha, data, (size_t)n);
        w->size += n;
    }
    sfs_sha256_hex(&sha, w->sha256);
    rc = 0;
done:
    free(buf);
    return rc;
}

static int finish_tmp(we_plugin_call *call, int fd, const char *display)
{
    int rc = 0;
    if (fsync(fd) < 0)
        rc = sfs_fail_io(call, "cannot fsync", display, errno);
    if (close(fd) < 0 && rc == 0)
        rc = sfs_fail_io(call, "cannot write", display, errno);
    return rc;
}

static int rename_tmp(we_plugin_call *call, int dirfd, const char *tmp, const char *name,
                      const char *display)
{
    if (renameat(dirfd, tmp, dirfd, name) == 0)
        return 0;
    if (errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST)
        return we_plugin_fail(call, "WE-STO-409", false, "\"%s\" is a directory", display);
    return sfs_fail_io(call, "cannot rename into place", display, errno);
}

int sfs_atomic_write(we_plugin_call *call, int dirfd, const char *name, const char *display,
                     const sfs_src *src, sfs_written *out)
{
    char tmp[64];
    int fd = tmp_create(dirfd, tmp);
    if (fd < 0)
        return sfs_fail_io(call, "cannot create a temporary file for", display, errno);
    int rc = pump(call, src, fd, display, out);
    if (rc == 0)
        rc = finish_tmp(call, fd, display);
    else
        close(fd);
    if (rc == 0)
        rc = rename_tmp(call, dirfd, tmp, name, display);
    if (rc < 0) {
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    if (fsync(dirfd) < 0) /* the file is in place; its name may not be durable yet */
        return sfs_fail_io(call, "cannot fsync the directory of", display, errno);
    return 0;
}

int sfs_hash_fd(we_plugin_call *call, int fd, const char *display, sfs_written *out)
{
    sfs_src src = { .fd = fd, .name = display };
    return pump(call, &src, -1, display, out);
}
