#include "props.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "topic.h"

/* AMQP 0-9-1 short strings carry at most 255 bytes. */
#define PROPS_SHORTSTR_MAX 255
/* The longest `expiration` RabbitMQ accepts: ten years in milliseconds. */
#define PROPS_EXPIRATION_MAX 315360000000ull

void props_init(struct props_buf *pb)
{
	memset(pb, 0, sizeof(*pb));
}

/* Frees the property copies the previous message left. */
static void props_release(struct props_buf *pb)
{
	for (size_t i = 0; i < pb->n_owned; i++)
		free(pb->owned[i]);
	pb->n_owned = 0;
}

void props_fini(struct props_buf *pb)
{
	props_release(pb);
	free(pb->owned);
	free(pb->entries);
	free(pb->scratch);
	free(pb->text);
	memset(pb, 0, sizeof(*pb));
}

/*
 * Takes ownership of `p`, a copy libmosquitto made (NULL is accepted and
 * ignored).  Returns -1, with `p` freed, when memory ran out.
 */
static int props_own(struct props_buf *pb, void *p)
{
	if (!p)
		return 0;
	if (pb->n_owned == pb->cap_owned) {
		size_t cap = pb->cap_owned ? pb->cap_owned * 2 : 8;
		void **n = realloc(pb->owned, cap * sizeof(*n));

		if (!n) {
			free(p);
			return -1;
		}
		pb->owned = n;
		pb->cap_owned = cap;
	}
	pb->owned[pb->n_owned++] = p;
	return 0;
}

/* Makes room for `n` header entries (and as much sort scratch). */
static int props_reserve(struct props_buf *pb, size_t n)
{
	amqp_table_entry_t *e;
	size_t cap;

	if (n <= pb->cap_entries)
		return 0;
	cap = pb->cap_entries ? pb->cap_entries : 8;
	while (cap < n)
		cap *= 2;
	e = realloc(pb->entries, cap * sizeof(*e));
	if (!e)
		return -1;
	pb->entries = e;
	e = realloc(pb->scratch, cap * sizeof(*e));
	if (!e)
		return -1;
	pb->scratch = e;
	pb->cap_entries = cap;
	return 0;
}

static bool props_is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/*
 * Whether `len` bytes are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF) without a NUL: what RabbitMQ accepts
 * as a short string's text.
 */
static bool props_is_utf8_no_nul(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * The response topic as a routing key, into pb->text, by the default
 * translation.  A header value is a long string, so there is no 255-byte
 * bound here.  Returns the length, or (size_t)-1 when memory ran out.
 */
static size_t props_translate(struct props_buf *pb, const char *topic, size_t len,
                              const char *repl)
{
	size_t n = topic_translate(topic, len, repl, pb->text, pb->cap_text);

	if (n + 1 > pb->cap_text) {
		char *t = realloc(pb->text, n + 1);

		if (!t)
			return (size_t)-1;
		pb->text = t;
		pb->cap_text = n + 1;
		topic_translate(topic, len, repl, pb->text, pb->cap_text);
	}
	pb->text[n] = '\0';
	return n;
}

void props_entry_text(amqp_table_entry_t *e, const char *key, size_t klen, const void *val,
                      size_t vlen)
{
	e->key.bytes = (void *)key;
	e->key.len = klen;
	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes.bytes = (void *)val;
	e->value.value.bytes.len = vlen;
}

void props_entry_field(amqp_table_entry_t *e, const struct rules_field *f)
{
	e->key = amqp_cstring_bytes(f->name);
	switch (f->kind) {
	case RV_STRING:
		e->value.kind = AMQP_FIELD_KIND_UTF8;
		e->value.value.bytes = amqp_cstring_bytes(f->s);
		break;
	case RV_INT:
		e->value.kind = AMQP_FIELD_KIND_I64;
		e->value.value.i64 = f->i;
		break;
	case RV_BOOL:
		e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
		e->value.value.boolean = f->b;
		break;
	}
}

/* An entry's encoded bytes: the name as a short string, the kind, the value. */
static size_t props_entry_size(const amqp_table_entry_t *e)
{
	size_t key = 1 + e->key.len;

	if (e->key.len > PROPS_SHORTSTR_MAX)
		return SIZE_MAX;
	switch (e->value.kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		return key + 1 + 4 + e->value.value.bytes.len;
	case AMQP_FIELD_KIND_I64:
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP:
	case AMQP_FIELD_KIND_F64:
		return key + 1 + 8;
	case AMQP_FIELD_KIND_I32:
	case AMQP_FIELD_KIND_U32:
	case AMQP_FIELD_KIND_F32:
		return key + 1 + 4;
	case AMQP_FIELD_KIND_I16:
	case AMQP_FIELD_KIND_U16:
		return key + 1 + 2;
	case AMQP_FIELD_KIND_BOOLEAN:
	case AMQP_FIELD_KIND_I8:
	case AMQP_FIELD_KIND_U8:
		return key + 1 + 1;
	case AMQP_FIELD_KIND_VOID:
		return key + 1;
	default:
		return SIZE_MAX;
	}
}

static size_t props_table_size(const amqp_table_t *t)
{
	size_t n = 4;

	for (int i = 0; i < t->num_entries; i++) {
		size_t e = props_entry_size(&t->entries[i]);

		if (e == SIZE_MAX)
			return SIZE_MAX;
		n += e;
	}
	return n;
}

size_t props_fields_size(const struct rules_field *f, size_t n)
{
	size_t size = 4;

	for (size_t i = 0; i < n; i++) {
		amqp_table_entry_t e;
		size_t one;

		props_entry_field(&e, &f[i]);
		one = props_entry_size(&e);
		if (one == SIZE_MAX)
			return SIZE_MAX;
		size += one;
	}
	return size;
}

size_t props_encoded_size(const amqp_basic_properties_t *p)
{
	static const struct {
		amqp_flags_t flag;
		size_t offset;
	} shortstrs[] = {
		{ AMQP_BASIC_CONTENT_TYPE_FLAG, offsetof(amqp_basic_properties_t, content_type) },
		{ AMQP_BASIC_CONTENT_ENCODING_FLAG,
		  offsetof(amqp_basic_properties_t, content_encoding) },
		{ AMQP_BASIC_CORRELATION_ID_FLAG, offsetof(amqp_basic_properties_t, correlation_id) },
		{ AMQP_BASIC_REPLY_TO_FLAG, offsetof(amqp_basic_properties_t, reply_to) },
		{ AMQP_BASIC_EXPIRATION_FLAG, offsetof(amqp_basic_properties_t, expiration) },
		{ AMQP_BASIC_MESSAGE_ID_FLAG, offsetof(amqp_basic_properties_t, message_id) },
		{ AMQP_BASIC_TYPE_FLAG, offsetof(amqp_basic_properties_t, type) },
		{ AMQP_BASIC_USER_ID_FLAG, offsetof(amqp_basic_properties_t, user_id) },
		{ AMQP_BASIC_APP_ID_FLAG, offsetof(amqp_basic_properties_t, app_id) },
		{ AMQP_BASIC_CLUSTER_ID_FLAG, offsetof(amqp_basic_properties_t, cluster_id) },
	};
	size_t n = 2;

	for (size_t i = 0; i < sizeof(shortstrs) / sizeof(shortstrs[0]); i++) {
		if (p->_flags & shortstrs[i].flag) {
			const amqp_bytes_t *b = (const amqp_bytes_t *)((const char *)p +
			                                               shortstrs[i].offset);

			if (b->len > PROPS_SHORTSTR_MAX)
				return SIZE_MAX;
			n += 1 + b->len;
		}
	}
	if (p->_flags & AMQP_BASIC_HEADERS_FLAG) {
		size_t t = props_table_size(&p->headers);

		if (t == SIZE_MAX)
			return SIZE_MAX;
		n += t;
	}
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		n += 1;
	if (p->_flags & AMQP_BASIC_PRIORITY_FLAG)
		n += 1;
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		n += 8;
	return n;
}

/* FNV-1a over `len` bytes, continuing from `h`. */
static uint64_t props_fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static uint64_t props_fnv_bytes(uint64_t h, amqp_bytes_t b)
{
	uint64_t len = b.len;

	return props_fnv(props_fnv(h, &len, sizeof(len)), b.bytes, b.len);
}

uint64_t props_hash(const amqp_basic_properties_t *p)
{
	const amqp_bytes_t *strs[] = {
		&p->content_type, &p->content_encoding, &p->correlation_id, &p->reply_to,
		&p->expiration, &p->message_id, &p->type, &p->user_id, &p->app_id, &p->cluster_id,
	};
	static const amqp_flags_t flags[] = {
		AMQP_BASIC_CONTENT_TYPE_FLAG, AMQP_BASIC_CONTENT_ENCODING_FLAG,
		AMQP_BASIC_CORRELATION_ID_FLAG, AMQP_BASIC_REPLY_TO_FLAG, AMQP_BASIC_EXPIRATION_FLAG,
		AMQP_BASIC_MESSAGE_ID_FLAG, AMQP_BASIC_TYPE_FLAG, AMQP_BASIC_USER_ID_FLAG,
		AMQP_BASIC_APP_ID_FLAG, AMQP_BASIC_CLUSTER_ID_FLAG,
	};
	uint64_t h = props_fnv(14695981039346656037ull, &p->_flags, sizeof(p->_flags));

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (p->_flags & flags[i])
			h = props_fnv_bytes(h, *strs[i]);
	if (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG)
		h = props_fnv(h, &p->delivery_mode, sizeof(p->delivery_mode));
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return h;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];
		uint64_t v;

		h = props_fnv_bytes(h, e->key);
		h = props_fnv(h, &e->value.kind, sizeof(e->value.kind));
		switch (e->value.kind) {
		case AMQP_FIELD_KIND_UTF8:
		case AMQP_FIELD_KIND_BYTES:
			h = props_fnv_bytes(h, e->value.value.bytes);
			break;
		case AMQP_FIELD_KIND_BOOLEAN:
			v = (uint64_t)e->value.value.boolean;
			h = props_fnv(h, &v, sizeof(v));
			break;
		case AMQP_FIELD_KIND_I8:
			v = (uint64_t)e->value.value.i8;
			h = props_fnv(h, &v, sizeof(v));
			break;
		default:
			/* The 64-bit integers of rule headers and any other scalar. */
			v = e->value.value.u64;
			h = props_fnv(h, &v, sizeof(v));
			break;
		}
	}
	return h;
}

const char *props_check(const struct props_limits *l, size_t klen, uint64_t body,
                        const amqp_basic_properties_t *p, char *detail, size_t size)
{
	size_t room = l->frame_max > PROPS_HEADER_OVERHEAD ? l->frame_max - PROPS_HEADER_OVERHEAD : 0;
	size_t psize;

	if (body > (uint64_t)l->max_body) {
		snprintf(detail, size, "body of %" PRIu64 " bytes; %s is %" PRId64, body,
		         l->brokers_max_body ? "RabbitMQ's max_message_size" : "amqp.max_message_size",
		         l->max_body);
		return "too-large";
	}
	if (klen > PROPS_SHORTSTR_MAX) {
		snprintf(detail, size, "routing key of %zu bytes; AMQP allows %d", klen,
		         PROPS_SHORTSTR_MAX);
		return "routing-key-too-long";
	}
	psize = props_encoded_size(p);
	if (psize == SIZE_MAX) {
		snprintf(detail, size, "properties that cannot be encoded");
		return "properties-too-large";
	}
	if (psize > room) {
		snprintf(detail, size, "properties of %zu bytes encoded; a frame of %zu bytes holds %zu",
		         psize, l->frame_max, room);
		return "properties-too-large";
	}
	return NULL;
}

static int props_key_cmp(const amqp_bytes_t *a, const amqp_bytes_t *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->bytes, b->bytes, n) : 0;

	if (c != 0)
		return c;
	return (a->len > b->len) - (a->len < b->len);
}

/*
 * Sorts `n` entries by key, bytewise, keeping entries with equal keys in
 * their order (a bottom-up merge sort through pb->scratch), so that the
 * first of a name is the one that takes precedence.
 */
static void props_sort(struct props_buf *pb, size_t n)
{
	amqp_table_entry_t *src = pb->entries, *dst = pb->scratch, *t;

	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = mid + width < n ? mid + width : n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi)
				dst[k++] = props_key_cmp(&src[j].key, &src[i].key) < 0 ? src[j++]
				                                                        : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != pb->entries)
		memcpy(pb->entries, src, n * sizeof(*src));
}

/* What the first pass over the MQTT properties found. */
struct props_found {
	const char *content_type;
	const unsigned char *correlation;
	size_t correlation_len;
	bool has_correlation;
	const char *response_topic;
	bool has_expiry;
	uint32_t expiry;
	size_t n_user;
};

/*
 * Reads every property but the user properties (the first of each, as
 * RabbitMQ does; MQTT allows one) and counts the user properties.  The
 * copies libmosquitto makes go to `pb`.  Returns -1 when memory ran out.
 */
static int props_scan(struct props_buf *pb, const mosquitto_property *list,
                      struct props_found *f)
{
	for (const mosquitto_property *p = list; p; p = mosquitto_property_next(p)) {
		int id = mosquitto_property_identifier(p);
		char *s = NULL;
		void *bin = NULL;
		uint16_t blen = 0;

		switch (id) {
		case MQTT_PROP_CONTENT_TYPE:
			if (f->content_type)
				break;
			/* Called on `p` itself, a reader finds `p`: NULL means no memory. */
			if (!mosquitto_property_read_string(p, id, &s, false) || props_own(pb, s) != 0)
				return -1;
			f->content_type = s;
			break;
		case MQTT_PROP_RESPONSE_TOPIC:
			if (f->response_topic)
				break;
			if (!mosquitto_property_read_string(p, id, &s, false) || props_own(pb, s) != 0)
				return -1;
			f->response_topic = s;
			break;
		case MQTT_PROP_CORRELATION_DATA:
			if (f->has_correlation)
				break;
			if (!mosquitto_property_read_binary(p, id, &bin, &blen, false) ||
			    props_own(pb, bin) != 0)
				return -1;
			f->correlation = bin;
			f->correlation_len = blen;
			f->has_correlation = true;
			break;
		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
			if (!f->has_expiry && mosquitto_property_read_int32(p, id, &f->expiry, false))
				f->has_expiry = true;
			break;
		case MQTT_PROP_USER_PROPERTY:
			f->n_user++;
			break;
		default:
			break;
		}
	}
	return 0;
}

/*
 * Appends the user properties, in order, as long-string headers; names of
 * 256 bytes or more cannot be table keys and are left out.  Returns the new
 * entry count, or (size_t)-1 when memory ran out.
 */
static size_t props_user(struct props_buf *pb, const mosquitto_property *list, size_t n)
{
	const mosquitto_property *p = list;
	bool skip = false;
	char *name, *value;
	size_t nlen;

	while ((p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, NULL, NULL,
	                                                skip)) != NULL) {
		/* A second read of the property found: only a failed copy returns NULL. */
		if (!mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
		                                         false))
			return (size_t)-1;
		if (props_own(pb, name) != 0) {
			free(value);
			return (size_t)-1;
		}
		if (props_own(pb, value) != 0)
			return (size_t)-1;
		skip = true;
		nlen = strlen(name);
		if (nlen > PROPS_SHORTSTR_MAX || field_is_route_header(name))
			continue;
		props_entry_text(&pb->entries[n++], name, nlen, value, strlen(value));
	}
	return n;
}

enum props_plugin props_plugin_of(const char *setting)
{
	if (setting && strcmp(setting, "3.10") == 0)
		return PROPS_PLUGIN_310;
	if (setting && strcmp(setting, "3.12") == 0)
		return PROPS_PLUGIN_312;
	return PROPS_PLUGIN_NONE;
}

static bool props_is_key(const amqp_bytes_t *k, const char *name)
{
	return k->len == strlen(name) && memcmp(k->bytes, name, k->len) == 0;
}

/*
 * Appends the plugin's headers to the `n` sorted entries, after taking out
 * any of their names (they win, as with the plugin nothing else sets them).
 * Returns the new count; the entries have room (props_build reserved it).
 */
static size_t props_plugin_headers(struct props_buf *pb, const struct props_input *in, size_t n)
{
	size_t w = 0;
	amqp_table_entry_t *e;

	for (size_t i = 0; i < n; i++)
		if (!props_is_key(&pb->entries[i].key, PROPS_HDR_QOS) &&
		    !props_is_key(&pb->entries[i].key, PROPS_HDR_DUP))
			pb->entries[w++] = pb->entries[i];
	e = &pb->entries[w++];
	e->key = amqp_cstring_bytes(PROPS_HDR_QOS);
	e->value.kind = AMQP_FIELD_KIND_I8;
	e->value.value.i8 = (int8_t)(in->qos > 1 ? 1 : in->qos);
	if (in->plugin == PROPS_PLUGIN_310) {
		e = &pb->entries[w++];
		e->key = amqp_cstring_bytes(PROPS_HDR_DUP);
		e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
		e->value.value.boolean = in->dup;
	}
	return w;
}

int props_build(struct props_buf *pb, const struct props_input *in, amqp_basic_properties_t *out)
{
	const char *repl = in->dot_replacement ? in->dot_replacement : ".";
	struct props_found f;
	size_t n = 0, w;

	props_release(pb);
	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));

	out->_flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	switch (in->persistent) {
	case RULE_PERSIST_YES:
		out->delivery_mode = 2;
		break;
	case RULE_PERSIST_NO:
		out->delivery_mode = 1;
		break;
	case RULE_PERSIST_QOS:
		out->delivery_mode = in->qos > 0 ? 2 : 1;
		break;
	}

	if (in->mqtt && props_scan(pb, in->mqtt, &f) != 0)
		return -1;

	/*
	 * Entries go in in order of precedence (the first of a name stays):
	 * the configured topic and retain headers, the rule's headers, the
	 * headers made of MQTT properties, then the user properties.
	 */
	/* 6: topic, retain, correlation, reply-to, QoS and DUP headers at most. */
	if (props_reserve(pb, 6 + in->n_headers + f.n_user) != 0)
		return -1;
	if (in->topic_header)
		props_entry_text(&pb->entries[n++], PROPS_HDR_TOPIC, strlen(PROPS_HDR_TOPIC),
		                in->topic, in->topic_len);
	if (in->retain_header) {
		amqp_table_entry_t *e = &pb->entries[n++];

		e->key = amqp_cstring_bytes(PROPS_HDR_RETAIN);
		e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
		e->value.value.boolean = in->retain;
	}
	for (size_t i = 0; i < in->n_headers; i++)
		props_entry_field(&pb->entries[n++], &in->headers[i]);

	if (f.content_type) {
		size_t len = strlen(f.content_type);

		if (len <= PROPS_SHORTSTR_MAX && props_is_ascii(f.content_type, len)) {
			out->_flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
			out->content_type.bytes = (void *)f.content_type;
			out->content_type.len = len;
		}
	}
	if (f.has_correlation) {
		if (f.correlation_len <= PROPS_SHORTSTR_MAX &&
		    props_is_utf8_no_nul(f.correlation, f.correlation_len)) {
			out->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
			out->correlation_id.bytes = (void *)f.correlation;
			out->correlation_id.len = f.correlation_len;
		} else {
			props_entry_text(&pb->entries[n++], PROPS_HDR_CORRELATION,
			                strlen(PROPS_HDR_CORRELATION), f.correlation,
			                f.correlation_len);
		}
	}
	if (f.response_topic) {
		size_t len = props_translate(pb, f.response_topic, strlen(f.response_topic), repl);

		if (len == (size_t)-1)
			return -1;
		props_entry_text(&pb->entries[n++], PROPS_HDR_REPLY_TO, strlen(PROPS_HDR_REPLY_TO),
		                pb->text, len);
	}
	if (f.has_expiry) {
		uint64_t ms = (uint64_t)f.expiry * 1000u;

		/* RabbitMQ closes the channel over a longer one (rabbit_misc:check_expiry). */
		if (ms > PROPS_EXPIRATION_MAX)
			ms = PROPS_EXPIRATION_MAX;
		snprintf(pb->expiration, sizeof(pb->expiration), "%" PRIu64, ms);
		out->_flags |= AMQP_BASIC_EXPIRATION_FLAG;
		out->expiration = amqp_cstring_bytes(pb->expiration);
	}
	if (f.n_user > 0) {
		n = props_user(pb, in->mqtt, n);
		if (n == (size_t)-1)
			return -1;
	}
	w = 0;
	if (n > 0) {
		props_sort(pb, n);
		w = 1;
		for (size_t i = 1; i < n; i++)
			if (props_key_cmp(&pb->entries[i].key, &pb->entries[w - 1].key) != 0)
				pb->entries[w++] = pb->entries[i];
	}
	if (in->plugin != PROPS_PLUGIN_NONE)
		w = props_plugin_headers(pb, in, w);
	if (w == 0)
		return 0;
	out->_flags |= AMQP_BASIC_HEADERS_FLAG;
	out->headers.num_entries = (int)w;
	out->headers.entries = pb->entries;
	return 0;
}
