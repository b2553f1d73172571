#!/usr/bin/env bash
# age_interop.sh - common/age.c and common/codec.c against the reference tools, through the
# bench_age front: our files decrypt with `age -d -i` (keys from age-keygen) byte for byte;
# files from `age -r` and `age -R` decrypt with ours; `zstd -d | age -d` of our chain output
# and our decoding of `zstd | age -r` output; an `age -p` (scrypt) file and an armored file
# are refused with a clear error; truncated and wrong-key inputs are refused. Skips (exit 77)
# when age, age-keygen or zstd is missing. Ends with lib.bash's closing line.
# shellcheck source=../lib/lib.bash
source "$(dirname "$0")/../lib/lib.bash"
TOOL=$BUILD/tests/bench/bench_age
T=$WORK

for t in age age-keygen zstd script; do
    command -v "$t" >/dev/null || { skip age-interop "$t not installed (make deps)"; finish; }
done
[ -x "$TOOL" ] || { fail setup "$TOOL not built (make tests)"; finish; }
age-keygen -o "$T/key1" 2>/dev/null && age-keygen -o "$T/key2" 2>/dev/null || { fail setup age-keygen; finish; }
R1=$(age-keygen -y "$T/key1") R2=$(age-keygen -y "$T/key2")
printf '# backup recipients\n\n%s\n# second\n%s\n' "$R1" "$R2" >"$T/recipients"
"$TOOL" gen 2 >"$T/json" || { fail setup "bench_age gen"; finish; }

# 1. ours -> age -d, and age -r / age -R -> ours, at chunk boundaries.
for n in 0 1 65535 65536 65537 196608 1000000; do
    head -c "$n" "$T/json" >"$T/p"
    if "$TOOL" enc -z 0 -r "$R1" <"$T/p" >"$T/c" 2>"$T/err" && age -d -i "$T/key1" "$T/c" >"$T/d" &&
        cmp -s "$T/p" "$T/d"; then ok "ours-to-age-$n"; else fail "ours-to-age-$n" "$(cat "$T/err")"; fi
    if age -r "$R1" -o "$T/c" "$T/p" && "$TOOL" dec -i "$T/key1" <"$T/c" >"$T/d" 2>"$T/err" &&
        cmp -s "$T/p" "$T/d"; then ok "age-r-to-ours-$n"; else fail "age-r-to-ours-$n" "$(cat "$T/err")"; fi
done
head -c 300000 "$T/json" >"$T/p"
if age -R "$T/recipients" -o "$T/c" "$T/p" && "$TOOL" dec -i "$T/key2" <"$T/c" >"$T/d" 2>"$T/err" &&
    cmp -s "$T/p" "$T/d"; then ok age-R-to-ours; else fail age-R-to-ours "$(cat "$T/err")"; fi
# Our recipients file (two keys): each of age's identities opens it.
if "$TOOL" enc -z 0 -R "$T/recipients" <"$T/p" >"$T/c" 2>"$T/err" &&
    age -d -i "$T/key1" "$T/c" | cmp -s - "$T/p" && age -d -i "$T/key2" "$T/c" | cmp -s - "$T/p"; then
    ok ours-R-two-recipients-to-age
else fail ours-R-two-recipients-to-age "$(cat "$T/err")"; fi

# 2. The chain: ours (zstd+age) -> age -d | zstd -d; zstd | age -r -> ours; sha256 of both ends.
if "$TOOL" enc -z 3 -r "$R1" <"$T/json" >"$T/c.zst.age" 2>"$T/err" &&
    age -d -i "$T/key1" "$T/c.zst.age" | zstd -q -d | cmp -s - "$T/json"; then
    read -r _ psha psize _ osha osize <"$T/err"
    if [ "$psha" = "$(sha256sum <"$T/json" | cut -d' ' -f1)" ] &&
        [ "$osha" = "$(sha256sum <"$T/c.zst.age" | cut -d' ' -f1)" ] &&
        [ "$psize" = "$(stat -c %s "$T/json")" ] && [ "$osize" = "$(stat -c %s "$T/c.zst.age")" ]; then
        ok chain-ours-to-zstd-age
    else fail chain-ours-to-zstd-age "sha/size mismatch: $(cat "$T/err")"; fi
else fail chain-ours-to-zstd-age "$(cat "$T/err")"; fi
if zstd -q -c "$T/json" | age -R "$T/recipients" >"$T/c2" &&
    "$TOOL" dec -z -i "$T/key2" <"$T/c2" 2>"$T/err" | cmp -s - "$T/json" && grep -q '^plain' "$T/err"; then
    ok chain-zstd-age-to-ours
else fail chain-zstd-age-to-ours "$(cat "$T/err")"; fi
if zstd -q -19 -c "$T/json" | "$TOOL" dec -z 2>"$T/err" | cmp -s - "$T/json"; then
    ok zstd-19-to-ours
else fail zstd-19-to-ours "$(cat "$T/err")"; fi

# 3. Refusals, each with a clear reason and a failing exit.
refused() { # name expected-text file [args]
    local name=$1 want=$2 f=$3
    shift 3
    if "$TOOL" dec "$@" <"$f" >/dev/null 2>"$T/err"; then
        fail "$name" "accepted"
    elif grep -q "$want" "$T/err"; then ok "$name"; else fail "$name" "unclear error: $(cat "$T/err")"; fi
}
head -c 1000 "$T/json" >"$T/p"
printf 'secret\nsecret\n' | timeout 20 script -qc "age -p -o $T/scrypt.age $T/p" /dev/null >/dev/null 2>&1
if [ -s "$T/scrypt.age" ]; then
    refused refuse-scrypt 'passphrase-encrypted (scrypt)' "$T/scrypt.age" -i "$T/key1"
else fail refuse-scrypt "could not make an age -p file"; fi
age -a -r "$R1" -o "$T/armored" "$T/p"
refused refuse-armored 'armored' "$T/armored" -i "$T/key1"
age -r "$R1" -o "$T/c" "$T/json"
refused refuse-wrong-key 'no identity matches' "$T/c" -i "$T/key2"
head -c -1 "$T/c" >"$T/trunc"
refused refuse-truncated-last-byte 'fails authentication\|truncated' "$T/trunc" -i "$T/key1"
head -c $(($(stat -c %s "$T/c") - 700000)) "$T/c" >"$T/trunc"
refused refuse-truncated-mid 'truncated\|authentication' "$T/trunc" -i "$T/key1"
zstd -q -c "$T/json" | head -c 100000 >"$T/trunc.zst"
refused refuse-truncated-zstd 'truncated' "$T/trunc.zst" -z
head -c $(($(stat -c %s "$T/c.zst.age") / 2)) "$T/c.zst.age" >"$T/trunc"
refused refuse-truncated-chain 'truncated\|authentication' "$T/trunc" -z -i "$T/key1"
finish
