#include "topocheck.h"

#include <stdlib.h>
#include <string.h>

#include "topic.h"

/* The bit of row `name` of list `g` in the masks load_list() gives. */
static unsigned name_bit(enum section_id g, const char *name)
{
	return ROW_BIT(schema_find(&schema[g], name));
}

static bool reserved_name(const char *name)
{
	return strncmp(name, "amq.", 4) == 0;
}

/* A name and the index of what it names, to sort by name. */
struct named {
	const char *name;
	size_t index;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * For each of the `n` items of `stride` bytes at `items`, whose name is the
 * string pointer at `name_off` (left out where `bad` has `bit`: a name
 * already refused), the index of the first earlier item of the same name,
 * or SIZE_MAX: what comparing each with every earlier one finds, by
 * sorting instead, so that tens of thousands of names take no noticeable
 * time.  Returns a malloc'ed array of n, or NULL after reporting that
 * memory ran out.
 */
static size_t *first_same_name(struct loader *ld, const void *items, size_t n, size_t stride,
                               size_t name_off, const unsigned *bad, unsigned bit)
{
	struct named *v = malloc((n > 0 ? n : 1) * sizeof(*v));
	size_t *first = malloc((n > 0 ? n : 1) * sizeof(*first));
	size_t nv = 0;

	if (v == NULL || first == NULL) {
		free(v);
		free(first);
		load_oom(ld);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		first[i] = SIZE_MAX;
		if (!(bad[i] & bit))
			v[nv++] = (struct named){
				*(char *const *)((const char *)items + i * stride + name_off), i };
	}
	if (nv > 0)
		qsort(v, nv, sizeof(*v), named_cmp);
	for (size_t i = 1, run = 0; i < nv; i++) {
		if (strcmp(v[i].name, v[run].name) == 0)
			first[v[i].index] = v[run].index;
		else
			run = i;
	}
	free(v);
	return first;
}

static const struct rules_field *find_field(const struct rules_field *vec, size_t n,
                                            const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(vec[i].name, name) == 0)
			return &vec[i];
	return NULL;
}

/*
 * Exchanges: names not reserved, not given twice, and not one the bridge
 * declares itself.  With amqp.declare_exchange = true the bridge declares
 * amqp.exchange (with amqp.exchange_type) and amqp.dead_letter_exchange
 * (topic); declaring either here too could only disagree with that, and
 * RabbitMQ closes the channel on a declaration that differs.  With
 * declare_exchange = false the topology is the place to declare them.
 */
static void check_exchanges(struct loader *ld, const struct bridge_config *cfg,
                            const config_setting_t *list, const unsigned *bad)
{
	const struct topology *t = &cfg->topology;
	bool declares = load_usable(ld, S_AMQP, "declare_exchange") && cfg->amqp.declare_exchange;
	bool main_ok = load_usable(ld, S_AMQP, "exchange");
	bool dead_ok = load_usable(ld, S_AMQP, "dead_letter_exchange");
	unsigned name_refused = name_bit(S_EXCHANGES, "name");
	size_t *first;

	if (t->n_exchanges == 0)
		return;
	first = first_same_name(ld, t->exchanges, t->n_exchanges, sizeof(*t->exchanges),
	                        offsetof(struct topo_exchange, name), bad, name_refused);
	if (first == NULL)
		return;
	for (size_t i = 0; i < t->n_exchanges; i++) {
		const struct topo_exchange *x = &t->exchanges[i];
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *name = load_member_or(e, "name");
		size_t j = first[i];

		if (bad[i] & name_refused)
			continue;
		if (reserved_name(x->name)) {
			load_error(ld, name, "topology exchange %zu: 'name' must not start with \"amq.\" "
			           "(the broker reserves those names)", i + 1);
			continue;
		}
		if (j != SIZE_MAX)
			load_error(ld, name, "topology exchange %zu: exchange '%s' is already declared "
			           "by topology exchange %zu (line %d)", i + 1, x->name, j + 1,
			           t->exchanges[j].line);
		if (declares && main_ok && strcmp(x->name, cfg->amqp.exchange) == 0)
			load_error(ld, name, "topology exchange %zu: '%s' is amqp.exchange, which the bridge "
			           "declares itself while amqp.declare_exchange is true; declare it in one "
			           "place only (set amqp.declare_exchange = false to declare it here)",
			           i + 1, x->name);
		if (declares && dead_ok && cfg->amqp.dead_letter_exchange != NULL
		    && strcmp(x->name, cfg->amqp.dead_letter_exchange) == 0)
			load_error(ld, name, "topology exchange %zu: '%s' is amqp.dead_letter_exchange, "
			           "which the bridge declares itself while amqp.declare_exchange is true; "
			           "declare it in one place only (set amqp.declare_exchange = false to "
			           "declare it here)", i + 1, x->name);
		if (!declares && x->internal && main_ok && strcmp(x->name, cfg->amqp.exchange) == 0)
			load_error(ld, load_member_or(e, "internal"), "topology exchange %zu: '%s' is "
			           "amqp.exchange, where the bridge publishes, so it cannot be internal",
			           i + 1, x->name);
		if (x->alternate_exchange != NULL
		    && find_field(x->arguments, x->n_arguments, "alternate-exchange") != NULL)
			load_error(ld, load_member_or(e, "alternate_exchange"), "topology exchange %zu: "
			           "'alternate_exchange' and argument 'alternate-exchange' cannot both be "
			           "given", i + 1);
	}
	free(first);
}

static void check_queues(struct loader *ld, const struct bridge_config *cfg,
                         const config_setting_t *list, const unsigned *bad)
{
	const struct topology *t = &cfg->topology;
	unsigned name_refused = name_bit(S_QUEUES, "name");
	size_t *first;

	if (t->n_queues == 0)
		return;
	first = first_same_name(ld, t->queues, t->n_queues, sizeof(*t->queues),
	                        offsetof(struct topo_queue, name), bad, name_refused);
	if (first == NULL)
		return;
	for (size_t i = 0; i < t->n_queues; i++) {
		const struct topo_queue *q = &t->queues[i];
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *name = load_member_or(e, "name");
		size_t j = first[i];

		if (bad[i] & name_refused)
			continue;
		if (reserved_name(q->name)) {
			load_error(ld, name, "topology queue %zu: 'name' must not start with \"amq.\" "
			           "(the broker reserves those names)", i + 1);
			continue;
		}
		if (j != SIZE_MAX)
			load_error(ld, name, "topology queue %zu: queue '%s' is already declared by "
			           "topology queue %zu (line %d)", i + 1, q->name, j + 1, t->queues[j].line);
	}
	free(first);
}

/*
 * Bindings: exactly one of `match` (an MQTT filter, translated as the
 * bridge translates topics, so that the binding catches what the filter
 * would) and `key` (taken as written).  Fills in `key` from `match`.
 */
static void check_bindings(struct loader *ld, struct bridge_config *cfg,
                           const config_setting_t *list, const unsigned *bad)
{
	struct topology *t = &cfg->topology;
	unsigned key_refused = name_bit(S_BINDINGS, "match") | name_bit(S_BINDINGS, "key");

	for (size_t i = 0; i < t->n_bindings; i++) {
		struct topo_binding *b = &t->bindings[i];
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *m = config_setting_get_member(e, "match");
		const config_setting_t *k = config_setting_get_member(e, "key");
		char key[TOPIC_KEY_MAX + 1];
		enum topic_result r;
		size_t klen;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP
		    || (bad[i] & key_refused))
			continue;
		if (m == NULL && k == NULL) {
			load_error(ld, e, "topology binding %zu: needs 'match' (an MQTT topic filter) or "
			           "'key' (a binding key)", i + 1);
			continue;
		}
		if (m != NULL && k != NULL) {
			load_error(ld, k, "topology binding %zu: 'match' and 'key' cannot both be given",
			           i + 1);
			continue;
		}
		if (m == NULL)
			continue;
		if (strncmp(b->match, "$share/", 7) == 0) {
			load_error(ld, m, "topology binding %zu: 'match' must be a plain MQTT topic filter, "
			           "not a shared subscription (\"%.200s\")", i + 1, b->match);
			continue;
		}
		r = topic_filter_check(b->match);
		if (r == TOPIC_OK)
			r = topic_filter_to_key(b->match, cfg->bridge.dot_replacement, key, &klen);
		if (r != TOPIC_OK) {
			load_error(ld, m, "topology binding %zu: 'match' is not a valid MQTT topic filter "
			           "for a binding (\"%.200s\": %s)", i + 1, b->match, topic_strerror(r));
			continue;
		}
		load_string_into(ld, &b->key, key);
	}
}

/*
 * cfg->check_exchanges: what the rules publish to that nothing declares,
 * each once, in rule order.  A rule may not publish to an exchange the
 * topology makes internal: RabbitMQ refuses every such publish.  Sorted
 * names stand in for a search of the topology and of the list so far for
 * each rule, so that many rules and exchanges take n log n time.
 */
void topocheck_publish(struct loader *ld)
{
	struct bridge_config *cfg = ld->cfg;
	const struct topology *t = &cfg->topology;
	size_t n = cfg->rules != NULL ? rules_count(cfg->rules) : 0;
	struct named *decl = NULL, *used = NULL;
	size_t n_decl = 0, n_used = 0, n_check = 0;
	bool *check = NULL;

	if (n == 0)
		return;
	decl = malloc((t->n_exchanges > 0 ? t->n_exchanges : 1) * sizeof(*decl));
	used = malloc(n * sizeof(*used));
	check = calloc(n, sizeof(*check));
	if (decl == NULL || used == NULL || check == NULL)
		goto oom;
	for (size_t i = 0; i < t->n_exchanges; i++)
		if (t->exchanges[i].name != NULL)
			decl[n_decl++] = (struct named){ t->exchanges[i].name, i };
	if (n_decl > 0)
		qsort(decl, n_decl, sizeof(*decl), named_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = rules_at(cfg->rules, i);
		size_t lo = 0, hi = n_decl;

		if (r->drop || r->exchange == NULL || r->exchange[0] == '\0')
			continue;
		if (cfg->amqp.exchange != NULL && strcmp(r->exchange, cfg->amqp.exchange) == 0)
			continue;
		/* The first declaration of that name, as the lowest index sorts first. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(decl[mid].name, r->exchange) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n_decl && strcmp(decl[lo].name, r->exchange) == 0) {
			const struct topo_exchange *x = &t->exchanges[decl[lo].index];

			if (x->internal)
				cfgerr_report(&ld->ce, load_rule_file(ld, r->line), (unsigned)r->line,
				              "rule %zu (match '%s'): exchange '%s' is internal (topology "
				              "exchange %zu, line %d): nothing can publish to it", r->index,
				              r->match, r->exchange, decl[lo].index + 1, x->line);
			continue;
		}
		used[n_used++] = (struct named){ r->exchange, i };
	}
	/* Of the rules that publish to one name, the first puts it on the list. */
	if (n_used > 0)
		qsort(used, n_used, sizeof(*used), named_cmp);
	for (size_t i = 0; i < n_used; i++) {
		if (i == 0 || strcmp(used[i].name, used[i - 1].name) != 0) {
			check[used[i].index] = true;
			n_check++;
		}
	}
	if (n_check > 0) {
		cfg->check_exchanges = calloc(n_check, sizeof(*cfg->check_exchanges));
		if (cfg->check_exchanges == NULL)
			goto oom;
	}
	for (size_t i = 0; i < n && cfg->n_check_exchanges < n_check; i++) {
		char *copy;

		if (!check[i])
			continue;
		copy = strdup(rules_at(cfg->rules, i)->exchange);
		if (copy == NULL)
			goto oom;
		cfg->check_exchanges[cfg->n_check_exchanges++] = copy;
	}
	goto done;
oom:
	load_oom(ld);
done:
	free(decl);
	free(used);
	free(check);
}

void topocheck_topology(struct loader *ld, const config_setting_t *const *part,
                        unsigned *const *bad)
{
	check_exchanges(ld, ld->cfg, part[S_EXCHANGES], bad[S_EXCHANGES]);
	check_queues(ld, ld->cfg, part[S_QUEUES], bad[S_QUEUES]);
	check_bindings(ld, ld->cfg, part[S_BINDINGS], bad[S_BINDINGS]);
}
