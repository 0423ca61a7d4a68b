# Draws docs/bench/{statements,wall}.{png,svg} from the plot.dat pb_bench writes: per pass,
# statements and wall time against the number of organizations, one line per strategy,
# one panel per backend and drift. Usage: gnuplot -e "dir='docs/bench'" bench/plot.gp
if (!exists("dir")) dir = "docs/bench"
data = dir . "/plot.dat"
# which backends ran (names and block numbers) and the sizes: written by pb_bench
load dir . "/plot.gpi"

drifts = "0% 1% 100%"
titles = "'(a) reference, per preset' '(b) reference, per organization' '(c) ours'"
# block index in plot.dat: (backend * 3 + drift) * 3 + strategy
idx(b, d, s) = (b * 3 + d) * 3 + s

set logscale xy
set xrange [xmin / 2.0 : xmax * 2.0]
set grid
set key bottom right font ",8"
set xlabel "organizations"
set style line 1 lc rgb "#d95f02" lw 2 pt 7
set style line 2 lc rgb "#7570b3" lw 2 pt 9
set style line 3 lc rgb "#1b9e77" lw 2 pt 5

do for [metric in "statements wall"] {
    col = metric eq "statements" ? 2 : 3
    ylab = metric eq "statements" ? "statements per pass" : "wall time per pass (ms, median)"
    do for [fmt in "png svg"] {
        if (fmt eq "png") {
            set terminal pngcairo size 1500,900 font ",10"
        } else {
            set terminal svg size 1500,900 dynamic font ",10"
        }
        set output dir . "/" . metric . "." . fmt
        set multiplot layout words(bidx),3 title (metric eq "statements" ? "Statements per pass" : "Wall time per pass") font ",13"
        do for [k = 1:words(bidx)] {
            b = int(word(bidx, k))
            do for [d = 0:2] {
                set title word(backends, k) . ", drift " . word(drifts, d + 1)
                set ylabel ylab
                plot for [s = 0:2] data index idx(b, d, s) using 1:col with linespoints \
                     ls (s + 1) title word(titles, s + 1)
            }
        }
        unset multiplot
        set output
    }
}
