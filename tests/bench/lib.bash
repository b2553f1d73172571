# lib.bash - what the bench scripts share (sourced, not run): wall time, arithmetic, a process's
# CPU ticks, medians. Timings are information only: nothing here passes or fails.
now() { date +%s.%N; }
calc() { awk "BEGIN {printf \"%.4f\", $*}"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of the process
HZ=$(getconf CLK_TCK)
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
max() { printf '%s\n' "$@" | sort -g | tail -1; }
