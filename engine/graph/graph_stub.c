/* graph_stub.c - temporary stubs while graph.c is written. */
#include <errno.h>
#include <stddef.h>

#include "graph.h"

int graph_new(struct http *h, const struct graph_config *cfg,
	      struct graph **out)
{
	(void)h;
	(void)cfg;
	(void)out;
	return -ENOSYS;
}

void graph_free(struct graph *g)
{
	(void)g;
}

struct http *graph_http(struct graph *g)
{
	(void)g;
	return NULL;
}

const struct graph_error *graph_last_error(void)
{
	static const struct graph_error none;

	return &none;
}

int graph_error_map(long status, const char *body, size_t len, const char *what,
		    struct graph_error *err)
{
	(void)status;
	(void)body;
	(void)len;
	(void)what;
	(void)err;
	return -ENOSYS;
}

void graph_org_release(struct graph_org *o)
{
	(void)o;
}

void graph_user_release(struct graph_user *u)
{
	(void)u;
}

void graph_group_release(struct graph_group *gr)
{
	(void)gr;
}

void graph_site_release(struct graph_site *s)
{
	(void)s;
}

void graph_drive_release(struct graph_drive *d)
{
	(void)d;
}

void graph_item_release(struct graph_item *it)
{
	(void)it;
}

void graph_mail_folder_release(struct graph_mail_folder *f)
{
	(void)f;
}

void graph_message_release(struct graph_message *m)
{
	(void)m;
}

int graph_parse_item(const cJSON *j, struct graph_item *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_drive(const cJSON *j, struct graph_drive *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_site(const cJSON *j, struct graph_site *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_user(const cJSON *j, struct graph_user *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_group(const cJSON *j, struct graph_group *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_org(const cJSON *j, struct graph_org *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_mail_folder(const cJSON *j, struct graph_mail_folder *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_parse_message(const cJSON *j, struct graph_message *out)
{
	(void)j;
	(void)out;
	return -ENOSYS;
}

int graph_org_get(struct graph *g, struct graph_org *out)
{
	(void)g;
	(void)out;
	return -ENOSYS;
}

int graph_user_get(struct graph *g, const char *user, struct graph_user *out)
{
	(void)g;
	(void)user;
	(void)out;
	return -ENOSYS;
}

int graph_site_get(struct graph *g, const char *site, struct graph_site *out)
{
	(void)g;
	(void)site;
	(void)out;
	return -ENOSYS;
}

int graph_site_get_by_path(struct graph *g, const char *hostname,
			   const char *path, struct graph_site *out)
{
	(void)g;
	(void)hostname;
	(void)path;
	(void)out;
	return -ENOSYS;
}

int graph_drive_get(struct graph *g, const char *drive_id,
		    struct graph_drive *out)
{
	(void)g;
	(void)drive_id;
	(void)out;
	return -ENOSYS;
}

int graph_drive_get_default(struct graph *g, enum graph_owner owner,
			    const char *owner_id, struct graph_drive *out)
{
	(void)g;
	(void)owner;
	(void)owner_id;
	(void)out;
	return -ENOSYS;
}

int graph_item_get(struct graph *g, const char *drive_id, const char *item_id,
		   struct graph_item *out)
{
	(void)g;
	(void)drive_id;
	(void)item_id;
	(void)out;
	return -ENOSYS;
}

int graph_item_get_by_path(struct graph *g, const char *drive_id,
			   const char *path, struct graph_item *out)
{
	(void)g;
	(void)drive_id;
	(void)path;
	(void)out;
	return -ENOSYS;
}

int graph_mail_folder_get(struct graph *g, const char *user, const char *folder,
			  struct graph_mail_folder *out)
{
	(void)g;
	(void)user;
	(void)folder;
	(void)out;
	return -ENOSYS;
}

int graph_users_open(struct graph *g, const char *select,
		     struct graph_pager **out)
{
	(void)g;
	(void)select;
	(void)out;
	return -ENOSYS;
}

int graph_groups_open(struct graph *g, struct graph_pager **out)
{
	(void)g;
	(void)out;
	return -ENOSYS;
}

int graph_sites_all_open(struct graph *g, struct graph_pager **out)
{
	(void)g;
	(void)out;
	return -ENOSYS;
}

int graph_sites_search_open(struct graph *g, const char *query,
			    struct graph_pager **out)
{
	(void)g;
	(void)query;
	(void)out;
	return -ENOSYS;
}

int graph_subsites_open(struct graph *g, const char *site_id,
			struct graph_pager **out)
{
	(void)g;
	(void)site_id;
	(void)out;
	return -ENOSYS;
}

int graph_drives_open(struct graph *g, enum graph_owner owner,
		      const char *owner_id, struct graph_pager **out)
{
	(void)g;
	(void)owner;
	(void)owner_id;
	(void)out;
	return -ENOSYS;
}

int graph_children_open(struct graph *g, const char *drive_id,
			const char *item_id, struct graph_pager **out)
{
	(void)g;
	(void)drive_id;
	(void)item_id;
	(void)out;
	return -ENOSYS;
}

int graph_drive_delta_open(struct graph *g, const char *drive_id,
			   const char *delta_link, struct graph_pager **out)
{
	(void)g;
	(void)drive_id;
	(void)delta_link;
	(void)out;
	return -ENOSYS;
}

int graph_mail_folders_open(struct graph *g, const char *user,
			    const char *parent, bool hidden,
			    struct graph_pager **out)
{
	(void)g;
	(void)user;
	(void)parent;
	(void)hidden;
	(void)out;
	return -ENOSYS;
}

int graph_message_delta_open(struct graph *g, const char *user,
			     const char *folder_id, const char *select,
			     const char *delta_link, struct graph_pager **out)
{
	(void)g;
	(void)user;
	(void)folder_id;
	(void)select;
	(void)delta_link;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_user(struct graph_pager *p, struct graph_user *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_group(struct graph_pager *p, struct graph_group *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_site(struct graph_pager *p, struct graph_site *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_drive(struct graph_pager *p, struct graph_drive *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_item(struct graph_pager *p, struct graph_item *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_mail_folder(struct graph_pager *p,
				 struct graph_mail_folder *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_message(struct graph_pager *p, struct graph_message *out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

int graph_pager_next_json(struct graph_pager *p, const cJSON **out)
{
	(void)p;
	(void)out;
	return -ENOSYS;
}

const char *graph_pager_delta_link(const struct graph_pager *p)
{
	(void)p;
	return NULL;
}

const char *graph_pager_next_link(const struct graph_pager *p)
{
	(void)p;
	return NULL;
}

unsigned graph_pager_pages(const struct graph_pager *p)
{
	(void)p;
	return 0;
}

void graph_pager_free(struct graph_pager *p)
{
	(void)p;
}

int graph_item_download(struct graph *g, const char *drive_id,
			const char *item_id, const char *download_url,
			uint64_t off, uint64_t len,
			const struct http_sink *sink, uint64_t *got)
{
	(void)g;
	(void)drive_id;
	(void)item_id;
	(void)download_url;
	(void)off;
	(void)len;
	(void)sink;
	(void)got;
	return -ENOSYS;
}

int graph_message_mime(struct graph *g, const char *user, const char *msg_id,
		       const struct http_sink *sink, uint64_t *got)
{
	(void)g;
	(void)user;
	(void)msg_id;
	(void)sink;
	(void)got;
	return -ENOSYS;
}

int graph_folder_create(struct graph *g, const char *drive_id,
			const char *parent_id, const char *name,
			enum graph_conflict conflict, struct graph_item *out)
{
	(void)g;
	(void)drive_id;
	(void)parent_id;
	(void)name;
	(void)conflict;
	(void)out;
	return -ENOSYS;
}

int graph_upload_small(struct graph *g, const char *drive_id,
		       const char *parent_id, const char *name,
		       enum graph_conflict conflict,
		       const struct http_source *src, struct graph_item *out)
{
	(void)g;
	(void)drive_id;
	(void)parent_id;
	(void)name;
	(void)conflict;
	(void)src;
	(void)out;
	return -ENOSYS;
}

void graph_upload_release(struct graph_upload *u)
{
	(void)u;
}

int graph_upload_create(struct graph *g, const char *drive_id,
			const char *parent_id, const char *name,
			enum graph_conflict conflict, uint64_t size,
			int64_t mtime, int64_t ctime, struct graph_upload *u)
{
	(void)g;
	(void)drive_id;
	(void)parent_id;
	(void)name;
	(void)conflict;
	(void)size;
	(void)mtime;
	(void)ctime;
	(void)u;
	return -ENOSYS;
}

int graph_upload_put(struct graph *g, struct graph_upload *u,
		     const struct http_source *src, uint64_t len,
		     struct graph_item *out)
{
	(void)g;
	(void)u;
	(void)src;
	(void)len;
	(void)out;
	return -ENOSYS;
}

int graph_upload_status(struct graph *g, struct graph_upload *u)
{
	(void)g;
	(void)u;
	return -ENOSYS;
}

int graph_upload_cancel(struct graph *g, struct graph_upload *u)
{
	(void)g;
	(void)u;
	return -ENOSYS;
}

int graph_mail_folder_create(struct graph *g, const char *user,
			     const char *parent, const char *name,
			     struct graph_mail_folder *out)
{
	(void)g;
	(void)user;
	(void)parent;
	(void)name;
	(void)out;
	return -ENOSYS;
}

int graph_message_create_json(struct graph *g, const char *user,
			      const char *folder_id, const char *json,
			      struct graph_message *out)
{
	(void)g;
	(void)user;
	(void)folder_id;
	(void)json;
	(void)out;
	return -ENOSYS;
}

int graph_message_create_mime(struct graph *g, const char *user,
			      const void *mime, size_t len,
			      struct graph_message *out)
{
	(void)g;
	(void)user;
	(void)mime;
	(void)len;
	(void)out;
	return -ENOSYS;
}

int graph_message_move(struct graph *g, const char *user, const char *msg_id,
		       const char *dest_folder_id, struct graph_message *out)
{
	(void)g;
	(void)user;
	(void)msg_id;
	(void)dest_folder_id;
	(void)out;
	return -ENOSYS;
}

int graph_call(struct graph *g, const char *method, const char *path,
	       const char *body, const char *const *headers, cJSON **out)
{
	(void)g;
	(void)method;
	(void)path;
	(void)body;
	(void)headers;
	(void)out;
	return -ENOSYS;
}

int graph_batch(struct graph *g, struct graph_batch_item *items, size_t n)
{
	(void)g;
	(void)items;
	(void)n;
	return -ENOSYS;
}

void graph_batch_release(struct graph_batch_item *items, size_t n)
{
	(void)items;
	(void)n;
}

void graph_qxh_init(struct graph_qxh *q)
{
	(void)q;
}

void graph_qxh_update(struct graph_qxh *q, const void *p, size_t n)
{
	(void)q;
	(void)p;
	(void)n;
}

void graph_qxh_final(struct graph_qxh *q, char out[29])
{
	(void)q;
	(void)out;
}
