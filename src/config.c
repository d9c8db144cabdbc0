/*
 * config: config_load() and what it hands back.  The schema says what each
 * setting is; this file puts the steps of a load in order and holds the
 * checks that span settings: the rules, the subscriptions they imply, the
 * topology, and how they meet the groups.
 */
#include "config.h"

#include <inttypes.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgauth.h"
#include "cfgload.h"
#include "cfgread.h"
#include "cfgval.h"
#include "filter.h"
#include "props.h"
#include "topocheck.h"

#define TOPOLOGY_PREFIX "topology."

/* Rules that involve more than one setting, as the rows declare them. */
static void check_relations(struct loader *ld)
{
	cfgauth_tls_only(ld);
	for (int g = 0; g < N_GROUP_SECTIONS; g++) {
		const struct section *sec = &schema[g];
		const void *base = schema_at(ld->cfg, sec->base);

		for (size_t i = 0; i < sec->n; i++) {
			const struct setting *r = &sec->rows[i];
			const struct found *f = &ld->found[g][i];
			char full[64], other[64];
			int o;

			load_full_name(full, sizeof(full), (enum section_id)g, (int)i);
			if ((r->flags & SF_MQTT5) && f->s != NULL && load_usable(ld, S_MQTT, "protocol")
			    && ld->cfg->mqtt.protocol != MQTT_PROTOCOL_5)
				load_error(ld, f->s, "'%s' is only meaningful for MQTT 5 "
				           "(mqtt.protocol = \"5\")", full);
			if (r->at_least != NULL && (o = schema_find(sec, r->at_least)) >= 0 && !f->bad
			    && !ld->found[g][o].bad) {
				int64_t v = r->kind == SK_INT64 ? *(const int64_t *)schema_cat(base, r->off)
				                                : *(const int *)schema_cat(base, r->off);
				const struct setting *ro = &sec->rows[o];
				int64_t lo = ro->kind == SK_INT64 ? *(const int64_t *)schema_cat(base, ro->off)
				                                  : *(const int *)schema_cat(base, ro->off);

				load_full_name(other, sizeof(other), (enum section_id)g, o);
				if (v < lo)
					load_error(ld, f->s != NULL ? f->s : ld->found[g][o].s,
					           "'%s' (%" PRId64 ") must not be less than '%s' (%" PRId64 ")",
					           full, v, other, lo);
			}
			if (r->instead != NULL && (o = schema_find(sec, r->instead)) >= 0 && f->s != NULL
			    && ld->found[g][o].s != NULL) {
				load_full_name(other, sizeof(other), (enum section_id)g, o);
				load_error(ld, ld->found[g][o].s, "'%s' and '%s' are both given: give one of "
				           "them", other, full);
				ld->found[g][i].bad = ld->found[g][o].bad = true;
			}
			if (r->differs != NULL && (o = schema_find(sec, r->differs)) >= 0 && f->s != NULL
			    && !f->bad && !ld->found[g][o].bad) {
				const char *v = *(char *const *)schema_cat(base, r->off);
				const char *w = *(char *const *)schema_cat(base, sec->rows[o].off);

				load_full_name(other, sizeof(other), (enum section_id)g, o);
				if (v != NULL && w != NULL && strcmp(v, w) == 0)
					load_error(ld, f->s, "'%s' must differ from '%s'", full, other);
			}
		}
	}
}

/*
 * Each side's brokers: `hosts`, an entry without a port taking the side's
 * `port`, with no broker given twice; or `host` and `port` as the one
 * entry.  What is wrong with either was reported when it was read.
 */
static void load_brokers(struct loader *ld)
{
	static const enum section_id sides[] = { S_MQTT, S_AMQP };

	for (size_t k = 0; k < sizeof(sides) / sizeof(sides[0]); k++) {
		enum section_id g = sides[k];
		const struct section *sec = &schema[g];
		void *base = schema_at(ld->cfg, sec->base);
		const struct setting *rh = &sec->rows[schema_find(sec, "hosts")];
		const struct setting *rhost = &sec->rows[schema_find(sec, "host")];
		const struct setting *rport = &sec->rows[schema_find(sec, "port")];
		struct found *fh = load_found(ld, g, "hosts"), *fhost = load_found(ld, g, "host");
		struct endpoint **vec = schema_at(base, rh->off);
		size_t *n = schema_at(base, rh->off_count);
		int port = *(const int *)schema_at(base, rport->off);

		if (ld->top[g] == NULL || fh->bad || fhost->bad || load_found(ld, g, "port")->bad)
			continue;
		if (fh->s == NULL) {
			const char *host = *(char **)schema_at(base, rhost->off);
			const char *file;
			unsigned line;

			if (host == NULL)
				continue;
			*vec = calloc(1, sizeof(**vec));
			if (*vec == NULL || ((*vec)->host = strdup(host)) == NULL) {
				load_oom(ld);
				continue;
			}
			*n = 1;
			load_where(ld, fhost->s, &file, &line);
			(*vec)[0].line = (int)line;
		}
		for (size_t i = 0; i < *n; i++) {
			struct endpoint *ep = &(*vec)[i];

			if (ep->port == 0)
				ep->port = port;
			if (endpoint_name(ep) != 0) {
				load_oom(ld);
				break;
			}
			for (size_t j = 0; j < i; j++) {
				if (endpoint_same(&(*vec)[j], ep)) {
					load_error(ld, config_setting_get_elem(fh->s, (unsigned)i),
					           "'%s.hosts[%zu]' (%s) repeats '%s.hosts[%zu]'", sec->name, i,
					           ep->name, sec->name, j);
					fh->bad = true;
					break;
				}
			}
		}
	}
}

/* The rules */

static int rule_pos_cmp(const void *a, const void *b)
{
	const struct rule_pos *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void rules_error(void *arg, int line, const char *msg)
{
	struct loader *ld = arg;

	cfgerr_report(&ld->ce, load_rule_file(ld, line), line > 0 ? (unsigned)line : 0, "%s", msg);
}

static void rules_warning(void *arg, int line, const char *msg)
{
	struct loader *ld = arg;

	load_warn_at(ld, load_rule_file(ld, line), line > 0 ? (unsigned)line : 0, "%s", msg);
}

/*
 * A rule's static headers go on every message it forwards, and a
 * message's properties must fit in one AMQP frame (rabbitmq-c sends the
 * content header as one frame): a rule whose headers alone leave no room
 * for what every message also carries could never forward anything.
 * Every message carries the property flags and a delivery mode, and the
 * headers bridge.topic_header and bridge.retain_header add, when set (the
 * topic at its shortest, one byte), unless the rule names them itself.
 */
static void check_header_room(struct loader *ld, const struct rule_spec *spec, size_t index,
                              const char *file)
{
	const struct bridge_config *cfg = ld->cfg;
	const size_t room = PROPS_FRAME_MAX - PROPS_HEADER_OVERHEAD;
	struct rules_field added[] = {
		{ .name = PROPS_HDR_TOPIC, .kind = RV_STRING, .s = "t" },
		{ .name = PROPS_HDR_RETAIN, .kind = RV_BOOL },
	};
	bool adds[] = { cfg->bridge.topic_header, cfg->bridge.retain_header };
	size_t size, other = 2 + 1;     /* property flags, delivery mode */

	if (spec->drop || spec->n_headers == 0)
		return;
	size = props_fields_size(spec->headers, spec->n_headers);
	if (size == SIZE_MAX)           /* a name over 255 bytes: the rules module reports it */
		return;
	for (size_t k = 0; k < sizeof(added) / sizeof(added[0]); k++) {
		bool named = false;

		for (size_t j = 0; j < spec->n_headers && adds[k] && !named; j++)
			named = strcmp(spec->headers[j].name, added[k].name) == 0;
		if (adds[k] && !named)
			other += props_fields_size(&added[k], 1) - 4;
	}
	/* The plugin's headers replace any of their names: a signed byte and a bool. */
	switch (props_plugin_of(cfg->bridge.plugin_headers)) {
	case PROPS_PLUGIN_310:
		other += 1 + strlen(PROPS_HDR_DUP) + 1 + 1;
		/* fall through */
	case PROPS_PLUGIN_312:
		other += 1 + strlen(PROPS_HDR_QOS) + 1 + 1;
		break;
	case PROPS_PLUGIN_NONE:
		break;
	}
	if (size > room - other)
		cfgerr_report(&ld->ce, file, (unsigned)spec->line, "rule %zu (match '%s'): its headers "
		              "take %zu bytes encoded; a message's properties must fit in %zu bytes (one "
		              "AMQP frame), which leaves at most %zu for the headers", index + 1,
		              spec->match, size, room, room - other);
}

/*
 * Reads and compiles the `rules` list into cfg->rules (an empty set when
 * there is none; NULL when it cannot be compiled).  A rule whose `match` is
 * missing or refused stands in as a plain "#" rule so that the others are
 * still compiled and every error in them reported; any other refused
 * setting is left out of its rule for the same reason.  Explicit
 * subscriptions go to rules_compile() for its overlap warning.
 */
static void load_rules(struct loader *ld)
{
	const struct section *sec = &schema[S_RULES];
	const unsigned match_refused = ROW_BIT(schema_find(sec, "match"));
	const unsigned headers_refused = ROW_BIT(schema_find(sec, "headers"));
	struct bridge_config *cfg = ld->cfg;
	const char *const *subscribe = NULL;
	const struct found *sub = load_found(ld, S_MQTT, "subscribe");
	struct rule_spec *specs;
	size_t n, n_subscribe = 0;
	unsigned before, *bad;
	void *vec;

	n = load_list(ld, sec, ld->top[S_RULES], &vec, &bad);
	if (n == (size_t)-1) {
		ld->rules_broken = true;
		return;
	}
	specs = vec;
	if (n > 0) {
		ld->rule_pos = calloc(n, sizeof(*ld->rule_pos));
		if (ld->rule_pos == NULL) {
			load_oom(ld);
			ld->rules_broken = true;
			goto done;
		}
		ld->n_rule_pos = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct rule_pos *pos = &ld->rule_pos[i];
		unsigned line;

		load_where(ld, config_setting_get_elem(ld->top[S_RULES], (unsigned)i), &pos->file, &line);
		pos->line = (int)line;
		pos->index = i;
		if (bad[i] & match_refused) {
			cfgval_free(sec, &specs[i]);
			memset(&specs[i], 0, sizeof(specs[i]));
			specs[i].line = (int)line;
			specs[i].match = "#";
		}
		if (!(bad[i] & headers_refused))
			check_header_room(ld, &specs[i], i, pos->file);
	}
	if (n > 0)
		qsort(ld->rule_pos, n, sizeof(*ld->rule_pos), rule_pos_cmp);
	if (sub->s != NULL && !sub->bad) {
		subscribe = (const char *const *)cfg->mqtt.subscribe;
		n_subscribe = cfg->mqtt.n_subscribe;
	}
	before = ld->ce.n_failed;
	cfg->rules = rules_compile(specs, n, cfg->bridge.dot_replacement, subscribe, n_subscribe,
	                           rules_error, rules_warning, ld);
	if (cfg->rules == NULL && ld->ce.n_failed == before)
		load_oom(ld);
	if (cfg->rules == NULL)
		ld->rules_broken = true;
done:
	cfgval_free_list(sec, specs, n);
	free(bad);
}

/*
 * mqtt.subscribe when the file gives none: the rules' filters.  Recorded
 * either way in subscribe_explicit.
 */
static void load_subscriptions(struct loader *ld)
{
	struct bridge_config *cfg = ld->cfg;
	const char **subs = NULL;
	char **vec;
	size_t n;

	if (load_found(ld, S_MQTT, "subscribe")->s != NULL) {
		cfg->mqtt.subscribe_explicit = true;
		return;
	}
	/* Without the mqtt group or with broken rules, that is reported already. */
	if (ld->top[S_MQTT] == NULL || ld->rules_broken || cfg->rules == NULL)
		return;
	n = rules_subscriptions(cfg->rules, &subs);
	if (n == (size_t)-1) {
		load_oom(ld);
		return;
	}
	if (n == 0) {
		free(subs);
		load_error(ld, ld->top[S_MQTT], "'mqtt.subscribe' is not set and no rule gives a "
		           "filter to subscribe to");
		return;
	}
	vec = calloc(n, sizeof(*vec));
	if (vec == NULL) {
		free(subs);
		load_oom(ld);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		vec[i] = strdup(subs[i]);
		if (vec[i] == NULL) {
			while (i > 0)
				free(vec[--i]);
			free(vec);
			free(subs);
			load_oom(ld);
			return;
		}
	}
	free(subs);
	cfg->mqtt.subscribe = vec;
	cfg->mqtt.n_subscribe = n;
}

/* The topology */

/* Reads the optional `topology` group into cfg->topology and checks it. */
static void load_topology(struct loader *ld)
{
	const config_setting_t *topo = ld->topology, *part[N_SECTIONS] = { NULL };
	unsigned *bad[N_SECTIONS] = { NULL };
	const size_t skip = strlen(TOPOLOGY_PREFIX);
	int n;

	if (topo == NULL)
		return;
	if (config_setting_type(topo) != CONFIG_TYPE_GROUP) {
		load_error(ld, topo, "'topology' must be a group: topology = { exchanges = ( ... ); "
		           "queues = ( ... ); bindings = ( ... ); };");
		return;
	}
	n = config_setting_length(topo);
	for (int k = 0; k < n; k++) {
		const config_setting_t *s = config_setting_get_elem(topo, (unsigned)k);
		const char *name = config_setting_name(s);
		const char *guess = NULL;
		int id;

		for (id = S_EXCHANGES; id <= S_BINDINGS; id++) {
			if (strcmp(name, schema[id].name + skip) == 0)
				break;
			if (guess == NULL && cfgerr_near(name, schema[id].name + skip))
				guess = schema[id].name;
		}
		if (id <= S_BINDINGS) {
			part[id] = s;
			continue;
		}
		if (guess != NULL)
			load_error(ld, s, "unknown setting 'topology.%s' (did you mean '%s'?)", name, guess);
		else
			load_error(ld, s, "unknown setting 'topology.%s'", name);
	}
	for (int id = S_EXCHANGES; id <= S_BINDINGS; id++) {
		const struct section *sec = &schema[id];
		void *vec;
		size_t count = load_list(ld, sec, part[id], &vec, &bad[id]);

		if (count == (size_t)-1)
			count = 0;
		*(void **)schema_at(ld->cfg, sec->off_vec) = vec;
		*(size_t *)schema_at(ld->cfg, sec->off_n) = count;
	}
	topocheck_topology(ld, part, bad);
	for (int id = 0; id < N_SECTIONS; id++)
		free(bad[id]);
}

/* The downlink */

struct dl_report {
	struct loader *ld;
	const config_setting_t *at;
	size_t index;
	const char *tmpl;
};

static void dl_template_problem(void *ctx, const char *msg)
{
	struct dl_report *r = ctx;

	(void)r->tmpl;
	load_error(r->ld, r->at, "downlink entry %zu: %s", r->index + 1, msg);
}

/*
 * With MQTT 3.1.1, or through a shared subscription (where MQTT 5 forbids
 * No Local), an uplink subscription that matches a topic the entry
 * publishes to would carry the bridge's own messages back to RabbitMQ.
 */
static void dl_check_echo(struct loader *ld, const config_setting_t *at, size_t i,
                          const char *shape)
{
	const struct bridge_config *cfg = ld->cfg;
	const struct downlink_entry *e = &cfg->downlink[i];

	if (e->allow_echo)
		return;
	for (size_t k = 0; k < cfg->mqtt.n_subscribe; k++) {
		const char *f = cfg->mqtt.subscribe[k];
		const char *plain = filter_unshared(f);
		bool shared = plain != f;

		if ((cfg->mqtt.protocol == MQTT_PROTOCOL_5 && !shared) || !filter_overlap(shape, plain))
			continue;
		load_error(ld, at, "downlink entry %zu: its topics (%s) can match the uplink "
		           "subscription '%s'%s: the bridge would forward its own messages back to "
		           "RabbitMQ; narrow the topic or the subscription, %s, or set allow_echo = "
		           "true if this is intended", i + 1, shape, f,
		           shared ? ", a shared subscription (MQTT 5 allows no No Local there)" : "",
		           !shared ? "use mqtt.protocol = \"5\" (No Local)"
		           : cfg->mqtt.protocol == MQTT_PROTOCOL_5 ? "subscribe without $share"
		           : "use mqtt.protocol = \"5\" and subscribe without $share");
		return;
	}
}

/* Reads the optional `downlink` list and compiles each entry's topic. */
static void load_downlink(struct loader *ld)
{
	const struct section *sec = &schema[S_DOWNLINK];
	const unsigned topic_refused = ROW_BIT(schema_find(sec, "topic"));
	const unsigned queue_refused = ROW_BIT(schema_find(sec, "queue"));
	struct bridge_config *cfg = ld->cfg;
	unsigned *bad;
	void *vec;
	size_t n = load_list(ld, sec, ld->top[S_DOWNLINK], &vec, &bad);
	uint64_t total = 0;

	if (n == (size_t)-1 || n == 0) {
		free(bad);
		return;
	}
	cfg->downlink = vec;
	cfg->n_downlink = n;
	cfg->downlink_topics = calloc(n, sizeof(*cfg->downlink_topics));
	if (cfg->downlink_topics == NULL) {
		load_oom(ld);
		free(bad);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *el = config_setting_get_elem(ld->top[S_DOWNLINK], (unsigned)i);
		struct downlink_entry *e = &cfg->downlink[i];
		struct dlmap_template *t = &cfg->downlink_topics[i];
		char *shape;
		int problems = 0;

		/* Named once, at the entry that goes over. */
		total += (uint64_t)e->prefetch;
		if (total > DOWNLINK_PREFETCH_TOTAL && total - (uint64_t)e->prefetch <= DOWNLINK_PREFETCH_TOTAL)
			load_error(ld, load_member_or(el, "prefetch"), "downlink entry %zu: the entries' "
			           "prefetch add up to more than %d: the messages in flight on the MQTT "
			           "connection need a packet identifier each, of 65,535", i + 1,
			           DOWNLINK_PREFETCH_TOTAL);

		if (!(bad[i] & queue_refused)) {
			for (size_t j = 0; j < i; j++) {
				if (!(bad[j] & queue_refused) && strcmp(cfg->downlink[j].queue, e->queue) == 0) {
					load_error(ld, load_member_or(el, "queue"), "downlink entry %zu: queue '%s' "
					           "is already consumed by downlink entry %zu (line %d)", i + 1,
					           e->queue, j + 1, cfg->downlink[j].line);
					break;
				}
			}
		}
		if (bad[i] & topic_refused)
			continue;
		if (e->topic != NULL) {
			struct dl_report r = { ld, load_member_or(el, "topic"), i, e->topic };

			problems = dlmap_compile(e->topic, dl_template_problem, &r, t);
			if (problems < 0) {
				load_oom(ld);
				continue;
			}
		}
		if (problems > 0)
			continue;
		/* A shape is never longer than its template (a placeholder becomes one byte). */
		shape = malloc((e->topic != NULL ? strlen(e->topic) : 0) + 2);
		if (shape == NULL) {
			load_oom(ld);
			continue;
		}
		if (dlmap_shape(e->topic != NULL ? t : NULL, shape, (e->topic ? strlen(e->topic) : 0) + 2))
			dl_check_echo(ld, el, i, shape);
		else
			load_error(ld, load_member_or(el, "topic"), "downlink entry %zu: topic \"%s\": "
			           "'+' and '#' are wildcards, which no topic name may hold", i + 1,
			           e->topic ? e->topic : "");
		free(shape);
	}
	free(bad);
}

/* What the rules, the topology and the groups say about each other. */
static void check_mapping(struct loader *ld)
{
	const struct found *f = load_found(ld, S_BRIDGE, "unmatched");
	const struct bridge_config *cfg = ld->cfg;

	topocheck_publish(ld);
	if (f->s != NULL && !f->bad && cfg->bridge.unmatched == UNMATCHED_DROP && cfg->rules != NULL
	    && rules_count(cfg->rules) == 0)
		load_warn(ld, f->s, "'bridge.unmatched' is \"drop\" and there are no rules: every "
		          "message will be dropped");
}

/* Loading */

/* Sorts the top-level settings into groups and lists; reports unknown names. */
static void scan_root(struct loader *ld, const config_setting_t *root)
{
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		int g;

		if (strcmp(name, schema[S_RULES].name) == 0) {
			ld->top[S_RULES] = s;
			continue;
		}
		if (strcmp(name, "topology") == 0) {
			ld->topology = s;
			continue;
		}
		if (strcmp(name, schema[S_DOWNLINK].name) == 0) {
			ld->top[S_DOWNLINK] = s;
			continue;
		}
		for (g = 0; g < N_GROUP_SECTIONS; g++)
			if (strcmp(name, schema[g].name) == 0)
				break;
		if (g == N_GROUP_SECTIONS) {
			char hint[96];

			load_suggest(hint, sizeof(hint), name, NULL);
			load_error(ld, s, "unknown setting '%s'%s", name, hint);
		} else if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
			load_error(ld, s, "'%s' must be a group: %s = { ... };", name, name);
		} else {
			ld->top[g] = s;
		}
	}
	for (int g = 0; g < N_GROUP_SECTIONS; g++) {
		if (schema[g].required && config_setting_get_member(root, schema[g].name) == NULL)
			cfgerr_report(&ld->ce, ld->path, 1, "missing required group '%s'", schema[g].name);
	}
}

static void parse_error(struct loader *ld, const config_t *lc)
{
	const char *file = config_error_file(lc);
	const char *text = config_error_text(lc);
	unsigned line;

	if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
		cfgerr_report(&ld->ce, ld->path, 0, "cannot read: %s", text ? text : "I/O error");
		return;
	}
	if (file == NULL)
		file = ld->path;
	line = config_error_line(lc) > 0 ? (unsigned)config_error_line(lc) : 1;
	if (text == NULL || strcmp(text, "syntax error") == 0)
		cfgerr_report(&ld->ce, file, line, "syntax error");
	else
		cfgerr_report(&ld->ce, file, line, "syntax error: %s", text);
}

/* Reads every setting into ld->cfg, which holds the defaults, and checks the whole. */
static void load_all(struct loader *ld, const config_t *lc)
{
	scan_root(ld, config_root_setting(lc));
	load_groups(ld);
	check_relations(ld);
	load_brokers(ld);
	cfgauth_load(ld);
	load_rules(ld);
	load_subscriptions(ld);
	load_topology(ld);
	load_downlink(ld);
	check_mapping(ld);
}

static int load(const char *path, bool check, struct bridge_config *cfg,
                struct config_errors *errs)
{
	struct bridge_config work;
	struct loader ld;
	config_t lc;

	memset(&ld, 0, sizeof(ld));
	memset(&work, 0, sizeof(work));
	memset(cfg, 0, sizeof(*cfg));
	ld.path = path;
	ld.check = check;
	ld.cfg = &work;
	cfgerr_init(&ld.ce, path, errs);

	if (cfgsrc_read(&ld.src, &ld.ce, path)) {
		/*
		 * The text checked above, not the file again: libconfig reads
		 * only the includes itself, which were checked too.
		 */
		config_init(&lc);
		if (config_read_string(&lc, cfgsrc_text(&ld.src)) != CONFIG_TRUE) {
			parse_error(&ld, &lc);
		} else {
			for (int g = 0; g < N_GROUP_SECTIONS; g++)
				cfgread_defaults(&ld, &schema[g], schema_at(&work, schema[g].base));
			load_string_into(&ld, &work.path, path);
			load_all(&ld, &lc);
		}
		config_destroy(&lc);
	}

	cfgerr_fini(&ld.ce);
	free(ld.rule_pos);
	cfgsrc_free(&ld.src);
	if (ld.ce.n_failed > 0) {
		config_free(&work);
		return -1;
	}
	*cfg = work;
	return 0;
}

int config_load(const char *path, struct bridge_config *cfg, struct config_errors *errs)
{
	return load(path, false, cfg, errs);
}

int config_check(const char *path, struct bridge_config *cfg, struct config_errors *errs)
{
	return load(path, true, cfg, errs);
}

void config_free(struct bridge_config *cfg)
{
	for (int g = 0; g < N_GROUP_SECTIONS; g++)
		cfgval_free(&schema[g], schema_at(cfg, schema[g].base));
	if (cfg->rules != NULL)
		rules_free(cfg->rules);
	for (size_t i = 0; cfg->downlink_topics != NULL && i < cfg->n_downlink; i++)
		dlmap_template_free(&cfg->downlink_topics[i]);
	free(cfg->downlink_topics);
	for (int id = S_EXCHANGES; id <= S_DOWNLINK; id++) {
		const struct section *sec = &schema[id];

		cfgval_free_list(sec, *(void **)schema_at(cfg, sec->off_vec),
		                 *(size_t *)schema_at(cfg, sec->off_n));
	}
	for (size_t i = 0; i < cfg->n_check_exchanges; i++)
		free(cfg->check_exchanges[i]);
	free(cfg->check_exchanges);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

void config_print(const struct bridge_config *cfg, FILE *out)
{
	if (cfg->path != NULL)
		fprintf(out, "# configuration from %s\n", cfg->path);
	for (int g = 0; g < N_GROUP_SECTIONS; g++)
		cfgval_print_group(cfg, (enum section_id)g, out);
	for (int id = S_EXCHANGES; id <= S_DOWNLINK; id++)
		cfgval_print_list(cfg, &schema[id], out);
	/* The rules as compiled: what -t shows is what the bridge will do with them. */
	if (cfg->rules != NULL) {
		fprintf(out, "# rules: %zu\n", rules_count(cfg->rules));
		rules_print(cfg->rules, out);
	}
	if (cfg->n_check_exchanges > 0) {
		fputs("# exchanges the rules publish to, checked on connect:", out);
		for (size_t i = 0; i < cfg->n_check_exchanges; i++) {
			fputc(' ', out);
			cfgval_print_quoted(out, cfg->check_exchanges[i]);
		}
		fputc('\n', out);
	}
}

/* Two topology lists, element by element, their lines aside: a moved line declares nothing new. */
static bool same_list(const struct section *sec, const struct bridge_config *a,
                      const struct bridge_config *b)
{
	const char *va = *(void *const *)schema_cat(a, sec->off_vec);
	const char *vb = *(void *const *)schema_cat(b, sec->off_vec);
	size_t n = *(const size_t *)schema_cat(a, sec->off_n);

	if (n != *(const size_t *)schema_cat(b, sec->off_n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cfgval_same_element(sec, va + i * sec->size, vb + i * sec->size, false))
			return false;
	return true;
}

/* Two compiled rules lists, by the rules' rows at their compiled places, lines included. */
static bool same_rules(const struct rules *a, const struct rules *b)
{
	size_t n = a != NULL ? rules_count(a) : 0;

	if (n != (b != NULL ? rules_count(b) : 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!cfgval_same_element(&schema[S_RULES], rules_at(a, i), rules_at(b, i), true))
			return false;
	return true;
}

unsigned config_diff(const struct bridge_config *a, const struct bridge_config *b)
{
	unsigned diff = 0;

	for (int g = 0; g < N_GROUP_SECTIONS; g++)
		diff |= cfgval_diff_group(a, b, (enum section_id)g);
	for (int id = S_EXCHANGES; id <= S_DOWNLINK; id++)
		if (!same_list(&schema[id], a, b))
			diff |= schema[id].reload;
	/* Exchanges to check passively on connect are part of what AMQP sets up. */
	if (!cfgval_same_set(a->check_exchanges, a->n_check_exchanges, b->check_exchanges,
	                     b->n_check_exchanges))
		diff |= CFG_DIFF_AMQP;
	if (!same_rules(a->rules, b->rules))
		diff |= schema[S_RULES].reload;
	return diff;
}
