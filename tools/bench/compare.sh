#!/usr/bin/env bash
# Runs every benchmark guest under softvm and under QEMU TCG, in the same
# run on the same machine, checks that both print the same checksum, and
# prints the wall-time ratio per guest (softvm / QEMU) and softvm's peak
# memory. Installs qemu-system-x86 and time from Debian's packages if they
# are missing.
#
# Usage: tools/bench/compare.sh [FILTER]
#   FILTER          only guests whose name contains it
#   RUNS            runs of each side per guest, alternating (default 3);
#                   the fastest of each side is compared, so that a busy
#                   moment on a shared machine does not decide a ratio
#   CARGO_TARGET_DIR  where to build (default: target/ of the workspace)
#   BENCH_DIR       where to write the guests (default: a temporary dir)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
filter=${1:-}
runs=${RUNS:-3}
if [ -n "${BENCH_DIR:-}" ]; then
  dir=$BENCH_DIR
else
  dir=$(mktemp -d /tmp/softvm-bench.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
fi

need_apt() {
  if [ "$(id -u)" != 0 ]; then
    echo "compare.sh: $1 is missing and we are not root to install it" >&2
    exit 2
  fi
  if [ -z "${apt_updated:-}" ]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}
command -v qemu-system-x86_64 >/dev/null || need_apt qemu-system-x86
[ -x /usr/bin/time ] || need_apt time

echo "building softvm and the benchmark guests..." >&2
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p softvm)
(cd "$root" && CARGO_TARGET_DIR=$target cargo run --release -q -p testsuite \
  --example write_bench_guests -- "$dir" >/dev/null)
softvm=$target/release/softvm

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, Linux $(uname -r)"
echo "softvm:  $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?') (release build)"
echo "qemu:    $(qemu-system-x86_64 --version | head -1) -accel tcg"
echo "runs:    $runs of each side per guest, alternating; the fastest of each"
echo

# now(): seconds with nanoseconds.
now() { date +%s.%N; }

checksum() { tr -d '\r' <"$1" | sed -n 's/^checksum: \([0-9A-Fa-f]*\).*/\1/p' | head -1; }

printf '%-18s %5s %6s %10s %10s %8s %9s  %s\n' guest vcpus RAM softvm_s qemu_s ratio rss_MiB checksum
fail=0
while read -r name mem vcpus want; do
  case "$name" in ''|'#'*) continue ;; esac
  [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
  mem=${mem#memory=}; vcpus=${vcpus#vcpus=}; want=${want#checksum=}
  g=$dir/$name.elf
  s_out=$(mktemp); q_out=$(mktemp); s_time=$(mktemp)
  s_wall=; q_wall=; rss=0; verdict=
  for _ in $(seq "$runs"); do
    t0=$(now)
    set +e
    /usr/bin/time -f '%M' -o "$s_time" timeout 900 "$softvm" run "$g" --memory "$mem" --vcpus "$vcpus" >"$s_out" 2>/dev/null
    s_status=$?
    t1=$(now)
    timeout 900 qemu-system-x86_64 -accel tcg -kernel "$g" \
      -device isa-debug-exit,iobase=0xf4,iosize=4 -serial stdio -display none \
      -m "$mem" -smp "$vcpus" -no-reboot >"$q_out" 2>/dev/null </dev/null
    q_status=$?
    t2=$(now)
    set -e
    s=$(echo "$t1 - $t0" | bc -l); q=$(echo "$t2 - $t1" | bc -l)
    if [ -z "$s_wall" ] || [ "$(echo "$s < $s_wall" | bc -l)" = 1 ]; then s_wall=$s; fi
    if [ -z "$q_wall" ] || [ "$(echo "$q < $q_wall" | bc -l)" = 1 ]; then q_wall=$q; fi
    r=$(( $(tail -1 "$s_time") / 1024 ))
    [ "$r" -gt "$rss" ] && rss=$r
    s_sum=$(checksum "$s_out"); q_sum=$(checksum "$q_out")
    if [ "$s_status" = 77 ] || [ "$q_status" = 77 ]; then
      verdict="skipped (softvm $s_status, qemu $q_status): $(tr -d '\r' <"$s_out" | grep -m1 '^skip:' || true)"
      break
    elif [ "$s_status" != 1 ] || [ "$q_status" != 1 ]; then
      verdict="FAIL: status softvm $s_status, qemu $q_status"; fail=1; break
    elif [ -z "$s_sum" ] || [ "${s_sum^^}" != "${q_sum^^}" ]; then
      verdict="FAIL: softvm ${s_sum:-none}, qemu ${q_sum:-none}"; fail=1; break
    elif [ "$want" != "-" ] && [ "${s_sum^^}" != "${want^^}" ]; then
      verdict="FAIL: both ${s_sum}, model $want"; fail=1; break
    else
      verdict="same ($s_sum)"
    fi
  done
  ratio=$(echo "$s_wall / $q_wall" | bc -l)
  printf '%-18s %5s %6s %10.3f %10.3f %8.2f %9s  %s\n' "$name" "$vcpus" "$mem" "$s_wall" "$q_wall" "$ratio" "$rss" "$verdict"
  rm -f "$s_out" "$q_out" "$s_time"
done <"$dir/manifest.txt"
echo
echo "softvm_s, qemu_s = the fastest run of each; ratio = softvm_s / qemu_s, whole processes (start-up included);"
echo "rss_MiB = softvm's largest peak resident set (guest RAM is mapped lazily: only touched pages count)."
exit $fail
