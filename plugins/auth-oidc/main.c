/*
 * auth-oidc: WebEncode users from an OpenID Connect provider (Keycloak,
 * Auth0, Okta, …). auth.authenticate verifies a JWT access token against
 * the issuer's published keys (discovery + JWKS, cached and refreshed) and
 * maps its claims to a user and a role. See README.md for configuration,
 * methods and role mapping, and ao.h for the error codes.
 *
 * Calls run on the SDK's pool threads (up to 4 at once). They share the
 * provider's key cache (provider.c) and, when database_url is set, one
 * database connection (db.c); a refresher thread keeps the keys fresh.
 */
#include "ao.h"

static const we_plugin_method methods[] = {
    {"auth.authenticate", ao_m_authenticate},
    {"auth.authorize", ao_m_authorize},
    {NULL, NULL},
};

static const we_plugin_def def = {
    .id = "auth-oidc",
    .type = "auth",
    .version = "0.1.0",
    .description = "JWT access tokens from an OpenID Connect provider (discovery + JWKS).",
    .methods = methods,
    .init = ao_init,
    .fini = ao_fini,
    .health = ao_health,
    .capabilities_json = "{\"bearer_jwt\":true,\"algorithms\":[\"RS256\",\"PS256\",\"ES256\","
                         "\"ES384\"],\"user_management\":false}",
    .max_concurrency = 4,
};

int main(int argc, char **argv)
{
    return we_plugin_serve(&def, argc, argv);
}
