/*
 * storage-fs internals shared by the plugin's files (not a public header).
 *
 * Pure parts with no I/O and no SDK calls — key rules (keys.c), SHA-256
 * (sha256.c) — are unit-tested by including their .c files from
 * tests/unit/test_storage_fs.c. Everything else talks to the
 * filesystem and reports errors through the SDK's we_plugin_fail().
 *
 * Error codes of this plugin (data.we_code):
 *   WE-STO-001  invalid key / prefix, or a path through a symbolic link
 *   WE-STO-403  storage.browse outside the root and browse_roots
 *   WE-STO-404  no such key (or browse path)
 *   WE-STO-409  the key is a directory, or a file stands where a directory must be
 *   WE-STO-500  I/O error (retryable)
 */
#ifndef STORAGE_FS_SFS_H
#define STORAGE_FS_SFS_H

#include <webencode/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#define SFS_KEY_MAX 1024
/* Names of in-progress writes; a key segment may not start with it. */
#define SFS_TMP_PREFIX ".we-tmp-"
#define SFS_INLINE_MAX (8 * 1024 * 1024) /* storage.put data_base64, decoded */
#define SFS_LIST_DEFAULT 1000
#define SFS_LIST_MAX 10000
#define SFS_BROWSE_MAX 10000

/* ---- keys.c (pure) ------------------------------------------------------ */

/* True when key[0..len) is a valid storage key (docs/plugin-protocol.md §6
 * plus: valid UTF-8, no control characters, no empty segment, at most
 * SFS_KEY_MAX bytes, no segment starting with SFS_TMP_PREFIX). Otherwise
 * false with the reason (a phrase, e.g. "has a \"..\" segment") in why. */
bool sfs_key_valid(const char *key, size_t len, char *why, size_t why_len);
/* A list/delete prefix: a key, optionally ending with one '/'; the empty
 * string only when allow_empty. */
bool sfs_prefix_valid(const char *prefix, size_t len, bool allow_empty, char *why,
                      size_t why_len);
/* True when name (a directory entry) may be one segment of a key. */
bool sfs_segment_valid(const char *name, size_t len);
/* True when s[0..len) is valid UTF-8. */
bool sfs_utf8_valid(const char *s, size_t len);
/* Copies s[0..len) into out as printable UTF-8 for messages: control
 * characters and invalid bytes become \xNN, long text is cut with "…". */
void sfs_display(const char *s, size_t len, char *out, size_t out_len);

/* ---- sha256.c (pure) ---------------------------------------------------- */

typedef struct sfs_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t n;
} sfs_sha256;

void sfs_sha256_init(sfs_sha256 *s);
void sfs_sha256_update(sfs_sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits and a NUL. */
void sfs_sha256_hex(sfs_sha256 *s, char out[65]);

/* ---- config.c ----------------------------------------------------------- */

typedef struct sfs_state {
    char *root;    /* realpath of the storage root */
    char **browse; /* realpaths of the browse roots */
    size_t nbrowse;
} sfs_state;

int sfs_init(json_t *config, void **state, char *err, size_t err_len);
void sfs_fini(void *state);
bool sfs_health(void *state, const char **detail);

/* ---- resolve.c: keys to file descriptors, never through a symlink ------- */

enum sfs_walk {
    SFS_WALK_READ,   /* a missing directory: WE-STO-404 */
    SFS_WALK_CREATE, /* missing directories are created (0755) */
    SFS_WALK_PROBE,  /* a missing directory: return 1, no error */
};

/* Reads params[field] as a key; fails the call (WE-STO-001 / -32602). */
int sfs_param_key(we_plugin_call *call, json_t *params, const char *field, const char **key);
/* Opens the directory that holds key's last segment by walking from the
 * root with O_NOFOLLOW: 0 with *dirfd (caller closes) and *leaf (points into
 * key); 1 when a directory is missing in SFS_WALK_PROBE mode; -1 failed. */
int sfs_open_parent(we_plugin_call *call, const sfs_state *st, const char *key,
                    enum sfs_walk mode, int *dirfd, const char **leaf);
/* lstat of the leaf: 0 found, 1 missing, -1 failed (a symlink: WE-STO-001). */
int sfs_leaf_stat(we_plugin_call *call, int dirfd, const char *leaf, const char *key,
                  struct stat *sb);
/* Opens a key's regular file for reading: fd, or -1 failed. */
int sfs_open_key(we_plugin_call *call, const sfs_state *st, const char *key, struct stat *sb);

int sfs_fail_io(we_plugin_call *call, const char *what, const char *name, int err);
int sfs_fail_not_found(we_plugin_call *call, const char *key);
int sfs_fail_conflict(we_plugin_call *call, const char *key, const char *why);
int sfs_fail_symlink(we_plugin_call *call, const char *key, const char *name);
/* "2026-11-28T20:00:00Z" */
void sfs_rfc3339(time_t t, char out[32]);

/* ---- io.c: atomic writes with SHA-256 ----------------------------------- */

/* Where bytes come from: an open file, or a buffer when fd < 0. */
typedef struct sfs_src {
    int fd;
    const uint8_t *buf;
    size_t len;
    const char *name; /* for errors */
} sfs_src;

typedef struct sfs_written {
    int64_t size;
    char sha256[65];
} sfs_written;

/* Writes src into a new temporary file in dirfd, fsyncs it, renames it to
 * name and fsyncs the directory: readers see the old file or the whole new
 * one. display names the object in errors. */
int sfs_atomic_write(we_plugin_call *call, int dirfd, const char *name, const char *display,
                     const sfs_src *src, sfs_written *out);
/* Hashes an open file to the end. */
int sfs_hash_fd(we_plugin_call *call, int fd, const char *display, sfs_written *out);

/* ---- methods ------------------------------------------------------------ */

int sfs_m_capabilities(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_stat(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_checksum(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_local_path(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_delete(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_put(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_get(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_list(we_plugin_call *call, json_t *params, json_t **result);
int sfs_m_browse(we_plugin_call *call, json_t *params, json_t **result);
/* storage.delete {prefix}: removes every key that starts with prefix. */
int sfs_delete_prefix(we_plugin_call *call, const char *prefix, json_t **result);

#endif
