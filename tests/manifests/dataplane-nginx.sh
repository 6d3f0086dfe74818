#!/usr/bin/env bash
# Data-path test for the nginx-based overlays: runs the real nginx with the snippet the overlay
# ships (extracted from `kubectl kustomize manifests/overlays/<controller>`) inside a server layout
# like the controller's own, and checks that /.well-known/acme-challenge/ reaches a stub on
# 127.0.0.1:8089 while everything else keeps its route (redirect, app, default backend).
# A control instance with an empty snippet proves the checks can fail.
#   tests/support/netns-run tests/manifests/dataplane-nginx.sh ingress-nginx|f5-nginx
source "$(dirname "$0")/lib.sh"
controller=${1:?usage: dataplane-nginx.sh ingress-nginx|f5-nginx}
NGINX=${NGINX:-nginx}

"$HERE/extract-snippet" "$controller" >"$WORK/snippet.conf"
"$HERE/extract-snippet" "$controller" --http >"$WORK/http-snippet.conf"
: >"$WORK/empty.conf"
self_signed tls secure.example.test secure.example.test app.example.test
mkdir -p "$WORK/tmp"

# write_conf FILE SNIPPET_FILE HTTP_SNIPPET_FILE HTTP_PORT HTTPS_PORT
write_conf() {
  local file=$1 snippet=$2 http_snippet=$3 http=$4 https=$5
  local common="ssl_certificate $WORK/tls.crt; ssl_certificate_key $WORK/tls.key;"
  local default_server secure_server
  if [[ $controller == ingress-nginx ]]; then
    # ingress-nginx: server-snippet goes into every server, the catch-all one too; the HTTPS
    # redirect sits inside each generated location (exempting no-tls-redirect-locations).
    default_server="server {
      listen 127.0.0.1:$http default_server; listen 127.0.0.1:$https ssl default_server;
      server_name _; $common
      include $snippet;
      location / { return 404 \"default backend\n\"; }
    }"
    secure_server="server {
      listen 127.0.0.1:$http; listen 127.0.0.1:$https ssl;
      server_name secure.example.test; $common
      include $snippet;
      # an application rule that hides dot-paths (regular expression location)
      location ~ /\\. { deny all; }
      location / {
        set \$redirect_to_https 0;
        if (\$scheme = http) { set \$redirect_to_https 1; }
        if (\$redirect_to_https) { return 308 https://\$host\$request_uri; }
        proxy_set_header Host \$host; proxy_pass http://app;
      }
    }"
  else
    # F5 NGINX Ingress Controller: server-snippets goes into each Ingress server (not the default
    # server); ssl-redirect is a server-level `if` that runs before any location is chosen.
    default_server="server {
      listen 127.0.0.1:$http default_server; listen 127.0.0.1:$https ssl default_server;
      server_name _; $common
      location / { return 404 \"default backend\n\"; }
    }"
    secure_server="server {
      listen 127.0.0.1:$http; listen 127.0.0.1:$https ssl;
      server_name secure.example.test; $common
      if (\$scheme = http) { return 301 https://\$host:$https\$request_uri; }
      include $snippet;
      location ~ /\\. { deny all; }
      location / { proxy_set_header Host \$host; proxy_pass http://app; }
    }"
  fi
  cat >"$file" <<CONF
user root;
worker_processes 1;
pid $file.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log $WORK/nginx-access.log;
  client_body_temp_path $WORK/tmp/body;
  proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fastcgi;
  uwsgi_temp_path $WORK/tmp/uwsgi;
  scgi_temp_path $WORK/tmp/scgi;
  upstream app { server 127.0.0.1:18091; }
  include $http_snippet;
  $default_server
  $secure_server
  # an Ingress host without TLS that sends everything to the app
  server {
    listen 127.0.0.1:$http;
    server_name app.example.test;
    include $snippet;
    location / { proxy_set_header Host \$host; proxy_pass http://app; }
  }
}
CONF
}

write_conf "$WORK/nginx.conf" "$WORK/snippet.conf" "$WORK/http-snippet.conf" 18080 18443
write_conf "$WORK/control.conf" "$WORK/empty.conf" "$WORK/empty.conf" 28080 28443

# Syntax check of the shipped snippet inside the realistic surrounding configuration.
if out=$("$NGINX" -t -q -c "$WORK/nginx.conf" 2>&1); then
  expect "nginx -t accepts the shipped $controller snippet" ok ok
else
  expect "nginx -t accepts the shipped $controller snippet" "$out" ok
  finish
fi

start sidecar python3 "$HERE/stub-server.py" 8089 sidecar
start app python3 "$HERE/stub-server.py" 18091 app
start nginx "$NGINX" -c "$WORK/nginx.conf" -g "daemon off;"
start control "$NGINX" -c "$WORK/control.conf" -g "daemon off;"
for p in 8089 18091 18080 18443 28080 28443; do wait_for_port "$p"; done

T=/.well-known/acme-challenge/Token_1-abc
if [[ $controller == ingress-nginx ]]; then
  expect "HTTP challenge, TLS host with redirect: answered by the sidecar, not redirected" \
    "$(request http://127.0.0.1:18080$T secure.example.test)" "200 - | sidecar GET $T host=secure.example.test"
  expect "HTTP challenge, unknown host: sidecar, not the default backend" \
    "$(request http://127.0.0.1:18080$T unknown.example.test)" "200 - | sidecar GET $T host=unknown.example.test"
  expect "other paths of the TLS host are still redirected" \
    "$(request http://127.0.0.1:18080/shop secure.example.test)" "308 https://secure.example.test/shop | *"
  expect "unknown host, other path: default backend" \
    "$(request http://127.0.0.1:18080/x unknown.example.test)" "404 - | default backend"
  expect_not "control (no snippet): the challenge does not reach the sidecar" \
    "$(request http://127.0.0.1:28080$T secure.example.test)" "*sidecar*"
else
  expect "HTTP challenge, TLS host with ssl-redirect: redirected first (server-level if)" \
    "$(request http://127.0.0.1:18080$T secure.example.test)" "301 https://secure.example.test:18443$T | *"
  expect "following the redirect like the CA does ends at the sidecar" \
    "$(request http://127.0.0.1:18080$T secure.example.test -L)" "200 - | sidecar GET $T host=secure.example.test*"
  expect "unknown host: default server without snippets (F5 puts them in Ingress servers only)" \
    "$(request http://127.0.0.1:18080$T unknown.example.test)" "404 - | default backend"
  expect_not "control (no snippet): the redirected challenge does not reach the sidecar" \
    "$(request https://127.0.0.1:28443$T secure.example.test)" "*sidecar*"
fi
expect "HTTPS challenge: the snippet wins over a regular-expression location" \
  "$(request https://127.0.0.1:18443$T secure.example.test)" "200 - | sidecar GET $T host=secure.example.test"
expect "HTTP challenge, plain Ingress host: sidecar, not the app" \
  "$(request http://127.0.0.1:18080$T app.example.test)" "200 - | sidecar GET $T host=app.example.test"
expect "other paths of the plain host still reach the app" \
  "$(request http://127.0.0.1:18080/index.html app.example.test)" "200 - | app GET /index.html host=app.example.test"
expect "HTTPS, other path: the app" \
  "$(request https://127.0.0.1:18443/cart secure.example.test)" "200 - | app GET /cart host=secure.example.test"
expect "control (no snippet): plain host challenge goes to the app" \
  "$(request http://127.0.0.1:28080$T app.example.test)" "200 - | app GET $T host=app.example.test"

# The http snippet's upstream keeps connections to the sidecar open: 20 challenges through nginx
# must not cost 20 new connections at the sidecar (without keep-alive each request opens one).
connections() { curl -sS --max-time 10 http://127.0.0.1:8089/__connections | tr -d '\r\n'; }
before=$(connections)
for i in $(seq 20); do request "http://127.0.0.1:18080$T" app.example.test >/dev/null; done
after=$(connections)
reused=no
if [[ $before =~ ^[0-9]+$ && $after =~ ^[0-9]+$ ]] && (( after - before - 1 <= 5 )); then reused=yes; fi
expect "keep-alive upstream: 20 challenges via nginx opened $((after - before - 1)) connections to the sidecar (at most 5)" \
  "$reused" yes

# Concurrent challenges: nginx opens one upstream connection per request in flight, and the pool must
# keep them (an upstream with keepalive 8 closed every connection beyond 8 after its response, so a
# second burst reopened them). Two bursts of 24 requests held 0.5 s each by the stub.
burst() {
  local pids=() i
  for i in $(seq 24); do
    curl -sS --max-time 10 -o /dev/null -H "Host: app.example.test" \
      "http://127.0.0.1:18080/.well-known/acme-challenge/hold-$i" 2>>"$WORK/curl.err" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
}
c0=$(connections); burst; c1=$(connections); burst; c2=$(connections)
first=$((c1 - c0 - 1)) second=$((c2 - c1 - 1))
expect "concurrent challenges: the first burst of 24 used at least 16 upstream connections at once (got $first)" \
  "$(( first >= 16 ))" 1
# The second burst may run more requests at once than the first did (under load the first reached, say,
# 18 of 24): it then opens that difference, never more than 24 - first. A pool that closed what it held
# beyond 8 would reopen at least 8 (second burst >= 16 at once). So: at most max(4, 24 - first), below 8.
allowed=$(( 24 - first > 4 ? 24 - first : 4 )); (( allowed > 7 )) && allowed=7
expect "concurrent challenges: the pool kept them, the second burst opened $second new ones (at most $allowed)" \
  "$(( second <= allowed ))" 1
finish
