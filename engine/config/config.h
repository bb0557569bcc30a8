/*
 * config - connection files: how m365fs reaches one Microsoft 365 tenant.
 *
 * A connection NAME lives in DIR/NAME.conf, where DIR is (first match):
 * $M365FS_CONFIG_DIR; /etc/m365fs when running as root or asked for the
 * system directory (timers); $XDG_CONFIG_HOME/m365fs; ~/.config/m365fs.
 * The file is "key = value" lines ('#' starts a comment line), mode 0600:
 *
 *	tenant = contoso.onmicrosoft.com      GUID or verified domain
 *	client_id = 01234567-89ab-cdef-0123-456789abcdef
 *	credential = certificate              secret | certificate | pfx
 *	cert_file = work.pem                  paths relative to DIR or absolute
 *	key_file = work.key                   (optional: key inside cert_file)
 *	pfx_file = work.pfx                   credential = pfx
 *	pfx_password_file = work.pfxpass      optional, 0600
 *	secret_file = work.secret             credential = secret, 0600
 *	cloud = global                        global usgov usgovdod china custom
 *	login_url = https://...               overrides (required for custom)
 *	graph_url = https://...
 *	ca_file = /path/ca.pem                extra CA bundle for TLS
 *	services = files,onedrive,mail
 *	sharepoint_url = https://contoso.sharepoint.com     optional
 *	app_object_id = GUID                  set by 'm365-connect register'
 *	display_name = m365fs backup          name of the app in Entra ID
 *	registered = 2026-11-21T02:00:00Z     when register created the app
 *
 * Parsing is strict: unknown keys, repeated keys, bad GUIDs and bad URLs
 * are errors naming FILE:LINE and the fix.  Secret and key files must not
 * be readable by group or others.
 *
 * Thread safety: none needed; functions work on caller-owned structs.
 * Errors: 0 or -errno; -EINVAL (bad file, see the struct conf_err),
 * -EPERM (file readable by others), -ENOENT (no such connection).
 */
#ifndef M365_CONFIG_H
#define M365_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

#define CONF_NAME_MAX 64

enum conf_cred {
	CONF_CRED_NONE = 0,
	CONF_CRED_SECRET,
	CONF_CRED_CERT,
	CONF_CRED_PFX,
};

enum conf_cloud {
	CONF_CLOUD_GLOBAL = 0,
	CONF_CLOUD_USGOV,
	CONF_CLOUD_USGOVDOD,
	CONF_CLOUD_CHINA,
	CONF_CLOUD_CUSTOM,
};

#define CONF_SVC_FILES	  0x1u /* SharePoint sites */
#define CONF_SVC_ONEDRIVE 0x2u
#define CONF_SVC_MAIL	  0x4u
#define CONF_SVC_ALL	  0x7u

/* One connection; every string is NUL-terminated ("" = not set). */
struct conf_conn {
	char name[CONF_NAME_MAX + 1];
	char dir[PATH_MAX]; /* the directory holding NAME.conf */
	char tenant[256];
	char client_id[37];
	enum conf_cred cred;
	char secret_file[PATH_MAX];
	char cert_file[PATH_MAX];
	char key_file[PATH_MAX];
	char pfx_file[PATH_MAX];
	char pfx_password_file[PATH_MAX];
	enum conf_cloud cloud;
	char login_url[512]; /* "" = the cloud's default */
	char graph_url[512];
	char ca_file[PATH_MAX];
	unsigned services; /* CONF_SVC_*; 0 in a file = all */
	char sharepoint_url[512];
	char app_object_id[37];
	char display_name[128];
	int64_t registered; /* seconds since the epoch, 0 = unknown */
};

/* An error for people: what failed (with FILE:LINE) and the remedy. */
struct conf_err {
	char what[1024];
	char hint[512];
};

/**
 * Put the configuration directory into @out (replacing its content):
 * see the module comment.  @system forces /etc/m365fs (unless
 * $M365FS_CONFIG_DIR is set).  Returns 0, -ENOENT (no HOME) or -ENOMEM.
 */
int conf_dir(bool system, struct buf *out);

/** True when @name is a valid connection name: [A-Za-z0-9_.-], 1..64
 * characters, not starting with '.' or '-'. */
bool conf_name_valid(const char *name);

/** Initialise @c as an empty connection named @name in @dir. */
void conf_init(struct conf_conn *c, const char *dir, const char *name);

/**
 * Parse the text of a connection file (@path names it in messages) into
 * @c, which conf_init() prepared.  Returns 0 or -EINVAL with @err filled.
 */
int conf_parse(struct conf_conn *c, const char *path, const char *text,
	       struct conf_err *err);

/**
 * Check that the values of @c fit together (a credential and its files,
 * URLs for a custom cloud).  Returns 0 or -EINVAL with @err filled.
 */
int conf_validate(const struct conf_conn *c, struct conf_err *err);

/**
 * Load connection @name from @dir: reads DIR/NAME.conf, refuses it when
 * group/world readable (-EPERM), parses and validates.  Returns 0,
 * -ENOENT, -EPERM, -EINVAL or -errno, with @err filled.
 */
int conf_load(const char *dir, const char *name, struct conf_conn *c,
	      struct conf_err *err);

/** Append the file text of @c to @out (what conf_save() writes). */
int conf_format(const struct conf_conn *c, struct buf *out);

/**
 * Write @c to DIR/NAME.conf (mode 0600, atomically), creating DIR with
 * mode 0700 when missing.  Returns 0 or -errno.
 */
int conf_save(const struct conf_conn *c);

/**
 * Remove connection @name from @dir: its .conf file and the files the
 * tools created beside it (NAME.secret, NAME.pem, NAME.key, NAME.pfx,
 * NAME.pfxpass).  Returns 0, -ENOENT or -errno.
 */
int conf_remove(const char *dir, const char *name);

/**
 * Names of the connections in @dir, sorted, as a NULL-terminated array:
 * caller owns it, free with conf_list_free().  A missing directory gives
 * an empty list.  Returns 0 or -errno.
 */
int conf_list(const char *dir, char ***names);
void conf_list_free(char **names);

/**
 * Resolve @path of a connection file (relative to @c->dir) into @out
 * (replacing its content).  Returns 0 or -ENOMEM.
 */
int conf_path(const struct conf_conn *c, const char *path, struct buf *out);

/**
 * Check that secret or key file @path is not readable by group or others
 * (also: exists).  Returns 0, -EPERM (with "chmod 600" remedy in @err) or
 * -errno.
 */
int conf_check_private(const char *path, const char *what,
		       struct conf_err *err);

/** Effective login and Graph base URLs (overrides or cloud defaults);
 * borrowed from @c or static strings. */
const char *conf_login_url(const struct conf_conn *c);
const char *conf_graph_url(const struct conf_conn *c);

/**
 * Append the Graph resource of the connection's cloud to @out (no '/' at
 * the end): "https://graph.microsoft.com" for global and custom clouds,
 * "https://graph.microsoft.us" etc.  Token scopes are built from it
 * (RESOURCE/.default, RESOURCE/Application.ReadWrite.All); a graph_url
 * override changes where requests go, not the resource.
 */
int conf_graph_resource(const struct conf_conn *c, struct buf *out);

/** Name of @cloud ("global", ...) and parse it back (-EINVAL). */
const char *conf_cloud_name(enum conf_cloud cloud);
int conf_cloud_parse(const char *s, enum conf_cloud *cloud);

/** Name of @cred ("secret", "certificate", "pfx", "none") and back. */
const char *conf_cred_name(enum conf_cred cred);
int conf_cred_parse(const char *s, enum conf_cred *cred);

/**
 * Parse "files,onedrive,mail" (any order, "all" too) into CONF_SVC_*.
 * Returns 0 or -EINVAL naming the bad word in @err->what.
 */
int conf_services_parse(const char *s, unsigned *mask, struct conf_err *err);

/** Append "files,onedrive,mail"-style text for @mask to @out. */
int conf_services_format(unsigned mask, struct buf *out);

/**
 * True when @s is an absolute https URL with a host (and for @plain_ok
 * also http), no spaces, query or fragment; the form used for URL keys.
 */
bool conf_url_valid(const char *s, bool plain_ok);

/** True when @s is a tenant: a GUID or a DNS name with a dot. */
bool conf_tenant_valid(const char *s);

#endif
