# docs/bench/curve.svg from docs/bench/curve.dat (bench/curve.jq): the converged status
# statement's cost against the number of presets, log-log, one panel per backend.
# Usage: gnuplot -e "dir='docs/bench'" bench/plot.gp
if (!exists("dir")) dir = "docs/bench"
data = dir . "/curve.dat"
set terminal svg size 1200,520 dynamic font ",11"
set output dir . "/curve.svg"
set logscale xy
set grid
set key top left font ",9"
set xlabel "presets (3 templates x 5 versions x 4 presets per organization, half configured)"
set style line 1 lc rgb "#d95f02" lw 2 pt 7
set style line 2 lc rgb "#7570b3" lw 2 pt 9
set style line 3 lc rgb "#1b9e77" lw 2 pt 5
set style line 4 lc rgb "#66a61e" lw 2 pt 13 dt 2
set multiplot layout 1,2
set title "PostgreSQL: server execution time"
set ylabel "ms (median)"
plot data index 0 using 1:2 with linespoints ls 1 title "reference (better JIT setting)", \
     data index 1 using 1:2 with linespoints ls 2 title "ours, nothing installed", \
     data index 2 using 1:2 with linespoints ls 3 title "ours, summary: one-shot and first pass", \
     data index 3 using 1:2 with linespoints ls 4 title "ours, summary: later daemon passes"
set title "SQLite: wall time"
plot data index 4 using 1:2 with linespoints ls 1 title "reference", \
     data index 5 using 1:2 with linespoints ls 3 title "ours"
unset multiplot
