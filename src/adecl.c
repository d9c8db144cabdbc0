#include "adecl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "props.h"

enum adecl_kind { AD_MAIN, AD_DLX, AD_EXCHANGE, AD_QUEUE, AD_BINDING, AD_CHECK };

/* What step `i` is, and its index among its kind in *j. */
static enum adecl_kind adecl_kind(const struct adecl *d, size_t i, size_t *j)
{
	const struct topology *t = d->topo;
	size_t nx = t ? t->n_exchanges : 0, nq = t ? t->n_queues : 0, nb = t ? t->n_bindings : 0;

	*j = 0;
	if (i == 0)
		return AD_MAIN;
	i--;
	if (d->cfg->dead_letter_exchange && i-- == 0)
		return AD_DLX;
	if (i < nx)
		return *j = i, AD_EXCHANGE;
	i -= nx;
	if (i < nq)
		return *j = i, AD_QUEUE;
	i -= nq;
	if (i < nb)
		return *j = i, AD_BINDING;
	return *j = i - nb, AD_CHECK;
}

/* RabbitMQ reserves "amq." names: they exist and may only be checked. */
static bool adecl_passive(const struct adecl *d, const char *name)
{
	return !d->cfg->declare_exchange || strncmp(name, "amq.", 4) == 0;
}

int adecl_init(struct adecl *d, const struct amqp_settings *cfg, const struct topology *t,
               char *const *check, size_t n_check)
{
	size_t max_args = 0;

	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->topo = t;
	d->check = check;
	d->n_check = check ? n_check : 0;
	if (t) {
		for (size_t i = 0; i < t->n_exchanges; i++)
			if (t->exchanges[i].n_arguments > max_args)
				max_args = t->exchanges[i].n_arguments;
		for (size_t i = 0; i < t->n_queues; i++)
			if (t->queues[i].n_arguments > max_args)
				max_args = t->queues[i].n_arguments;
	}
	d->entries = calloc(max_args + 1, sizeof(*d->entries));
	if (!d->entries)
		return -1;
	d->n_steps = 1 + (cfg->dead_letter_exchange ? 1 : 0) + d->n_check +
	             (t ? t->n_exchanges + t->n_queues + t->n_bindings : 0);
	return 0;
}

void adecl_fini(struct adecl *d)
{
	free(d->entries);
	d->entries = NULL;
	d->n_steps = 0;
}

/* The configured arguments as a table, preceded by "alternate-exchange" if `ae`. */
static amqp_table_t adecl_table(struct adecl *d, const struct rules_field *f, size_t n,
                                const char *ae)
{
	amqp_table_t t;
	int k = 0;

	if (ae)
		props_entry_text(&d->entries[k++], "alternate-exchange", strlen("alternate-exchange"),
		                 ae, strlen(ae));
	for (size_t i = 0; i < n; i++)
		props_entry_field(&d->entries[k++], &f[i]);
	t.num_entries = k;
	t.entries = d->entries;
	return t;
}

amqp_method_number_t adecl_reply(const struct adecl *d, size_t i)
{
	size_t j;

	switch (adecl_kind(d, i, &j)) {
	case AD_QUEUE:
		return AMQP_QUEUE_DECLARE_OK_METHOD;
	case AD_BINDING:
		return AMQP_QUEUE_BIND_OK_METHOD;
	default:
		return AMQP_EXCHANGE_DECLARE_OK_METHOD;
	}
}

int adecl_encode(struct adecl *d, size_t i, struct aframe *out, uint16_t channel,
                 size_t frame_max)
{
	const struct amqp_settings *c = d->cfg;
	amqp_exchange_declare_t x = { 0 };
	amqp_queue_declare_t q = { 0 };
	amqp_queue_bind_t b = { 0 };
	size_t j;

	x.arguments = q.arguments = b.arguments = amqp_empty_table;
	switch (adecl_kind(d, i, &j)) {
	case AD_MAIN:
	case AD_DLX: {
		const char *name = i == 0 ? c->exchange : c->dead_letter_exchange;

		x.exchange = amqp_cstring_bytes(name);
		x.type = amqp_cstring_bytes(i == 0 ? c->exchange_type : "topic");
		x.passive = adecl_passive(d, name);
		x.durable = 1;
		break;
	}
	case AD_EXCHANGE: {
		const struct topo_exchange *e = &d->topo->exchanges[j];

		x.exchange = amqp_cstring_bytes(e->name);
		x.type = amqp_cstring_bytes(e->type ? e->type : "topic");
		x.durable = e->durable;
		x.auto_delete = e->auto_delete;
		x.internal = e->internal;
		x.arguments = adecl_table(d, e->arguments, e->n_arguments, e->alternate_exchange);
		break;
	}
	case AD_QUEUE: {
		const struct topo_queue *tq = &d->topo->queues[j];

		q.queue = amqp_cstring_bytes(tq->name);
		q.durable = tq->durable;
		q.exclusive = tq->exclusive;
		q.auto_delete = tq->auto_delete;
		q.arguments = adecl_table(d, tq->arguments, tq->n_arguments, NULL);
		return aframe_method(out, channel, AMQP_QUEUE_DECLARE_METHOD, &q, frame_max);
	}
	case AD_BINDING: {
		const struct topo_binding *tb = &d->topo->bindings[j];

		b.queue = amqp_cstring_bytes(tb->queue);
		b.exchange = amqp_cstring_bytes(tb->exchange);
		b.routing_key = amqp_cstring_bytes(tb->key);
		return aframe_method(out, channel, AMQP_QUEUE_BIND_METHOD, &b, frame_max);
	}
	case AD_CHECK:
		/* Passive: the type and flags are not compared. */
		x.exchange = amqp_cstring_bytes(d->check[j]);
		x.type = amqp_cstring_bytes("topic");
		x.passive = 1;
		break;
	}
	return aframe_method(out, channel, AMQP_EXCHANGE_DECLARE_METHOD, &x, frame_max);
}

void adecl_failure(const struct adecl *d, size_t i, const char *full, const char *text, int code,
                   char *err, size_t errsz)
{
	const struct amqp_settings *c = d->cfg;
	size_t j;

	switch (adecl_kind(d, i, &j)) {
	case AD_MAIN:
	case AD_DLX: {
		const char *name = i == 0 ? c->exchange : c->dead_letter_exchange;

		if (adecl_passive(d, name))
			snprintf(err, errsz, "exchange '%s' cannot be used (%s)%s", name, full,
			         c->declare_exchange ? ""
			         : "; create it or set amqp.declare_exchange = true");
		else
			snprintf(err, errsz, "declaring %s exchange '%s' failed (%s)",
			         i == 0 ? c->exchange_type : "topic", name, full);
		return;
	}
	case AD_EXCHANGE:
		snprintf(err, errsz, "topology exchange '%s' (line %d): %s", d->topo->exchanges[j].name,
		         d->topo->exchanges[j].line, text);
		return;
	case AD_QUEUE:
		snprintf(err, errsz, "topology queue '%s' (line %d): %s", d->topo->queues[j].name,
		         d->topo->queues[j].line, text);
		return;
	case AD_BINDING: {
		const struct topo_binding *b = &d->topo->bindings[j];

		snprintf(err, errsz, "topology binding of queue '%s' to exchange '%s' with key '%s' "
		         "(line %d): %s", b->queue, b->exchange, b->key, b->line, text);
		return;
	}
	case AD_CHECK:
		if (code == AMQP_NOT_FOUND)
			snprintf(err, errsz, "exchange '%s' used by a rule does not exist (%s); declare it "
			         "under topology.exchanges or create it", d->check[j], text);
		else
			snprintf(err, errsz, "exchange '%s' used by a rule cannot be used (%s)",
			         d->check[j], text);
		return;
	}
}

void adecl_log_done(const struct adecl *d)
{
	const struct topology *t = d->topo;
	size_t nx = t ? t->n_exchanges : 0, nq = t ? t->n_queues : 0, nb = t ? t->n_bindings : 0;

	if (nx + nq + nb + d->n_check > 0)
		log_info("amqp: declared %zu exchange(s), %zu queue(s), %zu binding(s); "
		         "checked %zu exchange(s)", nx, nq, nb, d->n_check);
}
