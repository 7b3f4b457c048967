/*
 * Internals shared by the operations APIs: api_audit.c (/v1/audit),
 * api_errors.c (/v1/errors) and api_notifications.c (/v1/notifications).
 * Not for other kernel files.
 */
#ifndef KN_API_OPS_H
#define KN_API_OPS_H

#include "http.h"

/* 400 WE-SYS-004 "<name>: <why>", details {parameter}. */
enum MHD_Result kn_ops_bad_param(kn_req *r, const char *name, const char *why);
/* 404 WE-SYS-020 "no such <what>". */
enum MHD_Result kn_ops_not_found(kn_req *r, const char *what);

/* A page of a keyset-paginated list whose query asked for limit + 1 rows:
 * {"items":[column 0 of the first `limit` rows (JSON text)], "next_cursor":
 * the cursor of row limit - 1 (columns ts_col, id_col) when there are more,
 * else null} followed by `extra` (",\"name\":value…" JSON text, or NULL). */
enum MHD_Result kn_ops_reply_page(kn_req *r, PGresult *res, long long limit, int ts_col,
                                  int id_col, const char *extra);

/* The cursor of the last row of a page, or NULL when the result holds no
 * more than limit rows (heap; free it). */
char *kn_ops_next_cursor(PGresult *res, long long limit, int ts_col, int id_col);

#endif
