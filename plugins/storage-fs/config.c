/*
 * storage-fs configuration: the handshake's config object, checked and
 * turned into an sfs_state (owned by the SDK until fini).
 *
 * Each field comes from the config object, else the environment variable
 * plugin.toml names (the host normally fills it in already), else the
 * default. A relative root is resolved against WEBENCODE_HOST_CWD, the
 * host's own working directory, when the host sets it — the host starts a
 * plugin in the plugin's directory, so "./var/storage" would otherwise land
 * inside PLUGIN_DIR/storage-fs/ — and against the plugin's working directory
 * otherwise. The root is created (0755) unless create_root is false, then
 * canonicalised with realpath(), so every later check compares real paths.
 * browse_roots are canonicalised too; one that does not exist is skipped
 * with a warning (it may be mounted later: reload the plugin).
 */
#include "sfs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A string field: config, else environment, else default; -1 on a wrong type. */
static int cfg_string(json_t *cfg, const char *field, const char *env, const char *dflt,
                      const char **out, char *err, size_t err_len)
{
    json_t *v = json_object_get(cfg, field);
    if (v && !json_is_null(v) && !json_is_string(v)) {
        snprintf(err, err_len, "%s: must be a string", field);
        return -1;
    }
    if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, err_len, "%s: contains a NUL character", field);
        return -1;
    }
    *out = json_is_string(v) ? json_string_value(v) : getenv(env) ? getenv(env) : dflt;
    return 0;
}

static int cfg_bool(json_t *cfg, const char *field, bool dflt, bool *out, char *err,
                    size_t err_len)
{
    json_t *v = json_object_get(cfg, field);
    if (v && !json_is_null(v) && !json_is_boolean(v)) {
        snprintf(err, err_len, "%s: must be a boolean", field);
        return -1;
    }
    *out = json_is_boolean(v) ? json_is_true(v) : dflt;
    return 0;
}

/* root made absolute (see the file comment); malloc'd, or NULL. */
static char *absolute_root(const char *root)
{
    char cwd[PATH_MAX], *out = NULL;
    if (root[0] == '/')
        return strdup(root);
    const char *base = getenv("WEBENCODE_HOST_CWD");
    if (!base || base[0] != '/')
        base = getcwd(cwd, sizeof cwd);
    if (base && asprintf(&out, "%s/%s", base, root) < 0)
        out = NULL;
    return out;
}

/* mkdir -p with mode 0755; path is modified and restored. */
static int mkdir_p(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = saved;
        if (rc < 0 && errno != EEXIST)
            return -1;
        if (saved == '\0')
            return 0;
    }
}

static int setup_root(sfs_state *st, const char *root, bool create, char *err, size_t err_len)
{
    char *abs = absolute_root(root);
    int rc = -1;
    if (!abs) {
        snprintf(err, err_len, "root: cannot make \"%s\" absolute", root);
        return -1;
    }
    if (create && mkdir_p(abs) < 0) {
        snprintf(err, err_len, "root: cannot create %s: %s", abs, strerror(errno));
        goto done;
    }
    st->root = realpath(abs, NULL);
    struct stat sb;
    if (!st->root || stat(st->root, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, err_len, "root: %s is not a directory%s", abs,
                 create ? "" : " (and create_root is false)");
        goto done;
    }
    if (!sfs_utf8_valid(st->root, strlen(st->root))) {
        snprintf(err, err_len, "root: the path is not valid UTF-8");
        goto done;
    }
    rc = 0;
done:
    free(abs);
    return rc;
}

static int add_browse_root(sfs_state *st, const char *dir, char *err, size_t err_len)
{
    if (dir[0] != '/') {
        snprintf(err, err_len, "browse_roots: \"%s\" is not an absolute path", dir);
        return -1;
    }
    char *real = realpath(dir, NULL);
    if (!real || !sfs_utf8_valid(real, strlen(real))) {
        we_plugin_log("warn", "browse root skipped: not found or not UTF-8",
                      json_pack("{s:s}", "path", dir));
        free(real);
        return 0;
    }
    char **nb = realloc(st->browse, (st->nbrowse + 1) * sizeof *nb);
    if (!nb) {
        free(real);
        snprintf(err, err_len, "browse_roots: out of memory");
        return -1;
    }
    st->browse = nb;
    st->browse[st->nbrowse++] = real;
    return 0;
}

static int setup_browse(sfs_state *st, const char *list, char *err, size_t err_len)
{
    char *copy = strdup(list), *save = NULL;
    int rc = copy ? 0 : -1;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && rc == 0;
         d = strtok_r(NULL, ":", &save))
        rc = add_browse_root(st, d, err, err_len);
    free(copy);
    return rc;
}

int sfs_init(json_t *config, void **state, char *err, size_t err_len)
{
    const char *root, *browse;
    bool create;
    sfs_state *st = calloc(1, sizeof *st);
    if (!st || cfg_string(config, "root", "STORAGE_FS_ROOT", "./var/storage", &root, err,
                          err_len) < 0)
        goto fail;
    if (cfg_string(config, "browse_roots", "STORAGE_FS_BROWSE_ROOTS", "", &browse, err,
                   err_len) < 0 ||
        cfg_bool(config, "create_root", true, &create, err, err_len) < 0)
        goto fail;
    if (root[0] == '\0') {
        snprintf(err, err_len, "root: must not be empty");
        goto fail;
    }
    if (setup_root(st, root, create, err, err_len) < 0 || setup_browse(st, browse, err, err_len) < 0)
        goto fail;
    we_plugin_log("info", "storage root ready", json_pack("{s:s}", "root", st->root));
    *state = st;
    return 0;
fail:
    sfs_fini(st);
    return -1;
}

void sfs_fini(void *state)
{
    sfs_state *st = state;
    if (!st)
        return;
    for (size_t i = 0; i < st->nbrowse; i++)
        free(st->browse[i]);
    free(st->browse);
    free(st->root);
    free(st);
}

/* Runs on the SDK's main thread: one stat(), no blocking I/O beyond it. */
bool sfs_health(void *state, const char **detail)
{
    const sfs_state *st = state;
    struct stat sb;
    if (st && stat(st->root, &sb) == 0 && S_ISDIR(sb.st_mode))
        return true;
    *detail = "storage root is not accessible";
    return false;
}
