#include "config/config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define CONF_FILE_MAX (64 * 1024)

static const char *const cloud_names[] = {
	[CONF_CLOUD_GLOBAL] = "global",	    [CONF_CLOUD_USGOV] = "usgov",
	[CONF_CLOUD_USGOVDOD] = "usgovdod", [CONF_CLOUD_CHINA] = "china",
	[CONF_CLOUD_CUSTOM] = "custom",
};

/* GRAPH-API.md §7 */
static const char *const cloud_login[] = {
	[CONF_CLOUD_GLOBAL] = "https://login.microsoftonline.com",
	[CONF_CLOUD_USGOV] = "https://login.microsoftonline.us",
	[CONF_CLOUD_USGOVDOD] = "https://login.microsoftonline.us",
	[CONF_CLOUD_CHINA] = "https://login.chinacloudapi.cn",
	[CONF_CLOUD_CUSTOM] = "",
};

static const char *const cloud_graph[] = {
	[CONF_CLOUD_GLOBAL] = "https://graph.microsoft.com",
	[CONF_CLOUD_USGOV] = "https://graph.microsoft.us",
	[CONF_CLOUD_USGOVDOD] = "https://dod-graph.microsoft.us",
	[CONF_CLOUD_CHINA] = "https://microsoftgraph.chinacloudapi.cn",
	[CONF_CLOUD_CUSTOM] = "",
};

static const char *const cred_names[] = {
	[CONF_CRED_NONE] = "none",
	[CONF_CRED_SECRET] = "secret",
	[CONF_CRED_CERT] = "certificate",
	[CONF_CRED_PFX] = "pfx",
};

static const char *const svc_names[] = { "files", "onedrive", "mail" };

static void err_set(struct conf_err *err, const char *hint, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

static void err_set(struct conf_err *err, const char *hint, const char *fmt,
		    ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->what, sizeof(err->what), fmt, ap);
	va_end(ap);
	snprintf(err->hint, sizeof(err->hint), "%s", hint ? hint : "");
}

int conf_dir(bool system, struct buf *out)
{
	const char *env = getenv("M365FS_CONFIG_DIR");
	const char *home;

	buf_reset(out);
	if (env && *env)
		return buf_adds(out, env);
	if (system || geteuid() == 0)
		return buf_adds(out, "/etc/m365fs");
	env = getenv("XDG_CONFIG_HOME");
	if (env && env[0] == '/')
		return buf_addf(out, "%s/m365fs", env);
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(geteuid());

		home = pw ? pw->pw_dir : NULL;
	}
	if (!home || !*home)
		return -ENOENT;
	return buf_addf(out, "%s/.config/m365fs", home);
}

bool conf_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > CONF_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

void conf_init(struct conf_conn *c, const char *dir, const char *name)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
}

bool conf_url_valid(const char *s, bool plain_ok)
{
	const char *host;
	size_t i;

	if (!strncmp(s, "https://", 8))
		host = s + 8;
	else if (plain_ok && !strncmp(s, "http://", 7))
		host = s + 7;
	else
		return false;
	if (!*host || *host == '/' || *host == ':' || *host == '.')
		return false;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '@' ||
		    c == '\\')
			return false;
	}
	return true;
}

bool conf_tenant_valid(const char *s)
{
	size_t i, n = strlen(s);
	bool dot = false;

	if (util_guid_valid(s))
		return true;
	if (n < 3 || n > 253 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
			dot = true;
		} else if (!isalnum(c) && c != '-') {
			return false;
		}
	}
	return dot;
}

const char *conf_cloud_name(enum conf_cloud cloud)
{
	if ((unsigned)cloud >= ARRAY_SIZE(cloud_names))
		return "?";
	return cloud_names[cloud];
}

int conf_cloud_parse(const char *s, enum conf_cloud *cloud)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cloud_names); i++) {
		if (!strcmp(s, cloud_names[i])) {
			*cloud = (enum conf_cloud)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *conf_cred_name(enum conf_cred cred)
{
	if ((unsigned)cred >= ARRAY_SIZE(cred_names))
		return "?";
	return cred_names[cred];
}

int conf_cred_parse(const char *s, enum conf_cred *cred)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cred_names); i++) {
		if (!strcmp(s, cred_names[i])) {
			*cred = (enum conf_cred)i;
			return 0;
		}
	}
	if (!strcmp(s, "cert")) {
		*cred = CONF_CRED_CERT;
		return 0;
	}
	return -EINVAL;
}

int conf_services_parse(const char *s, unsigned *mask, struct conf_err *err)
{
	const char *p = s;
	unsigned m = 0;

	while (*p) {
		size_t n = strcspn(p, ","), i;
		bool found = false;

		if (n == 3 && !strncmp(p, "all", 3)) {
			m |= CONF_SVC_ALL;
			found = true;
		}
		for (i = 0; i < ARRAY_SIZE(svc_names) && !found; i++) {
			if (strlen(svc_names[i]) == n &&
			    !strncmp(p, svc_names[i], n)) {
				m |= 1u << i;
				found = true;
			}
		}
		if (!found) {
			err_set(err,
				"services are files, onedrive and mail, separated by commas",
				"unknown service '%.*s'", (int)n, p);
			return -EINVAL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!m) {
		err_set(err,
			"services are files, onedrive and mail, separated by commas",
			"no service given");
		return -EINVAL;
	}
	*mask = m;
	return 0;
}

int conf_services_format(unsigned mask, struct buf *out)
{
	size_t i;
	bool first = true;
	int rc = 0;

	for (i = 0; i < ARRAY_SIZE(svc_names) && !rc; i++) {
		if (!(mask & (1u << i)))
			continue;
		rc = buf_addf(out, "%s%s", first ? "" : ",", svc_names[i]);
		first = false;
	}
	return rc;
}

const char *conf_login_url(const struct conf_conn *c)
{
	if (c->login_url[0])
		return c->login_url;
	return cloud_login[c->cloud];
}

const char *conf_graph_url(const struct conf_conn *c)
{
	if (c->graph_url[0])
		return c->graph_url;
	return cloud_graph[c->cloud];
}

int conf_graph_resource(const struct conf_conn *c, struct buf *out)
{
	enum conf_cloud cl = c->cloud;

	if ((unsigned)cl >= ARRAY_SIZE(cloud_graph) || cl == CONF_CLOUD_CUSTOM)
		cl = CONF_CLOUD_GLOBAL;
	return buf_adds(out, cloud_graph[cl]);
}

/* Keys of the file: name, where it goes, and how it is checked. */
enum kind {
	K_STR,
	K_PATH,
	K_URL,
	K_GUID,
	K_TENANT,
	K_CRED,
	K_CLOUD,
	K_SVC,
	K_TIME
};

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	size_t size;
};

#define KEY(n, k, f)                                                           \
	{                                                                      \
		n, k, offsetof(struct conf_conn, f),                           \
			sizeof(((struct conf_conn *)0)->f)                     \
	}

static const struct key keys[] = {
	KEY("tenant", K_TENANT, tenant),
	KEY("client_id", K_GUID, client_id),
	KEY("credential", K_CRED, cred),
	KEY("secret_file", K_PATH, secret_file),
	KEY("cert_file", K_PATH, cert_file),
	KEY("key_file", K_PATH, key_file),
	KEY("pfx_file", K_PATH, pfx_file),
	KEY("pfx_password_file", K_PATH, pfx_password_file),
	KEY("cloud", K_CLOUD, cloud),
	KEY("login_url", K_URL, login_url),
	KEY("graph_url", K_URL, graph_url),
	KEY("ca_file", K_PATH, ca_file),
	KEY("services", K_SVC, services),
	KEY("sharepoint_url", K_URL, sharepoint_url),
	KEY("app_object_id", K_GUID, app_object_id),
	KEY("display_name", K_STR, display_name),
	KEY("registered", K_TIME, registered),
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int set_key(struct conf_conn *c, const struct key *k, const char *v,
		   const char *where, struct conf_err *err)
{
	char *field = (char *)c + k->off;
	struct conf_err sub;
	int64_t t;
	int32_t ns;

	switch (k->kind) {
	case K_GUID:
		if (!util_guid_valid(v)) {
			err_set(err,
				"a GUID looks like 01234567-89ab-cdef-0123-456789abcdef (Entra admin center, App registrations, Overview)",
				"%s: %s '%s' is not a GUID", where, k->name, v);
			return -EINVAL;
		}
		break;
	case K_TENANT:
		if (!conf_tenant_valid(v)) {
			err_set(err,
				"give the tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com",
				"%s: tenant '%s' is neither a GUID nor a domain name",
				where, v);
			return -EINVAL;
		}
		break;
	case K_URL:
		if (!conf_url_valid(v, false)) {
			err_set(err,
				"write an absolute https URL without query, such as https://graph.microsoft.com",
				"%s: %s '%s' is not an https URL", where,
				k->name, v);
			return -EINVAL;
		}
		break;
	case K_CRED:
		if (conf_cred_parse(v, &c->cred) < 0) {
			err_set(err,
				"use 'credential = secret', 'certificate' or 'pfx'",
				"%s: unknown credential '%s'", where, v);
			return -EINVAL;
		}
		return 0;
	case K_CLOUD:
		if (conf_cloud_parse(v, &c->cloud) < 0) {
			err_set(err,
				"use global, usgov, usgovdod, china or custom",
				"%s: unknown cloud '%s'", where, v);
			return -EINVAL;
		}
		return 0;
	case K_SVC:
		if (conf_services_parse(v, &c->services, &sub) < 0) {
			err_set(err, sub.hint, "%s: %s", where, sub.what);
			return -EINVAL;
		}
		return 0;
	case K_TIME:
		if (util_time_parse(v, &t, &ns) < 0) {
			err_set(err, "write the time as 2026-11-21T02:00:00Z",
				"%s: %s '%s' is not an ISO 8601 time", where,
				k->name, v);
			return -EINVAL;
		}
		c->registered = t;
		return 0;
	case K_STR:
	case K_PATH:
		break;
	}
	if (strlen(v) >= k->size) {
		err_set(err, "shorten the value", "%s: %s is too long", where,
			k->name);
		return -EINVAL;
	}
	memcpy(field, v, strlen(v) + 1);
	return 0;
}

int conf_parse(struct conf_conn *c, const char *path, const char *text,
	       struct conf_err *err)
{
	bool seen[ARRAY_SIZE(keys)] = { false };
	char *copy = strdup(text), *line, *next;
	int lineno = 0, ret = 0;

	if (!copy)
		return -ENOMEM;
	c->services = 0;
	for (line = copy; line; line = next) {
		char where[PATH_MAX + 32], *eq, *k, *v;
		size_t i;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		k = trim(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			err_set(err, "write settings as 'key = value'",
				"%s: line is not 'key = value'", where);
			ret = -EINVAL;
			goto out;
		}
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		for (i = 0; i < ARRAY_SIZE(keys); i++)
			if (!strcmp(keys[i].name, k))
				break;
		if (i == ARRAY_SIZE(keys)) {
			err_set(err,
				"remove the line or correct the key (see 'man m365-connect', CONFIGURATION)",
				"%s: unknown key '%s'", where, k);
			ret = -EINVAL;
			goto out;
		}
		if (seen[i]) {
			err_set(err, "keep one of the lines",
				"%s: key '%s' is given twice", where, k);
			ret = -EINVAL;
			goto out;
		}
		seen[i] = true;
		if (!*v) {
			err_set(err, "give a value or remove the line",
				"%s: key '%s' has no value", where, k);
			ret = -EINVAL;
			goto out;
		}
		ret = set_key(c, &keys[i], v, where, err);
		if (ret < 0)
			goto out;
	}
	if (!c->services)
		c->services = CONF_SVC_ALL;
out:
	free(copy);
	return ret;
}

int conf_validate(const struct conf_conn *c, struct conf_err *err)
{
	const char *need = NULL;

	if (!c->tenant[0])
		need = "tenant";
	else if (!c->client_id[0])
		need = "client_id";
	if (need) {
		err_set(err,
			"add the line or recreate the connection with 'm365-connect add'",
			"connection '%s' has no '%s'", c->name, need);
		return -EINVAL;
	}
	switch (c->cred) {
	case CONF_CRED_SECRET:
		if (!c->secret_file[0])
			need = "secret_file";
		break;
	case CONF_CRED_CERT:
		if (!c->cert_file[0])
			need = "cert_file";
		break;
	case CONF_CRED_PFX:
		if (!c->pfx_file[0])
			need = "pfx_file";
		break;
	case CONF_CRED_NONE:
		err_set(err,
			"add 'credential = secret|certificate|pfx' with its file, or run 'm365-connect add' again",
			"connection '%s' has no credential", c->name);
		return -EINVAL;
	}
	if (need) {
		err_set(err,
			"add the line or recreate the connection with 'm365-connect add'",
			"connection '%s' uses a %s but has no '%s'", c->name,
			conf_cred_name(c->cred), need);
		return -EINVAL;
	}
	if (c->cloud == CONF_CLOUD_CUSTOM &&
	    (!c->login_url[0] || !c->graph_url[0])) {
		err_set(err,
			"set login_url and graph_url, or choose a cloud: global, usgov, usgovdod, china",
			"connection '%s' uses cloud 'custom' without login_url and graph_url",
			c->name);
		return -EINVAL;
	}
	return 0;
}

int conf_check_private(const char *path, const char *what, struct conf_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int rc = -errno;

		err_set(err,
			rc == -ENOENT
				? "check the path, or recreate the connection with 'm365-connect add'"
				: NULL,
			"cannot read %s '%s': %s", what, path, strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(err, NULL, "%s '%s' is not a regular file", what, path);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		char hint[PATH_MAX + 16];

		snprintf(hint, sizeof(hint), "run 'chmod 600 %s'", path);
		err_set(err, hint,
			"%s '%s' is readable by other users (mode %04o)", what,
			path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int conf_path(const struct conf_conn *c, const char *path, struct buf *out)
{
	buf_reset(out);
	if (path[0] == '/')
		return buf_adds(out, path);
	return buf_addf(out, "%s/%s", c->dir, path);
}

int conf_load(const char *dir, const char *name, struct conf_conn *c,
	      struct conf_err *err)
{
	struct buf path = BUF_INIT, text = BUF_INIT;
	int ret;

	conf_init(c, dir, name);
	if (!conf_name_valid(name)) {
		err_set(err,
			"names use letters, digits, '.', '_' and '-' (at most 64)",
			"'%s' is not a valid connection name", name);
		return -EINVAL;
	}
	ret = buf_addf(&path, "%s/%s.conf", dir, name);
	if (ret < 0)
		goto out;
	ret = conf_check_private(path.data, "connection file", err);
	if (ret == -ENOENT) {
		err_set(err,
			"list connections with 'm365-connect list', create one with 'm365-connect add' or 'register'",
			"no connection '%s' (no file '%s')", name, path.data);
		goto out;
	}
	if (ret < 0)
		goto out;
	ret = util_read_file(path.data, &text, CONF_FILE_MAX);
	if (ret < 0) {
		err_set(err, NULL, "cannot read '%s': %s", path.data,
			strerror(-ret));
		goto out;
	}
	if (memchr(text.data, '\0', text.len)) {
		err_set(err, NULL, "'%s' is not a text file", path.data);
		ret = -EINVAL;
		goto out;
	}
	ret = conf_parse(c, path.data, text.data, err);
	if (ret < 0)
		goto out;
	ret = conf_validate(c, err);
out:
	buf_release(&path);
	buf_release(&text);
	return ret;
}

static int put(struct buf *out, const char *key, const char *v)
{
	if (!v || !*v)
		return 0;
	return buf_addf(out, "%s = %s\n", key, v);
}

int conf_format(const struct conf_conn *c, struct buf *out)
{
	struct buf svc = BUF_INIT;
	char when[32];
	int rc = 0;

	rc |= buf_addf(out,
		       "# m365fs connection '%s' (see 'man m365-connect')\n",
		       c->name);
	rc |= put(out, "tenant", c->tenant);
	rc |= put(out, "client_id", c->client_id);
	rc |= put(out, "credential", conf_cred_name(c->cred));
	rc |= put(out, "secret_file", c->secret_file);
	rc |= put(out, "cert_file", c->cert_file);
	rc |= put(out, "key_file", c->key_file);
	rc |= put(out, "pfx_file", c->pfx_file);
	rc |= put(out, "pfx_password_file", c->pfx_password_file);
	rc |= put(out, "cloud", conf_cloud_name(c->cloud));
	rc |= put(out, "login_url", c->login_url);
	rc |= put(out, "graph_url", c->graph_url);
	rc |= put(out, "ca_file", c->ca_file);
	rc |= conf_services_format(c->services ? c->services : CONF_SVC_ALL,
				   &svc);
	rc |= put(out, "services", svc.data);
	rc |= put(out, "sharepoint_url", c->sharepoint_url);
	rc |= put(out, "app_object_id", c->app_object_id);
	rc |= put(out, "display_name", c->display_name);
	if (c->registered) {
		util_time_format(c->registered, when, sizeof(when));
		rc |= put(out, "registered", when);
	}
	buf_release(&svc);
	return rc ? -ENOMEM : 0;
}

int conf_save(const struct conf_conn *c)
{
	struct buf path = BUF_INIT, text = BUF_INIT;
	int ret;

	ret = util_mkdir_p(c->dir, 0700);
	if (ret < 0)
		goto out;
	ret = buf_addf(&path, "%s/%s.conf", c->dir, c->name);
	if (ret < 0)
		goto out;
	ret = conf_format(c, &text);
	if (ret < 0)
		goto out;
	ret = util_write_file_atomic(path.data, text.data, text.len, 0600);
out:
	buf_release(&path);
	buf_release(&text);
	return ret;
}

int conf_remove(const char *dir, const char *name)
{
	static const char *const ext[] = { "secret", "pem", "key", "pfx",
					   "pfxpass" };
	struct buf path = BUF_INIT;
	size_t i;
	int ret;

	ret = buf_addf(&path, "%s/%s.conf", dir, name);
	if (ret < 0)
		goto out;
	if (unlink(path.data) < 0) {
		ret = -errno;
		goto out;
	}
	for (i = 0; i < ARRAY_SIZE(ext); i++) {
		buf_reset(&path);
		ret = buf_addf(&path, "%s/%s.%s", dir, name, ext[i]);
		if (ret < 0)
			goto out;
		if (unlink(path.data) < 0 && errno != ENOENT) {
			ret = -errno;
			goto out;
		}
	}
	ret = 0;
out:
	buf_release(&path);
	return ret;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void conf_list_free(char **names)
{
	size_t i;

	if (!names)
		return;
	for (i = 0; names[i]; i++)
		free(names[i]);
	free(names);
}

int conf_list(const char *dir, char ***names)
{
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	DIR *d = opendir(dir);
	int ret = 0;

	*names = NULL;
	if (!d && errno != ENOENT)
		return -errno;
	while (d) {
		size_t len;
		char **nv;

		errno = 0;
		de = readdir(d);
		if (!de) {
			ret = -errno;
			break;
		}
		len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".conf"))
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		v = nv;
		v[n] = strndup(de->d_name, len - 5);
		if (!v[n]) {
			ret = -ENOMEM;
			break;
		}
		if (!conf_name_valid(v[n])) {
			free(v[n]);
			v[n] = NULL;
			continue;
		}
		v[++n] = NULL;
	}
	if (d)
		closedir(d);
	if (!v && !ret) {
		v = calloc(1, sizeof(*v));
		if (!v)
			ret = -ENOMEM;
	}
	if (ret < 0) {
		if (v)
			v[n] = NULL;
		conf_list_free(v);
		return ret;
	}
	qsort(v, n, sizeof(*v), cmp_names);
	*names = v;
	return 0;
}
