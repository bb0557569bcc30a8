/*
 * graph - typed Microsoft Graph v1.0 calls over http.
 *
 * A struct graph is a base URL ("https://graph.microsoft.com", a national
 * cloud, or the emulator; "/v1.0" is appended here), a struct http, and an
 * access-token provider (struct graph_token_ops, wired to auth by the
 * tools).  Calls build escaped URLs, send the token, retry once with a
 * fresh token on 401 InvalidAuthenticationToken, parse and validate the
 * JSON into the structs below, and map failures to -errno plus a sentence
 * for people (graph_last_error()).
 *
 * Everything from Graph is untrusted: every field used is type-checked; a
 * missing or mistyped field fails the item with -EBADMSG and an error that
 * names it ("driveItem 'size' is not a number"); strings with NUL bytes or
 * longer than GRAPH_STR_MAX, negative or absurd sizes are rejected.
 *
 * Collections are read through a pager (struct graph_pager) that holds one
 * page at a time and hands out parsed items one by one, following
 * @odata.nextLink verbatim - only to the origin of the base URL; a link to
 * another host is refused (-EPROTO).
 *
 * Thread safety: a struct graph may be used by any number of threads at
 * once (the token ops must be thread-safe).  A pager, an upload session and
 * the parsed structs belong to one thread at a time.  graph_last_error() is
 * per thread.
 *
 * Errors: 0 or -errno.  Common ones: -ENOENT (404, e.g. no OneDrive or no
 * mailbox), -EACCES (401 after a token refresh), -EPERM (403: permission
 * or consent missing), -EEXIST (409 name clash), -EAGAIN (still throttled
 * after all retries), -ESTALE (delta token expired: 410; restart that drive
 * or folder without a token), -EBADMSG (malformed JSON from Graph),
 * -EPROTO (nextLink to a foreign host), -E2BIG (response over the cap),
 * transport errors as in http.h.
 */
#ifndef M365_GRAPH_H
#define M365_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "http/http.h"
#include "util/buf.h"

struct graph;
struct graph_pager;

#define GRAPH_STR_MAX	       4096 /* longest string field accepted */
#define GRAPH_SIZE_MAX	       (1LL << 50) /* largest file size accepted */
#define GRAPH_JSON_CAP	       (64u << 20) /* largest JSON response read */
#define GRAPH_BATCH_MAX	       20 /* requests in one $batch */
#define GRAPH_UPLOAD_UNIT      327680 /* upload fragments: multiples */
#define GRAPH_SMALL_UPLOAD_MAX (4u << 20) /* PUT content up to this size */

/*
 * Access-token provider.  get: copy the current access token into @tok
 * (refreshed by the provider when near expiry); 0 or -errno.  invalidate:
 * a 401 InvalidAuthenticationToken came back for @tok, forget it (may be
 * NULL).  Both thread-safe.  The tools wire auth_token_get() and
 * auth_token_invalidate() in here.
 */
struct graph_token_ops {
	int (*get)(void *ctx, struct buf *tok);
	void (*invalidate)(void *ctx, const char *tok);
	void *ctx;
};

struct graph_config {
	const char *base_url; /* "https://graph.microsoft.com" (no /v1.0;
				  a trailing '/' is fine); NULL = global.
				  Copied. */
	struct graph_token_ops token; /* copied; token.get may be NULL for
					 tests that need no Authorization */
	unsigned mail_page_size; /* Prefer: odata.maxpagesize for message
				    delta; 0 = 200 */
	unsigned page_size; /* $top for users/children; 0 = server
				    default */
	size_t json_cap; /* 0 = GRAPH_JSON_CAP */
};

/**
 * Create a Graph client over @h (borrowed: must outlive the client).
 * Caller owns *@out, free with graph_free().  Returns 0, -EINVAL (bad base
 * URL) or -ENOMEM.
 */
int graph_new(struct http *h, const struct graph_config *cfg,
	      struct graph **out);

/** Free @g (NULL is fine).  No call may be running on it. */
void graph_free(struct graph *g);

/** The http client of @g (borrowed). */
struct http *graph_http(struct graph *g);

/*
 * The last error of a graph call on this thread: what failed and what to
 * do about it.  Filled on every failing call (also logged once).
 */
struct graph_error {
	int rc; /* the -errno returned */
	long status; /* HTTP status, 0 if none */
	char code[64]; /* Graph error code ("itemNotFound"), or "" */
	char inner_code[64]; /* innermost innerError code, or "" */
	char message[512]; /* for people: what failed + the remedy */
	char request_id[64]; /* request-id of the failing response */
	char client_request_id[40];
};

/** The last error of this thread (borrowed; never NULL, may be empty). */
const struct graph_error *graph_last_error(void);

/**
 * The one mapping from a Graph error (HTTP @status and error JSON @body of
 * @len bytes, may be NULL/not JSON) to -errno plus a sentence in @err->message
 * ("the app has no permission to read sites: grant admin consent with
 * 'm365-connect grant NAME'").  @what names the operation for the sentence
 * ("list children of 'Documents'").  Does not log.  Returns @err->rc.
 * 410 resyncRequired/syncStateNotFound -> -ESTALE; 401 -> -EACCES;
 * 403 -> -EPERM; 404 -> -ENOENT; 409 nameAlreadyExists/ErrorFolderExists ->
 * -EEXIST; 429/503/509 -> -EAGAIN; 507 -> -ENOSPC; others http_status_errno().
 */
int graph_error_map(long status, const char *body, size_t len, const char *what,
		    struct graph_error *err);

/* ---- parsed objects (caller owns; release with the matching _release) -- */

/*
 * Every struct below: strings are NUL-terminated, owned by the struct, and
 * NULL when Graph did not send the field (or sent null).  Times are seconds
 * since the epoch, 0 when absent.  Zero-initialise ({ 0 }) before the first
 * use; a struct may be refilled (it is released first).
 */

struct graph_identity {
	char *id;
	char *display_name;
	char *email; /* user.email, or NULL */
};

struct graph_org {
	char *id;
	char *display_name;
	char *default_domain; /* verifiedDomains[isDefault].name, or NULL */
	char *initial_domain; /* verifiedDomains[isInitial].name, or NULL */
};
void graph_org_release(struct graph_org *o);

struct graph_user {
	char *id; /* required */
	char *display_name;
	char *upn; /* userPrincipalName */
	char *mail; /* NULL: no mailbox address */
	bool account_enabled; /* true when absent */
	char *user_type; /* "Member", "Guest" or NULL */
};
void graph_user_release(struct graph_user *u);

struct graph_group {
	char *id; /* required */
	char *display_name;
	char *mail;
	bool unified; /* groupTypes contains "Unified" (M365 group) */
	bool mail_enabled;
	bool security_enabled;
};
void graph_group_release(struct graph_group *gr);

struct graph_site {
	char *id; /* required: "host,collection-guid,web-guid" */
	char *name;
	char *display_name;
	char *web_url;
	char *hostname; /* siteCollection.hostName, or NULL */
	bool is_root; /* "root" facet present (root web) */
	bool personal; /* isPersonalSite, or a "-my." host */
	int64_t created;
	int64_t modified;
};
void graph_site_release(struct graph_site *s);

struct graph_drive {
	char *id; /* required */
	char *name;
	char *drive_type; /* "business", "documentLibrary", "personal" */
	char *web_url;
	struct graph_identity owner; /* owner.user (or owner.group) */
	int64_t quota_total; /* -1 when unknown */
	int64_t quota_used; /* -1 when unknown */
	int64_t created;
	int64_t modified;
};
void graph_drive_release(struct graph_drive *d);

enum graph_item_kind {
	GRAPH_ITEM_OTHER = 0, /* no facet known (e.g. a truncated item) */
	GRAPH_ITEM_FILE,
	GRAPH_ITEM_FOLDER,
	GRAPH_ITEM_PACKAGE, /* OneNote notebook etc.: not a file */
};

struct graph_item {
	char *id; /* required */
	char *name; /* required unless deleted */
	enum graph_item_kind kind;
	bool is_root; /* "root" facet */
	bool deleted; /* "deleted" facet (delta only) */
	bool remote; /* "remoteItem" facet (shared from elsewhere) */
	int64_t size; /* >= 0; -1 when absent */
	int64_t child_count; /* folders; -1 when absent */
	char *etag;
	char *ctag; /* changes only when the content changes */
	int64_t created, created_ns; /* createdDateTime */
	int64_t modified, modified_ns; /* lastModifiedDateTime */
	int64_t fs_created; /* fileSystemInfo.createdDateTime, or 0 */
	int64_t fs_modified; /* fileSystemInfo.lastModifiedDateTime, or 0 */
	char *web_url;
	char *mime_type; /* file.mimeType */
	char *quickxor; /* file.hashes.quickXorHash (base64), or NULL */
	char *sha1; /* hex, or NULL */
	char *sha256; /* hex, or NULL */
	char *download_url; /* @microsoft.graph.downloadUrl, or NULL */
	char *parent_id; /* parentReference.id */
	char *parent_path; /* parentReference.path ("/drive/root:/a") */
	char *drive_id; /* parentReference.driveId */
	struct graph_identity created_by; /* createdBy.user */
	struct graph_identity modified_by; /* lastModifiedBy.user */
};
void graph_item_release(struct graph_item *it);

struct graph_mail_folder {
	char *id; /* required */
	char *display_name; /* required */
	char *parent_id;
	int64_t child_count; /* childFolderCount, 0 when absent */
	int64_t total_count; /* totalItemCount, -1 when absent */
	int64_t unread_count; /* unreadItemCount, -1 when absent */
	bool hidden; /* isHidden */
	bool search_folder; /* mailSearchFolder (pagers skip these) */
};
void graph_mail_folder_release(struct graph_mail_folder *f);

struct graph_message {
	char *id; /* required */
	bool removed; /* "@removed" (delta): only id is set */
	char *removed_reason; /* "deleted" / "changed" */
	char *odata_type; /* "#microsoft.graph.message", eventMessage... */
	char *etag; /* @odata.etag */
	char *change_key;
	char *subject;
	char *internet_message_id;
	char *parent_folder_id;
	char *conversation_id;
	struct graph_identity from; /* emailAddress name/address: display_name
				       and email */
	int64_t received; /* receivedDateTime */
	int64_t sent; /* sentDateTime */
	int64_t created;
	int64_t modified;
	bool is_read;
	bool is_draft;
	bool has_attachments;
	char *importance; /* "low", "normal", "high" */
	char *flag_status; /* flag.flagStatus */
	char **categories; /* NULL-terminated, or NULL */
};
void graph_message_release(struct graph_message *m);

/* Parsers, public for the unit tests and the fuzzer: parse one object
 * @j into @out (released first).  Return 0 or -EBADMSG with
 * graph_last_error() naming the field. */
int graph_parse_item(const cJSON *j, struct graph_item *out);
int graph_parse_drive(const cJSON *j, struct graph_drive *out);
int graph_parse_site(const cJSON *j, struct graph_site *out);
int graph_parse_user(const cJSON *j, struct graph_user *out);
int graph_parse_group(const cJSON *j, struct graph_group *out);
int graph_parse_org(const cJSON *j, struct graph_org *out);
int graph_parse_mail_folder(const cJSON *j, struct graph_mail_folder *out);
int graph_parse_message(const cJSON *j, struct graph_message *out);

/* ---- single objects ---------------------------------------------------- */

/** GET /organization (the first entry). */
int graph_org_get(struct graph *g, struct graph_org *out);

/** GET /users/{id or UPN}. */
int graph_user_get(struct graph *g, const char *user, struct graph_user *out);

/** GET /sites/{site-id}; @site "root" gives the root site. */
int graph_site_get(struct graph *g, const char *site, struct graph_site *out);

/** GET /sites/{hostname}:/{path} (@path server-relative, "/sites/x"). */
int graph_site_get_by_path(struct graph *g, const char *hostname,
			   const char *path, struct graph_site *out);

/** GET /drives/{drive-id}. */
int graph_drive_get(struct graph *g, const char *drive_id,
		    struct graph_drive *out);

/* Owners of drives. */
enum graph_owner {
	GRAPH_OWNER_SITE,
	GRAPH_OWNER_USER,
	GRAPH_OWNER_GROUP,
};

/**
 * GET /users/{id}/drive or /groups/{id}/drive (the default drive;
 * -ENOENT: OneDrive not provisioned, -EPERM: not licensed).
 */
int graph_drive_get_default(struct graph *g, enum graph_owner owner,
			    const char *owner_id, struct graph_drive *out);

/** GET /drives/{d}/items/{id}; @item_id "root" is the root. */
int graph_item_get(struct graph *g, const char *drive_id, const char *item_id,
		   struct graph_item *out);

/** GET /drives/{d}/root:/{path} (@path "/a/b.txt", segments escaped here). */
int graph_item_get_by_path(struct graph *g, const char *drive_id,
			   const char *path, struct graph_item *out);

/** GET /users/{u}/mailFolders/{id}; @folder may be a well-known name. */
int graph_mail_folder_get(struct graph *g, const char *user, const char *folder,
			  struct graph_mail_folder *out);

/* ---- collections: pagers ---------------------------------------------- */

/*
 * A pager is opened by one of the graph_*_open() calls (which fetch the
 * first page), read with the graph_pager_next_*() matching its kind, and
 * closed with graph_pager_free().  next returns 1 and fills the item, 0 at
 * the end, or -errno (the pager is then finished).  A malformed item fails
 * the pager with -EBADMSG (the caller may log graph_last_error() and stop
 * that container).  Using the wrong next function gives -EINVAL.
 */

/** GET /users ($select @select, NULL = id,displayName,userPrincipalName,
 * mail,accountEnabled,userType). */
int graph_users_open(struct graph *g, const char *select,
		     struct graph_pager **out);
/** GET /groups. */
int graph_groups_open(struct graph *g, struct graph_pager **out);
/** GET /sites/getAllSites. */
int graph_sites_all_open(struct graph *g, struct graph_pager **out);
/** GET /sites?search=@query ("*" = all). */
int graph_sites_search_open(struct graph *g, const char *query,
			    struct graph_pager **out);
/** GET /sites/{id}/sites (subsites). */
int graph_subsites_open(struct graph *g, const char *site_id,
			struct graph_pager **out);
/** GET /sites|users|groups/{id}/drives. */
int graph_drives_open(struct graph *g, enum graph_owner owner,
		      const char *owner_id, struct graph_pager **out);
/** GET /drives/{d}/items/{id}/children (@item_id "root" ok). */
int graph_children_open(struct graph *g, const char *drive_id,
			const char *item_id, struct graph_pager **out);
/**
 * GET /drives/{d}/items/{id}/children?$top=@top (@item_id "root" ok),
 * reading ahead: each next page is asked for as soon as the current one
 * has arrived (its @odata.nextLink is picked out of the body before the
 * body is parsed), so it travels while the caller works through this one.
 * Read it to its end: a pager freed earlier wasted that one request.
 */
int graph_children_open_ahead(struct graph *g, const char *drive_id,
			      const char *item_id, unsigned top,
			      struct graph_pager **out);

/**
 * Drive delta: GET @delta_link (a saved deltaLink, or a nextLink to resume
 * a round) or, when NULL, /drives/{d}/root/delta (full enumeration).
 * Items come in server order (parents before children; an id may repeat,
 * the last one wins).  At the end (next returned 0) graph_pager_delta_link()
 * gives the link to save.  -ESTALE (from open or next): the token expired
 * (410): drop it and restart this drive with @delta_link NULL.
 */
int graph_drive_delta_open(struct graph *g, const char *drive_id,
			   const char *delta_link, struct graph_pager **out);

/**
 * Drive delta in pages of up to 999 items: GET
 * /drives/{d}/root/delta?$top=999, with &token=@token when not NULL (an
 * ISO time: the items changed since then, OneDrive for Business and
 * SharePoint only; "latest": none); without, a full enumeration.  Ends
 * with a deltaLink to save, as graph_drive_delta_open().  With @ahead_to
 * > 1 it reads ahead as graph_children_open_ahead() does, up to page
 * @ahead_to (a reader that stops at a page limit asks for no page more).
 */
int graph_drive_delta_top_open(struct graph *g, const char *drive_id,
			       const char *token, unsigned ahead_to,
			       struct graph_pager **out);

/**
 * Mail folders of @user: @parent NULL = top level (children of
 * msgfolderroot), else /mailFolders/{parent}/childFolders.
 * @hidden adds includeHiddenFolders=true.  Search folders are skipped.
 * Recurse while child_count > 0.
 */
int graph_mail_folders_open(struct graph *g, const char *user,
			    const char *parent, bool hidden,
			    struct graph_pager **out);

/**
 * Message delta of one folder: GET @delta_link, or when NULL
 * /users/{u}/mailFolders/{f}/messages/delta with $select @select (NULL: a
 * default set of the struct graph_message fields), Prefer:
 * odata.maxpagesize and IdType="ImmutableId".  End and -ESTALE as for
 * graph_drive_delta_open().
 */
int graph_message_delta_open(struct graph *g, const char *user,
			     const char *folder_id, const char *select,
			     const char *delta_link, struct graph_pager **out);

int graph_pager_next_user(struct graph_pager *p, struct graph_user *out);
int graph_pager_next_group(struct graph_pager *p, struct graph_group *out);
int graph_pager_next_site(struct graph_pager *p, struct graph_site *out);
int graph_pager_next_drive(struct graph_pager *p, struct graph_drive *out);
int graph_pager_next_item(struct graph_pager *p, struct graph_item *out);
int graph_pager_next_mail_folder(struct graph_pager *p,
				 struct graph_mail_folder *out);
int graph_pager_next_message(struct graph_pager *p, struct graph_message *out);

/**
 * The next item as raw JSON, for kinds without a struct (borrowed: valid
 * until the next call).  1, 0 at the end, or -errno.
 */
int graph_pager_next_json(struct graph_pager *p, const cJSON **out);

/** @odata.deltaLink of the last page (borrowed), or NULL before the end. */
const char *graph_pager_delta_link(const struct graph_pager *p);

/** @odata.nextLink of the current page (borrowed), or NULL: save it to
 * resume a long delta round later. */
const char *graph_pager_next_link(const struct graph_pager *p);

/** Pages fetched so far. */
unsigned graph_pager_pages(const struct graph_pager *p);

/** Free @p (NULL is fine). */
void graph_pager_free(struct graph_pager *p);

/* ---- content ------------------------------------------------------------ */

/**
 * Download the content of a file into @sink (see http.h for where the sink
 * runs: on this thread).  With @download_url (the item's
 * @microsoft.graph.downloadUrl) it is fetched directly without
 * Authorization; else GET /drives/{d}/items/{id}/content and its 302 is
 * followed without Authorization.  @off/@len select a range (@len 0 = to
 * the end); when the server ignores Range (200), the bytes before @off are
 * skipped here, so the sink always gets exactly the range asked for.
 * *@got (may be NULL) receives the bytes delivered.  Returns 0 or -errno
 * (-ENOENT: gone; -EACCES: the download URL expired, fetch the item again
 * and retry with its new URL or NULL; -ECONNRESET, logged at debug level
 * only: the transfer broke after bytes reached a sink without reset, ask
 * for the rest).
 */
int graph_item_download(struct graph *g, const char *drive_id,
			const char *item_id, const char *download_url,
			uint64_t off, uint64_t len,
			const struct http_sink *sink, uint64_t *got);

/** GET /users/{u}/messages/{id}/$value (the MIME message) into @sink. */
int graph_message_mime(struct graph *g, const char *user, const char *msg_id,
		       const struct http_sink *sink, uint64_t *got);

/* ---- writes (restore) -------------------------------------------------- */

enum graph_conflict {
	GRAPH_CONFLICT_FAIL = 0,
	GRAPH_CONFLICT_REPLACE,
	GRAPH_CONFLICT_RENAME,
};

/** POST /drives/{d}/items/{parent}/children {"name", "folder":{}} -> 201. */
int graph_folder_create(struct graph *g, const char *drive_id,
			const char *parent_id, const char *name,
			enum graph_conflict conflict, struct graph_item *out);

/**
 * Small upload (size <= GRAPH_SMALL_UPLOAD_MAX): PUT
 * /drives/{d}/items/{parent}:/{name}:/content from @src.  @out (may be
 * NULL) receives the created/replaced driveItem.
 */
int graph_upload_small(struct graph *g, const char *drive_id,
		       const char *parent_id, const char *name,
		       enum graph_conflict conflict,
		       const struct http_source *src, struct graph_item *out);

struct graph_upload {
	char *url; /* uploadUrl (pre-authenticated) */
	int64_t expires; /* expirationDateTime */
	uint64_t next; /* first byte the server expects next */
	uint64_t size; /* total size of the file */
	bool done; /* the last fragment was accepted */
};
void graph_upload_release(struct graph_upload *u);

/**
 * POST /drives/{d}/items/{parent}:/{name}:/createUploadSession with
 * conflictBehavior, fileSize @size and fileSystemInfo times (@mtime,
 * @ctime; 0 = not sent).  Fills @u (caller owns, graph_upload_release()).
 * Save u->url to resume after a crash.
 */
int graph_upload_create(struct graph *g, const char *drive_id,
			const char *parent_id, const char *name,
			enum graph_conflict conflict, uint64_t size,
			int64_t mtime, int64_t ctime, struct graph_upload *u);

/**
 * PUT one fragment [@u->next, @u->next + @len) from @src (offsets of @src
 * are file offsets: the fragment is read at @u->next) to u->url without
 * Authorization, Content-Range over u->size.  @len must be a multiple of
 * GRAPH_UPLOAD_UNIT unless it is the last fragment.  Updates u->next from
 * nextExpectedRanges; on the final fragment sets u->done and fills @out
 * (may be NULL).  A 416 (range already received, e.g. after a retried
 * PUT) refreshes u->next from the server and returns 0: just go on.
 * Returns 0 or -errno (-ENOENT: session expired, start over; -EEXIST:
 * name conflict at commit).
 */
int graph_upload_put(struct graph *g, struct graph_upload *u,
		     const struct http_source *src, uint64_t len,
		     struct graph_item *out);

/** GET u->url: refresh u->next from nextExpectedRanges (resume). */
int graph_upload_status(struct graph *g, struct graph_upload *u);

/** DELETE u->url (cancel the session). */
int graph_upload_cancel(struct graph *g, struct graph_upload *u);

/**
 * POST /users/{u}/mailFolders/{parent}/childFolders {"displayName"}; @parent
 * NULL creates a top-level folder.  -EEXIST on ErrorFolderExists.
 */
int graph_mail_folder_create(struct graph *g, const char *user,
			     const char *parent, const char *name,
			     struct graph_mail_folder *out);

/**
 * POST /users/{u}/mailFolders/{folder}/messages with the message JSON
 * @json (built by the caller, e.g. with singleValueExtendedProperties
 * 0x0E07/0x0E06/0x0039 for a received, non-draft message).  @out may be
 * NULL.
 */
int graph_message_create_json(struct graph *g, const char *user,
			      const char *folder_id, const char *json,
			      struct graph_message *out);

/**
 * POST /users/{u}/messages with the base64 of MIME @mime (@len bytes),
 * Content-Type text/plain: creates a *draft* (Graph's rule); move it with
 * graph_message_move().  @out may be NULL.
 */
int graph_message_create_mime(struct graph *g, const char *user,
			      const void *mime, size_t len,
			      struct graph_message *out);

/** POST /users/{u}/messages/{id}/move {"destinationId"}: @out gets the
 * moved message (its id changes).  @out may be NULL. */
int graph_message_move(struct graph *g, const char *user, const char *msg_id,
		       const char *dest_folder_id, struct graph_message *out);

/* ---- generic calls and $batch ----------------------------------------- */

/**
 * Any JSON call: @method @path (relative to /v1.0, starting with '/', query
 * allowed and already escaped; or an absolute URL of the same origin) with
 * optional JSON body @body and extra header lines @headers (NULL-
 * terminated, may be NULL).  *@out (may be NULL) receives the parsed
 * response (caller owns, cJSON_Delete(); NULL for an empty body).  A
 * non-2xx status is an error mapped by graph_error_map().
 */
int graph_call(struct graph *g, const char *method, const char *path,
	       const char *body, const char *const *headers, cJSON **out);

struct graph_batch_item {
	const char *method; /* in: "GET", ... */
	const char *url; /* in: relative to /v1.0 ("/users/x") */
	const char *body; /* in: JSON text or NULL */
	long status; /* out: the item's status (0: not run) */
	cJSON *response; /* out: its "body" (caller owns, cJSON_Delete)
				  or NULL */
	char *location; /* out: "location" header (302), or NULL */
};

/**
 * POST /$batch with @n (<= GRAPH_BATCH_MAX) independent requests; items
 * answered 429 are retried (only those) after the longest Retry-After.
 * Returns 0 when the batch itself succeeded (look at each item's status),
 * else -errno.  Release the outputs with graph_batch_release().
 */
int graph_batch(struct graph *g, struct graph_batch_item *items, size_t n);
void graph_batch_release(struct graph_batch_item *items, size_t n);

/* ---- quickXorHash ------------------------------------------------------ */

/* The OneDrive quickXorHash (GRAPH-API.md 5.6): init, feed, finish. */
struct graph_qxh {
	uint64_t cell[3];
	uint64_t len;
	unsigned shift;
};
void graph_qxh_init(struct graph_qxh *q);
void graph_qxh_update(struct graph_qxh *q, const void *p, size_t n);
/** Write the 28-character base64 digest and a NUL to @out. */
void graph_qxh_final(struct graph_qxh *q, char out[29]);

#endif
