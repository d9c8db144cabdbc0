#include "alogin.h"

#include <stdlib.h>
#include <string.h>

bool alogin_offered(amqp_bytes_t list, const char *mech)
{
	size_t n = strlen(mech);
	const char *p = list.bytes, *end = p + list.len;

	while (p < end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t len = sp ? (size_t)(sp - p) : (size_t)(end - p);

		if (len == n && memcmp(p, mech, n) == 0)
			return true;
		p += len + 1;
	}
	return false;
}

static amqp_table_entry_t alogin_bool(const char *key)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(key);
	e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
	e.value.value.boolean = 1;
	return e;
}

static amqp_table_entry_t alogin_text(const char *key, const char *val)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(key);
	e.value.kind = AMQP_FIELD_KIND_UTF8;
	e.value.value.bytes = amqp_cstring_bytes(val);
	return e;
}

/*
 * connection.start-ok with what rabbitmq-c's login sent, merged with our
 * capabilities: without announcing connection.blocked, RabbitMQ never
 * sends it; with authentication_failure_close, a refused login is a
 * connection.close that says so rather than a dropped socket; without
 * consumer_cancel_notify, a downlink queue deleted under its consumer
 * would leave the consumer silently gone.
 */
int alogin_start_ok(struct aframe *out, const struct amqp_settings *c, size_t frame_max)
{
	amqp_table_entry_t caps[] = {
		alogin_bool("authentication_failure_close"), alogin_bool("exchange_exchange_bindings"),
		alogin_bool("connection.blocked"), alogin_bool("publisher_confirms"),
		alogin_bool("consumer_cancel_notify"),
	};
	amqp_table_entry_t props[7];
	amqp_connection_start_ok_t ok;
	size_t ulen = strlen(c->username), plen = strlen(c->password);
	char *resp = malloc(ulen + plen + 2);
	int rc;

	if (!resp)
		return AMQP_STATUS_NO_MEMORY;
	resp[0] = '\0';
	memcpy(resp + 1, c->username, ulen);
	resp[ulen + 1] = '\0';
	memcpy(resp + ulen + 2, c->password, plen);
	props[0] = alogin_text("product", "rabbitmq-c");
	props[1] = alogin_text("version", amqp_version());
	props[2] = alogin_text("platform", "Linux");
	props[3] = alogin_text("copyright", "Copyright (c) 2007-2014 VMWare Inc, Tony Garnock-Jones, "
	                   "and Alan Antonuk.");
	props[4] = alogin_text("information", "See https://github.com/alanxz/rabbitmq-c");
	props[5].key = amqp_cstring_bytes("capabilities");
	props[5].value.kind = AMQP_FIELD_KIND_TABLE;
	props[5].value.value.table.num_entries = (int)(sizeof(caps) / sizeof(caps[0]));
	props[5].value.value.table.entries = caps;
	props[6] = alogin_text("connection_name", PACKAGE_NAME);
	ok.client_properties.num_entries = 7;
	ok.client_properties.entries = props;
	ok.mechanism = amqp_cstring_bytes("PLAIN");
	ok.response.bytes = resp;
	ok.response.len = ulen + plen + 2;
	ok.locale = amqp_cstring_bytes("en_US");
	rc = aframe_method(out, 0, AMQP_CONNECTION_START_OK_METHOD, &ok, frame_max);
	explicit_bzero(resp, ulen + plen + 2);
	free(resp);
	return rc;
}

