# The console (console/): built with npm and served by nginx the way the CDN serves it when
# deployed (sourced by tools/run and tools/stack; needs lib.sh). nginx runs as the user who runs
# tools/run, with its configuration, pid and temporary files under $KURT_STATE_DIR/console/ and its
# logs in $KURT_STATE_DIR/log/:
# - /assets/* (hashed by Vite): Cache-Control public, max-age=31536000, immutable; a missing one
#   is a 404, never index.html (a stale page must not get HTML for its script);
# - index.html, and every other path (the app's own routes): index.html with no-cache;
# - /v1/*: proxied to the edge, on the same origin (as CloudFront routes /v1/* deployed), unbuffered
#   so that Server-Sent Events and downloads stream.

KURT_CONSOLE_DIR=$KURT_ROOT/console
# Vite 8 needs Node.js 20.19 or newer.
KURT_CONSOLE_NODE_MIN=20.19

# console_build: npm ci when the lock file changed since the last one, then npm run build when
# a source is newer than the build (dist/). The build fails when the first load's JavaScript is
# over its budget (console/scripts/check-size.mjs).
console_build() {
  local dir=$KURT_CONSOLE_DIR lock_sum
  command -v npm >/dev/null || apt_install nodejs npm
  node -e "const [a,b]=process.versions.node.split('.').map(Number),[x,y]='$KURT_CONSOLE_NODE_MIN'.split('.').map(Number);process.exit(a>x||(a===x&&b>=y)?0:1)" ||
    die "the console needs Node.js $KURT_CONSOLE_NODE_MIN or newer; $(node --version) found"
  lock_sum=$(sha256sum "$dir/package-lock.json" | cut -c1-64)
  if [ "$(cat "$dir/node_modules/.kurt-lock-sha256" 2>/dev/null)" != "$lock_sum" ]; then
    log "console: npm ci"
    (cd "$dir" && npm ci --no-audit --no-fund >&2) || die "console: npm ci failed"
    echo "$lock_sum" >"$dir/node_modules/.kurt-lock-sha256"
  fi
  if [ ! -s "$dir/dist/index.html" ] || [ -n "$(find "$dir/src" "$dir/scripts" "$dir/index.html" \
    "$dir/vite.config.ts" "$dir/package-lock.json" -newer "$dir/dist/index.html" -print -quit)" ]; then
    log "console: npm run build"
    (cd "$dir" && npm run build >&2) || die "console: the build failed"
  fi
}

_console_pid() {
  local pid
  pid=$(head -n1 "$KURT_STATE_DIR/console/nginx.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "nginx" || return 1
  echo "$pid"
}

# console_start EDGE_URL: serves console/dist on 127.0.0.1:$KURT_CONSOLE_PORT, /v1/ going to
# EDGE_URL; sets KURT_CONSOLE_URL.
console_start() {
  local edge=${1#http://} dir=$KURT_STATE_DIR/console user_line=""
  edge=${edge%/}
  apt_install nginx
  console_stop
  mkdir -p "$dir/tmp" "$KURT_STATE_DIR/log"
  # As root, the workers would otherwise run as nobody and could not read the checkout.
  [ "$(id -u)" = 0 ] && user_line="user root;"
  cat >"$dir/nginx.conf" <<CONF
# Written by tools/run (tools/console.sh): the CDN's stand-in for the console.
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $KURT_STATE_DIR/log/console-nginx.log warn;
events { worker_connections 512; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log $KURT_STATE_DIR/log/console-nginx.access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  sendfile on;
  server_tokens off;
  gzip on;
  gzip_vary on;
  gzip_types text/css application/javascript application/json image/svg+xml;
  upstream kurt_edge {
    server $edge;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$KURT_CONSOLE_PORT;
    root $KURT_CONSOLE_DIR/dist;
    location /v1/ {
      proxy_pass http://kurt_edge;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      # The edge down or restarting: an error body like the edge's own, which the console shows.
      error_page 502 504 = @edge_unreachable;
    }
    location @edge_unreachable {
      default_type application/json;
      add_header Cache-Control "no-store" always;
      return 502 '{"code":14,"message":"the API is not reachable (the console\'s proxy got no answer from the edge)","details":[]}';
    }
    location /assets/ {
      add_header Cache-Control "public, max-age=31536000, immutable";
      try_files \$uri =404;
    }
    location / {
      add_header Cache-Control "no-cache";
      try_files \$uri /index.html;
    }
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$KURT_STATE_DIR/log/console-nginx.log" ||
    die "console: nginx did not start; see $KURT_STATE_DIR/log/console-nginx.log"
  export KURT_CONSOLE_URL=http://127.0.0.1:$KURT_CONSOLE_PORT
  local deadline=$((SECONDS + 10))
  until curl -sf -o /dev/null "$KURT_CONSOLE_URL/"; do
    [ $SECONDS -lt $deadline ] || die "console: nginx not answering on $KURT_CONSOLE_URL"
    sleep 0.1
  done
  log "console: $KURT_CONSOLE_URL (nginx, pid $(_console_pid))"
}

# console_stop: stops the console's nginx, if ours is running.
console_stop() {
  local pid
  pid=$(_console_pid) || return 0
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  [ -d "/proc/$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  rm -f "$KURT_STATE_DIR/console/nginx.pid"
}
