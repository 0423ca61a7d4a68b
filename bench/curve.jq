# The growth curve as gnuplot data (bench/plot.gp): one block per series, "presets ms" lines.
# PostgreSQL: server execution time (pg_stat_statements); SQLite: wall time in-process.
def series($backend; $state; $kind; $field):
  [.cells[] | select(.curve and .backend == $backend and .[$state] != null)
   | .[$state] as $m
   | {x: .data.presets, y: $m[$kind][$field]}]
  | sort_by(.x) | map("\(.x) \(.y)") | if length == 0 then ["1 NaN"] else . end | join("\n");
[series("postgresql"; "nothing"; "reference"; "exec_ms"),
 series("postgresql"; "nothing"; "ours_first_pass"; "exec_ms"),
 series("postgresql"; "summary"; "ours_first_pass"; "exec_ms"),
 series("postgresql"; "summary"; "ours_later_pass"; "exec_ms"),
 series("sqlite"; "summary"; "reference"; "wall_ms"),
 series("sqlite"; "summary"; "ours_later_pass"; "wall_ms")] | join("\n\n\n")
