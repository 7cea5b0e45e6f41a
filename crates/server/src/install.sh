#!/bin/sh
# Installs the Landfall agent on this host and registers it with the Landfall server at
# @SERVER@, which served this script:
#
#   curl -fsS @SERVER@/agent/install.sh | sh -s -- --token TOKEN
#
# Options:
#   --token TOKEN    a join token (landfall instance token create); required
#   --name NAME      the instance name to register as (default: this host's name)
#   --ca-file FILE   the CA certificate the server's TLS certificate is signed with, if it is not
#                    a public one (copied next to the agent's configuration)
#   --root DIR       install under DIR instead of / (the agent then runs from there too)
#   --no-start       install and register, but do not start the agent
#
# It downloads the agent and checks its SHA-256 before the token is used: a failed download
# registers nothing. An expired, used or mistyped token is refused and registers nothing.
set -eu

SERVER='@SERVER@'
SHA256='@SHA256@'
MACHINE='@MACHINE@'

token=''
name=''
ca_file=''
root=''
start=yes

fail() {
    echo "landfall install: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --token) [ $# -ge 2 ] || fail "--token needs a value"; token=$2; shift 2 ;;
        --name) [ $# -ge 2 ] || fail "--name needs a value"; name=$2; shift 2 ;;
        --ca-file) [ $# -ge 2 ] || fail "--ca-file needs a value"; ca_file=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || fail "--root needs a value"; root=$2; shift 2 ;;
        --no-start) start=no; shift ;;
        *) fail "unknown option $1 (options: --token TOKEN [--name NAME] [--ca-file FILE] [--root DIR] [--no-start])" ;;
    esac
done

[ -n "$token" ] || fail "--token TOKEN is required: an administrator makes one with 'landfall instance token create'"
case "$token" in
    *[!A-Za-z0-9.-]*) fail "the token holds characters no join token has: check how it was copied" ;;
esac
[ -n "$name" ] || name=$(hostname 2>/dev/null || uname -n)
case "$name" in
    ''|*[!A-Za-z0-9._-]*) fail "'$name' cannot be an instance name (letters, digits, '.', '_' and '-'): give --name" ;;
esac
case "$root" in
    ''|/*) ;;
    *) root="$PWD/$root" ;;
esac

here=$(uname -m)
[ "$here" = "$MACHINE" ] || fail "this server offers the agent for $MACHINE machines, and this one is $here"
command -v curl >/dev/null 2>&1 || fail "curl is needed"
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
else
    fail "sha256sum (or shasum) is needed to check the agent's checksum"
fi
set -- -fsS --retry 3
if [ -n "$ca_file" ]; then
    [ -r "$ca_file" ] || fail "cannot read --ca-file $ca_file"
    set -- "$@" --cacert "$ca_file"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "downloading the agent from $SERVER"
curl "$@" -o "$work/landfall-agent" "$SERVER/agent/landfall-agent" || fail "cannot download the agent from $SERVER"
got=$(sha256 "$work/landfall-agent")
[ "$got" = "$SHA256" ] || fail "the agent downloaded has SHA-256 $got, not $SHA256: not installed"
chmod 755 "$work/landfall-agent"
"$work/landfall-agent" --version >/dev/null 2>&1 || fail "the agent downloaded does not run on this host"
# The CA the server signs deployment specifications and agent updates under: the agent checks them.
curl "$@" -o "$work/spec-ca.pem" "$SERVER/agent/spec-ca.pem" || fail "cannot download the server's signing CA"
grep -q "BEGIN CERTIFICATE" "$work/spec-ca.pem" || fail "the server's signing CA is not a certificate"

echo "registering this host as $name"
status=$(curl -sS --retry 3 ${ca_file:+--cacert "$ca_file"} -o "$work/onpremises.yml" -w '%{http_code}' \
    -H 'content-type: application/json' \
    --data "{\"token\": \"$token\", \"instanceName\": \"$name\"}" \
    "$SERVER/agent/join") || fail "cannot reach $SERVER to register"
[ "$status" = 200 ] || fail "the server refused to register this host: $(cat "$work/onpremises.yml")"

bin_dir="$root/usr/local/bin"
conf_dir="$root/etc/codedeploy-agent/conf"
agent_home="$root/opt/codedeploy-agent"
log_dir="$root/var/log/aws/codedeploy-agent"
unit_dir="$root/etc/systemd/system"
mkdir -p "$bin_dir" "$conf_dir" "$agent_home/deployment-root" "$agent_home/state" "$log_dir" "$unit_dir"
install -m 755 "$work/landfall-agent" "$bin_dir/landfall-agent"
(umask 077 && cp "$work/onpremises.yml" "$conf_dir/codedeploy.onpremises.yml")
cp "$work/spec-ca.pem" "$conf_dir/landfall-spec-ca.pem"
ca_environment=''
if [ -n "$ca_file" ]; then
    cp "$ca_file" "$conf_dir/server-ca.pem"
    ca_environment="Environment=SSL_CERT_FILE=$conf_dir/server-ca.pem"
fi
(umask 077 && cat > "$conf_dir/codedeployagent.yml" <<CONFIG
---
:log_aws_wire: false
:log_dir: '$log_dir'
:pid_dir: '$agent_home/state/.pid'
:program_name: codedeploy-agent
:root_dir: '$agent_home/deployment-root'
:verbose: false
:wait_between_runs: 1
:max_revisions: 5
:on_premises_config_file: '$conf_dir/codedeploy.onpremises.yml'
:deploy_control_endpoint: '$SERVER'
:s3_endpoint_override: '$SERVER'
:landfall_spec_ca_file: '$conf_dir/landfall-spec-ca.pem'
CONFIG
)
# The unit of packaging/systemd/landfall-agent.service, for landfall-agent (see there for why).
cat > "$unit_dir/landfall-agent.service" <<UNIT
[Unit]
Description=Landfall host agent (CodeDeploy lifecycle events)
Wants=network-online.target
After=network-online.target
Conflicts=codedeploy-agent.service

[Service]
Type=exec
EnvironmentFile=-$root/etc/landfall/agent.env
$ca_environment
ExecStart=$bin_dir/landfall-agent --config $conf_dir/codedeployagent.yml
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=3900
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT

echo "installed $bin_dir/landfall-agent ($("$bin_dir/landfall-agent" --version)) and registered as $name"
start_by_hand="${ca_file:+SSL_CERT_FILE=$conf_dir/server-ca.pem }$bin_dir/landfall-agent --config $conf_dir/codedeployagent.yml"
if [ "$start" = no ]; then
    echo "not started (--no-start): start it with: $start_by_hand"
elif [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl enable --now landfall-agent.service
    echo "started: systemctl status landfall-agent"
else
    echo "systemd is not running here (or --root was given): start the agent with: $start_by_hand"
fi
