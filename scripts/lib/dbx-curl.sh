# shellcheck shell=bash
# shellcheck disable=SC2034  # DBX_STATUS is read by the scripts that source this file
# Shell helpers for talking to the Dropbox API (or `sreg emulator`) with curl.
# Sourced by scripts/quickstart.sh and scripts/lib/bench.sh (the benchmarks); not run on its own.
#
# The access token is read from $DBX_TOKEN and reaches curl as a config file on stdin
# (`-K -`), so it never shows in argv (ps, /proc/*/cmdline) or in a log.

# dbx_arg JSON: prints JSON made "header-safe" for Dropbox-API-Arg (every char ≥ U+007F as
# \uXXXX, as the SDKs do). JSON is any JSON text; it is re-serialized compactly.
dbx_arg() {
  node -e '
    const v = JSON.parse(process.argv[1]);
    process.stdout.write(JSON.stringify(v).replace(/[\u007f-\uffff]/g,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")));
  ' "$1"
}

# dbx_json_string S: prints S as a JSON string literal ("...", escaped).
dbx_json_string() {
  node -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"
}

# dbx_curl CURL_ARGS...: curl with the bearer token from $DBX_TOKEN (via stdin config).
dbx_curl() {
  [ -n "${DBX_TOKEN:-}" ] || { echo "dbx_curl: DBX_TOKEN is not set" >&2; return 1; }
  curl -sS -K - "$@" <<<"header = \"Authorization: Bearer ${DBX_TOKEN}\""
}

# dbx_rpc URL ROUTE JSON [OUTFILE]: POST an RPC call; prints the body (or writes OUTFILE) and
# returns non-zero unless the status is 200. The status is left in $DBX_STATUS.
dbx_rpc() {
  local url="$1" route="$2" body="$3" out="${4:-}" tmp status
  tmp="$(mktemp)"
  status="$(dbx_curl -o "$tmp" -w '%{http_code}' -X POST "$url/2/$route" \
    -H 'Content-Type: application/json' --data-binary "$body")" || { rm -f "$tmp"; DBX_STATUS=000; return 1; }
  DBX_STATUS="$status"
  if [ -n "$out" ]; then mv "$tmp" "$out"; else cat "$tmp"; rm -f "$tmp"; fi
  [ "$status" = 200 ]
}

# dbx_upload_file URL ROUTE ARG_JSON FILE [OUTFILE]: a content-upload call with FILE as the
# body (streamed, with Content-Length). Prints the result body (or writes OUTFILE); returns
# non-zero unless the status is 200. The status is left in $DBX_STATUS.
dbx_upload_file() {
  local url="$1" route="$2" arg out="${5:-}" file="$4" tmp status
  arg="$(dbx_arg "$3")"
  tmp="$(mktemp)"
  status="$(dbx_curl -o "$tmp" -w '%{http_code}' -X POST "$url/2/$route" \
    -H 'Content-Type: application/octet-stream' -H "Dropbox-API-Arg: $arg" -H 'Expect:' \
    -T "$file")" || { rm -f "$tmp"; DBX_STATUS=000; return 1; }
  DBX_STATUS="$status"
  if [ -n "$out" ]; then mv "$tmp" "$out"; else cat "$tmp"; rm -f "$tmp"; fi
  [ "$status" = 200 ]
}
