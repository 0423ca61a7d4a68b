/* Results of a benchmark run are one JSON tree; everything published (results.json, the
 * Markdown tables, the data gnuplot draws) is written from it, so the numbers in the docs
 * are always the numbers measured. */
#ifndef PB_BENCH_REPORT_H
#define PB_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "bench.h"

/* Whether `sql` (asked of the library) is the statement the library ran
 * in `db`, by pg_stat_statements' queryid: 1 yes, 0 no, -1 cannot tell (err says why). */
int status_sql_verify(const char *pg_base, const bench_db *db, const char *sql, char *err,
                      size_t len);

/* Ours against the reference's formulation and the floor (and `proposed_sql` when not
 * NULL), `rounds` interleaved rounds per setting, JIT as shipped and off, and (with
 * `without_index`) again without our index. A new JSON object, or NULL. */
json_t *status_compare(const bench_db *db, const char *ours_sql, const char *proposed_sql,
                       int rounds, bool without_index, char *err, size_t len);

/* Judge the targets from the measured results; sets results["targets"]. */
void report_targets(json_t *results);

/* Write results.json, results.md and plot.dat into `dir`. 0 or -1. */
int report_write(const json_t *results, const char *dir, char *err, size_t len);

#endif
