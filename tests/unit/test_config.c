/* Unit tests of engine/config: connection files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "util/util.h"

static const char good[] = "# a comment\n"
			   "tenant = contoso.onmicrosoft.com\n"
			   "client_id = 01234567-89AB-cdef-0123-456789abcdef\n"
			   "  credential=certificate  \r\n"
			   "cert_file = work.pem\n"
			   "\n"
			   "cloud = custom\n"
			   "login_url = https://127.0.0.1:8443\n"
			   "graph_url = https://127.0.0.1:8443\n"
			   "ca_file = /tmp/ca.pem\n"
			   "services = mail,files\n"
			   "registered = 2026-11-21T02:00:00Z\n";

static void test_parse_good(void)
{
	struct conf_conn c;
	struct conf_err e;

	conf_init(&c, "/d", "work");
	CHECK_EQ(conf_parse(&c, "work.conf", good, &e), 0);
	CHECK_STR(c.tenant, "contoso.onmicrosoft.com");
	CHECK_STR(c.client_id, "01234567-89AB-cdef-0123-456789abcdef");
	CHECK_EQ(c.cred, CONF_CRED_CERT);
	CHECK_STR(c.cert_file, "work.pem");
	CHECK_EQ(c.cloud, CONF_CLOUD_CUSTOM);
	CHECK_STR(conf_login_url(&c), "https://127.0.0.1:8443");
	CHECK_EQ(c.services, CONF_SVC_FILES | CONF_SVC_MAIL);
	CHECK_EQ(c.registered, 1795226400);
	CHECK_EQ(conf_validate(&c, &e), 0);
}

/* Each bad file fails with the line number and a word of the problem. */
static void test_parse_bad(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "tenant = x.com\nfoo = bar\n",
		  "work.conf:2: unknown key 'foo'" },
		{ "client_id = 1234\n",
		  "work.conf:1: client_id '1234' is not a GUID" },
		{ "tenant = not a tenant\n",
		  "work.conf:1: tenant 'not a tenant'" },
		{ "\n\ngraph_url = http://x\n",
		  "work.conf:3: graph_url 'http://x' is not an https URL" },
		{ "login_url = https://x/?a=b\n", "is not an https URL" },
		{ "cloud = mars\n", "unknown cloud 'mars'" },
		{ "credential = password\n", "unknown credential 'password'" },
		{ "services = files,calendar\n", "unknown service 'calendar'" },
		{ "tenant = a.com\ntenant = b.com\n",
		  "work.conf:2: key 'tenant' is given twice" },
		{ "tenant\n", "work.conf:1: line is not 'key = value'" },
		{ "tenant =\n", "has no value" },
		{ "registered = yesterday\n", "not an ISO 8601 time" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct conf_conn c;
		struct conf_err e = { "", "" };

		conf_init(&c, "/d", "work");
		CHECK_EQ(conf_parse(&c, "work.conf", cases[i].text, &e),
			 -EINVAL);
		if (!strstr(e.what, cases[i].want))
			fprintf(stderr, "case %zu: got '%s'\n", i, e.what);
		CHECK(strstr(e.what, cases[i].want) != NULL);
		CHECK(e.hint[0] != '\0');
	}
}

static void test_validate(void)
{
	struct conf_conn c;
	struct conf_err e;

	conf_init(&c, "/d", "w");
	CHECK_EQ(conf_parse(&c, "w.conf",
			    "tenant = a.com\n"
			    "client_id = 01234567-89ab-cdef-0123-456789abcdef\n"
			    "credential = secret\n",
			    &e),
		 0);
	CHECK_EQ(conf_validate(&c, &e), -EINVAL);
	CHECK(strstr(e.what, "'secret_file'") != NULL);
	strcpy(c.secret_file, "w.secret");
	CHECK_EQ(conf_validate(&c, &e), 0);
	c.cloud = CONF_CLOUD_CUSTOM;
	CHECK_EQ(conf_validate(&c, &e), -EINVAL);
	c.cloud = CONF_CLOUD_USGOV;
	CHECK_EQ(conf_validate(&c, &e), 0);
	CHECK_STR(conf_graph_url(&c), "https://graph.microsoft.us");
	c.cred = CONF_CRED_NONE;
	CHECK_EQ(conf_validate(&c, &e), -EINVAL);
}

static void test_names(void)
{
	CHECK(conf_name_valid("work"));
	CHECK(conf_name_valid("a.b_c-1"));
	CHECK(!conf_name_valid(""));
	CHECK(!conf_name_valid(".hidden"));
	CHECK(!conf_name_valid("-x"));
	CHECK(!conf_name_valid("a/b"));
	CHECK(!conf_name_valid("a b"));
	CHECK(conf_tenant_valid("contoso.onmicrosoft.com"));
	CHECK(conf_tenant_valid("01234567-89ab-cdef-0123-456789abcdef"));
	CHECK(!conf_tenant_valid("contoso"));
	CHECK(!conf_tenant_valid("a..b"));
	CHECK(!conf_tenant_valid("a_b.com"));
	CHECK(conf_url_valid("https://h:1/p", false));
	CHECK(!conf_url_valid("http://h", false));
	CHECK(conf_url_valid("http://h", true));
	CHECK(!conf_url_valid("https://u@h", false));
	CHECK(!conf_url_valid("https://", false));
}

static void test_services(void)
{
	struct buf b = BUF_INIT;
	struct conf_err e;
	unsigned m = 0;

	CHECK_EQ(conf_services_parse("all", &m, &e), 0);
	CHECK_EQ(m, CONF_SVC_ALL);
	CHECK_EQ(conf_services_parse("onedrive", &m, &e), 0);
	CHECK_EQ(m, CONF_SVC_ONEDRIVE);
	CHECK_EQ(conf_services_parse("", &m, &e), -EINVAL);
	CHECK_EQ(conf_services_parse("mail,,x", &m, &e), -EINVAL);
	CHECK_EQ(conf_services_format(CONF_SVC_MAIL | CONF_SVC_FILES, &b), 0);
	CHECK_STR(b.data, "files,mail");
	buf_release(&b);
}

/* Save, list, load (with the permission checks) and remove. */
static void test_files(void)
{
	char dir[] = "/tmp/test_config_XXXXXX";
	struct buf p = BUF_INIT;
	struct conf_conn c, d;
	struct conf_err e;
	char **names = NULL;
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	conf_init(&c, dir, "work");
	strcpy(c.tenant, "contoso.onmicrosoft.com");
	strcpy(c.client_id, "01234567-89ab-cdef-0123-456789abcdef");
	c.cred = CONF_CRED_SECRET;
	strcpy(c.secret_file, "work.secret");
	c.services = CONF_SVC_MAIL;
	c.registered = 1795226400;
	CHECK_EQ(conf_save(&c), 0);
	buf_addf(&p, "%s/work.conf", dir);
	CHECK_EQ(stat(p.data, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);

	CHECK_EQ(conf_load(dir, "work", &d, &e), 0);
	CHECK_STR(d.tenant, c.tenant);
	CHECK_STR(d.secret_file, "work.secret");
	CHECK_EQ(d.services, CONF_SVC_MAIL);
	CHECK_EQ(d.registered, c.registered);
	conf_path(&d, d.secret_file, &p);
	CHECK(strstr(p.data, "/work.secret") != NULL);
	CHECK(!strncmp(p.data, dir, strlen(dir)));

	/* a world-readable connection file is refused with the remedy */
	buf_reset(&p);
	buf_addf(&p, "%s/work.conf", dir);
	chmod(p.data, 0644);
	CHECK_EQ(conf_load(dir, "work", &d, &e), -EPERM);
	CHECK(strstr(e.hint, "chmod 600") != NULL);
	chmod(p.data, 0600);

	CHECK_EQ(conf_load(dir, "nope", &d, &e), -ENOENT);
	CHECK(strstr(e.what, "no connection 'nope'") != NULL);
	CHECK_EQ(conf_load(dir, "../x", &d, &e), -EINVAL);

	strcpy(c.name, "alpha");
	CHECK_EQ(conf_save(&c), 0);
	CHECK_EQ(conf_list(dir, &names), 0);
	CHECK(names && names[0] && names[1] && !names[2]);
	if (names && names[0] && names[1]) {
		CHECK_STR(names[0], "alpha");
		CHECK_STR(names[1], "work");
	}
	conf_list_free(names);

	CHECK_EQ(conf_remove(dir, "alpha"), 0);
	CHECK_EQ(conf_remove(dir, "work"), 0);
	CHECK_EQ(conf_remove(dir, "work"), -ENOENT);
	CHECK_EQ(conf_list(dir, &names), 0);
	CHECK(names && !names[0]);
	conf_list_free(names);
	CHECK_EQ(rmdir(dir), 0);
	buf_release(&p);
}

static void test_dir(void)
{
	struct buf b = BUF_INIT;

	setenv("M365FS_CONFIG_DIR", "/x/y", 1);
	CHECK_EQ(conf_dir(false, &b), 0);
	CHECK_STR(b.data, "/x/y");
	unsetenv("M365FS_CONFIG_DIR");
	CHECK_EQ(conf_dir(true, &b), 0);
	CHECK_STR(b.data, "/etc/m365fs");
	if (geteuid() != 0) {
		setenv("XDG_CONFIG_HOME", "/cfg", 1);
		CHECK_EQ(conf_dir(false, &b), 0);
		CHECK_STR(b.data, "/cfg/m365fs");
	}
	buf_release(&b);
}

int main(void)
{
	RUN(test_parse_good);
	RUN(test_parse_bad);
	RUN(test_validate);
	RUN(test_names);
	RUN(test_services);
	RUN(test_files);
	RUN(test_dir);
	return check_done();
}
