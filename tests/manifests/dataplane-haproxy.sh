#!/usr/bin/env bash
# Data-path test for the HAProxy overlay: runs the real haproxy with the frontend snippet and the
# secondary configuration file that manifests/overlays/haproxy ships, inside frontends laid out
# the way the HAProxy Kubernetes Ingress Controller writes them (its http-request rules, the
# ssl-redirect among them, BEFORE the config snippet; its use_backend rules and default_backend
# AFTER it, as its config writer orders a frontend). Checks that /.well-known/acme-challenge/
# reaches a stub on 127.0.0.1:8089 while everything else keeps its route. A control instance with
# an empty snippet proves the checks can fail.
#   tests/support/netns-run tests/manifests/dataplane-haproxy.sh
source "$(dirname "$0")/lib.sh"
HAPROXY=${HAPROXY:-haproxy}

"$HERE/extract-snippet" haproxy >"$WORK/snippet.cfg"
"$HERE/extract-snippet" haproxy --aux >"$WORK/haproxy-aux.cfg"
: >"$WORK/empty.cfg"
self_signed tls secure.example.test secure.example.test app.example.test
# Like the controller's maps: host -> host, host+path prefix -> backend.
printf 'app.example.test app.example.test\nsecure.example.test secure.example.test\n' >"$WORK/host.map"
printf 'app.example.test/ default_svc_app_http.1\nsecure.example.test/ default_svc_app_http.1\n' >"$WORK/path-prefix.map"
printf 'secure.example.test true\n' >"$WORK/ssl-redirect.map"

# frontend NAME BIND SNIPPET_FILE
frontend() {
  cat <<CONF
frontend $1
  mode http
  bind $2
  http-request set-var(txn.base) base
  http-request set-var(txn.path) path
  http-request set-var(txn.host) req.hdr(Host),field(1,:),lower
  http-request set-var(txn.host_match) var(txn.host),map($WORK/host.map)
  http-request set-var(txn.path_match) var(txn.host_match),concat(,txn.path,),map_beg($WORK/path-prefix.map)
  http-request redirect scheme https code 302 if !{ ssl_fc } { var(txn.host),map($WORK/ssl-redirect.map) -m found }
  ###_config-snippet_### BEGIN
$(sed 's/^/  /' "$3")
  ###_config-snippet_### END
  use_backend %[var(txn.path_match),field(1,.)]
  default_backend default_backend

CONF
}

# write_conf FILE SNIPPET_FILE HTTP_PORT HTTPS_PORT
write_conf() {
  {
    cat <<CONF
global
  log stderr format raw local0 notice
  pidfile $1.pid

defaults haproxytech
  mode http
  log global
  option dontlognull
  option http-keep-alive
  timeout http-request 5s
  timeout connect 5s
  timeout client 50s
  timeout queue 5s
  timeout server 50s

CONF
    frontend http "127.0.0.1:$3" "$2"
    frontend https "127.0.0.1:$4 ssl crt $WORK/tls.pem" "$2"
    cat <<CONF
backend default_backend
  mode http
  http-request return status 404 content-type text/plain string "default backend"

backend default_svc_app_http
  mode http
  server SRV_1 127.0.0.1:18091
CONF
  } >"$1"
}

write_conf "$WORK/haproxy.cfg" "$WORK/snippet.cfg" 18080 18443
write_conf "$WORK/control.cfg" "$WORK/empty.cfg" 28080 28443
# The control has no snippet, so it does not need (and must not get) the acme_sidecar backend.

if out=$("$HAPROXY" -c -q -f "$WORK/haproxy.cfg" -f "$WORK/haproxy-aux.cfg" 2>&1); then
  expect "haproxy -c accepts the shipped snippet and secondary config" ok ok
else
  expect "haproxy -c accepts the shipped snippet and secondary config" "$out" ok
  finish
fi
if out=$("$HAPROXY" -c -q -f "$WORK/haproxy.cfg" 2>&1); then
  expect "haproxy -c rejects the snippet without the secondary config (backend missing)" ok rejected
else
  expect "haproxy -c rejects the snippet without the secondary config (backend missing)" rejected rejected
fi

start sidecar python3 "$HERE/stub-server.py" 8089 sidecar
start app python3 "$HERE/stub-server.py" 18091 app
start haproxy "$HAPROXY" -db -f "$WORK/haproxy.cfg" -f "$WORK/haproxy-aux.cfg"
start control "$HAPROXY" -db -f "$WORK/control.cfg"
for p in 8089 18091 18080 18443 28080 28443; do wait_for_port "$p"; done

T=/.well-known/acme-challenge/Token_1-abc
expect "HTTP challenge, Ingress host with path /: sidecar, not the Ingress backend" \
  "$(request http://127.0.0.1:18080$T app.example.test)" "200 - | sidecar GET $T host=app.example.test*"
expect "HTTP challenge, unknown host: sidecar, not the default backend" \
  "$(request http://127.0.0.1:18080$T unknown.example.test)" "200 - | sidecar GET $T host=unknown.example.test*"
expect "HTTP challenge, TLS host with ssl-redirect: redirected first (controller rule runs before the snippet)" \
  "$(request http://127.0.0.1:18080$T secure.example.test)" "302 https://secure.example.test*$T | *"
expect "HTTPS challenge (where the CA follows the redirect to): sidecar" \
  "$(request https://127.0.0.1:18443$T secure.example.test)" "200 - | sidecar GET $T host=secure.example.test*"
expect "other paths still reach the Ingress backend" \
  "$(request http://127.0.0.1:18080/index.html app.example.test)" "200 - | app GET /index.html host=app.example.test*"
expect "HTTPS, other path: the Ingress backend" \
  "$(request https://127.0.0.1:18443/cart secure.example.test)" "200 - | app GET /cart host=secure.example.test*"
expect "unknown host, other path: default backend" \
  "$(request http://127.0.0.1:18080/x unknown.example.test)" "404 - | default backend"
expect "a path that merely starts alike is not a challenge" \
  "$(request http://127.0.0.1:18080/.well-known/acme-challenge-x app.example.test)" "200 - | app GET /.well-known/acme-challenge-x host=app.example.test*"
expect_not "control (no snippet): the challenge does not reach the sidecar" \
  "$(request http://127.0.0.1:28080$T app.example.test)" "*sidecar*"
expect_not "control (no snippet), unknown host: not the sidecar either" \
  "$(request http://127.0.0.1:28080$T unknown.example.test)" "*sidecar*"
finish
