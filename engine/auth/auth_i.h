/*
 * auth_i.h - private to engine/auth.
 */
#ifndef M365_AUTH_I_H
#define M365_AUTH_I_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth/auth.h"

struct auth_cert {
	X509 *x509;
	EVP_PKEY *key;
};

/* Fill @st (may be NULL) with @rc, what and hint; returns @rc. */
int auth_status_set(struct auth_status *st, int rc, const char *hint,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Log and describe the last OpenSSL error; returns @rc. */
int auth_ssl_fail(struct auth_status *st, int rc, const char *what);

/* Append @s form-url-encoded (application/x-www-form-urlencoded). */
int auth_form_add(struct buf *b, const char *key, const char *value);

/*
 * POST the form @body to @url and parse a 200 JSON answer into *@out.
 * Errors go through auth_error_parse() / auth_error_transport().
 */
int auth_post_form(struct http *h, const char *url, const char *ca_hint,
		   const struct buf *body, const struct auth_names *names,
		   struct cJSON **out, struct auth_status *st);

#endif
