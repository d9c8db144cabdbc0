/*
 * stats: the daemon's counters.  Logged on SIGUSR1 and at shutdown.
 */
#ifndef BRIDGE_STATS_H
#define BRIDGE_STATS_H

#include <stdint.h>

struct stats {
	uint64_t received;        /* PUBLISH packets read from MQTT (redeliveries: mlink.redelivered) */
	uint64_t forwarded;       /* confirmed by RabbitMQ on the main exchange */
	uint64_t dead_lettered;   /* confirmed on the dead-letter exchange */
	uint64_t dropped;         /* undeliverable and no dead-letter exchange (or it refused too) */
	uint64_t nacked;          /* basic.nack received: MQTT dropped so the broker redelivers */
	uint64_t amqp_connects;
};

#endif
