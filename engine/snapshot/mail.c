/*
 * Exchange mailboxes: the folder tree (hidden folders too, search folders
 * skipped) and the message delta of each folder; every message is stored
 * as its MIME ($value).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names/names.h"
#include "snapshot/snap_i.h"
#include "util/log.h"
#include "util/util.h"

#define MSG_SELECT                                                             \
	"id,subject,receivedDateTime,sentDateTime,createdDateTime,"            \
	"lastModifiedDateTime,from,toRecipients,isRead,isDraft,flag,"          \
	"internetMessageId,hasAttachments,parentFolderId,changeKey,"           \
	"importance,conversationId"

struct removal {
	char *id;
	int64_t folder;
};

struct mwalk {
	const struct graph_user *u;
	const char *upn;
	char *scope; /* "mail:<user id>" */
	int64_t mbx_item;
	struct container ct; /* pending: folders not finalized yet */
	struct jgroup grp; /* the mailbox's downloads */
	struct idset folders; /* folder items seen */
	bool tree_incomplete; /* some folder listing failed */
	struct removal *rm;
	size_t nrm, arm;
};

struct folder {
	char *id;
	char *name;
	int64_t child_count;
	bool hidden;
};

/* "Name <address>, ..." of a recipients array. */
static void recipients(struct meta *m, const char *key, const cJSON *arr)
{
	struct buf b = BUF_INIT;
	const cJSON *r;

	if (!cJSON_IsArray(arr))
		return;
	cJSON_ArrayForEach(r, arr)
	{
		const cJSON *ea =
			cJSON_GetObjectItemCaseSensitive(r, "emailAddress");
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(ea, "name");
		const cJSON *ad =
			cJSON_GetObjectItemCaseSensitive(ea, "address");

		if (b.len)
			buf_adds(&b, ", ");
		if (cJSON_IsString(nm) && cJSON_IsString(ad))
			buf_addf(&b, "%s <%s>", nm->valuestring,
				 ad->valuestring);
		else if (cJSON_IsString(ad))
			buf_adds(&b, ad->valuestring);
		else if (cJSON_IsString(nm))
			buf_adds(&b, nm->valuestring);
	}
	meta_add(m, key, b.data);
	buf_release(&b);
}

static int add_removal(struct mwalk *w, const char *id, int64_t folder)
{
	if (w->nrm == w->arm) {
		size_t na = w->arm ? 2 * w->arm : 32;
		struct removal *v = realloc(w->rm, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->rm = v;
		w->arm = na;
	}
	w->rm[w->nrm].id = strdup(id);
	if (!w->rm[w->nrm].id)
		return -ENOMEM;
	w->rm[w->nrm].folder = folder;
	w->nrm++;
	return 0;
}

/* True when version @cur was recorded with change key @ck. */
static bool same_change_key(struct snap *s, const struct cat_item *cur,
			    const char *ck)
{
	struct buf meta = BUF_INIT;
	const char *v;
	bool same = false;

	if (ck && cat_item_meta(s->c, cur->id, cur->from_snap, &meta) == 0) {
		v = cat_meta_find(meta.data, meta.len, "changeKey");
		same = v && !strcmp(v, ck);
	}
	buf_release(&meta);
	return same;
}

static int handle_message(struct snap *s, struct mwalk *w, struct container *ct,
			  const struct graph_message *m, const cJSON *raw,
			  int64_t folder)
{
	struct item in = { 0 };
	struct cat_item cur;
	struct buf name = BUF_INIT;
	struct cat_content cc;
	struct job *j;
	char *key = NULL;
	int rc;

	if (m->removed)
		return add_removal(w, m->id, folder);
	rc = names_message(m->received, m->subject ? m->subject : "", m->id,
			   &name);
	if (rc < 0)
		goto out;
	in.parent = folder;
	in.kind = CAT_KIND_MESSAGE;
	in.name = buf_detach(&name, NULL);
	in.scope = strdup(w->scope);
	in.graph_id = strdup(m->id);
	if (!in.name || !in.scope || !in.graph_id) {
		rc = -ENOMEM;
		goto out;
	}
	in.mtime = m->received ? m->received : m->modified;
	in.btime = m->created;
	meta_add(&in.meta, CAT_META_GRAPH_ID, m->id);
	meta_time(&in.meta, CAT_META_RECEIVED, m->received);
	meta_time(&in.meta, "sentDateTime", m->sent);
	meta_time(&in.meta, "createdDateTime", m->created);
	meta_time(&in.meta, "lastModifiedDateTime", m->modified);
	if (m->from.display_name && m->from.email)
		meta_addf(&in.meta, CAT_META_FROM, "%s <%s>",
			  m->from.display_name, m->from.email);
	else
		meta_add(&in.meta, CAT_META_FROM,
			 m->from.email ? m->from.email : m->from.display_name);
	if (raw)
		recipients(
			&in.meta, "to",
			cJSON_GetObjectItemCaseSensitive(raw, "toRecipients"));
	meta_add(&in.meta, CAT_META_SUBJECT, m->subject);
	meta_add(&in.meta, CAT_META_IS_READ, m->is_read ? "true" : "false");
	meta_add(&in.meta, CAT_META_FLAG,
		 m->flag_status ? m->flag_status : "notFlagged");
	meta_add(&in.meta, "internetMessageId", m->internet_message_id);
	meta_add(&in.meta, "hasAttachments",
		 m->has_attachments ? "true" : "false");
	if (m->is_draft)
		meta_add(&in.meta, "isDraft", "true");
	meta_add(&in.meta, "changeKey", m->change_key);
	meta_add(&in.meta, "name", m->subject);

	/* a message's MIME does not change (drafts aside): a known id, even
	 * moved to another folder, keeps its content */
	if (cat_item_find(s->c, w->scope, m->id, &cur) == 0 && cur.content &&
	    (!m->is_draft || same_change_key(s, &cur, m->change_key))) {
		in.content = cur.content;
		in.size = cur.size;
		s->stats.reused++;
		s->stats.bytes_reused += cur.size;
		rc = put_item(s, &in, ct, NULL);
		goto out;
	}
	if (asprintf(&key, "%s/%s/%s", w->scope, m->id,
		     m->is_draft && m->change_key ? m->change_key : "") < 0) {
		key = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (cached_content(s, key, &cc) == 0) {
		/* stored by a run that did not finish */
		in.content = cc.id;
		in.size = cc.size;
		s->stats.reused++;
		s->stats.bytes_reused += cc.size;
		rc = put_item(s, &in, ct, NULL);
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		rc = -ENOMEM;
		goto out;
	}
	store_content_init(&j->content);
	j->type = JOB_MESSAGE;
	j->cache_key = key;
	key = NULL;
	j->user = strdup(w->u->id);
	j->src_id = strdup(m->id);
	j->expect_size = -1;
	j->owner = ct;
	j->group = &w->grp;
	j->item = in;
	memset(&in, 0, sizeof(in));
	if (!j->user || !j->src_id) {
		job_free(j);
		rc = -ENOMEM;
		goto out;
	}
	rc = pool_submit(s, j);
out:
	free(key);
	item_free(&in);
	buf_release(&name);
	return rc;
}

struct stale_ctx {
	struct idset *seen;
	struct idset gone;
};

static int stale_cb(void *ctx, const struct cat_item *it)
{
	struct stale_ctx *k = ctx;

	if (it->kind == CAT_KIND_MESSAGE && !idset_has(k->seen, it->id))
		return idset_add(&k->gone, it->id);
	return 0;
}

/*
 * One folder's message listing.  Its downloads may still run when the
 * listing is over: folder_done() then runs when the last one ends, so the
 * next folder's listing overlaps them.
 */
struct fwalk {
	struct container ct; /* first: folder_done() casts back */
	struct container *mbox; /* the mailbox's: counts open folders */
	struct idset seen;
	char *scope; /* "mail:<user>/<folder>" (the delta token's) */
	char *link; /* deltaLink to commit, or NULL */
	int64_t item;
	bool sweep; /* full walk of a folder we had: end what it missed */
};

static void folder_done(struct snap *s, struct container *ct)
{
	struct fwalk *fw = (struct fwalk *)ct;
	size_t i;

	if (fw->sweep && !s->fatal) {
		/* messages of the folder that the full walk did not see */
		struct stale_ctx k = { .seen = &fw->seen };

		if (cat_list(s->c, CAT_SNAP_CURRENT, fw->item, NULL, stale_cb,
			     &k) == 0)
			for (i = 0; i < k.gone.n; i++) {
				int64_t n = 0;

				if (cat_item_delete(s->c, k.gone.v[i], &n) == 0)
					s->stats.deleted += n;
			}
		idset_free(&k.gone);
	}
	if (!ct->errors && fw->link && !s->fatal)
		cat_delta_set(s->c, fw->scope, fw->link);
	fw->mbox->pending--;
	idset_free(&fw->seen);
	free(fw->scope);
	free(fw->link);
	free(fw);
}

/* Messages of one folder through delta (full walk without a token). */
static void folder_messages(struct snap *s, struct mwalk *w,
			    const struct folder *f, int64_t item, bool existed)
{
	struct fwalk *fw;
	struct graph_pager *p = NULL;
	struct graph_message m = { 0 };
	struct buf token = BUF_INIT;
	bool full, use_json = true;
	int rc;

	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return;
	fw->ct.service = "exchange";
	fw->ct.finalize = folder_done;
	fw->mbox = &w->ct;
	w->ct.pending++;
	fw->item = item;
	if (asprintf(&fw->scope, "mail:%s/%s", w->u->id, f->id) < 0) {
		fw->scope = NULL;
		container_close(s, &fw->ct);
		return;
	}
	full = !existed || cat_delta_get(s->c, fw->scope, &token) < 0;
again:
	if (full) {
		s->stats.full_walks++;
		fw->ct.seen = &fw->seen;
	}
	walk_release(s);
	rc = graph_message_delta_open(s->g, w->u->id, f->id, MSG_SELECT,
				      full ? NULL : token.data, &p);
	walk_acquire(s);
	if (rc == -ESTALE && !full) {
		s->stats.resyncs++;
		full = true;
		goto again;
	}
	while (rc == 0 && !s->fatal) {
		const cJSON *raw = NULL;

		walk_release(s);
		if (use_json) {
			rc = graph_pager_next_json(p, &raw);
			if (rc > 0)
				rc = graph_parse_message(raw, &m) == 0
					     ? 1
					     : -EBADMSG;
		} else {
			rc = graph_pager_next_message(p, &m);
		}
		walk_acquire(s);
		if (use_json && (rc == -EINVAL || rc == -ENOSYS)) {
			use_json = false;
			continue;
		}
		if (rc <= 0)
			break;
		rc = handle_message(s, w, &fw->ct, &m, raw, item);
		if (rc < 0)
			break;
		pool_reap(s, NULL, false);
	}
	if (rc == -ESTALE && !full) {
		graph_pager_free(p);
		p = NULL;
		pool_reap(s, &fw->ct, true);
		s->stats.resyncs++;
		full = true;
		goto again;
	}
	if (rc < 0) {
		item_error(s, "exchange", item, NULL, f->id,
			   "cannot list the messages of the folder: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
		fw->ct.errors++;
	} else {
		if (graph_pager_delta_link(p))
			fw->link = strdup(graph_pager_delta_link(p));
		fw->sweep = full && existed;
	}
	graph_message_release(&m);
	graph_pager_free(p);
	buf_release(&token);
	container_close(s, &fw->ct); /* may free @fw */
}

static void walk_folders(struct snap *s, struct mwalk *w, struct graph_pager *p,
			 int64_t parent, int depth);

static void do_folder(struct snap *s, struct mwalk *w, const struct folder *f,
		      int64_t parent, int depth)
{
	struct item in = { 0 };
	struct cat_item cur;
	struct buf name = BUF_INIT;
	struct graph_pager *p = NULL;
	bool existed;
	int64_t id;
	int rc;

	existed = cat_item_find(s->c, w->scope, f->id, &cur) == 0;
	rc = map_name(f->name, &name);
	if (rc < 0)
		goto out;
	in.parent = parent;
	in.kind = CAT_KIND_MAIL_FOLDER;
	in.name = buf_detach(&name, NULL);
	in.scope = strdup(w->scope);
	in.graph_id = strdup(f->id);
	if (!in.name || !in.scope || !in.graph_id)
		goto out;
	meta_add(&in.meta, CAT_META_GRAPH_ID, f->id);
	meta_add(&in.meta, "name", f->name);
	if (f->hidden)
		meta_add(&in.meta, "isHidden", "true");
	rc = put_item(s, &in, NULL, &id);
	if (rc < 0) {
		w->tree_incomplete = true;
		goto out;
	}
	idset_add(&w->folders, id);
	folder_messages(s, w, f, id, existed);
	if (f->child_count > 0 && depth < 64 && !s->fatal) {
		walk_release(s);
		rc = graph_mail_folders_open(s->g, w->u->id, f->id, true, &p);
		walk_acquire(s);
		if (rc < 0) {
			item_error(s, "exchange", id, NULL, f->id,
				   "cannot list the subfolders: %s",
				   graph_last_error()->message);
			s->stats.container_errors++;
			w->tree_incomplete = true;
		} else {
			walk_folders(s, w, p, id, depth + 1);
			p = NULL; /* freed there */
		}
	}
out:
	graph_pager_free(p);
	item_free(&in);
	buf_release(&name);
}

/* Read the folders of pager @p (closing it), then walk each. */
static void walk_folders(struct snap *s, struct mwalk *w, struct graph_pager *p,
			 int64_t parent, int depth)
{
	struct graph_mail_folder mf = { 0 };
	struct folder *v = NULL;
	size_t n = 0, i;
	int rc;

	for (;;) {
		struct folder *nv;

		walk_release(s);
		rc = graph_pager_next_mail_folder(p, &mf);
		walk_acquire(s);
		if (rc <= 0)
			break;
		if (mf.search_folder)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			rc = -ENOMEM;
			break;
		}
		v = nv;
		v[n].id = strdup(mf.id);
		v[n].name = strdup(mf.display_name);
		v[n].child_count = mf.child_count;
		v[n].hidden = mf.hidden;
		n++;
	}
	graph_mail_folder_release(&mf);
	graph_pager_free(p);
	if (rc < 0) {
		item_error(s, "exchange", parent, NULL, NULL,
			   "cannot list the mail folders: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
		w->tree_incomplete = true;
	}
	for (i = 0; i < n; i++) {
		if (v[i].id && v[i].name && !s->fatal)
			do_folder(s, w, &v[i], parent, depth);
		free(v[i].id);
		free(v[i].name);
	}
	free(v);
}

struct gone_folders {
	struct snap *s;
	struct idset *seen;
	struct idset gone;
	struct idset dirs;
};

static int folder_cb(void *ctx, const struct cat_item *it)
{
	struct gone_folders *k = ctx;

	if (it->kind != CAT_KIND_MAIL_FOLDER)
		return 0;
	if (!idset_has(k->seen, it->id))
		return idset_add(&k->gone, it->id);
	return idset_add(&k->dirs, it->id);
}

/* End the mail folders of the mailbox that Graph no longer lists. */
static void sweep_folders(struct snap *s, struct mwalk *w)
{
	struct gone_folders k = { .s = s, .seen = &w->folders };
	size_t i;

	idset_add(&k.dirs, w->mbx_item);
	for (i = 0; i < k.dirs.n; i++)
		if (cat_list(s->c, CAT_SNAP_CURRENT, k.dirs.v[i], NULL,
			     folder_cb, &k) < 0)
			goto out;
	for (i = 0; i < k.gone.n; i++) {
		int64_t n = 0;

		if (cat_item_delete(s->c, k.gone.v[i], &n) == 0)
			s->stats.deleted += n;
	}
out:
	idset_free(&k.gone);
	idset_free(&k.dirs);
}

int walk_mailbox(struct snap *s, const struct graph_user *u)
{
	struct mwalk w = { .u = u,
			   .ct = { .service = "exchange" },
			   .grp = { .limit = SNAP_MAIL_DOWNLOADS } };
	struct graph_pager *p = NULL;
	struct graph_mail_folder probe = { 0 };
	struct item in = { 0 };
	struct buf name = BUF_INIT;
	size_t i;
	int rc;

	w.upn = u->upn ? u->upn : u->id;
	/* probe (a 404 is an answer there, not an error), then list */
	walk_release(s);
	rc = graph_mail_folder_get(s->g, u->id, "inbox", &probe);
	graph_mail_folder_release(&probe);
	if (rc == 0)
		rc = graph_mail_folders_open(s->g, u->id, NULL, true, &p);
	walk_acquire(s);
	if (rc == -ENOENT) {
		/* MailboxNotEnabledForRESTAPI: no Exchange Online mailbox;
		 * noted and counted, not an error */
		log_info("user '%s' has no mailbox: %s", w.upn,
			 graph_last_error()->message);
		s->stats.no_mailbox++;
		return 0;
	}
	if (rc < 0) {
		item_error(s, "exchange", s->top[2], w.upn, u->id,
			   "cannot read the mailbox: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
		return rc;
	}
	s->stats.mailboxes++;
	if (asprintf(&w.scope, "mail:%s", u->id) < 0) {
		w.scope = NULL;
		rc = -ENOMEM;
		goto out;
	}
	rc = map_name(w.upn, &name);
	if (rc < 0)
		goto out;
	in.parent = s->top[2];
	in.kind = CAT_KIND_MAILBOX;
	in.name = buf_detach(&name, NULL);
	in.scope = strdup(w.scope);
	in.graph_id = strdup(u->id);
	meta_add(&in.meta, CAT_META_GRAPH_ID, u->id);
	meta_add(&in.meta, "name", w.upn);
	meta_add(&in.meta, "mail", u->mail);
	meta_add(&in.meta, "displayName", u->display_name);
	if (!in.name || !in.scope || !in.graph_id) {
		rc = -ENOMEM;
		goto out;
	}
	rc = put_item(s, &in, NULL, &w.mbx_item);
	if (rc < 0)
		goto out;
	idset_add(&s->containers, w.mbx_item);
	walk_folders(s, &w, p, w.mbx_item, 0);
	p = NULL;
	pool_reap(s, &w.ct, true); /* every folder of the mailbox */
	/* messages that left a folder: deleted, unless another folder now
	 * holds them (a move keeps the immutable id) */
	for (i = 0; i < w.nrm && !s->fatal; i++) {
		struct cat_item cur;
		int64_t n = 0;

		if (cat_item_find(s->c, w.scope, w.rm[i].id, &cur) == 0 &&
		    cur.parent == w.rm[i].folder &&
		    cat_item_delete(s->c, cur.id, &n) == 0)
			s->stats.deleted += n;
	}
	if (!w.tree_incomplete && !s->fatal)
		sweep_folders(s, &w);
out:
	graph_pager_free(p);
	item_free(&in);
	buf_release(&name);
	for (i = 0; i < w.nrm; i++)
		free(w.rm[i].id);
	free(w.rm);
	idset_free(&w.folders);
	free(w.scope);
	return rc;
}
