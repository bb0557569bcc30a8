/*
 * fuzz_graph_json - the Graph JSON parsers on hostile input: every object
 * (the document, its "value" elements and their members) goes through
 * every graph_parse_*(), the error mapping and the link checks (also the
 * nextLink picked out of the text unparsed, for reading ahead); the answer
 * must be 0 or -EBADMSG, never a crash or a leak, and a parsed struct's
 * invariants must hold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "graph/graph_i.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void check_rc(int rc)
{
	if (rc != 0 && rc != -EBADMSG && rc != -ENOMEM)
		abort();
}

static void all_parsers(const cJSON *j)
{
	struct graph_item it = { 0 };
	struct graph_drive d = { 0 };
	struct graph_site s = { 0 };
	struct graph_user u = { 0 };
	struct graph_group gr = { 0 };
	struct graph_org o = { 0 };
	struct graph_mail_folder f = { 0 };
	struct graph_message m = { 0 };
	int rc;

	rc = graph_parse_item(j, &it);
	check_rc(rc);
	if (rc == 0) {
		/* accepted: the invariants the walker relies on */
		if (!it.id || !it.id[0] || (!it.deleted && !it.name))
			abort();
		if (it.size < -1 || it.size > GRAPH_SIZE_MAX)
			abort();
	}
	check_rc(graph_parse_drive(j, &d));
	check_rc(graph_parse_site(j, &s));
	check_rc(graph_parse_user(j, &u));
	check_rc(graph_parse_group(j, &gr));
	check_rc(graph_parse_org(j, &o));
	check_rc(graph_parse_mail_folder(j, &f));
	rc = graph_parse_message(j, &m);
	check_rc(rc);
	if (rc == 0 && !m.id)
		abort();
	graph_item_release(&it);
	graph_drive_release(&d);
	graph_site_release(&s);
	graph_user_release(&u);
	graph_group_release(&gr);
	graph_org_release(&o);
	graph_mail_folder_release(&f);
	graph_message_release(&m);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const long statuses[] = { 400, 401, 403, 404, 409,
					 410, 429, 500, 503, 507 };
	static int ready;
	struct graph_error e;
	const cJSON *v, *el;
	cJSON *j;
	const char *link = NULL;
	size_t n = 0;
	int64_t ms;
	char o[64];

	if (!ready) {
		log_init("fuzz_graph_json", LOG_CRIT);
		ready = 1;
	}
	graph_json_has_nul((const char *)data, size);
	/* the link picked out unparsed (read ahead): inside the input, one
	 * plain JSON string */
	if (graph_json_top_string((const char *)data, size, "@odata.nextLink",
				  &link, &n) &&
	    (link < (const char *)data ||
	     link + n > (const char *)data + size || memchr(link, '"', n) ||
	     memchr(link, '\\', n)))
		abort();
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		graph_error_map(statuses[i], (const char *)data, size, "fuzz",
				&e);
		if (e.rc >= 0 || memchr(e.message, '\n', strlen(e.message)))
			abort();
	}
	j = cJSON_ParseWithLength((const char *)data, size);
	if (!j)
		return 0;
	all_parsers(j);
	v = cJSON_GetObjectItemCaseSensitive(j, "value");
	cJSON_ArrayForEach(el, (cJSON_IsArray(v) ? v : NULL))
	{
		const cJSON *member;

		all_parsers(el);
		cJSON_ArrayForEach(member, (cJSON_IsObject(el) ? el : NULL))
			all_parsers(member);
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "@odata.nextLink");
	if (cJSON_IsString(v)) {
		http_url_origin(v->valuestring, o, sizeof(o));
		http_retry_after_parse(v->valuestring, 0, &ms);
	}
	cJSON_Delete(j);
	return 0;
}
