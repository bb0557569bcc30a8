/*
 * m365-connect register NAME: automatic registration (admin device-code
 * sign-in, application + certificate + service principal + consent).
 * m365-connect grant NAME: the same for an app registered by hand, never
 * creating one.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "connect/connect.h"
#include "util/util.h"

enum {
	O_TENANT = 256,
	O_SERVICES,
	O_NAME,
	O_PUBLIC,
	O_CLOUD,
	O_LOGIN,
	O_GRAPH,
	O_CA,
	O_WAIT,
	O_BITS,
	O_YEARS,
	O_NOWAIT,
	O_SPURL,
};

static const struct cli_opt reg_opts[] = {
	{ "tenant", O_TENANT, "ID",
	  "tenant id (GUID) or domain to register in" },
	{ "services", O_SERVICES, "LIST",
	  "files,onedrive,mail (default: all)" },
	{ "display-name", O_NAME, "TEXT",
	  "name of the app (default 'm365fs backup NAME')" },
	{ "public-client-id", O_PUBLIC, "GUID",
	  "public client for the admin sign-in" },
	{ "cloud", O_CLOUD, "CLOUD",
	  "global (default), usgov, usgovdod, china, custom" },
	{ "login-url", O_LOGIN, "URL", "sign-in endpoint override" },
	{ "graph-url", O_GRAPH, "URL", "Graph endpoint override" },
	{ "ca-file", O_CA, "FILE", "extra CA bundle (PEM) to trust" },
	{ "sharepoint-url", O_SPURL, "URL", "https://TENANT.sharepoint.com" },
	{ "wait", O_WAIT, "TIME",
	  "how long to wait for the sign-in (default 15m)" },
	{ "bits", O_BITS, "N",
	  "RSA key size of a new certificate: 3072 or 2048" },
	{ "years", O_YEARS, "N", "validity of a new certificate: 1 or 2" },
	{ "no-verify", O_NOWAIT, NULL,
	  "do not wait until the new credential works" },
	{ NULL, 0, NULL, NULL },
};

struct reg_args {
	const char *tenant, *services, *display, *pub, *cloud, *login, *graph;
	const char *ca, *spurl;
	uint64_t wait_s, bits, years;
	bool no_verify;
};

static int on_opt(void *ctx, const struct cli_opt *o, const char *arg)
{
	struct reg_args *a = ctx;

	switch (o->key) {
	case O_TENANT:
		a->tenant = arg;
		break;
	case O_SERVICES:
		a->services = arg;
		break;
	case O_NAME:
		a->display = arg;
		break;
	case O_PUBLIC:
		a->pub = arg;
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
	case O_SPURL:
		a->spurl = arg;
		break;
	case O_WAIT:
		return cli_parse_duration(arg, "wait", &a->wait_s);
	case O_BITS:
		if (cli_parse_u64(arg, "bits", 8192, &a->bits))
			return CLI_EXIT_USAGE;
		if (a->bits != 2048 && a->bits != 3072)
			return cli_usage("register", "--bits is 2048 or 3072");
		break;
	case O_YEARS:
		if (cli_parse_u64(arg, "years", 2, &a->years) || !a->years)
			return cli_usage("register", "--years is 1 or 2");
		break;
	case O_NOWAIT:
		a->no_verify = true;
		break;
	}
	return 0;
}

static void on_step(void *ctx, const char *what, bool ok)
{
	(void)ctx;
	printf("%-8s %s\n", ok ? "ok" : "FAILED", what);
	fflush(stdout);
}

/* Use the connection's certificate if it is usable, else make one. */
static int ensure_cert(struct conn *cx, const struct reg_args *a)
{
	struct auth_status st;
	struct buf p = BUF_INIT;
	struct stat sb;
	int rc;

	buf_addf(&p, "%s/%s.pem", cx->conn.dir, cx->conn.name);
	if (cx->conn.cred == CONF_CRED_CERT || cx->conn.cred == CONF_CRED_PFX ||
	    stat(p.data, &sb) == 0) {
		if (cx->conn.cred != CONF_CRED_CERT &&
		    cx->conn.cred != CONF_CRED_PFX) {
			cx->conn.cred = CONF_CRED_CERT;
			snprintf(cx->conn.cert_file, sizeof(cx->conn.cert_file),
				 "%s.pem", cx->conn.name);
			snprintf(cx->conn.key_file, sizeof(cx->conn.key_file),
				 "%s.key", cx->conn.name);
		}
		rc = conn_credential(cx, &st);
		if (!rc)
			rc = auth_cert_check(cx->cert, util_now(), &st);
		if (!rc) {
			printf("%-8s using the certificate of the connection (thumbprint ",
			       "ok");
			{
				struct auth_cert_info in;

				auth_cert_info(cx->cert, &in);
				printf("%s)\n", in.thumbprint);
			}
			buf_release(&p);
			return 0;
		}
		printf("%-8s the connection's certificate is not usable (%s): making a new one\n",
		       "note", st.what);
		conn_close(cx);
	}
	buf_release(&p);
	rc = connect_cert_create(&cx->conn, a->bits ? (int)a->bits : 3072,
				 a->years ? (int)a->years : 1, &cx->cert);
	if (rc < 0)
		return CLI_EXIT_FAIL;
	cx->conn.cred = CONF_CRED_CERT;
	snprintf(cx->conn.cert_file, sizeof(cx->conn.cert_file), "%s.pem",
		 cx->conn.name);
	snprintf(cx->conn.key_file, sizeof(cx->conn.key_file), "%s.key",
		 cx->conn.name);
	cx->conn.secret_file[0] = cx->conn.pfx_file[0] = '\0';
	cx->conn.pfx_password_file[0] = '\0';
	printf("%-8s new certificate %s/%s.pem (RSA %d, %d year%s)\n", "ok",
	       cx->conn.dir, cx->conn.name, a->bits ? (int)a->bits : 3072,
	       a->years ? (int)a->years : 1, a->years > 1 ? "s" : "");
	return 0;
}

/* After registration: wait until the credential gets a token. */
static int verify(struct conn *cx)
{
	struct auth_status st;
	struct buf tok = BUF_INIT;
	int rc;

	conn_close(cx);
	printf("         waiting for Entra ID to accept the new credential (up to 2 minutes)\n");
	fflush(stdout);
	rc = conn_auth_open(cx, 120, &st);
	if (!rc)
		rc = auth_token_get(cx->auth, &tok);
	if (rc < 0) {
		if (cx->auth)
			auth_last_status(cx->auth, &st);
		cli_conn_report(&st);
		cli_hint(
			"Entra ID can take a few minutes more: run 'm365-connect test %s --wait 5m'",
			cx->conn.name);
	} else {
		printf("%-8s the application's certificate is accepted\n",
		       "ok");
	}
	cli_secret_wipe(&tok);
	return rc < 0 ? CLI_EXIT_FAIL : 0;
}

static int run(int argc, char **argv, bool grant)
{
	static const char reg_usage[] =
		"m365-connect register NAME --tenant ID [--services LIST] [--display-name TEXT]";
	static const char grant_usage[] =
		"m365-connect grant NAME [--services LIST] [--public-client-id GUID]";
	const char *cmd = grant ? "grant" : "register";
	struct reg_args a = { 0 };
	struct conn cx;
	struct auth_user_token admin = { BUF_INIT, BUF_INIT, 0 };
	struct auth_status st;
	struct auth_reg reg = { 0 };
	struct http *h = NULL;
	struct buf dir = BUF_INIT, disp = BUF_INIT;
	struct conf_err err;
	bool existing;
	int npos, rc;

	memset(&cx, 0, sizeof(cx));
	rc = cli_parse(argc, argv, cmd, grant ? grant_usage : reg_usage,
		       reg_opts, on_opt, &a, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1 || !conf_name_valid(argv[0]))
		return cli_usage(cmd, "give one connection NAME");
	if (a.pub && !util_guid_valid(a.pub))
		return cli_usage(cmd, "public client id '%s' is not a GUID",
				 a.pub);
	rc = connect_dir(&dir);
	if (rc)
		goto out;

	/* the stored connection, if any: register reuses its app */
	rc = conf_load(dir.data, argv[0], &cx.conn, &err);
	existing = rc == 0;
	if (rc < 0 && (rc != -ENOENT || grant)) {
		cli_error("%s", err.what);
		if (err.hint[0])
			cli_hint("%s", err.hint);
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	if (!existing) {
		conf_init(&cx.conn, dir.data, argv[0]);
		if (!a.tenant) {
			rc = cli_usage(
				cmd,
				"--tenant is required for a new connection");
			goto out;
		}
	}
	if (a.tenant) {
		if (!conf_tenant_valid(a.tenant)) {
			rc = cli_usage(
				cmd,
				"tenant '%s' is neither a GUID nor a domain name",
				a.tenant);
			goto out;
		}
		snprintf(cx.conn.tenant, sizeof(cx.conn.tenant), "%s",
			 a.tenant);
	}
	if (!existing || a.cloud || a.login || a.graph || a.ca || a.services) {
		unsigned keep = cx.conn.services;

		rc = connect_endpoints(&cx.conn, cmd, a.cloud, a.login, a.graph,
				       a.ca, a.services);
		if (rc)
			goto out;
		if (existing && !a.services && keep)
			cx.conn.services = keep;
	}
	if (a.spurl)
		snprintf(cx.conn.sharepoint_url, sizeof(cx.conn.sharepoint_url),
			 "%s", a.spurl);
	if (a.display)
		buf_adds(&disp, a.display);
	else if (cx.conn.display_name[0])
		buf_adds(&disp, cx.conn.display_name);
	else
		buf_addf(&disp, "m365fs backup %s", cx.conn.name);

	/* a certificate for the app (grant keeps a secret credential) */
	if (!grant || cx.conn.cred != CONF_CRED_SECRET) {
		rc = ensure_cert(&cx, &a);
		if (rc)
			goto out;
	}

	rc = cli_conn_http(&cx.conn, &h);
	if (rc < 0) {
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	rc = connect_admin_signin(h, &cx.conn,
				  a.pub ? a.pub : CONNECT_PUBLIC_CLIENT,
				  a.wait_s ? (int)a.wait_s : 900, &admin);
	if (rc)
		goto out;
	printf("%-8s administrator signed in\n", "ok");

	reg.display_name = disp.data;
	reg.app_id = cx.conn.client_id[0] ? cx.conn.client_id : NULL;
	reg.cert = cx.cert;
	reg.services = cx.conn.services ? cx.conn.services : CONF_SVC_ALL;
	rc = auth_register(h, conf_graph_url(&cx.conn), admin.access.data, &reg,
			   grant, on_step, NULL, &st);
	if (rc < 0) {
		cli_conn_report(&st);
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	printf("%-8s application '%s' (client id %s): %s, %d permission%s consented now, %d already\n",
	       "ok", disp.data, reg.app_id_out,
	       reg.created ? "created" : "reused", reg.roles_granted,
	       reg.roles_granted == 1 ? "" : "s", reg.roles_present);

	snprintf(cx.conn.client_id, sizeof(cx.conn.client_id), "%s",
		 reg.app_id_out);
	snprintf(cx.conn.app_object_id, sizeof(cx.conn.app_object_id), "%s",
		 reg.app_object_id);
	snprintf(cx.conn.display_name, sizeof(cx.conn.display_name), "%s",
		 disp.data);
	if (reg.created || reg.cert_added || reg.roles_granted)
		cx.conn.registered = util_now();
	rc = conf_save(&cx.conn);
	if (rc < 0) {
		cli_error("cannot save connection '%s': %s", cx.conn.name,
			  strerror(-rc));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	printf("%-8s connection saved in %s/%s.conf\n", "ok", cx.conn.dir,
	       cx.conn.name);
	rc = a.no_verify ? 0 : verify(&cx);
	if (!rc)
		printf("next: m365-connect test %s\n", cx.conn.name);
out:
	auth_user_token_release(&admin);
	http_free(h);
	conn_close(&cx);
	buf_release(&dir);
	buf_release(&disp);
	return rc;
}

int cmd_register(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cmd_grant(int argc, char **argv)
{
	return run(argc, argv, true);
}
