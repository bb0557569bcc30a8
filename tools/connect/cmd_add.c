/* m365-connect add NAME: a connection for an app registered by hand. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connect/connect.h"
#include "util/util.h"

enum {
	O_TENANT = 256,
	O_CLIENT,
	O_CERT,
	O_KEY,
	O_PFX,
	O_PASSFILE,
	O_SECRETFILE,
	O_SECRETSTDIN,
	O_CLOUD,
	O_LOGIN,
	O_GRAPH,
	O_CA,
	O_SERVICES,
	O_SPURL,
	O_FORCE,
};

static const struct cli_opt opts[] = {
	{ "tenant", O_TENANT, "ID",
	  "tenant id (GUID) or domain (contoso.onmicrosoft.com)" },
	{ "client-id", O_CLIENT, "GUID", "Application (client) ID of the app" },
	{ "cert", O_CERT, "FILE",
	  "PEM certificate (with the key, or see --key)" },
	{ "key", O_KEY, "FILE", "PEM private key of --cert" },
	{ "pfx", O_PFX, "FILE", "PKCS#12 certificate with its key" },
	{ "password-file", O_PASSFILE, "FILE",
	  "password of --pfx (else asked)" },
	{ "secret-file", O_SECRETFILE, "FILE",
	  "client secret value in a 0600 file" },
	{ "secret-stdin", O_SECRETSTDIN, NULL,
	  "read the client secret from stdin" },
	{ "cloud", O_CLOUD, "CLOUD",
	  "global (default), usgov, usgovdod, china, custom" },
	{ "login-url", O_LOGIN, "URL", "sign-in endpoint override" },
	{ "graph-url", O_GRAPH, "URL", "Graph endpoint override" },
	{ "ca-file", O_CA, "FILE", "extra CA bundle (PEM) to trust" },
	{ "services", O_SERVICES, "LIST",
	  "files,onedrive,mail (default: all)" },
	{ "sharepoint-url", O_SPURL, "URL",
	  "https://TENANT.sharepoint.com (checked by test)" },
	{ "force", O_FORCE, NULL, "replace an existing connection" },
	{ NULL, 0, NULL, NULL },
};

struct add_args {
	const char *tenant, *client_id, *cert, *key, *pfx, *passfile;
	const char *secret_file, *cloud, *login, *graph, *ca, *services;
	const char *spurl;
	bool secret_stdin, force;
};

static int on_opt(void *ctx, const struct cli_opt *o, const char *arg)
{
	struct add_args *a = ctx;

	switch (o->key) {
	case O_TENANT:
		a->tenant = arg;
		break;
	case O_CLIENT:
		a->client_id = arg;
		break;
	case O_CERT:
		a->cert = arg;
		break;
	case O_KEY:
		a->key = arg;
		break;
	case O_PFX:
		a->pfx = arg;
		break;
	case O_PASSFILE:
		a->passfile = arg;
		break;
	case O_SECRETFILE:
		a->secret_file = arg;
		break;
	case O_SECRETSTDIN:
		a->secret_stdin = true;
		break;
	case O_CLOUD:
		a->cloud = arg;
		break;
	case O_LOGIN:
		a->login = arg;
		break;
	case O_GRAPH:
		a->graph = arg;
		break;
	case O_CA:
		a->ca = arg;
		break;
	case O_SERVICES:
		a->services = arg;
		break;
	case O_SPURL:
		a->spurl = arg;
		break;
	case O_FORCE:
		a->force = true;
		break;
	}
	return 0;
}

static int set_url(char *dst, size_t size, const char *url, const char *opt)
{
	size_t n = strlen(url);

	while (n > 1 && url[n - 1] == '/')
		n--;
	if (!conf_url_valid(url, false) || n >= size)
		return cli_usage("add", "--%s '%s' is not an https URL", opt,
				 url);
	memcpy(dst, url, n);
	dst[n] = '\0';
	return 0;
}

int connect_endpoints(struct conf_conn *c, const char *cmd, const char *cloud,
		      const char *login, const char *graph, const char *ca,
		      const char *services)
{
	struct conf_err err;
	char *real;
	int rc;

	if (cloud && conf_cloud_parse(cloud, &c->cloud) < 0)
		return cli_usage(
			cmd,
			"unknown cloud '%s' (global, usgov, usgovdod, china, custom)",
			cloud);
	rc = login ? set_url(c->login_url, sizeof(c->login_url), login,
			     "login-url")
		   : 0;
	if (!rc && graph)
		rc = set_url(c->graph_url, sizeof(c->graph_url), graph,
			     "graph-url");
	if (rc)
		return rc;
	if (c->cloud == CONF_CLOUD_CUSTOM && (!login || !graph))
		return cli_usage(
			cmd,
			"--cloud custom needs --login-url and --graph-url");
	if (ca) {
		real = realpath(ca, NULL);
		if (!real) {
			cli_error("cannot read CA file '%s': %s", ca,
				  strerror(errno));
			return CLI_EXIT_FAIL;
		}
		snprintf(c->ca_file, sizeof(c->ca_file), "%s", real);
		free(real);
	}
	c->services = CONF_SVC_ALL;
	if (services && conf_services_parse(services, &c->services, &err) < 0)
		return cli_usage(cmd, "%s", err.what);
	return 0;
}

static int write_secret(const struct conf_conn *c, const struct buf *secret)
{
	struct buf path = BUF_INIT;
	int rc;

	rc = buf_addf(&path, "%s/%s.secret", c->dir, c->name);
	if (!rc)
		rc = util_write_file_atomic(path.data, secret->data,
					    secret->len, 0600);
	if (rc < 0)
		cli_error("cannot write '%s': %s", path.data, strerror(-rc));
	buf_release(&path);
	return rc;
}

/* Load --cert/--key or --pfx and check it; reports errors. */
static int read_cert(const struct add_args *a, struct auth_cert **cert)
{
	struct auth_status st = { 0 };
	struct buf pw = BUF_INIT;
	int rc;

	if (a->cert) {
		rc = auth_cert_load_pem(a->cert, a->key, cert, &st);
	} else {
		if (a->passfile) {
			rc = cli_secret_from_file(a->passfile, "PFX password",
						  &pw);
			if (rc < 0)
				return CLI_EXIT_FAIL;
		}
		rc = auth_cert_load_pfx(a->pfx, pw.data, cert, &st);
		if (rc == -EACCES && !a->passfile) {
			cli_secret_wipe(&pw);
			rc = cli_secret_prompt("PFX password: ", &pw);
			if (rc == -ENXIO) {
				cli_error("PFX file '%s' needs a password",
					  a->pfx);
				cli_hint(
					"give it with --password-file FILE (mode 0600)");
				return CLI_EXIT_FAIL;
			}
			if (!rc)
				rc = auth_cert_load_pfx(a->pfx, pw.data, cert,
							&st);
		}
		cli_secret_wipe(&pw);
	}
	if (rc < 0) {
		cli_conn_report(&st);
		return CLI_EXIT_FAIL;
	}
	rc = auth_cert_check(*cert, util_now(), &st);
	if (rc < 0) {
		cli_conn_report(&st);
		auth_cert_free(*cert);
		*cert = NULL;
		return CLI_EXIT_FAIL;
	}
	return 0;
}

int cmd_add(int argc, char **argv)
{
	static const char usage[] =
		"m365-connect add NAME --tenant ID --client-id GUID\n"
		"           (--cert FILE [--key FILE] | --pfx FILE [--password-file FILE] |\n"
		"            --secret-file FILE | --secret-stdin) [--cloud CLOUD] [--services LIST]";
	struct add_args a = { 0 };
	struct conn cx;
	struct conf_conn *c = &cx.conn;
	struct auth_cert *cert = NULL;
	struct buf dir = BUF_INIT, secret = BUF_INIT, p1 = BUF_INIT,
		   p2 = BUF_INIT;
	const char *name;
	int npos, rc, ncred;
	struct stat sb;

	memset(&cx, 0, sizeof(cx));
	rc = cli_parse(argc, argv, "add", usage, opts, on_opt, &a, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1)
		return cli_usage("add", "give one connection NAME");
	name = argv[0];
	if (!conf_name_valid(name))
		return cli_usage(
			"add",
			"'%s' is not a valid connection name (letters, digits, '.', '_', '-')",
			name);
	if (!a.tenant)
		return cli_usage("add", "--tenant is required");
	if (!conf_tenant_valid(a.tenant))
		return cli_usage(
			"add",
			"tenant '%s' is neither a GUID nor a domain name",
			a.tenant);
	if (!a.client_id)
		return cli_usage("add", "--client-id is required");
	if (!util_guid_valid(a.client_id)) {
		cli_error("client id '%s' is not a GUID", a.client_id);
		cli_hint(
			"copy the Application (client) ID from Entra admin center, App registrations, Overview");
		return CLI_EXIT_USAGE;
	}
	ncred = !!a.cert + !!a.pfx + !!a.secret_file + a.secret_stdin;
	if (ncred != 1)
		return cli_usage(
			"add",
			"give exactly one credential: --cert, --pfx, --secret-file or --secret-stdin");
	if (a.key && !a.cert)
		return cli_usage("add", "--key goes with --cert");
	if (a.passfile && !a.pfx)
		return cli_usage("add", "--password-file goes with --pfx");
	if (a.spurl && !conf_url_valid(a.spurl, false))
		return cli_usage("add",
				 "--sharepoint-url '%s' is not an https URL",
				 a.spurl);

	rc = connect_dir(&dir);
	if (rc)
		goto out;
	conf_init(c, dir.data, name);
	snprintf(c->tenant, sizeof(c->tenant), "%s", a.tenant);
	snprintf(c->client_id, sizeof(c->client_id), "%s", a.client_id);
	if (a.spurl)
		snprintf(c->sharepoint_url, sizeof(c->sharepoint_url), "%s",
			 a.spurl);
	rc = connect_endpoints(c, "add", a.cloud, a.login, a.graph, a.ca,
			       a.services);
	if (rc)
		goto out;
	buf_addf(&p1, "%s/%s.conf", dir.data, name);
	if (!a.force && stat(p1.data, &sb) == 0) {
		cli_error("connection '%s' exists already", name);
		cli_hint(
			"remove it with 'm365-connect remove %s' or replace it with --force",
			name);
		rc = CLI_EXIT_FAIL;
		goto out;
	}

	/* read and check the credential before anything is written */
	if (a.secret_file) {
		if (cli_secret_from_file(a.secret_file, "client secret",
					 &secret) < 0) {
			rc = CLI_EXIT_FAIL;
			goto out;
		}
	} else if (a.secret_stdin) {
		if (cli_secret_from_stdin("client secret value: ",
					  "client secret", &secret) < 0) {
			rc = CLI_EXIT_FAIL;
			goto out;
		}
	} else {
		rc = read_cert(&a, &cert);
		if (rc)
			goto out;
	}

	rc = util_mkdir_p(dir.data, 0700);
	if (rc < 0) {
		cli_error("cannot create '%s': %s", dir.data, strerror(-rc));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	if (secret.len) {
		c->cred = CONF_CRED_SECRET;
		snprintf(c->secret_file, sizeof(c->secret_file), "%s.secret",
			 name);
		if (write_secret(c, &secret) < 0) {
			rc = CLI_EXIT_FAIL;
			goto out;
		}
	} else {
		c->cred = CONF_CRED_CERT;
		snprintf(c->cert_file, sizeof(c->cert_file), "%s.pem", name);
		snprintf(c->key_file, sizeof(c->key_file), "%s.key", name);
		buf_reset(&p1);
		buf_addf(&p1, "%s/%s", dir.data, c->cert_file);
		buf_addf(&p2, "%s/%s", dir.data, c->key_file);
		rc = auth_cert_save(cert, p1.data, p2.data);
		if (rc < 0) {
			cli_error("cannot write '%s': %s", p1.data,
				  strerror(-rc));
			rc = CLI_EXIT_FAIL;
			goto out;
		}
	}
	rc = conf_save(c);
	if (rc < 0) {
		cli_error("cannot write connection '%s' in '%s': %s", name,
			  dir.data, strerror(-rc));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	printf("connection '%s' saved in %s/%s.conf\n", name, dir.data, name);
	printf("  tenant:     %s\n  client id:  %s\n", c->tenant, c->client_id);
	if (cert) {
		printf("  credential: certificate (copied to %s, %s)\n",
		       c->cert_file, c->key_file);
		connect_cert_print(stdout, cert, "  ");
	} else {
		printf("  credential: client secret (stored in %s, mode 0600)\n",
		       c->secret_file);
	}
	printf("next: m365-connect test %s\n", name);
	rc = 0;
out:
	auth_cert_free(cert);
	cli_secret_wipe(&secret);
	buf_release(&dir);
	buf_release(&p1);
	buf_release(&p2);
	return rc;
}
