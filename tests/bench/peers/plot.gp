# tests/bench/peers/plot.gp: the peer benchmark's two charts, from the data files bench_peers.py
# writes. Variables (gnuplot -e): datadir, outdir, scenarios ("5000-plain 5000-tls ..."),
# servers ("jabshard prosody ..."), p99 (the latency bound in ms).
#   rate.png:   per scenario (columns), delivered rate (top) and p99 latency (bottom) against the
#               offered rate, one line per server
#   memory.png: resident memory of all the server's processes against idle sessions, one line per
#               server and transport

nscen = words(scenarios)
nsrv = words(servers)
colour(i) = word("#d62728 #1f77b4 #2ca02c #9467bd #ff7f0e #8c564b", i)
have(f) = system("test -s '" . f . "' && echo 1 || echo 0") + 0

set terminal pngcairo size (nscen > 1 ? 560 * nscen : 800), 900 font "DejaVu Sans,10"
set output outdir . "/rate.png"
set multiplot layout 2, nscen title "Delivered rate and p99 latency against offered rate (loopback, 2 cores shared with the load generator)"
set logscale x 2
set grid
set key top left
do for [c = 1:nscen] {
    s = word(scenarios, c)
    set title s . " sessions"
    set xlabel "offered (msg/s)"
    set ylabel "delivered (msg/s)"
    set logscale y 2
    unset arrow
    plot for [i = 1:nsrv] (have(datadir . "/rate-" . s . "-" . word(servers, i) . ".dat") ? \
             datadir . "/rate-" . s . "-" . word(servers, i) . ".dat" : "/dev/null") \
         using 1:2 with linespoints lw 2 pt 7 lc rgb colour(i) title word(servers, i), \
         x with lines dt 2 lc rgb "grey" title "offered"
}
do for [c = 1:nscen] {
    s = word(scenarios, c)
    set title s . " sessions"
    set xlabel "offered (msg/s)"
    set ylabel "p99 latency (ms)"
    set logscale y 10
    plot for [i = 1:nsrv] (have(datadir . "/rate-" . s . "-" . word(servers, i) . ".dat") ? \
             datadir . "/rate-" . s . "-" . word(servers, i) . ".dat" : "/dev/null") \
         using 1:3 with linespoints lw 2 pt 7 lc rgb colour(i) title word(servers, i), \
         p99 + 0 with lines dt 2 lc rgb "black" title sprintf("%s ms", p99)
}
unset multiplot

set terminal pngcairo size 800, 560 font "DejaVu Sans,10"
set output outdir . "/memory.png"
unset logscale
set logscale y 2
set title "Resident memory of all the server's processes against idle sessions"
set xlabel "idle sessions"
set ylabel "RSS (MiB)"
set key top left
set format x "%.0f"
transports = "plain tls"
plot for [i = 1:nsrv] for [t = 1:2] \
         (have(datadir . "/memory-" . word(servers, i) . "-" . word(transports, t) . ".dat") ? \
          datadir . "/memory-" . word(servers, i) . "-" . word(transports, t) . ".dat" : "/dev/null") \
     using 1:2 with linespoints lw 2 pt (t == 1 ? 7 : 5) dt t lc rgb colour(i) \
     title word(servers, i) . " " . word(transports, t)
