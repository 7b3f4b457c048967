/*
 * WebEncode plugin SDK — base64 (RFC 4648 §4) and base64url (§5), strict:
 * no whitespace, no character outside the alphabet, bounded output. Used
 * for password-hash fields and API tokens (auth-basic), JWT segments
 * (auth-oidc) and storage.put's data_base64 (storage-fs).
 *
 * Pure functions, no state: safe on any thread.
 */
#ifndef WEBENCODE_BASE64_H
#define WEBENCODE_BASE64_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of we_b64_encode / we_b64_decode. */
#define WE_B64_URL 1u   /* the URL-safe alphabet: '-' and '_' for '+' and '/' */
#define WE_B64_NOPAD 2u /* decode: refuse '=' padding (JWS, RFC 7515 §2) */

/* Encodes len bytes of in without padding into out (the caller's,
 * 4 * ceil(len / 3) + 1 bytes suffice), NUL-terminated. Returns the length. */
size_t we_b64_encode(const uint8_t *in, size_t len, unsigned flags, char *out);
/* Decodes len characters of in into out (at most cap bytes): padding
 * optional unless WE_B64_NOPAD. 0 with *out_len, or -1 on a character
 * outside the alphabet, bad padding, a bad length (4k + 1), or more than
 * cap bytes. */
int we_b64_decode(const char *in, size_t len, unsigned flags, uint8_t *out, size_t cap,
                  size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif
