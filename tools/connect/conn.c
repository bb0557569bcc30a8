/* What the m365-connect commands share: loading and opening connections. */
#include "connect/connect.h"

#include <errno.h>
#include <string.h>

#include "util/util.h"

struct connect_global connect_opts;

int connect_dir(struct buf *out)
{
	return cli_conn_dir(connect_opts.config_dir, connect_opts.system, out)
		       ? CLI_EXIT_FAIL
		       : 0;
}

int connect_load(const char *name, struct conn *c)
{
	struct buf dir = BUF_INIT;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = connect_dir(&dir);
	if (!rc && cli_conn_load(dir.data, name, c) < 0)
		rc = CLI_EXIT_FAIL;
	buf_release(&dir);
	return rc;
}

void connect_cert_print(FILE *f, const struct auth_cert *cert,
			const char *indent)
{
	struct auth_cert_info in;
	char a[32], b[32];

	auth_cert_info(cert, &in);
	util_time_format(in.not_before, a, sizeof(a));
	util_time_format(in.not_after, b, sizeof(b));
	fprintf(f, "%ssubject:    %s\n", indent, in.subject);
	fprintf(f, "%sthumbprint: %s\n", indent, in.thumbprint);
	fprintf(f, "%skey:        RSA %d bits\n", indent, in.bits);
	fprintf(f, "%svalid:      %s to %s\n", indent, a, b);
}

static void show_code(void *ctx, const struct auth_device_prompt *p)
{
	(void)ctx;
	fprintf(stderr,
		"\nTo sign in as an administrator of the tenant, open\n\n"
		"    %s\n\nand enter the code\n\n    %s\n\n"
		"(the code is valid for %d minutes; waiting for the sign-in)\n\n",
		p->verification_uri, p->user_code, p->expires_in / 60);
	fflush(stderr);
}

int connect_admin_signin(struct http *h, const struct conf_conn *conn,
			 const char *public_client, int wait_s,
			 struct auth_user_token *tok)
{
	struct auth_status st;
	struct buf res = BUF_INIT, scopes = BUF_INIT;
	int rc;

	rc = conf_graph_resource(conn, &res);
	if (!rc)
		rc = buf_addf(
			&scopes,
			"%s/Application.ReadWrite.All %s/AppRoleAssignment.ReadWrite.All offline_access",
			res.data, res.data);
	if (rc < 0)
		goto out;
	rc = auth_device_login(h, conf_login_url(conn), conn->tenant,
			       public_client, scopes.data, show_code, NULL,
			       wait_s, tok, &st);
	if (rc < 0) {
		cli_conn_report(&st);
		if (st.aadsts == 700016)
			cli_hint(
				"the public client '%s' is not known in the tenant: give your own with --public-client-id",
				public_client);
	}
out:
	buf_release(&res);
	buf_release(&scopes);
	return rc < 0 ? CLI_EXIT_FAIL : 0;
}
