/*
 * Configuration from environment variables or a `.env` file (runbook: "via
 * Environment Variables or .env file"). The environment wins over the file.
 * Every getter validates its value; a bad one produces an error that names
 * the variable, and the binary stops with it.
 */
#ifndef WE_CONFIG_H
#define WE_CONFIG_H

#include "we_err.h"

#include <stdbool.h>

/* Loads KEY=VALUE lines from path into the environment for keys that are not
 * already set. Blank lines and `#` comments are skipped, `export ` prefixes
 * and matching single/double quotes around values are accepted. A missing
 * file is not an error (returns 0); a malformed line is (names file:line). */
int we_env_load_file(const char *path, we_err *err);

/* Loads the file named by WEBENCODE_ENV_FILE, else ./.env. */
int we_env_load_default(we_err *err);

/* Value of name, or def when unset or empty. Never NULL unless def is. */
const char *we_cfg_str(const char *name, const char *def);

/* Integer in [min, max]; error names the variable and the allowed range. */
int we_cfg_int(const char *name, long def, long min, long max, long *out, we_err *err);

/* Boolean: 1/0, true/false, yes/no, on/off. */
int we_cfg_bool(const char *name, bool def, bool *out, we_err *err);

/* A URL whose scheme is one of the NULL-terminated list `schemes`. */
int we_cfg_url(const char *name, const char *def, const char *const *schemes, const char **out,
               we_err *err);

/* The log level from LOG_LEVEL (default info). */
int we_cfg_log_level(int *out, we_err *err);

#endif
