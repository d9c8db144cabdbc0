#!/usr/bin/env python3
"""Check that the alerting rules and the dashboard use only metrics the bridge exports.

    check-metric-names.py --scrape SCRAPE FILE...
    check-metric-names.py --list FILE...
    check-metric-names.py --self-test

SCRAPE is what GET /metrics answered (Prometheus text format; "-" reads
standard input).  Each FILE is Prometheus rules (.yml, .yaml: every `expr`)
or a Grafana dashboard (.json: every `targets[].expr` and the template
variables' queries).  The metric names in those PromQL expressions (not the
functions, keywords, label matchers, groupings, ranges or Grafana
variables) must each be a family of the scrape: a sample name in it, a
family its `# TYPE` lines declare, or a histogram's `_bucket`, `_sum` or
`_count` (a histogram's own name is no series and is refused).  `up` and
Prometheus's other `scrape_*` series are always known.

Exit status: 0 when every name is known, 1 naming each one that is not (or
a file that cannot be read as expected), 2 for a usage error.  --list
prints the names each file uses.  Python 3 standard library only.
"""

import argparse
import difflib
import json
import re
import sys
import unittest

# Series Prometheus makes for every target itself; no scrape contains them.
SYNTHETIC = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}

# PromQL functions (Prometheus 2.x and later), case-sensitive.
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "double_exponential_smoothing", "exp", "floor", "histogram_avg",
    "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
    "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
    "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
    "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh",
    "time", "timestamp", "vector", "year",
    # the @ modifier's start() and end()
    "start", "end",
}

# Aggregation operators, case-insensitive.
AGGREGATIONS = {
    "avg", "bottomk", "count", "count_values", "group", "limit_ratio", "limitk", "max", "min",
    "quantile", "stddev", "stdvar", "sum", "topk",
}

# Keywords followed by a parenthesised list of label names, case-insensitive.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

# Other keywords and the literals that read like names, case-insensitive.
KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

IDENT_START = re.compile(r"[A-Za-z_:]")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"[0-9.][0-9A-Za-z_.]*")
NAME_MATCHER = re.compile(r"""__name__\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


class CheckError(Exception):
    """A file that cannot be read as the checker expects."""


# --- PromQL --------------------------------------------------------------

def _skip_string(s, i):
    """Index just past the string literal that starts at s[i]."""
    quote = s[i]
    i += 1
    while i < len(s):
        if s[i] == "\\" and quote != "`":
            i += 2
            continue
        if s[i] == quote:
            return i + 1
        i += 1
    raise CheckError("unterminated string in: %s" % s)


def _skip_balanced(s, i, open_ch, close_ch):
    """Index just past the bracket that closes the one at s[i]; strings are skipped."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _skip_string(s, i)
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise CheckError("unbalanced %s%s in: %s" % (open_ch, close_ch, s))


def _skip_space(s, i):
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def promql_names(expr):
    """The metric names a PromQL expression selects, as a set.

    Raises CheckError for what is not PromQL: an unknown function, an
    unbalanced bracket, an unterminated string.
    """
    names = set()
    s = expr
    i = 0
    depth = 0
    while i < len(s):
        c = s[i]
        if c.isspace():
            i += 1
        elif c == "#":  # a comment, to the end of the line
            nl = s.find("\n", i)
            i = len(s) if nl < 0 else nl + 1
        elif c in "\"'`":
            i = _skip_string(s, i)
        elif c == "{":  # label matchers; {__name__="x"} names a metric
            end = _skip_balanced(s, i, "{", "}")
            for m in NAME_MATCHER.finditer(s[i:end]):
                names.add(m.group(1) if m.group(1) is not None else m.group(2))
            i = end
        elif c == "[":  # a range or a subquery, or Grafana's old [[var]]
            i = _skip_balanced(s, i, "[", "]")
        elif c == "$":  # a Grafana variable: $var, ${var}, ${var:format}
            if s.startswith("${", i):
                i = _skip_balanced(s, i + 1, "{", "}")
            else:
                m = IDENT.match(s, i + 1)
                i = m.end() if m else i + 1
        elif c.isdigit() or (c == "." and i + 1 < len(s) and s[i + 1].isdigit()):
            i = NUMBER.match(s, i).end()  # numbers, durations, hex
        elif IDENT_START.match(c):
            m = IDENT.match(s, i)
            word = m.group(0)
            i = m.end()
            lower = word.lower()
            j = _skip_space(s, i)
            call = j < len(s) and s[j] == "("
            if lower in LABEL_LIST_KEYWORDS:
                if call:
                    i = _skip_balanced(s, j, "(", ")")
            elif lower in KEYWORDS or lower in AGGREGATIONS:
                pass  # an aggregation may be followed by "by (...)" first
            elif call:
                if word not in FUNCTIONS and lower not in AGGREGATIONS:
                    raise CheckError("%s( is not a PromQL function or aggregation" % word)
            else:
                names.add(word)
        else:
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    raise CheckError("unbalanced () in: %s" % s)
            i += 1  # operators, parentheses, commas, @
    if depth != 0:
        raise CheckError("unbalanced () in: %s" % s)
    return names


# --- Prometheus rule files -----------------------------------------------

KEY_LINE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*?))?\s*$")


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _scalar(first, rest, key_col):
    """The value of a YAML scalar whose first line's text is `first`."""
    if first[0] in "|>":
        body = [ln for ln in rest]
        while body and not body[-1].strip():
            body.pop()
        ind = min((_indent(ln) for ln in body if ln.strip()), default=key_col + 1)
        return "\n".join(ln[ind:] for ln in body)
    text = " ".join([first.strip()] + [ln.strip() for ln in rest if ln.strip()])
    if text.startswith('"'):
        if not text.endswith('"') or len(text) < 2:
            raise CheckError("cannot read the quoted value %s" % text)
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
        return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), text[1:-1])
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise CheckError("cannot read the quoted value %s" % text)
        return text[1:-1].replace("''", "'")
    return text


def rule_exprs(text):
    """[(rule name, expr)] of a Prometheus rule file, read line by line.

    Knows block mappings and lists, plain, quoted and block (| >) scalars,
    which is how rule files are written; anything else (flow style) makes
    the number of expressions differ from the number of rules, an error.
    """
    lines = text.splitlines()
    items = []  # [rule name or None, [expr, ...]] per list item
    rules = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = KEY_LINE.match(line)
        if not m:
            continue
        key_col = len(m.group(1))
        key, value = m.group(2), m.group(3) or ""
        if "-" in m.group(1) or not items:
            items.append([None, []])
        if value.startswith("#"):
            value = ""
        if not value:  # a nested mapping or list follows
            continue
        # A scalar: every following line more indented than its key, or
        # blank, belongs to it.
        rest = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > key_col):
            rest.append(lines[i])
            i += 1
        if key in ("alert", "record"):
            rules += 1
            items[-1][0] = _scalar(value, rest, key_col)
        elif key == "expr":
            items[-1][1].append(_scalar(value, rest, key_col))
    exprs = [(name or "?", e) for name, es in items for e in es]
    if rules == 0:
        raise CheckError("no rules found (no alert: or record: keys)")
    if len(exprs) != rules:
        raise CheckError("%d rules but %d expr: keys read; is the file in flow style?"
                         % (rules, len(exprs)))
    return exprs


# --- Grafana dashboards --------------------------------------------------

def _split_args(s):
    """The top-level comma-separated arguments of s."""
    args, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _skip_string(s, i)
            continue
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(s[start:i])
            start = i + 1
        i += 1
    args.append(s[start:])
    return [a.strip() for a in args]


def variable_expr(query):
    """The PromQL inside a Grafana Prometheus variable query, or None."""
    q = query.strip()
    m = re.match(r"^(label_values|query_result)\s*\((.*)\)\s*$", q, re.S)
    if not m:
        return None  # label_names(), metrics(regex), a custom list
    args = _split_args(m.group(2))
    if m.group(1) == "query_result":
        return m.group(2)
    return args[0] if len(args) == 2 else None  # label_values(label) selects no metric


def dashboard_exprs(doc):
    """[(where, expr)] of a Grafana dashboard: its panels' targets and its variables."""
    out = []

    def walk(node, title):
        if isinstance(node, dict):
            title = node.get("title", title) if isinstance(node.get("title"), str) else title
            targets = node.get("targets")
            if isinstance(targets, list):
                for t in targets:
                    if isinstance(t, dict) and isinstance(t.get("expr"), str) and t["expr"].strip():
                        out.append(("panel \"%s\" %s" % (title, t.get("refId", "")), t["expr"]))
            for k, v in node.items():
                if k not in ("targets", "templating"):
                    walk(v, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, title)

    walk(doc.get("panels", []), "")
    walk(doc.get("rows", []), "")  # dashboards before schemaVersion 16
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if isinstance(q, str):
            e = variable_expr(q)
            if e is not None:
                out.append(("variable $%s" % var.get("name", "?"), e))
    if not out:
        raise CheckError("no expressions found (no targets[].expr)")
    return out


# --- The scrape ----------------------------------------------------------

SAMPLE_NAME = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?=[\s{])")


class Scrape:
    """The metric families and sample names of one Prometheus text-format scrape."""

    def __init__(self, text):
        self.types = {}
        self.samples = set()
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                f = line.split()
                if len(f) >= 4 and f[1] == "TYPE":
                    self.types[f[2]] = f[3]
                continue
            m = SAMPLE_NAME.match(line)
            if m:
                self.samples.add(m.group(1))
        if not self.types and not self.samples:
            raise CheckError("no metrics in it")

    def problem(self, name):
        """None when name is a series of the scrape, otherwise what is wrong with it."""
        if name in SYNTHETIC:
            return None
        t = self.types.get(name)
        if t == "histogram":
            return "%s is a histogram: use %s_bucket, _sum or _count" % (name, name)
        if t is not None or name in self.samples:
            return None
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                base = self.types.get(name[: -len(suffix)])
                if base == "histogram" or (base == "summary" and suffix != "_bucket"):
                    return None
        known = sorted(set(self.types) | self.samples)
        near = difflib.get_close_matches(name, known, n=1)
        return "%s is not exported%s" % (name, " (did you mean %s?)" % near[0] if near else "")


# --- Command line --------------------------------------------------------

def file_exprs(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise CheckError("not JSON: %s" % e)
        return dashboard_exprs(doc)
    if path.endswith((".yml", ".yaml")):
        return rule_exprs(text)
    raise CheckError("neither rules (.yml, .yaml) nor a dashboard (.json)")


def main(argv=None, out=sys.stdout, err=sys.stderr):
    prog = "check-metric-names"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("--scrape", metavar="SCRAPE", help="what /metrics answered (- for stdin)")
    ap.add_argument("--list", action="store_true", help="print the names each file uses")
    ap.add_argument("--self-test", action="store_true", help="run the checker's own tests")
    ap.add_argument("files", nargs="*", metavar="FILE")
    a = ap.parse_args(argv)
    if a.self_test:
        r = unittest.TextTestRunner(stream=err, verbosity=1).run(
            unittest.defaultTestLoader.loadTestsFromTestCase(SelfTest))
        return 0 if r.wasSuccessful() else 1
    if not a.files or (a.scrape is None) == (not a.list):
        ap.print_usage(err)
        print("%s: give FILEs and either --scrape SCRAPE or --list" % prog, file=err)
        return 2

    scrape = None
    if a.scrape is not None:
        try:
            if a.scrape == "-":
                scrape = Scrape(sys.stdin.read())
            else:
                with open(a.scrape, encoding="utf-8") as f:
                    scrape = Scrape(f.read())
        except (OSError, UnicodeDecodeError, CheckError) as e:
            print("%s: %s: %s" % (prog, a.scrape, e), file=err)
            return 1

    failed = False
    for path in a.files:
        try:
            exprs = file_exprs(path)
            used = []
            for where, expr in exprs:
                try:
                    used.append((where, promql_names(expr)))
                except CheckError as e:
                    raise CheckError("%s: %s" % (where, e))
        except (OSError, UnicodeDecodeError, CheckError) as e:
            print("%s: %s: %s" % (prog, path, e), file=err)
            failed = True
            continue
        if a.list:
            for name in sorted(set().union(*(n for _, n in used))):
                print("%s: %s" % (path, name), file=out)
            continue
        n = 0
        for where, names in used:
            for name in sorted(names):
                n += 1
                p = scrape.problem(name)
                if p is not None:
                    print("%s: %s: %s" % (path, where, p), file=err)
                    failed = True
        if n == 0:
            print("%s: %s: no metric names found" % (prog, path), file=err)
            failed = True
    return 1 if failed else 0


# --- Self-test -----------------------------------------------------------

class SelfTest(unittest.TestCase):
    def n(self, expr):
        return promql_names(expr)

    def test_plain_selectors(self):
        self.assertEqual(self.n("up"), {"up"})
        self.assertEqual(self.n('up{job="mqtt-amqp-bridge"} == 0'), {"up"})
        self.assertEqual(self.n("a_total > 1e3 and b:rec:rate5m < .5"), {"a_total", "b:rec:rate5m"})

    def test_functions_groupings_ranges(self):
        e = ("histogram_quantile(0.99, sum by (job, instance, le) "
             "(rate(x_seconds_bucket{le!=\"+Inf\"}[5m])))")
        self.assertEqual(self.n(e), {"x_seconds_bucket"})
        self.assertEqual(self.n("SUM BY (le) (rate(a[1m]))"), {"a"})
        self.assertEqual(self.n("sum(rate(a[1m])) by (le)"), {"a"})
        self.assertEqual(self.n("SUM WITHOUT (side) (a)"), {"a"})
        self.assertEqual(self.n("a >= on(instance) group_left(node) b"), {"a", "b"})
        self.assertEqual(self.n("a / ignoring (reason) group_right b"), {"a", "b"})
        self.assertEqual(self.n("a unless b or c > bool 1"), {"a", "b", "c"})
        self.assertEqual(self.n("max_over_time(rate(a[5m])[1h:1m]) offset 1h30m"), {"a"})
        self.assertEqual(self.n("a @ start() - a @ 1609746000"), {"a"})
        self.assertEqual(self.n("topk(20, sum by (rule) (rate(r_total[$__rate_interval])))"),
                         {"r_total"})
        self.assertEqual(self.n("a > Inf or b != NaN or -inf < c"), {"a", "b", "c"})
        self.assertEqual(self.n("absent(up{job=\"x\"}) or vector(0) or time() - b"), {"up", "b"})
        self.assertEqual(self.n("count_values(\"version\", build_info)"), {"build_info"})

    def test_strings_and_variables_are_no_names(self):
        e = ('label_replace(a{reason=~"dead_total|b_bucket", instance=~"$instance"}, '
             '"dst", "$1", "src", "(.*)")')
        self.assertEqual(self.n(e), {"a"})
        self.assertEqual(self.n("rate(a[${__rate_interval}]) * $scale + ${k:raw}"), {"a"})
        self.assertEqual(self.n("rate(a[[[interval]]])"), {"a"})
        self.assertEqual(self.n('{__name__="named_total", x="y"}'), {"named_total"})
        self.assertEqual(self.n("a # b_total\n + c"), {"a", "c"})
        self.assertEqual(self.n('a{x="}{[("}'), {"a"})

    def test_not_promql(self):
        self.assertRaises(CheckError, self.n, "rat(a[5m])")
        self.assertRaises(CheckError, self.n, "sum(rate(a[5m])")
        self.assertRaises(CheckError, self.n, 'a{x="y}')

    def test_rule_file(self):
        text = "\n".join([
            "groups:",
            "  - name: g",
            "    rules:",
            "      - alert: Plain",
            "        expr: a_total > 0  # a comment",
            "        for: 5m",
            "        annotations:",
            "          description: |",
            "            expr: not_a_metric",
            "",
            "            more text",
            "      - alert: Block",
            "        expr: |",
            "          histogram_quantile(0.5,",
            "",
            "            rate(h_bucket[5m]))",
            "      - alert: Folded",
            "        expr: >-",
            "          b",
            "          > 1",
            "      - expr: 'c{x=''y''}'",
            "        alert: Single",
            "      - record: d:rate5m",
            "        expr: \"rate(d{x=\\\"y\\\"}[5m])",
            "          + e\"",
            "      - alert: Multi",
            "        expr: f",
            "          > g",
        ])
        got = rule_exprs(text)
        self.assertEqual([w for w, _ in got], ["Plain", "Block", "Folded", "Single", "d:rate5m", "Multi"])
        names = [promql_names(e) for _, e in got]
        self.assertEqual(names, [{"a_total"}, {"h_bucket"}, {"b"}, {"c"}, {"d", "e"},
                                 {"f", "g"}])
        self.assertRaises(CheckError, rule_exprs, "groups: []\n")
        self.assertRaises(CheckError, rule_exprs,
                          "groups:\n- rules:\n  - {alert: A, expr: a}\n  - alert: B\n    expr: b\n"
                          "  - alert: C\n")

    def test_dashboard(self):
        doc = {
            "panels": [
                {"title": "A", "targets": [{"refId": "A", "expr": "rate(a_total[5m])"},
                                           {"refId": "B", "expr": ""}]},
                {"type": "row", "title": "R", "collapsed": True, "panels": [
                    {"title": "B", "targets": [{"refId": "A", "expr": "b"}]}]},
            ],
            "templating": {"list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {"type": "query", "name": "job", "query": {
                    "query": 'label_values(c_info{x=~"$y"}, job)', "refId": "q"}},
                {"type": "query", "name": "instance", "query": "label_values(instance)"},
                {"type": "query", "name": "d", "query": "query_result(topk(1, d))"},
            ]},
        }
        got = dashboard_exprs(doc)
        self.assertEqual([w for w, _ in got], ['panel "A" A', 'panel "B" A', "variable $job",
                                               "variable $d"])
        self.assertEqual([promql_names(e) for _, e in got], [{"a_total"}, {"b"}, {"c_info"}, {"d"}])
        self.assertRaises(CheckError, dashboard_exprs, {"panels": []})

    SCRAPE = "\n".join([
        "# HELP c_total A counter.",
        "# TYPE c_total counter",
        'c_total{side="mqtt"} 3',
        "# TYPE labelled_total counter",
        "# TYPE g gauge",
        "g 1",
        "# TYPE h_seconds histogram",
        'h_seconds_bucket{le="0.5"} 1',
        'h_seconds_bucket{le="+Inf"} 1',
        "h_seconds_sum 0.1",
        "h_seconds_count 1",
        "# TYPE s summary",
        'untyped_thing{a="b"} 1 1700000000000',
        "",
    ])

    def test_scrape(self):
        s = Scrape(self.SCRAPE)
        for ok in ["c_total", "labelled_total", "g", "h_seconds_bucket", "h_seconds_sum",
                   "h_seconds_count", "s", "s_sum", "s_count", "untyped_thing", "up"]:
            self.assertIsNone(s.problem(ok), ok)
        self.assertIn("histogram", s.problem("h_seconds"))
        self.assertIn("not exported", s.problem("s_bucket"))
        self.assertIn("did you mean c_total", s.problem("c_totl"))
        self.assertIn("not exported", s.problem("g_bucket"))
        self.assertRaises(CheckError, Scrape, "# just a comment\n")

    def test_main(self):
        import io
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            def write(name, text):
                p = os.path.join(d, name)
                with open(p, "w", encoding="utf-8") as f:
                    f.write(text)
                return p
            scrape = write("scrape.txt", self.SCRAPE)
            good = write("good.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n"
                         "    expr: rate(c_total[5m]) > 0 and up == 1\n")
            bad = write("bad.json", json.dumps({"panels": [{"title": "P", "targets": [
                {"refId": "A", "expr": "g + missing_total + h_seconds"}]}]}))
            out, err = io.StringIO(), io.StringIO()
            self.assertEqual(main(["--scrape", scrape, good], out, err), 0, err.getvalue())
            out, err = io.StringIO(), io.StringIO()
            self.assertEqual(main(["--scrape", scrape, good, bad], out, err), 1)
            self.assertIn('bad.json: panel "P" A: missing_total is not exported', err.getvalue())
            self.assertIn("h_seconds is a histogram", err.getvalue())
            self.assertNotIn("good.yml", err.getvalue())
            out, err = io.StringIO(), io.StringIO()
            self.assertEqual(main(["--list", good], out, err), 0)
            self.assertEqual(out.getvalue(), "%s: c_total\n%s: up\n" % (good, good))
            self.assertEqual(main([good], io.StringIO(), io.StringIO()), 2)


if __name__ == "__main__":
    sys.exit(main())
