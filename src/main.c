/*
 * mqtt-amqp-bridge: forwards MQTT messages to an AMQP 0-9-1 exchange and
 * acknowledges each one to the MQTT broker only after RabbitMQ confirmed it.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "config.h"
#include "forward.h"
#include "log.h"

#define DEFAULT_CONFIG SYSCONFDIR "/mqtt-amqp-bridge/mqtt-amqp-bridge.conf"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: mqtt-amqp-bridge [-c FILE] [-t] [-v] [-V] [-h]\n"
	        "Forward MQTT messages to an AMQP 0-9-1 exchange, acknowledging each one\n"
	        "to the MQTT broker only after RabbitMQ has confirmed it.\n"
	        "\n"
	        "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	        "  -t, --test         check the configuration, print it and exit\n"
	        "  -v, --verbose      log debug messages (overrides bridge.log_level)\n"
	        "  -V, --version      print the version and exit\n"
	        "  -h, --help         print this help and exit\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	bool test = false, verbose = false;
	struct config_errors errs;
	struct bridge_config cfg;
	struct bridge bridge;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "c:tvVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'v': verbose = true; break;
		case 'V': printf("mqtt-amqp-bridge %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mqtt-amqp-bridge: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	config_errors_init(&errs);
	if (config_load(path, &cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		fprintf(stderr, "mqtt-amqp-bridge: %zu error(s) in %s\n", errs.n, path);
		config_errors_free(&errs);
		return 1;
	}
	config_errors_free(&errs);
	if (test) {
		for (size_t i = 0; i < cfg.n_warnings; i++)
			fprintf(stderr, "warning: %s\n", cfg.warnings[i]);
		config_print(&cfg, stdout);
		printf("configuration ok: %s\n", path);
		config_free(&cfg);
		return 0;
	}

	log_init(verbose ? LOG_LVL_DEBUG : cfg.bridge.log_level);
	log_set_target(cfg.bridge.log_target);
	for (size_t i = 0; i < cfg.n_warnings; i++)
		log_warn("%s", cfg.warnings[i]);
	/* A peer closing a socket must surface as an error return, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	if (bridge_init(&bridge, &cfg) != 0) {
		mosquitto_lib_cleanup();
		log_fini();
		config_free(&cfg);
		return 1;
	}
	status = bridge_run(&bridge);
	bridge_fini(&bridge);
	mosquitto_lib_cleanup();
	log_fini();
	config_free(&cfg);
	return status;
}
