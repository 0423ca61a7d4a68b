#!/usr/bin/env bash
# The Grafana dashboard and the alerting rules in contrib/ only help if they query series
# the daemon really exports. Grafana is not packaged for Debian, so this checks what can be
# checked without it: the dashboard is well-formed JSON of the expected shape, every
# query (and every rule expression) parses as PromQL, and every metric name they use is
# served on /metrics by a real `prebuilds run` on a fresh SQLite database (loopback only).
# Usage: test_dashboard.sh BINARY CONTRIB_DIR
set -u

BIN=$1
CONTRIB=$2
DASH=$CONTRIB/grafana/prebuilds-dashboard.json
RULES=$CONTRIB/prometheus/prebuilds-alerts.yml
WORK=$(mktemp -d /tmp/pbdash.XXXXXX)
DPID=""
FAILS=0

cleanup() {
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }

# wait_until SECONDS COMMAND...: poll every 50 ms; 0 when the command succeeded in time.
wait_until() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while [ "$SECONDS" -le "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- PromQL helpers

# Words of PromQL that are not metric names: aggregations, functions, keywords.
NOT_METRICS=" sum min max avg group stddev stdvar count count_values bottomk topk quantile
and or unless bool by without on ignoring group_left group_right offset rate irate increase
delta idelta deriv predict_linear histogram_quantile time timestamp absent absent_over_time
present_over_time changes resets clamp clamp_min clamp_max vector scalar abs ceil floor round
exp ln log2 log10 sqrt sgn sort sort_desc label_replace label_join avg_over_time
min_over_time max_over_time sum_over_time count_over_time quantile_over_time last_over_time
stddev_over_time stdvar_over_time day_of_month day_of_week day_of_year days_in_month hour
minute month year inf nan "

# metric_names: one PromQL expression per line on stdin, the metric names they use on
# stdout (one per line, sorted). Strings, label matchers, range and subquery brackets,
# grouping label lists and Grafana variables are removed first, so what is left that
# looks like an identifier and is not a PromQL word is a metric name.
metric_names() {
    sed -E -e 's/"([^"\\]|\\.)*"//g' -e "s/'([^'\\\\]|\\\\.)*'//g" -e 's/`[^`]*`//g' \
        -e 's/\{[^}]*\}//g' -e 's/\[[^]]*\]//g' \
        -e 's/\<(by|without|on|ignoring|group_left|group_right)[[:space:]]*\([^)]*\)/\1/g' \
        -e 's/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*//g' |
        grep -oE '(^|[^A-Za-z0-9_.:])[A-Za-z_:][A-Za-z0-9_:]*' |
        sed -E 's/^[^A-Za-z_:]//' |
        while read -r word; do
            case "$NOT_METRICS" in
            *[[:space:]]"$word"[[:space:]]*) ;;
            *) echo "$word" ;;
            esac
        done | sort -u
}

# check_exported NAMES_FILE SCRAPE_FILE: every name must be served. A histogram's
# _bucket/_sum/_count series belong to the family without the suffix, which the scrape
# must declare as a histogram (histogram_quantile over a gauge's "_bucket" is a mistake
# even if some series had that name). Prints what is missing; 0 when nothing is.
check_exported() {
    local names=$1 scrape=$2 missing=0 name base
    local samples types
    samples=$(grep -v '^#' "$scrape" | sed -E 's/[{ ].*//' | sort -u)
    types=$(awk '$1 == "#" && $2 == "TYPE" { print $3 " " $4 }' "$scrape")
    while read -r name; do
        [ -n "$name" ] || continue
        base=$(printf '%s\n' "$name" | sed -E 's/_(bucket|sum|count)$//')
        if [ "$base" != "$name" ] && printf '%s\n' "$types" | grep -qx "$base histogram"; then
            printf '%s\n' "$samples" | grep -qx "$name" && continue
        elif printf '%s\n' "$types" | grep -q "^$name " &&
            printf '%s\n' "$samples" | grep -qx "$name"; then
            continue
        fi
        echo "  not exported: $name"
        missing=1
    done <"$names"
    return $missing
}

# rule_exprs FILE: each `expr:` of a rules file on one line, inline or block scalar
# (`expr: |`), which is how prebuilds-alerts.yml writes them.
rule_exprs() {
    awk '
    function flush() { if (block) { print cur; block = 0 } }
    block {
        if ($0 ~ /^[[:space:]]*$/) next
        match($0, /^[[:space:]]*/)
        if (ind < 0) ind = RLENGTH
        if (RLENGTH >= ind) { cur = cur " " substr($0, RLENGTH + 1); next }
        flush()
    }
    /^[[:space:]]*expr:/ {
        line = $0
        sub(/^[[:space:]]*expr:[[:space:]]*/, "", line)
        if (line ~ /^[|>][-+]?[[:space:]]*$/) { block = 1; ind = -1; cur = ""; next }
        print line
    }
    END { flush() }' "$1"
}

# promql_parses FILE_OF_EXPRS: every line is valid PromQL (promtool parses rule files),
# with Grafana's variables replaced by values of the right kind.
promql_parses() {
    local rules=$WORK/parse.yml i=0
    {
        echo "groups:"
        echo "  - name: parse"
        echo "    rules:"
        while IFS= read -r expr; do
            i=$((i + 1))
            expr=${expr//\$__rate_interval/5m}
            expr=${expr//\$__interval/1m}
            expr=${expr//\$__range/1h}
            expr=${expr//\$\{instance\}/.*}
            expr=${expr//\$instance/.*}
            echo "      - record: parse:expr_$i"
            echo "        expr: |"
            echo "          $expr"
        done <"$1"
    } >"$rules"
    promtool check rules "$rules" >"$WORK/parse.out" 2>&1 || {
        cat "$WORK/parse.out" >&2
        return 1
    }
}

# ---------------------------------------------------------------- the checks check
# A checker that passes everything proves nothing: feed it what it must refuse.
cat >"$WORK/self.scrape" <<'EOF'
# HELP pb_x_seconds A histogram.
# TYPE pb_x_seconds histogram
pb_x_seconds_bucket{le="+Inf"} 0
pb_x_seconds_sum 0
pb_x_seconds_count 0
# HELP pb_g A gauge.
# TYPE pb_g gauge
pb_g 0
# HELP pb_c_total A counter.
# TYPE pb_c_total counter
pb_c_total{kind="a"} 0
EOF
echo 'histogram_quantile(0.9, sum by (le) (rate(pb_x_seconds_bucket{instance=~"$instance",x="a{b}"}[$__rate_interval])))
sum(rate(pb_x_seconds_sum[5m])) / sum(rate(pb_x_seconds_count[5m])) > 1e3
sum without (kind) (increase(pb_c_total{kind="a"}[1h] offset 5m)) * on (instance) group_left () pb_g' |
    metric_names >"$WORK/self.good"
if [ "$(tr '\n' ' ' <"$WORK/self.good")" = "pb_c_total pb_g pb_x_seconds_bucket pb_x_seconds_count pb_x_seconds_sum " ] &&
    check_exported "$WORK/self.good" "$WORK/self.scrape" >/dev/null; then
    ok "self-test: names extracted and found"
else
    fail "self-test: extracted $(tr '\n' ' ' <"$WORK/self.good")"
fi
for bad in 'rate(pb_missing_total[5m])' 'histogram_quantile(0.5, rate(pb_g_bucket[5m]))' \
    'up{job="x"} == 0' 'pb_x_seconds' 'max(pb_c_total) + pb_c'; do
    echo "$bad" | metric_names >"$WORK/self.bad"
    if check_exported "$WORK/self.bad" "$WORK/self.scrape" >/dev/null; then
        fail "self-test: '$bad' passed the export check"
    else
        ok "self-test: refused $bad"
    fi
done
printf '%s\n' 'sum(rate(x[5m])' >"$WORK/self.promql"
promql_parses "$WORK/self.promql" 2>/dev/null && fail "self-test: broken PromQL parsed" ||
    ok "self-test: broken PromQL refused"

# ---------------------------------------------------------------- (a) the dashboard's shape
if ! jq -e . "$DASH" >/dev/null; then
    fail "$DASH is not valid JSON"
    exit 1
fi
ok "dashboard is valid JSON"
# jq_check DESCRIPTION FILTER: the filter must yield true.
jq_check() {
    if jq -e "$2" "$DASH" >/dev/null; then ok "dashboard: $1"; else fail "dashboard: $1"; fi
}
jq_check "schemaVersion 36..41" '.schemaVersion | type == "number" and . >= 36 and . <= 41'
jq_check "title and uid" '(.title | length > 0) and (.uid | length > 0)'
jq_check "a Prometheus datasource variable" \
    '[.templating.list[] | select(.name == "datasource" and .type == "datasource" and .query == "prometheus")] | length == 1'
jq_check "an instance variable read from the datasource" \
    '[.templating.list[] | select(.name == "instance" and .type == "query" and .datasource.uid == "${datasource}")] | length == 1'
jq_check "panel ids unique" '[.. | objects | select(has("gridPos")) | .id] | (length == (unique | length))'
jq_check "every panel has a title, a position and queries on \${datasource}" '
    [.panels[] | recurse(.panels[]?) | select(.type != "row")] as $p
    | ($p | length > 0)
      and all($p[]; (.title | length > 0) and (.gridPos | has("x") and has("y") and has("w") and has("h"))
          and .datasource.uid == "${datasource}"
          and (.targets | length > 0)
          and all(.targets[]; (.expr | type == "string" and length > 0)
                              and .datasource.uid == "${datasource}" and (.refId | length > 0)))'
jq_check "queries filter on \$instance" \
    'all(.panels[] | recurse(.panels[]?) | .targets[]?; .expr | contains("instance=~\"$instance\""))'
for want in 'prebuilds_passes_total' 'histogram_quantile(0.5,' 'histogram_quantile(0.9,' \
    'histogram_quantile(0.99,' 'prebuilds_rows_added_total' 'prebuilds_organizations{' \
    'prebuilds_organizations_unconverged' 'prebuilds_leader' 'prebuilds_database_up' \
    'prebuilds_database_reconnects_total' 'prebuilds_notifications_total' 'prebuilds_paused'; do
    jq_check "a panel queries $want" "[.panels[] | recurse(.panels[]?) | .targets[]?.expr | contains(\"$(printf '%s' "$want" | sed 's/"/\\"/g')\")] | any"
done

jq -r '.panels[] | recurse(.panels[]?) | .targets[]?.expr | gsub("\n"; " ")' "$DASH" >"$WORK/dash.exprs"
jq -r '.templating.list[] | select(.type == "query") | .definition' "$DASH" |
    sed -nE 's/^label_values\(([^,)]*).*/\1/p' >"$WORK/var.exprs"
promql_parses "$WORK/dash.exprs" && ok "dashboard: $(wc -l <"$WORK/dash.exprs") queries parse" ||
    fail "dashboard: a query does not parse"
promql_parses "$WORK/var.exprs" || fail "dashboard: a variable's metric selector does not parse"
cat "$WORK/dash.exprs" "$WORK/var.exprs" | metric_names >"$WORK/dash.names"

# ---------------------------------------------------------------- (b) the rules' expressions
rule_exprs "$RULES" >"$WORK/rules.exprs"
n_alerts=$(grep -cE '^[[:space:]]*- alert:' "$RULES")
n_exprs=$(grep -c . "$WORK/rules.exprs")
[ "$n_alerts" -gt 0 ] && [ "$n_alerts" = "$n_exprs" ] && ok "rules: $n_exprs expressions" ||
    fail "rules: $n_alerts alerts but $n_exprs expressions read"
metric_names <"$WORK/rules.exprs" >"$WORK/rules.names"
while IFS= read -r expr; do
    [ -n "$(echo "$expr" | metric_names)" ] || fail "rules: no metric in: $expr"
done <"$WORK/rules.exprs"

# ---------------------------------------------------------------- (c) what the daemon serves
DB="sqlite:$WORK/t.db"
"$BIN" --db "$DB" init >/dev/null || fail "init"
"$BIN" --db "$DB" seed --orgs 6 --prebuilds-fraction 1 --drift-fraction 0.5 >/dev/null ||
    fail "seed"
"$BIN" --db "$DB" --log-level debug run --interval 200ms --metrics-addr 127.0.0.1:0 \
    >"$WORK/d.log" 2>&1 &
DPID=$!
wait_until 10 grep -q 'metrics_port=[0-9]' "$WORK/d.log" || fail "no metrics port: $(cat "$WORK/d.log")"
PORT=$(sed -n 's/.*metrics_port=\([0-9][0-9]*\).*/\1/p' "$WORK/d.log" | head -n 1)
# After the first pass has repaired the drift, so counters have moved too.
wait_until 10 grep -q 'pass repaired drift' "$WORK/d.log" || fail "no repairing pass"
wait_until 10 curl -sf --max-time 5 -o "$WORK/m.txt" "http://127.0.0.1:$PORT/metrics" ||
    fail "GET /metrics on 127.0.0.1:$PORT"
# gone PID: exited (a zombie until waited for counts as exited).
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
kill -TERM "$DPID" 2>/dev/null
if wait_until 5 gone "$DPID"; then
    wait "$DPID"
    rc=$?
    [ "$rc" = 0 ] && ok "daemon stopped on SIGTERM" || fail "daemon exit $rc on SIGTERM"
    DPID=""
else
    fail "daemon did not stop on SIGTERM within 5 s"
fi
[ -s "$WORK/m.txt" ] || {
    fail "empty scrape"
    exit 1
}
promtool check metrics <"$WORK/m.txt" >"$WORK/promtool.out" 2>&1 && ok "scrape passes promtool" ||
    fail "promtool: $(cat "$WORK/promtool.out")"
for series in 'prebuilds_paused 0' 'prebuilds_organizations_unconverged 0' \
    'prebuilds_organizations 6'; do
    grep -qx "$series" "$WORK/m.txt" && ok "served: $series" || fail "scrape lacks: $series"
done

if check_exported "$WORK/dash.names" "$WORK/m.txt" >"$WORK/dash.missing"; then
    ok "dashboard: all $(wc -l <"$WORK/dash.names") metrics exported ($(tr '\n' ' ' <"$WORK/dash.names"))"
else
    fail "dashboard queries metrics the daemon does not export:"
    cat "$WORK/dash.missing" >&2
fi
if check_exported "$WORK/rules.names" "$WORK/m.txt" >"$WORK/rules.missing"; then
    ok "rules: all $(wc -l <"$WORK/rules.names") metrics exported ($(tr '\n' ' ' <"$WORK/rules.names"))"
else
    fail "alert rules use metrics the daemon does not export:"
    cat "$WORK/rules.missing" >&2
fi

[ $FAILS -eq 0 ] && echo "all dashboard and rule checks passed"
exit $((FAILS > 0))
