/* m365-connect list, show, remove, cert. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "connect/connect.h"
#include "util/util.h"

enum { O_JSON = 256, O_BITS, O_YEARS, O_FORCE };

static int on_json(void *ctx, const struct cli_opt *o, const char *arg)
{
	(void)arg;
	if (o->key == O_JSON)
		*(bool *)ctx = true;
	return 0;
}

static const struct cli_opt json_opts[] = {
	{ "json", O_JSON, NULL, "print JSON" },
	{ NULL, 0, NULL, NULL },
};

int cmd_list(int argc, char **argv)
{
	struct buf dir = BUF_INIT;
	char **names = NULL;
	bool json = false;
	cJSON *arr = NULL;
	int npos, rc;
	size_t i;

	rc = cli_parse(argc, argv, "list", "m365-connect list [--json]",
		       json_opts, on_json, &json, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos)
		return cli_usage("list", "no arguments expected");
	rc = connect_dir(&dir);
	if (rc)
		goto out;
	rc = conf_list(dir.data, &names);
	if (rc < 0) {
		cli_error("cannot list '%s': %s", dir.data, strerror(-rc));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	arr = cJSON_CreateArray();
	for (i = 0; names[i]; i++) {
		struct conf_conn c;
		struct conf_err err;
		int lrc = conf_load(dir.data, names[i], &c, &err);

		if (json) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddItemToArray(arr, o);
			cli_json_str(o, "name", names[i]);
			cli_json_str(o, "tenant", lrc ? NULL : c.tenant);
			cli_json_str(o, "client_id", lrc ? NULL : c.client_id);
			cli_json_str(o, "credential",
				     lrc ? NULL : conf_cred_name(c.cred));
			cli_json_str(o, "error", lrc ? err.what : NULL);
		} else if (lrc) {
			printf("%-20s (broken: %s)\n", names[i], err.what);
		} else {
			printf("%-20s %-36s %s (%s)\n", names[i], c.tenant,
			       c.client_id, conf_cred_name(c.cred));
		}
	}
	if (json)
		cli_json_print(arr);
	else if (!names[0])
		fprintf(stderr,
			"no connections in %s: create one with 'm365-connect add' or 'register'\n",
			dir.data);
	rc = 0;
out:
	cJSON_Delete(arr);
	conf_list_free(names);
	buf_release(&dir);
	return rc;
}

int cmd_show(int argc, char **argv)
{
	struct conn cx;
	struct auth_cert *cert = NULL;
	struct auth_status st;
	struct buf text = BUF_INIT;
	bool json = false;
	int npos, rc;

	rc = cli_parse(argc, argv, "show", "m365-connect show NAME [--json]",
		       json_opts, on_json, &json, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1)
		return cli_usage("show", "give one connection NAME");
	rc = connect_load(argv[0], &cx);
	if (rc)
		return rc;
	if (cx.conn.cred != CONF_CRED_SECRET) {
		/* certificate facts only; the key is never printed */
		if (conn_credential(&cx, &st) == 0)
			cert = cx.cert;
	}
	if (json) {
		cJSON *o = cJSON_CreateObject();
		struct buf svc = BUF_INIT;

		cli_json_str(o, "name", cx.conn.name);
		cli_json_str(o, "tenant", cx.conn.tenant);
		cli_json_str(o, "client_id", cx.conn.client_id);
		cli_json_str(o, "credential", conf_cred_name(cx.conn.cred));
		cli_json_str(o, "cloud", conf_cloud_name(cx.conn.cloud));
		cli_json_str(o, "login_url", conf_login_url(&cx.conn));
		cli_json_str(o, "graph_url", conf_graph_url(&cx.conn));
		conf_services_format(cx.conn.services, &svc);
		cli_json_str(o, "services", svc.data);
		if (cx.conn.cred == CONF_CRED_SECRET)
			cli_json_str(o, "secret", "********");
		if (cert) {
			struct auth_cert_info in;

			auth_cert_info(cert, &in);
			cli_json_str(o, "thumbprint", in.thumbprint);
			cli_json_str(o, "subject", in.subject);
			cli_json_num(o, "not_after", (double)in.not_after);
			cli_json_num(o, "key_bits", in.bits);
		}
		cli_json_print(o);
		cJSON_Delete(o);
		buf_release(&svc);
	} else {
		/* the file itself holds no secret: paths only */
		conf_format(&cx.conn, &text);
		fputs(text.data, stdout);
		if (cx.conn.cred == CONF_CRED_SECRET)
			printf("# secret: ******** (in %s)\n",
			       cx.conn.secret_file);
		if (cert) {
			printf("# certificate:\n");
			connect_cert_print(stdout, cert, "#   ");
		}
	}
	conn_close(&cx);
	buf_release(&text);
	return 0;
}

static int on_force(void *ctx, const struct cli_opt *o, const char *arg)
{
	(void)arg;
	(void)o;
	*(bool *)ctx = true;
	return 0;
}

int cmd_remove(int argc, char **argv)
{
	static const struct cli_opt ropts[] = {
		{ "force", O_FORCE, NULL, "no error when it does not exist" },
		{ NULL, 0, NULL, NULL },
	};
	struct buf dir = BUF_INIT;
	bool force = false;
	int npos, rc;

	rc = cli_parse(argc, argv, "remove", "m365-connect remove NAME", ropts,
		       on_force, &force, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1 || !conf_name_valid(argv[0]))
		return cli_usage("remove", "give one connection NAME");
	rc = connect_dir(&dir);
	if (rc)
		goto out;
	rc = conf_remove(dir.data, argv[0]);
	if (rc == -ENOENT && force) {
		rc = 0;
	} else if (rc == -ENOENT) {
		cli_error("no connection '%s' in %s", argv[0], dir.data);
		rc = CLI_EXIT_FAIL;
	} else if (rc < 0) {
		cli_error("cannot remove connection '%s': %s", argv[0],
			  strerror(-rc));
		rc = CLI_EXIT_FAIL;
	} else {
		printf("connection '%s' removed (the app in Entra ID is left as it is)\n",
		       argv[0]);
	}
out:
	buf_release(&dir);
	return rc;
}

struct cert_args {
	uint64_t bits, years;
	bool force;
	int err;
};

static int on_cert(void *ctx, const struct cli_opt *o, const char *arg)
{
	struct cert_args *a = ctx;

	switch (o->key) {
	case O_BITS:
		if (cli_parse_u64(arg, "bits", 8192, &a->bits))
			return CLI_EXIT_USAGE;
		if (a->bits != 2048 && a->bits != 3072)
			return cli_usage("cert", "--bits is 2048 or 3072");
		break;
	case O_YEARS:
		if (cli_parse_u64(arg, "years", 2, &a->years) || !a->years)
			return cli_usage("cert", "--years is 1 or 2");
		break;
	case O_FORCE:
		a->force = true;
		break;
	}
	return 0;
}

int connect_cert_create(const struct conf_conn *c, int bits, int years,
			struct auth_cert **out)
{
	struct buf p1 = BUF_INIT, p2 = BUF_INIT, cn = BUF_INIT;
	int rc;

	buf_addf(&cn, "m365fs %s", c->name);
	rc = auth_cert_generate(cn.data, bits, years * 365, out);
	if (rc < 0) {
		cli_error("cannot generate a certificate: %s", strerror(-rc));
		goto out;
	}
	buf_addf(&p1, "%s/%s.pem", c->dir, c->name);
	buf_addf(&p2, "%s/%s.key", c->dir, c->name);
	rc = util_mkdir_p(c->dir, 0700);
	if (!rc)
		rc = auth_cert_save(*out, p1.data, p2.data);
	if (rc < 0) {
		cli_error("cannot write '%s': %s", p1.data, strerror(-rc));
		auth_cert_free(*out);
		*out = NULL;
	}
out:
	buf_release(&cn);
	buf_release(&p1);
	buf_release(&p2);
	return rc;
}

int cmd_cert(int argc, char **argv)
{
	static const struct cli_opt copts[] = {
		{ "bits", O_BITS, "N", "RSA key size: 3072 (default) or 2048" },
		{ "years", O_YEARS, "N", "validity: 1 (default) or 2 years" },
		{ "force", O_FORCE, NULL,
		  "'new': replace an existing certificate" },
		{ NULL, 0, NULL, NULL },
	};
	struct cert_args a = { 3072, 1, false, 0 };
	struct conn cx;
	struct auth_cert *cert = NULL;
	struct auth_status st;
	struct buf old = BUF_INIT, bak = BUF_INIT;
	const char *verb;
	int npos, rc;

	rc = cli_parse(argc, argv, "cert",
		       "m365-connect cert new|show|renew NAME", copts, on_cert,
		       &a, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 2)
		return cli_usage(
			"cert",
			"give new, show or renew and a connection NAME");
	verb = argv[0];
	if (strcmp(verb, "new") && strcmp(verb, "show") &&
	    strcmp(verb, "renew"))
		return cli_usage(
			"cert", "unknown action '%s' (new, show, renew)", verb);
	rc = connect_load(argv[1], &cx);
	if (rc)
		return rc;
	if (!strcmp(verb, "show")) {
		if (cx.conn.cred == CONF_CRED_SECRET) {
			cli_error(
				"connection '%s' uses a client secret, not a certificate",
				cx.conn.name);
			cli_hint("create one with 'm365-connect cert new %s'",
				 cx.conn.name);
			rc = CLI_EXIT_FAIL;
			goto out;
		}
		rc = conn_credential(&cx, &st);
		if (rc) {
			cli_conn_report(&st);
			rc = CLI_EXIT_FAIL;
			goto out;
		}
		connect_cert_print(stdout, cx.cert, "");
		rc = auth_cert_check(cx.cert, util_now(), &st);
		if (rc < 0) {
			cli_conn_report(&st);
			rc = CLI_EXIT_FAIL;
		}
		goto out;
	}
	if (!strcmp(verb, "new") && cx.conn.cred != CONF_CRED_SECRET &&
	    !a.force) {
		cli_error("connection '%s' has a certificate already",
			  cx.conn.name);
		cli_hint(
			"use 'm365-connect cert renew %s' (keeps a copy of the old one) or --force",
			cx.conn.name);
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	if (!strcmp(verb, "renew") && cx.conn.cert_file[0]) {
		conf_path(&cx.conn, cx.conn.cert_file, &old);
		buf_addf(&bak, "%s/%s.old.pem", cx.conn.dir, cx.conn.name);
		if (rename(old.data, bak.data) == 0)
			printf("old certificate kept as %s\n", bak.data);
		if (cx.conn.key_file[0]) {
			conf_path(&cx.conn, cx.conn.key_file, &old);
			buf_reset(&bak);
			buf_addf(&bak, "%s/%s.old.key", cx.conn.dir,
				 cx.conn.name);
			rename(old.data, bak.data);
		}
	}
	rc = connect_cert_create(&cx.conn, (int)a.bits, (int)a.years, &cert);
	if (rc < 0) {
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	cx.conn.cred = CONF_CRED_CERT;
	snprintf(cx.conn.cert_file, sizeof(cx.conn.cert_file), "%s.pem",
		 cx.conn.name);
	snprintf(cx.conn.key_file, sizeof(cx.conn.key_file), "%s.key",
		 cx.conn.name);
	cx.conn.secret_file[0] = cx.conn.pfx_file[0] = '\0';
	cx.conn.pfx_password_file[0] = '\0';
	rc = conf_save(&cx.conn);
	if (rc < 0) {
		cli_error("cannot save connection '%s': %s", cx.conn.name,
			  strerror(-rc));
		rc = CLI_EXIT_FAIL;
		goto out;
	}
	printf("new certificate for connection '%s' in %s/%s.pem:\n",
	       cx.conn.name, cx.conn.dir, cx.conn.name);
	connect_cert_print(stdout, cert, "  ");
	printf("register it on the app: 'm365-connect grant %s' (admin sign-in),\n"
	       "or upload %s/%s.pem under Certificates & secrets of the app\n",
	       cx.conn.name, cx.conn.dir, cx.conn.name);
	rc = 0;
out:
	auth_cert_free(cert);
	conn_close(&cx);
	buf_release(&old);
	buf_release(&bak);
	return rc;
}
