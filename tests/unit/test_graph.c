/*
 * test_graph - engine/graph without a network: parsing of the Graph
 * documentation samples (tests/unit/data/graph), validation of bad fields,
 * error mapping, URL building and escaping, quickXorHash vectors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "graph/graph.h"
#include "graph/graph_i.h"
#include "util/util.h"

#define DATA "tests/unit/data/graph/"

static cJSON *load(const char *name)
{
	struct buf b = BUF_INIT;
	char path[256];
	cJSON *j = NULL;

	snprintf(path, sizeof(path), DATA "%s.json", name);
	if (util_read_file(path, &b, 1 << 20) == 0)
		j = cJSON_ParseWithLength(b.data, b.len);
	if (!j)
		fprintf(stderr, "cannot load %s\n", path);
	buf_release(&b);
	return j;
}

static const cJSON *value_at(const cJSON *j, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItem(j, "value"), i);
}

static bool msg_has(const char *needle)
{
	const char *m = graph_last_error()->message;

	if (strstr(m, needle))
		return true;
	fprintf(stderr, "message '%s' lacks '%s'\n", m, needle);
	return false;
}

static void test_items(void)
{
	struct graph_item it = { 0 };
	cJSON *j;

	j = load("driveitem-get-root");
	CHECK_EQ(graph_parse_item(j, &it), 0);
	CHECK_STR(it.id, "01NKDM7HMOJTVYMDOSXFDK2QJDXCDI3WUK");
	CHECK_STR(it.name, "OneDrive");
	CHECK_EQ(it.kind, GRAPH_ITEM_FOLDER);
	CHECK(it.is_root);
	CHECK_EQ(it.child_count, 120);
	CHECK_EQ(it.size, 157286400);
	CHECK_STR(it.ctag, "\"c:{86EB4C8E-D20D-46B9-AD41-23B8868DDA8A},0\"");
	CHECK_EQ(it.modified, 1458590497); /* 2016-03-21T20:01:37Z */
	CHECK_STR(it.created_by.display_name, "Ryan Gregg");
	CHECK_STR(it.modified_by.id, "efee1b77-fb3b-4f65-99d6-274c11914d12");
	cJSON_Delete(j);

	j = load("drive-delta-page");
	CHECK_EQ(graph_parse_item(value_at(j, 0), &it), 0);
	CHECK_EQ(it.kind, GRAPH_ITEM_FOLDER);
	CHECK_EQ(it.child_count, -1);
	CHECK_EQ(graph_parse_item(value_at(j, 1), &it), 0);
	CHECK_EQ(it.kind, GRAPH_ITEM_FILE);
	CHECK_EQ(it.size, -1);
	CHECK(!it.deleted);
	CHECK_EQ(graph_parse_item(value_at(j, 2), &it), 0);
	CHECK(it.deleted);
	CHECK_STR(it.name, "file5.txt");
	CHECK_STR(cJSON_GetObjectItem(j, "@odata.nextLink")->valuestring,
		  "https://graph.microsoft.com/v1.0/me/drive/"
		  "delta(token=1230919asd190410jlka)");
	cJSON_Delete(j);

	j = load("drive-delta-last-page");
	CHECK_EQ(graph_parse_item(value_at(j, 0), &it), 0);
	CHECK(it.deleted && it.kind == GRAPH_ITEM_FOLDER);
	cJSON_Delete(j);

	/* the children sample is truncated: its items have no id */
	j = load("driveitem-children");
	CHECK_EQ(graph_parse_item(value_at(j, 0), &it), -EBADMSG);
	CHECK(msg_has("driveItem 'id' is missing"));
	CHECK(it.id == NULL);
	cJSON_Delete(j);

	j = load("upload-session-complete-201");
	CHECK_EQ(graph_parse_item(j, &it), 0);
	CHECK_STR(it.name, "largefile.vhd");
	CHECK_EQ(it.size, 128);
	cJSON_Delete(j);
	graph_item_release(&it);
	graph_item_release(NULL);
}

static int parse_text(const char *text, struct graph_item *it)
{
	cJSON *j = cJSON_Parse(text);
	int rc;

	if (!j)
		return -999;
	rc = graph_parse_item(j, it);
	cJSON_Delete(j);
	return rc;
}

static void test_item_validation(void)
{
	struct graph_item it = { 0 };
	struct buf b = BUF_INIT;

	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\",\"size\":\"12\"}",
			    &it),
		 -EBADMSG);
	CHECK(msg_has("driveItem 'size' is not a number"));
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\",\"size\":-1}", &it),
		 -EBADMSG);
	CHECK(msg_has("'size' is negative"));
	CHECK_EQ(
		parse_text("{\"id\":\"a\",\"name\":\"n\",\"size\":1e300}", &it),
		-EBADMSG);
	CHECK(msg_has("'size' is too large"));
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\",\"size\":1.5}", &it),
		 -EBADMSG);
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":7}", &it), -EBADMSG);
	CHECK(msg_has("driveItem 'name' is not a string"));
	CHECK_EQ(parse_text("{\"id\":\"a\"}", &it), -EBADMSG);
	CHECK(msg_has("'name' is missing"));
	CHECK_EQ(parse_text("{\"id\":\"\",\"name\":\"n\"}", &it), -EBADMSG);
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\",\"file\":[]}", &it),
		 -EBADMSG);
	CHECK(msg_has("'file' is not an object"));
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\",\"file\":{},"
			    "\"folder\":{}}",
			    &it),
		 -EBADMSG);
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\","
			    "\"lastModifiedDateTime\":\"yesterday\"}",
			    &it),
		 -EBADMSG);
	CHECK(msg_has("'lastModifiedDateTime' is not an ISO 8601 time"));
	CHECK_EQ(parse_text("{\"id\":\"a\",\"name\":\"n\",\"file\":"
			    "{\"hashes\":{\"quickXorHash\":5}}}",
			    &it),
		 -EBADMSG);
	CHECK(msg_has("hashes 'quickXorHash' is not a string"));
	CHECK_EQ(parse_text("[1,2]", &it), -EBADMSG);
	CHECK_EQ(graph_parse_item(NULL, &it), -EBADMSG);
	/* a huge name */
	buf_adds(&b, "{\"id\":\"a\",\"name\":\"");
	for (int i = 0; i < GRAPH_STR_MAX + 1; i++)
		buf_addch(&b, 'x');
	buf_adds(&b, "\"}");
	CHECK_EQ(parse_text(b.data, &it), -EBADMSG);
	CHECK(msg_has("'name' is too long"));
	buf_release(&b);
	/* good, with all facets */
	CHECK_EQ(parse_text(
			 "{\"id\":\"a\",\"name\":\"n\",\"size\":0,"
			 "\"file\":{\"mimeType\":\"text/plain\",\"hashes\":"
			 "{\"quickXorHash\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}},"
			 "\"parentReference\":{\"id\":\"p\",\"driveId\":\"d\","
			 "\"path\":\"/drive/root:/x\"},"
			 "\"fileSystemInfo\":{\"lastModifiedDateTime\":"
			 "\"2020-01-01T00:00:00.5Z\"},"
			 "\"@microsoft.graph.downloadUrl\":\"https://f/x\","
			 "\"package\":{\"type\":\"oneNote\"}}",
			 &it),
		 0);
	CHECK_EQ(it.size, 0);
	CHECK_EQ(it.kind, GRAPH_ITEM_PACKAGE);
	CHECK_STR(it.quickxor, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	CHECK_STR(it.parent_id, "p");
	CHECK_STR(it.drive_id, "d");
	CHECK_STR(it.parent_path, "/drive/root:/x");
	CHECK_STR(it.download_url, "https://f/x");
	CHECK_EQ(it.fs_modified, 1577836800);
	graph_item_release(&it);

	CHECK(graph_json_has_nul("{\"a\":\"x\\u0000y\"}", 16));
	CHECK(!graph_json_has_nul("{\"a\":\"x\\\\u0000y\"}", 17));
	CHECK(graph_json_has_nul("\"\\\\\\u0000\"", 10));
	CHECK(!graph_json_has_nul("\"\\u0001\"", 8));
	/* at the very end, cut short, trailing backslashes */
	CHECK(graph_json_has_nul("\\u0000", 6));
	CHECK(!graph_json_has_nul("\\u000", 5));
	CHECK(!graph_json_has_nul("\\\\u0000", 7));
	CHECK(graph_json_has_nul("x\\\\\\u0000", 9));
	CHECK(!graph_json_has_nul("x\\", 2));
	CHECK(!graph_json_has_nul("\\\\\\", 3));
	CHECK(!graph_json_has_nul("", 0));
}

/* graph_json_top_string() on @json: the value found for "@odata.nextLink"
 * (NULL: none). */
static char *top_link(const char *json)
{
	const char *v = NULL;
	size_t n = 0;

	if (!graph_json_top_string(json, strlen(json), "@odata.nextLink", &v,
				   &n))
		return NULL;
	return strndup(v, n);
}

#define CHECK_LINK(json, want)                                                 \
	do {                                                                   \
		char *got_ = top_link(json);                                   \
		if (want)                                                      \
			CHECK_STR(got_, (const char *)(want));                 \
		else                                                           \
			CHECK(got_ == NULL);                                   \
		free(got_);                                                    \
	} while (0)

static void test_top_string(void)
{
	/* after the items, before them, with spaces */
	CHECK_LINK(
		"{\"value\":[{\"id\":\"a\"}],\"@odata.nextLink\":\"https://g/x?"
		"$skiptoken=1\"}",
		"https://g/x?$skiptoken=1");
	CHECK_LINK("{\"@odata.nextLink\" :\n \"https://g/2\", \"value\":[]}",
		   "https://g/2");
	/* the same name inside an item, or as a value, is not the link */
	CHECK_LINK("{\"value\":[{\"@odata.nextLink\":\"https://evil/\"}]}",
		   NULL);
	CHECK_LINK("{\"value\":{\"@odata.nextLink\":\"https://evil/\"},"
		   "\"x\":\"@odata.nextLink\"}",
		   NULL);
	CHECK_LINK(
		"{\"a\":\"@odata.nextLink\",\"@odata.nextLink\":\"https://g/3\"}",
		"https://g/3");
	/* quotes, braces and backslashes inside strings are skipped */
	CHECK_LINK("{\"value\":[{\"name\":\"x\\\"}],\\\\\"}],"
		   "\"q\":\"\\\\\\\"}]\",\"@odata.nextLink\":\"https://g/4\"}",
		   "https://g/4");
	/* escapes in the value, a non-string value, truncated text: none */
	CHECK_LINK("{\"@odata.nextLink\":\"https:\\/\\/g/5\"}", NULL);
	CHECK_LINK("{\"@odata.nextLink\":null}", NULL);
	CHECK_LINK("{\"@odata.nextLink\":\"https://g/6", NULL);
	CHECK_LINK("{\"value\":[\"x], \"@odata.nextLink\":\"https://g/7\"}",
		   NULL);
	CHECK_LINK("", NULL);
	/* the first one wins, as with cJSON */
	CHECK_LINK("{\"@odata.nextLink\":\"https://g/8\",\"@odata.nextLink\":"
		   "\"https://g/9\"}",
		   "https://g/8");
}

static void test_directory(void)
{
	struct graph_site s = { 0 };
	struct graph_drive d = { 0 };
	struct graph_user u = { 0 };
	struct graph_group gr = { 0 };
	cJSON *j;

	j = load("site-get");
	CHECK_EQ(graph_parse_site(j, &s), 0);
	CHECK_STR(s.name, "1drvteam");
	CHECK_STR(s.display_name, "OneDrive Team Site");
	CHECK_STR(s.web_url, "https://contoso.sharepoint.com/teams/1drvteam");
	CHECK(!s.is_root);
	CHECK(s.created > 0);
	cJSON_Delete(j);

	j = load("sites-getallsites");
	CHECK_EQ(graph_parse_site(value_at(j, 0), &s), 0);
	CHECK(s.is_root);
	CHECK_STR(s.hostname, "contoso.sharepoint.com");
	CHECK(!s.personal);
	CHECK_EQ(graph_parse_site(value_at(j, 2), &s), 0);
	CHECK_STR(s.name, "Site B");
	cJSON_Delete(j);

	j = load("sites-search");
	CHECK_EQ(graph_parse_site(value_at(j, 1), &s), 0);
	CHECK_STR(s.name, "Team B Site");
	cJSON_Delete(j);
	graph_site_release(&s);

	j = load("drive-get");
	CHECK_EQ(graph_parse_drive(j, &d), 0);
	CHECK_STR(d.drive_type, "business");
	CHECK_STR(d.owner.display_name, "Ryan Gregg");
	CHECK_EQ(d.quota_total, 1099511627776LL);
	CHECK_EQ(d.quota_used, -1);
	cJSON_Delete(j);

	j = load("drives-list");
	CHECK_EQ(graph_parse_drive(value_at(j, 1), &d), 0);
	CHECK_STR(d.name, "Contoso Project Files");
	CHECK_STR(d.drive_type, "documentLibrary");
	cJSON_Delete(j);
	graph_drive_release(&d);

	j = load("user-get");
	CHECK_EQ(graph_parse_user(j, &u), 0);
	CHECK_STR(u.upn, "AdeleV@contoso.onmicrosoft.com");
	CHECK_STR(u.mail, "AdeleV@contoso.onmicrosoft.com");
	CHECK(u.account_enabled);
	cJSON_Delete(j);
	j = cJSON_Parse("{\"id\":\"x\",\"mail\":null,\"accountEnabled\":0}");
	CHECK_EQ(graph_parse_user(j, &u), -EBADMSG);
	CHECK(msg_has("user 'accountEnabled' is not a boolean"));
	cJSON_Delete(j);
	graph_user_release(&u);

	j = load("groups-list");
	CHECK_EQ(graph_parse_group(value_at(j, 0), &gr), 0);
	CHECK(gr.unified && gr.mail_enabled && !gr.security_enabled);
	CHECK_STR(gr.mail, "golfassist@contoso.com");
	CHECK_EQ(graph_parse_group(value_at(j, 1), &gr), 0);
	CHECK(!gr.unified);
	cJSON_Delete(j);
	graph_group_release(&gr);
}

static void test_mail(void)
{
	struct graph_mail_folder f = { 0 };
	struct graph_message m = { 0 };
	cJSON *j;
	int n = 0, search = 0;
	const cJSON *e;

	j = load("mailfolders-list");
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "value"))
	{
		CHECK_EQ(graph_parse_mail_folder(e, &f), 0);
		n++;
		if (f.search_folder) {
			search++;
			CHECK_STR(f.display_name, "Weekly digests");
		}
	}
	CHECK(n >= 6);
	CHECK_EQ(search, 1);
	CHECK_EQ(graph_parse_mail_folder(value_at(j, 4), &f), 0);
	CHECK_STR(f.display_name, "Inbox");
	CHECK_EQ(f.child_count, 1);
	CHECK_EQ(f.total_count, 71);
	CHECK_EQ(f.unread_count, 70);
	cJSON_Delete(j);

	j = load("mailfolder-childfolders-hidden");
	CHECK_EQ(graph_parse_mail_folder(value_at(j, 1), &f), 0);
	CHECK(f.hidden);
	CHECK_STR(f.display_name, "Clutters");
	cJSON_Delete(j);
	graph_mail_folder_release(&f);

	j = load("message-get");
	CHECK_EQ(graph_parse_message(j, &m), 0);
	CHECK_STR(m.id, "AAMkADhMGAAA=");
	CHECK_STR(m.subject, "9/9/2018: concert");
	CHECK_STR(m.from.email, "adelev@contoso.OnMicrosoft.com");
	CHECK_STR(m.internet_message_id,
		  "<MWHPR6E1BE060@MWHPR1120.namprd22.prod.outlook.com>");
	CHECK(m.is_read && !m.is_draft && !m.has_attachments);
	CHECK_EQ(m.received, 1536462908); /* 2018-09-09T03:15:08Z */
	CHECK_STR(m.importance, "normal");
	CHECK(m.categories && !m.categories[0]);
	cJSON_Delete(j);

	j = load("message-delta-page");
	CHECK_EQ(graph_parse_message(value_at(j, 1), &m), 0);
	CHECK_STR(m.from.display_name, "Samantha Booth"); /* from sender */
	CHECK(m.is_read);
	cJSON_Delete(j);

	j = load("message-delta-removed");
	CHECK_EQ(graph_parse_message(value_at(j, 0), &m), 0);
	CHECK(m.removed);
	CHECK_STR(m.removed_reason, "deleted");
	CHECK(m.subject == NULL);
	CHECK_EQ(graph_parse_message(value_at(j, 1), &m), 0);
	CHECK(!m.removed);
	CHECK(m.is_read); /* the sample has the string "true" */
	CHECK(cJSON_GetObjectItem(j, "@odata.deltaLink") != NULL);
	cJSON_Delete(j);

	j = load("message-create-mime-response");
	CHECK_EQ(graph_parse_message(j, &m), 0);
	CHECK(m.is_draft);
	cJSON_Delete(j);

	j = cJSON_Parse("{\"id\":\"x\",\"categories\":[\"a\",3]}");
	CHECK_EQ(graph_parse_message(j, &m), -EBADMSG);
	CHECK(msg_has("message 'categories' has a bad entry"));
	cJSON_Delete(j);
	graph_message_release(&m);
}

static void map_file(const char *name, long status, struct graph_error *e)
{
	struct buf b = BUF_INIT;
	char path[256];

	snprintf(path, sizeof(path), DATA "%s.json", name);
	util_read_file(path, &b, 1 << 20);
	graph_error_map(status, b.data, b.len, "list users", e);
	buf_release(&b);
}

static void test_errors(void)
{
	struct graph_error e;
	const char *resync =
		"{\"error\":{\"code\":\"resyncRequired\",\"message\":\"Resync "
		"required.\",\"innerError\":{\"code\":"
		"\"resyncChangesApplyDifferences\"}}}";
	const char *denied =
		"{\"error\":{\"code\":\"accessDenied\",\"message\":"
		"\"Either scp or roles claim need to be present "
		"in the token.\"}}";

	map_file("error-429", 429, &e);
	CHECK_EQ(e.rc, -EAGAIN);
	CHECK_STR(e.code, "TooManyRequests");
	CHECK_STR(e.inner_code, "429");
	CHECK(strstr(e.message, "throttling"));

	map_file("error-mime-invalid-base64", 400, &e);
	CHECK_EQ(e.rc, -EINVAL);
	CHECK_STR(e.code, "ErrorMimeContentInvalidBase64String");
	CHECK(strstr(e.message, "Invalid base64 string"));

	map_file("token-error-invalid-scope", 400, &e);
	CHECK_STR(e.code, "invalid_scope");
	CHECK(strstr(e.message, "AADSTS70011"));
	CHECK(!strchr(e.message, '\r') && !strchr(e.message, '\n'));

	CHECK_EQ(graph_error_map(410, resync, strlen(resync), "read changes",
				 &e),
		 -ESTALE);
	CHECK_STR(e.inner_code, "resyncChangesApplyDifferences");
	CHECK_EQ(graph_error_map(403, denied, strlen(denied), "list sites", &e),
		 -EPERM);
	CHECK(strstr(e.message, "list sites: access denied (accessDenied"));
	CHECK(strstr(e.message, "m365-connect grant"));
	CHECK_EQ(graph_error_map(401, NULL, 0, "x", &e), -EACCES);
	CHECK(strstr(e.message, "m365-connect test"));
	CHECK_EQ(graph_error_map(404,
				 "{\"error\":{\"code\":"
				 "\"MailboxNotEnabledForRESTAPI\"}}",
				 48, "x", &e),
		 -ENOENT);
	CHECK(strstr(e.message, "no Exchange Online mailbox"));
	CHECK_EQ(graph_error_map(404, "not json", 8, "x", &e), -ENOENT);
	CHECK_EQ(graph_error_map(409,
				 "{\"error\":{\"code\":\"nameAlreadyExists"
				 "\"}}",
				 38, "x", &e),
		 -EEXIST);
	CHECK_EQ(graph_error_map(400,
				 "{\"error\":{\"code\":\"ErrorFolderExists"
				 "\"}}",
				 38, "x", &e),
		 -EEXIST);
	CHECK_EQ(graph_error_map(507, NULL, 0, "x", &e), -ENOSPC);
	CHECK_EQ(graph_error_map(503, NULL, 0, "x", &e), -EAGAIN);
	CHECK_EQ(graph_error_map(502, NULL, 0, "x", &e), -EIO);
	CHECK_EQ(graph_error_map(416, NULL, 0, "x", &e), -ERANGE);
	/* control characters from the service never reach the message */
	CHECK_EQ(graph_error_map(400,
				 "{\"error\":{\"code\":\"a\\u001bb\","
				 "\"message\":\"x\\ty\"}}",
				 40, "x", &e),
		 -EINVAL);
	CHECK(!strchr(e.code, 0x1b) && !strchr(e.message, '\t'));
}

static void test_urls(void)
{
	struct graph_config cfg = { 0 };
	struct graph *g = NULL;
	struct buf u = BUF_INIT;

	cfg.base_url = "https://Graph.Example:8443//";
	CHECK_EQ(graph_new(NULL, &cfg, &g), 0);
	CHECK_EQ(graph_url_build(g, &u, "/users/%e/messages/%e/$value", "a@b.c",
				 "AAMk/AD+x=="),
		 0);
	CHECK_STR(u.data, "https://Graph.Example:8443/v1.0/users/a%40b.c/"
			  "messages/AAMk%2FAD%2Bx%3D%3D/$value");
	CHECK_EQ(graph_url_build(g, &u, "/drives/%e/root:/%p", "b!x",
				 "/Shared Docs/a+b/ä.txt"),
		 0);
	CHECK_STR(u.data, "https://Graph.Example:8443/v1.0/drives/b%21x/root:/"
			  "Shared%20Docs/a%2Bb/%C3%A4.txt");
	CHECK_EQ(graph_url_build(g, &u, "/drives/%e/root:/%p", "d", "a/../b"),
		 -EINVAL);
	CHECK_EQ(graph_url_build(g, &u, "/users/%e", ""), -EINVAL);
	CHECK_EQ(graph_url_build(g, &u, "/sites?search=%e", "a&b=c"), 0);
	CHECK_STR(u.data,
		  "https://Graph.Example:8443/v1.0/sites?search=a%26b%3Dc");
	buf_release(&u);
	graph_free(g);

	cfg.base_url = "ftp://x";
	CHECK_EQ(graph_new(NULL, &cfg, &g), -EINVAL);
	cfg.base_url = NULL;
	CHECK_EQ(graph_new(NULL, &cfg, &g), 0);
	graph_free(g);
	graph_free(NULL);
}

static void qxh(const void *p, size_t n, char out[29])
{
	struct graph_qxh q;

	graph_qxh_init(&q);
	graph_qxh_update(&q, p, n);
	graph_qxh_final(&q, out);
}

static void test_quickxor(void)
{
	unsigned char bytes[1024];
	char out[29], out2[29];
	const char *fox = "The quick brown fox jumps over the lazy dog";
	struct graph_qxh q;

	qxh("", 0, out);
	CHECK_STR(out, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	qxh("a", 1, out);
	CHECK_STR(out, "YQAAAAAAAAAAAAAAAQAAAAAAAAA=");
	qxh("abc", 3, out);
	CHECK_STR(out, "YRDDGAAAAAAAAAAAAwAAAAAAAAA=");
	qxh("Hello, World!", 13, out);
	CHECK_STR(out, "SCgDG9jwBhaA4ApvnQMbyBACAAA=");
	qxh(fox, strlen(fox), out);
	CHECK_STR(out, "bMSlbysmxJL6S75XwfMcQZOpcr4=");
	for (int i = 0; i < 1024; i++)
		bytes[i] = (unsigned char)(i & 0xFF);
	qxh(bytes, 160, out);
	CHECK_STR(out, "/+EGLlnQi0dVs5OErXWhEnz5wg4=");
	qxh(bytes, 1024, out);
	CHECK_STR(out, "h7xr2dbCayZCQYR9KKhlwDuT4UI=");

	/* streaming in uneven pieces gives the same digest */
	for (size_t step = 1; step < 400; step += 37) {
		graph_qxh_init(&q);
		for (size_t off = 0; off < sizeof(bytes); off += step)
			graph_qxh_update(&q, bytes + off,
					 off + step > sizeof(bytes)
						 ? sizeof(bytes) - off
						 : step);
		graph_qxh_final(&q, out2);
		CHECK_STR(out2, out);
	}
}

int main(void)
{
	RUN(test_items);
	RUN(test_item_validation);
	RUN(test_top_string);
	RUN(test_directory);
	RUN(test_mail);
	RUN(test_errors);
	RUN(test_urls);
	RUN(test_quickxor);
	return check_done();
}
