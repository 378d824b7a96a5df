#!/usr/bin/env bash
# Fidelity check: drives devcloud with the real python-openstackclient and asserts what a
# real cloud would show. Usage: tests/openstack_cli.sh [SPARK_OPENSTACK_BIN] ; needs
# `openstack` (OPENSTACK_BIN or on PATH), `jq`-free (uses python3 for JSON), ssh-keygen.
set -euo pipefail

BIN=${1:-${SPARK_OPENSTACK_BIN:-target/debug/spark-openstack}}
OS=${OPENSTACK_BIN:-openstack}
WORK=$(mktemp -d)
STATE=$WORK/state
export OS_CLIENT_CONFIG_FILE=$WORK/clouds.yaml
export OS_CLOUD=devcloud
export HOME=$WORK/home   # never touch the real ~/.config/openstack
mkdir -p "$HOME"

cleanup() {
    "$BIN" devcloud down --state-dir "$STATE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# json_get JSON KEY: a top-level field of a JSON object, printed as JSON (strings bare).
json_get() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v if isinstance(v,str) else json.dumps(v))' "$1" "$2"; }
expect() { [[ "$2" == "$3" ]] || fail "$1: expected '$3', got '$2'"; }
contains() { [[ "$2" == *"$3"* ]] || fail "$1: '$2' does not contain '$3'"; }
wait_status() {
    for _ in $(seq 1 60); do
        s=$("$OS" server show "$1" -f value -c status)
        [[ "$s" == "$2" ]] && return 0
        sleep 0.5
    done
    fail "server $1 never reached $2 (last: $s)"
}

# A fixed other cloud, to check that `devcloud up` merges instead of overwriting.
printf 'clouds:\n  other:\n    auth:\n      auth_url: http://192.0.2.1/identity\n' > "$OS_CLIENT_CONFIG_FILE"
"$BIN" devcloud up --state-dir "$STATE" --listen 127.0.0.1:0 --clouds-yaml "$OS_CLIENT_CONFIG_FILE" >/dev/null
grep -q '^  other:' "$OS_CLIENT_CONFIG_FILE" || fail "devcloud up dropped the existing cloud"
grep -q '^  devcloud:' "$OS_CLIENT_CONFIG_FILE" || fail "devcloud up wrote no devcloud cloud"

tok=$("$OS" token issue -f json)
[[ -n $(json_get "$tok" id) ]] || fail "token issue: no id"

cat=$("$OS" catalog list -f value -c Type | sort | tr '\n' ' ')
for t in block-storage compute identity image network; do contains "catalog list" "$cat" "$t"; done

imgs=$("$OS" image list -f value -c Name | sort | tr '\n' ' ')
expect "image list" "$imgs" "debian-12 rocky-9 ubuntu-22.04 "

flv=$("$OS" flavor list --long -f json)
contains "flavor list --long" "$flv" '"Ephemeral": 40'
large=$("$OS" flavor show m1.large -f json)
expect "m1.large vcpus" "$(json_get "$large" vcpus)" 4
expect "m1.large ram" "$(json_get "$large" ram)" 8192
expect "m1.large ephemeral" "$(json_get "$large" OS-FLV-EXT-DATA:ephemeral)" 40

ssh-keygen -q -t ed25519 -N '' -f "$WORK/key" >/dev/null
kp=$("$OS" keypair create --public-key "$WORK/key.pub" k1 -f json)
expect "keypair fingerprint" "$(json_get "$kp" fingerprint)" \
    "$(ssh-keygen -l -E md5 -f "$WORK/key.pub" | awk '{print $2}' | sed 's/^MD5://')"

ext=$("$OS" network list --external -f value -c Name)
expect "network list --external" "$ext" public

sg=$("$OS" security group create sg1 -f json)
expect "security group name" "$(json_get "$sg" name)" sg1
rule=$("$OS" security group rule create --protocol tcp --dst-port 22 sg1 -f json)
expect "rule port" "$(json_get "$rule" port_range_min)" 22
expect "rule protocol" "$(json_get "$rule" protocol)" tcp
if out=$("$OS" security group rule create --protocol tcp --dst-port 22 sg1 2>&1); then
    fail "duplicate rule was accepted"
fi
contains "duplicate rule" "$out" "Security group rule already exists"

srv=$("$OS" server create --wait --image debian-12 --flavor m1.small --network private \
    --key-name k1 --security-group sg1 vm1 -f json)
expect "server status" "$(json_get "$srv" status)" ACTIVE
expect "server key" "$(json_get "$srv" key_name)" k1
contains "server addresses" "$(json_get "$srv" addresses)" "10.213.0."

long=$("$OS" server list --long -f json)
contains "server list --long" "$long" '"Image Name": "debian-12"'
contains "server list --long" "$long" '"Flavor": "m1.small"'

show=$("$OS" server show vm1 -f json)
contains "server show security groups" "$(json_get "$show" security_groups)" sg1
expect "server show AZ" "$(json_get "$show" OS-EXT-AZ:availability_zone)" nova

fip=$("$OS" floating ip create public -f value -c floating_ip_address)
contains "floating ip" "$fip" "10.213.255."
"$OS" server add floating ip vm1 "$fip"
# Like a real cloud, Nova's addresses show the floating IP 1-3 s after Neutron associated it.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  addrs=$("$OS" server show vm1 -f value -c addresses)
  [[ "$addrs" == *"$fip"* ]] && break
  sleep 1
done
contains "addresses after floating ip" "$addrs" "$fip"
port=$("$OS" floating ip show "$fip" -f value -c port_id)
[[ "$port" != None && -n "$port" ]] || fail "floating ip not associated with a port"

"$OS" server stop vm1
wait_status vm1 SHUTOFF
"$OS" server start vm1
wait_status vm1 ACTIVE

console=$("$OS" console log show vm1)
contains "console log" "$console" "vm1 login:"

vol=$("$OS" volume create --size 1 v1 -f json)
expect "volume size" "$(json_get "$vol" size)" 1
"$OS" server add volume vm1 v1 >/dev/null
expect "volume status after attach" "$("$OS" volume show v1 -f value -c status)" in-use

"$OS" server delete --wait vm1
if "$OS" server show vm1 >/dev/null 2>&1; then fail "vm1 still exists after delete"; fi
expect "volume status after server delete" "$("$OS" volume show v1 -f value -c status)" available

"$OS" security group delete sg1
if "$OS" security group show sg1 >/dev/null 2>&1; then fail "sg1 still exists"; fi

echo "openstack_cli.sh: all checks passed"
