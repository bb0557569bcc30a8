/* m365-connect: set up and check connections to Microsoft 365 tenants. */
#include <stdio.h>
#include <string.h>

#include "connect/connect.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "add", cmd_add, "store a connection for an app registered by hand" },
	{ "register", cmd_register,
	  "register the app automatically (admin sign-in)" },
	{ "grant", cmd_grant,
	  "add missing permissions, consent and certificate to an app" },
	{ "test", cmd_test, "check a connection step by step" },
	{ "cert", cmd_cert, "new|show|renew the certificate of a connection" },
	{ "list", cmd_list, "list the connections" },
	{ "show", cmd_show, "show a connection (secrets masked)" },
	{ "remove", cmd_remove, "remove a connection and its files" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: m365-connect [--system | --config-dir DIR] COMMAND [ARGS]\n\n"
		"commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f,
		"\nglobal options:\n"
		"  --system           use /etc/m365fs (the default for root)\n"
		"  --config-dir DIR   use DIR for connection files\n"
		"\n'm365-connect COMMAND --help' tells more; see also 'man m365-connect'.\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	size_t k;

	cli_init("m365-connect");
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(argv[i], "--system")) {
			connect_opts.system = true;
		} else if (!strcmp(argv[i], "--config-dir") && i + 1 < argc) {
			connect_opts.config_dir = argv[++i];
		} else if (!strncmp(argv[i], "--config-dir=", 13)) {
			connect_opts.config_dir = argv[i] + 13;
		} else {
			return cli_usage(NULL, "unknown option '%s'", argv[i]);
		}
		i++;
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (!strcmp(cmds[k].name, argv[i]))
			return cmds[k].fn(argc - i, argv + i);
	return cli_usage(NULL, "unknown command '%s'", argv[i]);
}
