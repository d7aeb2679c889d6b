#!/usr/bin/env bash
# Scale proof (issue 12 §7): S shards of `diemcau run` in one private network namespace, each
# probing its share (--shard i/S) of an inventory of S × N loopback endpoints, all shipping
# their ledgers to one private PostgreSQL cluster (Unix socket only). Called by
# `scripts/bench scale [N] [S]` (default 50000 4).
#
# Two windows of WINDOW seconds each: steady (every endpoint up) and incident (CUT endpoints,
# spread over the shards, have their echo requests dropped by nftables for CUT_S seconds, then
# come back). Per shard: CPU (utime+stime from /proc), peak RSS, scheduler punctuality, /metrics
# size and series; for the namespace: echo requests sent (Icmp OutEchos); for PostgreSQL: rows
# inserted, updated and deleted and transactions committed (pg_stat_database), database size.
# Every packet stays on the namespace's loopback; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50000}
S=${2:-4}
WARMUP=${WARMUP:-20}
WINDOW=${WINDOW:-60}
CUT=${CUT:-2000}
CUT_S=${CUT_S:-30}
PACKETS=${PACKETS:-3}
BIN=$PWD/target/release/diemcau
cargo build --release --quiet
OUT=$(mktemp -d /tmp/diemcau-scale.XXXXXX)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $PG_BIN/initdb ]] || { echo "PostgreSQL is required (apt-get install postgresql)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft is required (apt-get install nftables)" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root it runs as nobody, in a directory of its own (the
# rest stays root's: inside `unshare -r` root may not write into nobody's files).
chmod 755 "$OUT"
mkdir -p "$OUT/pg/sock"
as_pg=()
if [[ $(id -u) == 0 ]]; then
  chown -R 65534:65534 "$OUT/pg"
  as_pg=(setpriv --reuid 65534 --regid 65534 --clear-groups --)
fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$OUT/pg/data" -U diemcau --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$OUT/pg/data" -l "$OUT/pg/log" -w -t 60 \
  -o "-c listen_addresses='' -k $OUT/pg/sock -c max_connections=40" start >/dev/null
cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$OUT/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT
export PSQL_HOST=$OUT/pg/sock WARMUP WINDOW CUT CUT_S PACKETS

cat >"$OUT/inner.sh" <<'INNER'
#!/usr/bin/env bash
# Inside the private namespace.
set -euo pipefail
N=$1 S=$2 BIN=$3 DIR=$4
ip link set lo up
clk=$(getconf CLK_TCK)
psqlq() { psql -h "$PSQL_HOST" -U diemcau -d postgres -X -A -t -c "$1"; }
outechos() { awk '/^Icmp: [A-Z]/ { for (i = 1; i <= NF; i++) if ($i == "OutEchos") c = i } /^Icmp: [0-9]/ { print $c }' /proc/net/snmp; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pg_rows() { psqlq "SELECT tup_inserted + tup_updated + tup_deleted, xact_commit FROM pg_stat_database WHERE datname = 'postgres'"; }
total=$((N * S))
"$BIN" inventory generate --endpoints "$total" --first-address 127.16.0.1 --out "$DIR/inventory.csv"
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' EXIT
for ((i = 0; i < S; i++)); do
  mkdir -p "$DIR/shard$i"
  cat >"$DIR/shard$i/diemcau.toml" <<CFG
[web]
listen_address = "127.0.0.1:$((9810 + i))"
[inventory]
files = ["../inventory.csv"]
[probe]
interval = "10s"
packets = $PACKETS
packet_spacing = "200ms"
timeout = "1s"
[vantage]
name = "lab"
[store]
url = "host=$PSQL_HOST user=diemcau dbname=postgres"
CFG
  "$BIN" run --shard "$i/$S" --config "$DIR/shard$i/diemcau.toml" --log.level warn 2>"$DIR/shard$i/log" &
  pids+=($!)
done
# One Prometheus scrapes every shard once a minute (when installed): its memory and ingestion
# are the other half of the cost.
prom_pid=
if command -v prometheus >/dev/null; then
  { echo "global: {scrape_interval: 60s, scrape_timeout: 50s}"
    echo "scrape_configs: [{job_name: diemcau, static_configs: [{targets: ["
    for ((i = 0; i < S; i++)); do printf '"127.0.0.1:%d"%s' $((9810 + i)) "$([[ $i -lt $((S - 1)) ]] && echo ,)"; done
    echo "]}]}]"; } > "$DIR/prometheus.yml"
  prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
    --web.listen-address=127.0.0.1:9090 --log.level=warn 2>"$DIR/prometheus.log" &
  prom_pid=$!
  pids+=("$prom_pid")
fi
# The first shipment (every shard's endpoints and presence rows) goes before any window.
t0=$(date +%s.%N); r0=$(pg_rows)
for ((k = 0; k < 180; k++)); do
  done_shards=0
  for ((i = 0; i < S; i++)); do
    m=$(curl -s "http://127.0.0.1:$((9810 + i))/metrics" || true)
    grep -q '^diemcau_store_replica_backlog_rows 0$' <<<"$m" && grep -q '^diemcau_store_replica_healthy 1$' <<<"$m" \
      && done_shards=$((done_shards + 1))
  done
  ((done_shards == S)) && break
  sleep 5
done
t1=$(date +%s.%N); r1=$(pg_rows)
python3 -c "import sys; t0, t1, r0, r1, ok = sys.argv[1:]; rows = int(r1.split('|')[0]) - int(r0.split('|')[0]); \
print(f'RESULT first_shipment shipped={ok} seconds={float(t1) - float(t0):.0f} pg_rows={rows} rows_per_s={rows / (float(t1) - float(t0)):.0f}')" \
  "$t0" "$t1" "$r0" "$r1" "$([[ $done_shards == "$S" ]] && echo yes || echo no)"
sleep "$WARMUP"

# window NAME: CPU, echoes and database writes over WINDOW seconds.
window() {
  local name=$1 t0 t1 e0 e1 r0 r1 c0=() c1=()
  t0=$(date +%s.%N); e0=$(outechos); r0=$(pg_rows)
  for p in "${pids[@]}"; do c0+=("$(cpu_ticks "$p")"); done
  if [[ $name == incident ]]; then
    # CUT endpoints spread evenly over the inventory (so over the shards) go silent for CUT_S.
    awk -F, -v n="$total" -v k="$CUT" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "address") c = i; next }
      (NR - 1) % int(n / k) == 0 { print $c }' "$DIR/inventory.csv" | head -n "$CUT" | paste -sd, > "$DIR/cut.txt"
    printf 'table inet cut {\n chain out {\n  type filter hook output priority 0;\n  ip daddr { %s } icmp type echo-request drop\n }\n}\n' \
      "$(cat "$DIR/cut.txt")" | nft -f -
    sleep "$CUT_S"
    nft delete table inet cut
    sleep $((WINDOW - CUT_S))
  else
    sleep "$WINDOW"
  fi
  t1=$(date +%s.%N); e1=$(outechos); r1=$(pg_rows)
  for p in "${pids[@]}"; do c1+=("$(cpu_ticks "$p")"); done
  python3 - "$name" "$t0" "$t1" "$e0" "$e1" "$r0" "$r1" "$clk" "${c0[*]}" "${c1[*]}" <<'PY'
import sys
name, t0, t1, e0, e1, r0, r1, clk, c0, c1 = sys.argv[1:]
secs = float(t1) - float(t0)
rows0, x0 = map(int, r0.split("|")); rows1, x1 = map(int, r1.split("|"))
cpu = [(int(b) - int(a)) / int(clk) for a, b in zip(c0.split(), c1.split())]
probes = int(e1) - int(e0)
print(f"RESULT {name} window_s={secs:.1f} echoes_per_s={probes / secs:.0f} "
      f"cpu_core_per_shard={' '.join(f'{c / secs:.3f}' for c in cpu)} cpu_core_all={sum(cpu) / secs:.3f} "
      f"cpu_us_per_echo={sum(cpu) * 1e6 / max(probes, 1):.2f} "
      f"pg_rows_per_s={(rows1 - rows0) / secs:.0f} pg_commits_per_s={(x1 - x0) / secs:.1f}")
PY
}
window steady
window incident
sleep 15
for ((i = 0; i < S; i++)); do
  p=${pids[$i]}
  t=$(curl -s -o "$DIR/shard$i/metrics.txt" -w '%{time_total}' "http://127.0.0.1:$((9810 + i))/metrics")
  python3 - "$i" "$DIR/shard$i/metrics.txt" "$(awk '/VmHWM/ { print $2 }' "/proc/$p/status")" \
    "$(awk '/VmRSS/ { print $2 }' "/proc/$p/status")" "$t" <<'PY'
import re, sys
i, path, hwm, rss, t = sys.argv[1:]
text = open(path).read()
def val(name, labels=""):
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")
series = [l for l in text.splitlines() if l and not l.startswith("#")]
per_endpoint = sum(1 for l in series if 'endpoint="' in l)
count = val("diemcau_scheduler_lag_seconds_count")
on_time = val("diemcau_scheduler_lag_seconds_bucket", '{le="0.1"}')
probed = sum(1 for l in series if l.startswith("diemcau_endpoint_up{"))
print(f"RESULT shard={i} endpoints_probed={probed} peak_rss_mb={int(hwm) / 1024:.1f} rss_mb={int(rss) / 1024:.1f} "
      f"on_time_within_100ms={on_time / count * 100:.3f}% scrape_bytes={len(text)} scrape_s={float(t):.2f} "
      f"series={len(series)} endpoint_series={per_endpoint} backlog_rows={val('diemcau_store_replica_backlog_rows'):.0f} "
      f"replica_errors={val('diemcau_store_replica_errors_total'):.0f} rows_shipped={val('diemcau_store_replica_rows_shipped_total'):.0f}")
PY
done
if [[ -n $prom_pid ]]; then
  promq() { curl -s --get --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query \
    | python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(" ".join(x["value"][1] for x in r) or "none")'; }
  echo "RESULT prometheus peak_rss_mb=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$prom_pid/status") \
head_series=$(promq prometheus_tsdb_head_series) \
scrape_s=$(promq 'scrape_duration_seconds{job="diemcau"}' | tr ' ' ,) \
samples_per_scrape=$(promq 'sum(scrape_samples_scraped{job="diemcau"})') \
cpu_s=$(awk -v clk="$clk" '{ printf "%.1f", ($14 + $15) / clk }' "/proc/$prom_pid/stat") \
running_s=$(ps -o etimes= -p "$prom_pid" | tr -d ' ')"
fi
echo "RESULT postgres $(psqlq "SELECT 'db_mb=' || round(pg_database_size('postgres') / 1048576.0, 1)") \
$(psqlq "SELECT string_agg(relname || '=' || n_live_tup, ' ' ORDER BY relname) FROM pg_stat_user_tables")"
for p in "${pids[@]}"; do kill -TERM "$p"; done
wait || true
for ((i = 0; i < S; i++)); do
  if grep -q -E 'ERROR|panicked' "$DIR/shard$i/log"; then echo "shard $i logged errors:"; grep -E 'ERROR|panicked' "$DIR/shard$i/log" | head -n 5; fi
done
INNER
chmod +x "$OUT/inner.sh"
mkdir -p "$OUT/work"
echo "# diemcau scale run $(date -u +%FT%TZ) on $(nproc) cores, $(uname -r): $S shards x $N endpoints, $PACKETS echoes per 10 s round, window ${WINDOW}s, $CUT cut for ${CUT_S}s"
unshare -rn "$OUT/inner.sh" "$N" "$S" "$BIN" "$OUT/work"
