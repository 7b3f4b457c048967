/*
 * auth-basic: WebEncode's built-in users and API tokens, kept in PostgreSQL
 * (tables users and api_tokens of migration 0001). See README.md for the
 * methods and ab.h for the error codes.
 *
 * Calls run on the SDK's pool threads. They share one database connection
 * (db.c, behind a mutex) and otherwise only read the state built at init;
 * password hashing, the slow part, runs on the calling thread outside any
 * lock.
 */
#include "ab.h"

static const we_plugin_method methods[] = {
    { "auth.authenticate", ab_m_authenticate },
    { "auth.authorize", ab_m_authorize },
    { "auth.user_create", ab_m_user_create },
    { "auth.user_delete", ab_m_user_delete },
    { "auth.user_list", ab_m_user_list },
    { "auth.user_set_password", ab_m_user_set_password },
    { "auth.user_update", ab_m_user_update },
    { "auth.token_create", ab_m_token_create },
    { "auth.token_revoke", ab_m_token_revoke },
    { "auth.token_list", ab_m_token_list },
    { NULL, NULL },
};

static const we_plugin_def def = {
    .id = "auth-basic",
    .type = "auth",
    .version = "0.1.0",
    .description = "Users with scrypt-hashed passwords and API tokens, stored in PostgreSQL.",
    .methods = methods,
    .init = ab_init,
    .fini = ab_fini,
    .health = ab_health,
    .capabilities_json = "{\"passwords\":true,\"api_tokens\":true,\"user_management\":true}",
    .max_concurrency = 4,
};

int main(int argc, char **argv)
{
    return we_plugin_serve(&def, argc, argv);
}
