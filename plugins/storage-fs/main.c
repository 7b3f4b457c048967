/*
 * storage-fs: WebEncode's storage plugin for a local (or shared, mounted at
 * the same path everywhere) directory. Keys are files under the root; see
 * README.md for the methods and sfs.h for the error codes.
 *
 * The SDK runs calls on a pool of threads; every method works on file
 * descriptors it opens and closes itself and reads only the immutable state
 * built at init, so calls need no locking. Concurrent puts of one key each
 * write their own temporary file and the last rename wins, whole.
 */
#include "sfs.h"

static const we_plugin_method methods[] = {
    { "storage.capabilities", sfs_m_capabilities },
    { "storage.stat", sfs_m_stat },
    { "storage.put", sfs_m_put },
    { "storage.get", sfs_m_get },
    { "storage.delete", sfs_m_delete },
    { "storage.list", sfs_m_list },
    { "storage.browse", sfs_m_browse },
    { "storage.local_path", sfs_m_local_path },
    { "storage.checksum", sfs_m_checksum },
    { NULL, NULL },
};

static const we_plugin_def def = {
    .id = "storage-fs",
    .type = "storage",
    .version = "0.1.0",
    .description = "Keys as files under one directory (STORAGE_FS_ROOT), for local or shared disks.",
    .methods = methods,
    .init = sfs_init,
    .fini = sfs_fini,
    .health = sfs_health,
    .capabilities_json = "{\"local_paths\":true,\"browse\":true,\"presign\":false}",
    .max_concurrency = 8,
};

int main(int argc, char **argv)
{
    return we_plugin_serve(&def, argc, argv);
}
