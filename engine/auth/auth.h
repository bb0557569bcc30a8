/*
 * auth - Entra ID authentication: certificates, client assertions (JWT
 * RS256), app-only access tokens (client secret or certificate), the
 * device-code sign-in of an admin, and the Graph calls of automatic app
 * registration (applications, service principals, admin consent).
 *
 * Pieces:
 *  - struct auth_cert: an X.509 certificate with its RSA private key,
 *    loaded from PEM (one or two files) or PKCS#12, checked (key >= 2048
 *    bits, notBefore/notAfter), generated (self-signed) and saved 0600.
 *  - auth_jwt_assertion(): the client assertion of GRAPH-API.md §1.2.
 *  - struct auth: the app-only token provider for one connection (memory
 *    cache, refresh within 5 minutes of expiry, retry during propagation
 *    after automatic registration).  auth_token_get() and
 *    auth_token_invalidate() are the contract with engine/graph.
 *  - auth_device_login(): device-code flow (GRAPH-API.md §1.6).
 *  - auth_status: every failure is described for people by
 *    auth_error_map(), the one function mapping AADSTS / OAuth2 codes to
 *    -errno plus what failed and the remedy.
 *  - auth_graph_*(): small JSON calls to Graph used by registration and by
 *    'm365-connect test' (organization, applications, servicePrincipals,
 *    appRoleAssignedTo).
 *
 * Thread safety: struct auth may be used from any number of threads
 * (auth_token_get() serialises refreshes; other callers wait).  A struct
 * auth_cert is read-only after loading and may be shared.  The other
 * functions are reentrant.
 * Errors: 0 or -errno.  The -errno of auth_error_map():
 *   -ENXIO tenant not found / malformed, -ENOENT application not found,
 *   -EACCES wrong secret, -EKEYEXPIRED expired secret or certificate,
 *   -EKEYREJECTED certificate not registered / bad signature / key too
 *   short, -ETIME clock skew, -EPROTO malformed assertion, -EREMOTE wrong
 *   cloud, -EINVAL bad request/scope/no credential, -EPERM consent
 *   missing, -EAGAIN throttled, -ELOOP loop detected, -ECANCELED sign-in
 *   declined, -ETIMEDOUT device code expired, -EINPROGRESS pending.
 * Secrets, keys and tokens are never logged.
 */
#ifndef M365_AUTH_H
#define M365_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

struct http;
struct auth;
struct auth_cert;
struct cJSON;

/* Well-known ids (GRAPH-API.md §2). */
#define AUTH_GRAPH_APP_ID "00000003-0000-0000-c000-000000000000"

/* A failure explained for people.  Strings are "" when unknown. */
struct auth_status {
	int rc; /* -errno, 0 = no failure */
	long aadsts; /* first of error_codes, 0 if none */
	long http_status; /* HTTP status of the failing answer, 0 if none */
	char error[48]; /* OAuth2 "error" code */
	char what[1024]; /* what failed */
	char hint[512]; /* the remedy */
	char detail[512]; /* first line of the service's description */
};

/* Names put into the sentences of auth_error_map(). */
struct auth_names {
	const char *tenant;
	const char *client_id;
	const char *thumbprint; /* SHA-1 hex upper case, or NULL */
	const char *connection; /* connection name for 'm365-connect' hints */
};

/**
 * The one mapping of Entra ID token-endpoint errors: @aadsts (0 if none)
 * and OAuth2 @error (may be NULL) to -errno, and fill @st (rc, codes,
 * what, hint; @st->detail is kept).  Returns the -errno.
 */
int auth_error_map(long aadsts, const char *error,
		   const struct auth_names *names, struct auth_status *st);

/**
 * Parse an error body of the token endpoint (GRAPH-API.md §1.4) answered
 * with @http_status and map it with auth_error_map().  A body that is not
 * such JSON gives -EIO (-EAGAIN for 429/503) with the status in @st.
 * Returns the -errno.
 */
int auth_error_parse(long http_status, const char *body,
		     const struct auth_names *names, struct auth_status *st);

/** Fill @st for a transport failure @rc of http_do() against @url
 * (TLS trust, refused connection, timeout).  Returns @rc. */
int auth_error_transport(int rc, const char *url, const char *ca_file,
			 struct auth_status *st);

/* ---- certificates ---- */

#define AUTH_MIN_RSA_BITS 2048

/* Facts about a certificate, for people and for keyCredentials. */
struct auth_cert_info {
	char subject[256]; /* one-line subject, e.g. "CN=m365fs" */
	char thumbprint[41]; /* SHA-1 of DER, hex upper (as Entra) */
	char x5t[32]; /* base64url SHA-1 */
	char x5t_s256[48]; /* base64url SHA-256 */
	int64_t not_before; /* seconds since the epoch */
	int64_t not_after;
	int bits; /* RSA modulus size */
};

/**
 * Load a certificate and its private key from PEM.  @cert_path holds the
 * certificate (and the key when @key_path is NULL or the same file).
 * Returns 0 (caller owns *@out, free with auth_cert_free()), -ENOENT,
 * -EACCES, -EBADMSG (not PEM / no certificate / no key), -EKEYREJECTED
 * (not RSA, or key does not match the certificate); @st explains.
 */
int auth_cert_load_pem(const char *cert_path, const char *key_path,
		       struct auth_cert **out, struct auth_status *st);

/**
 * Load a PKCS#12 (.pfx) file with @password (may be NULL or "").  Errors
 * as auth_cert_load_pem(), plus -EACCES for a wrong password.
 */
int auth_cert_load_pfx(const char *path, const char *password,
		       struct auth_cert **out, struct auth_status *st);

/** Free @c.  NULL is fine. */
void auth_cert_free(struct auth_cert *c);

/** Fill @info about @c. */
void auth_cert_info(const struct auth_cert *c, struct auth_cert_info *info);

/**
 * Check that @c can be used at time @now: RSA key of at least
 * AUTH_MIN_RSA_BITS (-EKEYREJECTED), not yet valid (-EKEYREJECTED) or
 * expired (-EKEYEXPIRED).  Returns 0 or the -errno with @st filled.
 */
int auth_cert_check(const struct auth_cert *c, int64_t now,
		    struct auth_status *st);

/** Append the DER of the certificate to @out. */
int auth_cert_der(const struct auth_cert *c, struct buf *out);

/**
 * Generate a self-signed certificate: RSA @bits (2048 or 3072), SHA-256,
 * subject "CN=@cn", valid from now - 5 minutes for @days days.
 * Returns 0 (caller owns *@out) or -ENOMEM/-EIO/-EINVAL.
 */
int auth_cert_generate(const char *cn, int bits, int days,
		       struct auth_cert **out);

/**
 * Write the certificate (PEM) to @cert_path and the private key (PKCS#8
 * PEM) to @key_path, or both to @cert_path when @key_path is NULL; each
 * file atomically with mode 0600.  Returns 0 or -errno.
 */
int auth_cert_save(const struct auth_cert *c, const char *cert_path,
		   const char *key_path);

/**
 * Build the client assertion for @client_id and token URL @aud at time
 * @now: header {"alg":"RS256","typ":"JWT","x5t":..,"x5t#S256":..},
 * claims aud, iss = sub = client_id, jti (new GUID), nbf = iat = now,
 * exp = now + 600; signed RS256.  Appends the compact JWT to @out.
 */
int auth_jwt_assertion(const struct auth_cert *c, const char *client_id,
		       const char *aud, int64_t now, struct buf *out);

/**
 * Decode the payload (claims) of a JWT @token without checking anything;
 * for reading the "roles" of our own access token.  Caller owns *@out,
 * free with cJSON_Delete().  Returns 0 or -EINVAL.
 */
int auth_jwt_claims(const char *token, struct cJSON **out);

/* ---- app-only tokens ---- */

struct auth_config {
	const char *login_url; /* "https://login.microsoftonline.com" */
	const char *tenant; /* GUID or domain */
	const char *client_id;
	const char *scope; /* "https://graph.microsoft.com/.default" */
	const char *secret; /* client secret (copied), or NULL */
	const struct auth_cert *cert; /* or a certificate (borrowed; must
					 outlive the struct auth) */
	const char *connection; /* name used in hints, may be NULL */
	int propagation_s; /* retry 700016/7000215 with backoff for up to
				this long (0: fail at once) */
	int64_t (*clock)(void); /* seconds since epoch; NULL: util_now */
};

/**
 * Create a token provider over @h (borrowed; must outlive it).  No
 * request is made yet.  Returns 0 (caller owns *@out, free with
 * auth_free()), -EINVAL (missing field) or -ENOMEM.
 */
int auth_new(const struct auth_config *cfg, struct http *h, struct auth **out);

/** Wipe the secret and cached token and free @a.  NULL is fine. */
void auth_free(struct auth *a);

/**
 * Copy the current access token to @token (replacing its content);
 * fetches a new one when none is cached or the cached one expires within
 * 5 minutes.  Thread-safe.  Returns 0 or -errno (auth_last_status()
 * explains).
 */
int auth_token_get(struct auth *a, struct buf *token);

/**
 * A 401 InvalidAuthenticationToken came back for @token: forget it if it
 * is still the cached one, so that the next auth_token_get() fetches a new
 * one.  Thread-safe.
 */
void auth_token_invalidate(struct auth *a, const char *token);

/** Copy the status of the last failed token request (rc 0 if none). */
void auth_last_status(struct auth *a, struct auth_status *st);

/** Seconds since the epoch when the cached token expires, 0 if none. */
int64_t auth_token_expiry(struct auth *a);

/* ---- device code (delegated admin sign-in) ---- */

struct auth_device_prompt {
	const char *user_code;
	const char *verification_uri;
	const char *message; /* the service's sentence, may be NULL */
	int expires_in; /* seconds */
};

/* Called once the code is known: show it to the admin. */
typedef void (*auth_device_fn)(void *ctx,
			       const struct auth_device_prompt *prompt);

/* A delegated token (caller owns the buffers; auth_user_token_release). */
struct auth_user_token {
	struct buf access;
	struct buf refresh;
	int64_t expires_at; /* seconds since the epoch */
};

void auth_user_token_release(struct auth_user_token *t);

/**
 * Run the device-code flow against @login_url/@tenant ("organizations"
 * for any) for public client @client_id and @scopes (space separated):
 * request a code, call @fn, then poll the token endpoint honouring
 * interval, slow_down (+5 s), authorization_pending, and stop on
 * authorization_declined (-ECANCELED), expired_token (-ETIMEDOUT),
 * bad_verification_code (-EINVAL) or any other error.  @max_wait_s (0 =
 * the code's expires_in) bounds the wait.  Fills @tok on success.
 * Returns 0 or -errno with @st filled.
 */
int auth_device_login(struct http *h, const char *login_url, const char *tenant,
		      const char *client_id, const char *scopes,
		      auth_device_fn fn, void *ctx, int max_wait_s,
		      struct auth_user_token *tok, struct auth_status *st);

/**
 * Exchange the refresh token of @tok for a new access token (and refresh
 * token) for @scopes.  Returns 0 or -errno with @st filled.
 */
int auth_device_refresh(struct http *h, const char *login_url,
			const char *tenant, const char *client_id,
			const char *scopes, struct auth_user_token *tok,
			struct auth_status *st);

/* ---- Graph JSON calls (registration and connection tests) ---- */

/**
 * Send @method @graph_url + "/v1.0" + @path with bearer @token and JSON
 * body @body (may be NULL); on 2xx parse the answer into *@out (caller
 * owns, cJSON_Delete(); NULL for 204 or when @out is NULL).  A non-2xx
 * answer returns its -errno with @st filled from the Graph error JSON
 * (code and message in @st->detail, status in @st->http_status).
 * Throttling (429/503 with Retry-After) is waited out by the http layer.
 */
int auth_graph_call(struct http *h, const char *graph_url, const char *token,
		    const char *method, const char *path,
		    const struct cJSON *body, struct cJSON **out,
		    struct auth_status *st);

/* Graph application permissions (app roles) we use. */
struct auth_role {
	const char *name; /* "Sites.Read.All" */
	const char *id; /* app role GUID on Microsoft Graph */
};

/**
 * The app roles needed for services @svc (CONF_SVC_* bits: 1 files,
 * 2 onedrive, 4 mail; read and write since restore writes back), as a
 * static array terminated by {NULL, NULL}; *@n gets the count.
 */
const struct auth_role *auth_roles_needed(unsigned svc, size_t *n);

/** Look a role up by name; NULL when unknown. */
const struct auth_role *auth_role_by_name(const char *name);

/* What automatic registration does, step by step. */
struct auth_reg {
	/* in */
	const char *display_name; /* application name */
	const char *app_id; /* existing appId to reuse, or NULL */
	const struct auth_cert *cert; /* attached when not yet present */
	unsigned services; /* CONF_SVC_* */
	/* out */
	char app_id_out[37]; /* appId (client_id) */
	char app_object_id[37]; /* application object id */
	char sp_id[37]; /* our service principal object id */
	bool created; /* a new application was created */
	bool cert_added; /* the certificate was attached now */
	int roles_granted; /* assignments made now */
	int roles_present; /* assignments that existed */
};

/* Progress of registration, for the tool to print ("creating ..."). */
typedef void (*auth_reg_step_fn)(void *ctx, const char *step, bool ok);

/**
 * Register (or update) the backup application with the admin's delegated
 * @token: find it by @reg->app_id or by display name, else create it with
 * the required permissions; make sure the permissions and the certificate
 * are on it; create its service principal if missing; grant admin consent
 * (appRoleAssignedTo on the Graph service principal) for every needed role
 * not yet assigned.  @grant_only: never create the application (it must
 * exist; -ENOENT otherwise).  Returns 0 or -errno with @st filled.
 */
int auth_register(struct http *h, const char *graph_url, const char *token,
		  struct auth_reg *reg, bool grant_only, auth_reg_step_fn fn,
		  void *ctx, struct auth_status *st);

#endif
