/*
 * The download pool: threads that stream file contents and messages from
 * Graph into the store, and hand the results back to the walker thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snap_i.h"
#include "util/log.h"
#include "util/util.h"

struct sinkctx {
	struct store_writer *w;
	struct graph_qxh q;
	uint64_t n;
};

static int sink_write(void *ctx, const void *p, size_t n)
{
	struct sinkctx *k = ctx;

	graph_qxh_update(&k->q, p, n);
	k->n += n;
	return store_writer_add(k->w, p, n);
}

static int sink_reset(void *ctx)
{
	struct sinkctx *k = ctx;

	store_writer_reset(k->w);
	graph_qxh_init(&k->q);
	k->n = 0;
	return 0;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->drive_id);
	free(j->src_id);
	free(j->download_url);
	free(j->user);
	free(j->cache_key);
	item_free(&j->item);
	store_content_release(&j->content);
	free(j);
}

static void job_fail(struct job *j, int rc, const char *what)
{
	const struct graph_error *e = graph_last_error();
	struct buf b = BUF_INIT;

	j->rc = rc;
	if (e && e->rc == rc && e->message[0])
		buf_addf(&b, "%s: %s", what, e->message);
	else
		buf_addf(&b, "%s: %s", what, strerror(-rc));
	snprintf(j->reason, sizeof(j->reason), "%.*s",
		 (int)(sizeof(j->reason) - 1), b.data);
	buf_release(&b);
}

static void run_job(struct snap *s, struct store_writer *w, struct job *j)
{
	struct sinkctx k = { .w = w };
	struct http_sink sink = { sink_write, sink_reset, &k };
	struct buf raw = BUF_INIT;
	int rc;

	graph_qxh_init(&k.q);
	store_writer_reset(w);
	if (j->type == JOB_FILE) {
		rc = graph_item_download(s->g, j->drive_id, j->src_id,
					 j->download_url, 0, 0, &sink, NULL);
		if (rc == -EACCES && j->download_url) {
			/* the pre-authenticated URL expired: go through
			 * /content, which redirects to a fresh one */
			sink_reset(&k);
			rc = graph_item_download(s->g, j->drive_id, j->src_id,
						 NULL, 0, 0, &sink, NULL);
		}
	} else {
		rc = graph_message_mime(s->g, j->user, j->src_id, &sink, NULL);
	}
	if (rc < 0) {
		store_writer_reset(w);
		job_fail(j, rc, "download failed");
		return;
	}
	rc = store_writer_finish(w, &j->content);
	if (rc < 0) {
		store_writer_reset(w);
		j->rc = rc;
		snprintf(j->reason, sizeof(j->reason),
			 "storing the content failed: %s", strerror(-rc));
		return;
	}
	j->got = k.n;
	graph_qxh_final(&k.q, j->got_qxh);
	if (util_b64_decode(&raw, j->got_qxh, strlen(j->got_qxh)) == 0 &&
	    raw.len == 20) {
		memcpy(j->qxh_raw, raw.data, 20);
		j->has_qxh = j->type == JOB_FILE;
	}
	buf_release(&raw);
	if (j->type != JOB_FILE)
		return;
	if (j->qxh[0] && strcmp(j->qxh, j->got_qxh)) {
		if (j->office) {
			/* Office documents may be rewritten on download
			 * (property promotion): Graph's documented exception */
			log_info(
				"'%s': downloaded Office file differs from its "
				"listed hash (expected for Office files)",
				j->item.name);
			return;
		}
		j->rc = -EBADMSG;
		snprintf(j->reason, sizeof(j->reason),
			 "downloaded content does not match its quickXorHash "
			 "(got %s, Graph lists %s)",
			 j->got_qxh, j->qxh);
		return;
	}
	if (!j->qxh[0] && j->expect_size >= 0 &&
	    (uint64_t)j->expect_size != j->got && !j->office) {
		j->rc = -EBADMSG;
		snprintf(j->reason, sizeof(j->reason),
			 "downloaded %llu bytes, Graph lists %lld",
			 (unsigned long long)j->got, (long long)j->expect_size);
	}
}

static void adapt_window(struct pool *p, struct snap *s)
{
	struct http_stats hs;

	http_stats_get(graph_http(s->g), &hs);
	if (hs.throttled > p->last_throttled) {
		p->last_throttled = hs.throttled;
		p->window = p->window > 1 ? p->window / 2 : 1;
		p->ok_streak = 0;
		log_info("throttled: %u downloads at once", p->window);
	} else if (++p->ok_streak >= 4 * p->window && p->window < p->max) {
		p->window++;
		p->ok_streak = 0;
	}
	if (p->window > p->max)
		p->window = p->max;
}

/* The next job that may start now (unlinked from the queue), or NULL. */
static struct job *pick(struct pool *p)
{
	struct job *j, *prev = NULL;

	if (p->running >= p->window)
		return NULL;
	for (j = p->queue; j; prev = j, j = j->next)
		if (!j->group || j->group->running < j->group->limit)
			break;
	if (!j)
		return NULL;
	if (prev)
		prev->next = j->next;
	else
		p->queue = j->next;
	if (p->queue_tail == j)
		p->queue_tail = prev;
	p->queued--;
	if (j->group) {
		j->group->queued--;
		j->group->running++;
	} else {
		p->queued_plain--;
	}
	p->running++;
	return j;
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct snap *s = p->s;
	struct store_writer *w = NULL;
	int wrc = store_writer_new(s->st, &w);

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct job *j = NULL;

		while (!p->stop && !(j = pick(p)))
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		pthread_mutex_unlock(&p->lock);

		if (wrc < 0) {
			j->rc = wrc;
			snprintf(j->reason, sizeof(j->reason),
				 "cannot write to the repository: %s",
				 strerror(-wrc));
		} else {
			run_job(s, w, j);
		}

		pthread_mutex_lock(&p->lock);
		p->running--;
		if (j->group)
			j->group->running--;
		adapt_window(p, s);
		j->next = p->done;
		p->done = j;
		p->ndone++;
		pthread_cond_broadcast(&p->done_cv);
		pthread_cond_broadcast(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
	store_writer_free(w);
	return NULL;
}

int pool_start(struct snap *s, unsigned n)
{
	struct pool *p = &s->pool;
	unsigned i;
	int rc;

	memset(p, 0, sizeof(*p));
	p->s = s;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	p->max = p->window = n;
	p->threads = calloc(n, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = pthread_create(&p->threads[i], NULL, worker, p);
		if (rc) {
			pool_stop(s);
			return -rc;
		}
		p->nthreads++;
	}
	return 0;
}

void pool_stop(struct snap *s)
{
	struct pool *p = &s->pool;
	struct job *j;
	unsigned i;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	p->nthreads = 0;
	while ((j = p->queue)) {
		p->queue = j->next;
		job_free(j);
	}
	while ((j = p->done)) {
		p->done = j->next;
		job_free(j);
	}
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done_cv);
	pthread_mutex_destroy(&p->lock);
}

/* On the walker thread: record the outcome of a finished job. */
static void complete(struct snap *s, struct job *j)
{
	struct container *o = j->owner;
	int64_t cid = 0;
	int rc;

	o->pending--;
	if (j->rc == 0) {
		rc = cat_content_put(
			s->c, (int64_t)j->content.size, j->content.sha256,
			j->has_qxh ? j->qxh_raw : NULL, j->content.desc.data,
			j->content.desc.len, &cid);
		if (rc < 0) {
			log_err("cannot record a content in the catalog: %s",
				strerror(-rc));
			s->fatal = rc;
			goto out;
		}
		if (j->cache_key)
			dcache_put(s->cache, j->cache_key, j->content.sha256);
		s->stats.downloads++;
		s->stats.bytes_down += (int64_t)j->got;
		s->stats.bytes_new += (int64_t)j->content.new_bytes;
		j->item.content = cid;
		j->item.size = (int64_t)j->content.size;
		rc = put_item(s, &j->item, o, NULL);
		if (rc < 0)
			o->errors++;
	} else {
		item_error(s, o->service, j->item.parent, j->item.name,
			   j->item.graph_id, "%s", j->reason);
		o->errors++;
	}
out:
	job_free(j);
	if (o->closed && !o->pending && o->finalize)
		o->finalize(s, o); /* may free @o */
}

void container_close(struct snap *s, struct container *ct)
{
	ct->closed = true;
	if (!ct->pending && ct->finalize)
		ct->finalize(s, ct);
}

/* True when the queue that @j would join is full. */
static bool queue_full(const struct pool *p, const struct job *j)
{
	if (j->group)
		return j->group->queued >= 2 * j->group->limit;
	return p->queued_plain >= 2 * p->max + 2;
}

int pool_submit(struct snap *s, struct job *j)
{
	struct pool *p = &s->pool;

	j->owner->pending++;
	j->next = NULL;
	pthread_mutex_lock(&p->lock);
	while (queue_full(p, j) && !p->ndone) {
		/* wait for a completion without the walk lock: other walkers
		 * go on meanwhile */
		walk_release(s);
		pthread_cond_wait(&p->done_cv, &p->lock);
		pthread_mutex_unlock(&p->lock);
		walk_acquire(s);
		pthread_mutex_lock(&p->lock);
	}
	if (p->queue_tail)
		p->queue_tail->next = j;
	else
		p->queue = j;
	p->queue_tail = j;
	p->queued++;
	if (j->group)
		j->group->queued++;
	else
		p->queued_plain++;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	pool_reap(s, NULL, false);
	return 0;
}

void pool_reap(struct snap *s, struct container *owner, bool wait)
{
	struct pool *p = &s->pool;

	for (;;) {
		struct job *list, *j, *rev = NULL;

		pthread_mutex_lock(&p->lock);
		if (!p->done && wait) {
			/* owner->pending is walker state: the walk lock is
			 * held here */
			bool idle = owner ? owner->pending == 0
					  : (!p->queued && !p->running);

			if (!idle) {
				walk_release(s);
				pthread_cond_wait(&p->done_cv, &p->lock);
				pthread_mutex_unlock(&p->lock);
				walk_acquire(s);
				continue;
			}
		}
		list = p->done;
		p->done = NULL;
		p->ndone = 0;
		pthread_mutex_unlock(&p->lock);
		if (!list)
			break;
		/* in completion order */
		while ((j = list)) {
			list = j->next;
			j->next = rev;
			rev = j;
		}
		while ((j = rev)) {
			rev = j->next;
			complete(s, j);
		}
		/* another walker may wait for a container completed here */
		pthread_mutex_lock(&p->lock);
		pthread_cond_broadcast(&p->done_cv);
		pthread_mutex_unlock(&p->lock);
		progress(s, false);
		if (!wait)
			break;
	}
}
