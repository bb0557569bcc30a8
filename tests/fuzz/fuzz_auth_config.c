/*
 * fuzz_auth_config - parsers of engine/auth and engine/config that read
 * text from outside: connection files (conf_parse), token-endpoint error
 * bodies (auth_error_parse) and JWT payloads (auth_jwt_claims).  Whatever
 * the bytes, they answer 0 or an error with a message, never crash.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "config/config.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct auth_names nm = { "t.example", "c", "AB", "x" };
	struct auth_status st;
	struct conf_conn c;
	struct conf_err err;
	cJSON *claims = NULL;
	char *text = malloc(size + 1);
	int rc;

	if (!text)
		return 0;
	log_set_level(LOG_EMERG);
	memcpy(text, data, size);
	text[size] = '\0';

	conf_init(&c, "/d", "fuzz");
	rc = conf_parse(&c, "fuzz.conf", text, &err);
	if (rc == 0)
		conf_validate(&c, &err);
	else if (rc != -EINVAL && rc != -ENOMEM)
		abort();
	else if (rc == -EINVAL && !err.what[0])
		abort(); /* every refusal says why */

	memset(&st, 0, sizeof(st));
	rc = auth_error_parse(400, text, &nm, &st);
	if (rc >= 0 || st.rc != rc || !st.what[0])
		abort();

	if (auth_jwt_claims(text, &claims) == 0 && !cJSON_IsObject(claims))
		abort();
	cJSON_Delete(claims);
	free(text);
	return 0;
}
