/*
 * connect.h - private to m365-connect: the commands and what they share.
 */
#ifndef M365_CONNECT_H
#define M365_CONNECT_H

#include <stdbool.h>

#include "auth/auth.h"
#include "common/cli.h"
#include "common/conn.h"
#include "config/config.h"
#include "http/http.h"

/* Global options, set before the command runs. */
struct connect_global {
	bool system; /* --system: /etc/m365fs */
	const char *config_dir; /* --config-dir DIR */
};

extern struct connect_global connect_opts;

/* The public client used for the admin's device-code sign-in when none is
 * given: Microsoft Graph Command Line Tools (multi-tenant public client). */
#define CONNECT_PUBLIC_CLIENT "14d82eec-204b-4c2f-b7e8-296a70dab67e"

/* Put the configuration directory into @out; reports errors (exit code). */
int connect_dir(struct buf *out);

/* Load connection @name; reports errors (returns an exit code). */
int connect_load(const char *name, struct conn *c);

/* Print the facts of a certificate ("subject, thumbprint, valid until"). */
void connect_cert_print(FILE *f, const struct auth_cert *cert,
			const char *indent);

/*
 * Device-code sign-in of an administrator for registration: prints the
 * code and URL on stderr, waits up to @wait_s.  Reports errors.
 */
int connect_admin_signin(struct http *h, const struct conf_conn *conn,
			 const char *public_client, int wait_s,
			 struct auth_user_token *tok);

/* Fill cloud, endpoint overrides, CA file and services of @c from options
 * (each may be NULL); reports usage errors (returns an exit code). */
int connect_endpoints(struct conf_conn *c, const char *cmd, const char *cloud,
		      const char *login, const char *graph, const char *ca,
		      const char *services);

/* Generate a certificate into DIR/NAME.pem + NAME.key (0600); reports. */
int connect_cert_create(const struct conf_conn *c, int bits, int years,
			struct auth_cert **out);

/* The commands: argc/argv start at the command name. */
int cmd_add(int argc, char **argv);
int cmd_register(int argc, char **argv);
int cmd_grant(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_remove(int argc, char **argv);

#endif
