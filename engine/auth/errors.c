/* The one mapping of Entra ID errors to -errno and sentences for people. */
#include "auth/auth_i.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static const char *nz(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

int auth_error_map(long aadsts, const char *error, const struct auth_names *nm,
		   struct auth_status *st)
{
	static const struct auth_names none = { 0 };
	const char *t, *id, *conn, *err = error ? error : "";
	char hint[512];
	int rc;

	if (!nm)
		nm = &none;
	t = nz(nm->tenant, "?");
	id = nz(nm->client_id, "?");
	conn = nz(nm->connection, "NAME");
	st->aadsts = aadsts;
	snprintf(st->error, sizeof(st->error), "%s", err);
	hint[0] = '\0';

	/* device flow: its OAuth2 codes decide (slow_down comes with 70016) */
	if (!strcmp(err, "authorization_pending"))
		return auth_status_set(st, -EINPROGRESS, NULL,
				       "waiting for the sign-in");
	if (!strcmp(err, "slow_down"))
		return auth_status_set(st, -EAGAIN, NULL,
				       "polling too fast for the sign-in");
	if (!strcmp(err, "authorization_declined"))
		return auth_status_set(st, -ECANCELED,
				       "sign in again and accept the request",
				       "the sign-in was declined");
	if (!strcmp(err, "expired_token"))
		return auth_status_set(
			st, -ETIMEDOUT,
			"run the command again and enter the code within its time",
			"the sign-in code expired before it was used");
	if (!strcmp(err, "bad_verification_code"))
		return auth_status_set(
			st, -EINVAL,
			"run the command again and enter the code exactly as shown",
			"the sign-in code was not accepted");

	switch (aadsts) {
	case 90002:
		snprintf(
			hint, sizeof(hint),
			"check the tenant id or domain (Entra admin center, Overview) and the cloud (--cloud global|usgov|usgovdod|china)");
		return auth_status_set(st, -ENXIO, hint,
				       "tenant '%s' was not found", t);
	case 900023:
		return auth_status_set(
			st, -ENXIO,
			"give the tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com",
			"tenant '%s' is neither a GUID nor a valid domain name",
			t);
	case 700016:
		return auth_status_set(
			st, -ENOENT,
			"check the client id (App registrations, Application (client) ID) and that the app is in this tenant; an app registered a moment ago can take a few minutes to appear: run 'm365-connect test' again shortly",
			"application '%s' was not found in tenant '%s'", id, t);
	case 7000215:
		snprintf(
			hint, sizeof(hint),
			"store the secret's Value (not its Secret ID) with 'm365-connect add %s --secret-file FILE'; a secret created a moment ago can take a few minutes to work",
			conn);
		return auth_status_set(
			st, -EACCES, hint,
			"the client secret of application '%s' was rejected",
			id);
	case 7000222:
		snprintf(
			hint, sizeof(hint),
			"create a new secret under Certificates & secrets and store it with 'm365-connect add %s --secret-file FILE', or switch to a certificate ('m365-connect cert new %s')",
			conn, conn);
		return auth_status_set(
			st, -EKEYEXPIRED, hint,
			"the client secret of application '%s' has expired",
			id);
	case 7000218:
		return auth_status_set(
			st, -EINVAL,
			"configure a secret or a certificate for the connection",
			"no client credential was sent for application '%s'",
			id);
	case 700027:
		snprintf(
			hint, sizeof(hint),
			"upload the certificate (thumbprint %s) under Certificates & secrets of the app, or run 'm365-connect grant %s'",
			nz(nm->thumbprint, "?"), conn);
		return auth_status_set(
			st, -EKEYREJECTED, hint,
			"the certificate is not registered on application '%s' (or the signature does not match it)",
			id);
	case 700024:
		return auth_status_set(
			st, -ETIME,
			"set the system clock right and keep it synchronised (NTP: 'timedatectl set-ntp true')",
			"Entra ID rejected the client assertion as outside its valid time: the clock of this machine is off");
	case 50012:
	case 50027:
	case 50048:
		return auth_status_set(
			st, -EPROTO,
			"check that the certificate and key files belong together; report a bug if they do",
			"Entra ID rejected the client assertion as malformed (AADSTS%ld)",
			aadsts);
	case 500011:
	case 50049:
	case 90038:
		return auth_status_set(
			st, -EREMOTE,
			"choose the tenant's cloud: --cloud global, usgov, usgovdod or china",
			"tenant '%s' belongs to another cloud than the one asked",
			t);
	case 70011:
	case 1002012:
		return auth_status_set(
			st, -EINVAL,
			"check graph_url of the connection: the scope is GRAPH_URL/.default",
			"the token scope was rejected");
	case 65001:
		snprintf(
			hint, sizeof(hint),
			"an administrator grants consent with 'm365-connect grant %s' (or in the Entra admin center, API permissions, Grant admin consent)",
			conn);
		return auth_status_set(
			st, -EPERM, hint,
			"admin consent is missing for application '%s'", id);
	case 50196:
		return auth_status_set(
			st, -ELOOP,
			"wait a few minutes; report a bug if it comes back",
			"Entra ID saw too many identical token requests");
	case 90055:
	case 50053:
		return auth_status_set(
			st, -EAGAIN, "wait a few minutes and retry",
			"Entra ID throttled or locked the sign-in");
	case 70019:
		return auth_status_set(
			st, -ETIMEDOUT,
			"run the command again and enter the code within its time",
			"the sign-in code expired before it was used");
	case 70016:
		return auth_status_set(st, -EINPROGRESS, NULL,
				       "waiting for the sign-in");
	case 70018:
		return auth_status_set(
			st, -EINVAL,
			"run the command again and enter the code exactly as shown",
			"the sign-in code was not accepted");
	default:
		break;
	}

	/* No known AADSTS code: go by the OAuth2 error. */
	if (!strcmp(err, "invalid_client"))
		rc = -EACCES;
	else if (!strcmp(err, "unauthorized_client"))
		rc = -ENOENT;
	else if (!strcmp(err, "invalid_grant"))
		rc = -EACCES;
	else if (!strcmp(err, "temporarily_unavailable"))
		rc = -EAGAIN;
	else if (!strcmp(err, "interaction_required"))
		rc = -EPERM;
	else
		rc = -EINVAL;
	if (aadsts)
		return auth_status_set(
			st, rc,
			"look the code up at https://login.microsoftonline.com/error?code=N",
			"Entra ID refused the request (%s, AADSTS%ld)",
			nz(error, "error"), aadsts);
	return auth_status_set(st, rc, NULL,
			       "Entra ID refused the request (%s)",
			       nz(error, "error"));
}

int auth_error_parse(long http_status, const char *body,
		     const struct auth_names *names, struct auth_status *st)
{
	cJSON *j = cJSON_Parse(body ? body : "");
	const cJSON *err, *desc, *codes;
	long code = 0;
	int rc;

	st->http_status = http_status;
	st->detail[0] = '\0';
	err = cJSON_GetObjectItemCaseSensitive(j, "error");
	desc = cJSON_GetObjectItemCaseSensitive(j, "error_description");
	codes = cJSON_GetObjectItemCaseSensitive(j, "error_codes");
	if (!cJSON_IsString(err)) {
		cJSON_Delete(j);
		if (http_status == 429 || http_status == 503)
			return auth_status_set(
				st, -EAGAIN, "wait a few minutes and retry",
				"the sign-in service is busy (HTTP %ld)",
				http_status);
		return auth_status_set(
			st, -EIO,
			"check login_url of the connection; retry later",
			"the sign-in service answered HTTP %ld without an error description",
			http_status);
	}
	if (cJSON_IsArray(codes) &&
	    cJSON_IsNumber(cJSON_GetArrayItem(codes, 0)))
		code = (long)cJSON_GetArrayItem(codes, 0)->valuedouble;
	if (cJSON_IsString(desc)) {
		/* first line only: the rest is trace ids and time */
		size_t n = strcspn(desc->valuestring, "\r\n");

		if (n >= sizeof(st->detail))
			n = sizeof(st->detail) - 1;
		memcpy(st->detail, desc->valuestring, n);
		st->detail[n] = '\0';
		if (!code && !strncmp(desc->valuestring, "AADSTS", 6))
			code = strtol(desc->valuestring + 6, NULL, 10);
	}
	rc = auth_error_map(code, err->valuestring, names, st);
	if (rc != -EINPROGRESS && rc != -EAGAIN)
		log_debug("token endpoint: HTTP %ld %s AADSTS%ld", http_status,
			  err->valuestring, code);
	cJSON_Delete(j);
	return rc;
}

int auth_error_transport(int rc, const char *url, const char *ca_file,
			 struct auth_status *st)
{
	char host[256] = "?";
	const char *p = strstr(url, "://");

	if (p) {
		size_t n = strcspn(p + 3, "/?#");

		snprintf(host, sizeof(host), "%.*s", (int)n, p + 3);
	}
	st->http_status = 0;
	switch (rc) {
	case -EPERM:
		if (ca_file && *ca_file)
			return auth_status_set(
				st, rc,
				"check ca_file of the connection: it must hold the CA that signed the server certificate",
				"TLS certificate of '%s' is not trusted: it is not signed by a CA in '%s'",
				host, ca_file);
		return auth_status_set(
			st, rc,
			"install the CA certificate (update-ca-certificates) or set ca_file for a private endpoint; check for a TLS-inspecting proxy",
			"TLS certificate of '%s' is not trusted by this system",
			host);
	case -EPROTO:
		return auth_status_set(
			st, rc,
			"check the URL, and for a proxy that intercepts TLS",
			"TLS or protocol error talking to '%s'", host);
	case -ECONNREFUSED:
		return auth_status_set(
			st, rc,
			"check the URL and port of the connection, and the firewall",
			"connection to '%s' was refused", host);
	case -EHOSTUNREACH:
		return auth_status_set(
			st, rc,
			"check the host name, DNS and network (proxy settings: https_proxy)",
			"cannot reach '%s'", host);
	case -ETIMEDOUT:
		return auth_status_set(
			st, rc, "check the network and proxy; retry later",
			"no answer from '%s' in time", host);
	default:
		return auth_status_set(st, rc, NULL,
				       "request to '%s' failed: %s", host,
				       strerror(-rc));
	}
}
