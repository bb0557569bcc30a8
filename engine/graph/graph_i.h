/*
 * graph_i.h - private to engine/graph: the client, pagers, JSON field
 * helpers shared by graph.c, json.c and error.c.
 */
#ifndef M365_GRAPH_I_H
#define M365_GRAPH_I_H

#include "graph.h"

struct graph {
	struct http *http;
	char *base; /* "https://host[:port]/v1.0", no trailing '/' */
	char origin[256];
	struct graph_token_ops token;
	unsigned mail_page_size;
	unsigned page_size;
	size_t json_cap;
};

enum pager_kind {
	PK_USER = 1,
	PK_GROUP,
	PK_SITE,
	PK_DRIVE,
	PK_ITEM,
	PK_MAIL_FOLDER,
	PK_MESSAGE,
};

struct graph_pager {
	struct graph *g;
	enum pager_kind kind;
	cJSON *page; /* the current page */
	cJSON *cur; /* next element of page's "value" to hand out */
	char *next_link; /* @odata.nextLink of the current page */
	char *delta_link; /* @odata.deltaLink once seen */
	char *prefer; /* "Prefer: ..." line for every page, or NULL */
	unsigned ahead_to; /* ask for the next page when this one arrives,
			      up to this page (0: never) */
	struct ahead *ahead; /* the next page, asked for, or NULL */
	unsigned pages;
	int err; /* sticky error */
	char what[160]; /* for messages: "list children of drive X" */
};

/* Record a validation failure in the thread's last error: -EBADMSG. */
int graph_bad(const char *type, const char *field, const char *problem);

/* Fill the thread's last error (and return @rc). */
struct graph_error *graph_err_slot(void);

/* Fetch one page into @p (GET @url). */
int graph_pager_fetch(struct graph_pager *p, const char *url);

/*
 * Reset @u to the base URL followed by @fmt, where %e is a string escaped
 * as one path segment, %p a path escaped segment by segment ('/' kept;
 * "." and ".." refused), %s raw text, %u an unsigned.  0 or -errno.
 */
int graph_url_build(struct graph *g, struct buf *u, const char *fmt, ...);

/*
 * The string value of member @key of the top-level object of JSON text @s
 * (@len bytes), picked out without parsing it: *@val, *@vlen point into
 * @s.  Only plain values (no escapes).  1 found, 0 not there or not plain.
 * The text is not validated: use the value only as a guess that the parse
 * of the whole text confirms.
 */
int graph_json_top_string(const char *s, size_t len, const char *key,
			  const char **val, size_t *vlen);

/* Reject JSON text with an escaped NUL (\u0000): C strings can't hold it. */
bool graph_json_has_nul(const char *s, size_t len);

#endif
