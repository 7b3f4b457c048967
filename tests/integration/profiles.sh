#!/usr/bin/env bash
# /v1/profiles: the system presets seeded by migration 0005 are listed,
# valid (each config is accepted again as a custom profile) and read-only
# (PUT/DELETE 409 WE-JOB-021); custom profiles are created (201), read,
# changed (name, description, config) and deleted (204); unknown ids are 404
# WE-JOB-003; every bad body is 422 WE-JOB-020 naming the field (or 400 for
# malformed JSON, 415 for another content type) and writes nothing; a
# duplicate id is 409 WE-JOB-022; a profile used by an unfinished job or by
# a ladder cannot be deleted (409 WE-JOB-023); ladders must name existing
# non-ladder profiles; responses match docs/openapi.yaml.
. "$(dirname "$0")/../lib/harness.sh"

h_start_pg
h_migrate_up
h_start_nats
h_start_kernel

SYSTEM="1080p-av1 1080p-h264 1080p-hevc 480p-h264 720p-h264 720p-vp9 hls-ladder"
ids() { h_jq '[.items[].id] | join(" ")'; }
profiles_count() { h_psql -c "SELECT count(*) FROM profiles"; }
# expect STATUS CODE WHAT: the last response's status and error code
expect() {
  h_eq "$1" "$H_STATUS" "$3: status ($H_BODY)"
  h_eq "$2" "$(h_jq .error.code)" "$3: code"
}
# valid SCHEMA: the last response body matches components/schemas/SCHEMA
valid() {
  /usr/bin/python3 - "$WE_SRC/docs/openapi.yaml" "$1" "$H_DIR/resp.body" <<'EOF' || h_fail "$1 does not match the spec: $H_BODY"
import json, sys, jsonschema, yaml
spec = yaml.safe_load(open(sys.argv[1]))
schema = {"$ref": "#/components/schemas/" + sys.argv[2]}
v = jsonschema.Draft202012Validator(schema, resolver=jsonschema.RefResolver.from_schema(spec))
errs = sorted(v.iter_errors(json.load(open(sys.argv[3]))), key=str)
if errs:
    sys.exit(f"{errs[0].message} at {list(errs[0].absolute_path)}")
EOF
}

# --- the system presets -------------------------------------------------------------
h_req GET /v1/profiles
h_eq 200 "$H_STATUS" "GET /v1/profiles"
h_eq 7 "$(h_jq .total)" "total"
h_eq "$(tr ' ' '\n' <<<"$SYSTEM" | sort | tr '\n' ' ' | sed 's/ $//')" "$(ids)" "system presets in id order"
h_eq true "$(h_jq 'all(.items[]; .system)')" "all system"
valid ProfileList
h_req GET '/v1/profiles?system=true'
h_eq 7 "$(h_jq .total)" "?system=true"
h_req GET '/v1/profiles?system=false'
h_eq "200 0" "$H_STATUS $(h_jq .total)" "?system=false"
h_req GET '/v1/profiles?system=maybe'
expect 400 WE-SYS-004 "?system=maybe"
h_contains "$(h_jq .error.message)" "system: expected true or false" "bad filter message"

h_req GET /v1/profiles/720p-h264
h_eq 200 "$H_STATUS" "GET 720p-h264"
h_eq "true libx264 1280 720 veryfast aac mp4 true" \
  "$(h_jq '[.system, .config.video.codec, .config.video.width, .config.video.height,
            .config.video.preset, .config.audio.codec, .config.container, .config.faststart]
           | map(tostring) | join(" ")')" "720p-h264 config"
valid Profile
h_req GET /v1/profiles/1080p-hevc
h_eq libx265 "$(h_jq .config.video.codec)" "1080p-hevc codec"
h_req GET /v1/profiles/720p-vp9
h_eq "libvpx-vp9 libopus webm" "$(h_jq '[.config.video.codec, .config.audio.codec, .config.container] | join(" ")')" "720p-vp9"
h_req GET /v1/profiles/1080p-av1
h_eq libsvtav1 "$(h_jq .config.video.codec)" "1080p-av1 codec"
h_req GET /v1/profiles/hls-ladder
h_eq 'hls ["1080p-h264","720p-h264","480p-h264"]' "$(h_jq '.config.packaging + " " + (.config.renditions | tojson)')" "ladder"

# every seeded config passes the API's validation
for id in $SYSTEM; do
  h_req GET "/v1/profiles/$id"
  cfg=$(jq -c .config <<<"$H_BODY")
  [ "$id" = hls-ladder ] || {
    h_req POST /v1/profiles "{\"id\":\"copy-$id\",\"name\":\"Copy\",\"config\":$cfg}"
    h_eq 201 "$H_STATUS" "seed $id accepted as a custom profile: $H_BODY"
  }
done
h_req POST /v1/profiles '{"id":"copy-ladder","name":"Copy","config":{"packaging":"hls","renditions":["1080p-h264","720p-h264","480p-h264"]}}'
h_eq 201 "$H_STATUS" "seed hls-ladder accepted: $H_BODY"
for id in $SYSTEM; do
  [ "$id" = hls-ladder ] && id=ladder
  h_req DELETE "/v1/profiles/copy-$id"
  h_eq 204 "$H_STATUS" "delete copy-$id"
done
h_eq 7 "$(profiles_count)" "copies gone"

# system presets are read-only
h_req PUT /v1/profiles/720p-h264 '{"name":"Mine now"}'
expect 409 WE-JOB-021 "PUT a system preset"
h_req DELETE /v1/profiles/720p-h264
expect 409 WE-JOB-021 "DELETE a system preset"
h_contains "$(h_jq .error.message)" "720p-h264 is a system profile" "read-only message"
h_eq "720p H.264" "$(h_psql -c "SELECT name FROM profiles WHERE id = '720p-h264'")" "preset unchanged"

# unknown ids
for m in GET PUT DELETE; do
  h_req "$m" /v1/profiles/nope '{"name":"x"}'
  expect 404 WE-JOB-003 "$m unknown profile"
  h_contains "$(h_jq .error.message)" "unknown profile nope" "$m unknown message"
done
h_req GET /v1/profiles/..%2Fetc
h_eq 404 "$H_STATUS" "hostile id"
h_req GET /v1/profiles/-x%20y
expect 404 WE-JOB-003 "invalid id"

# --- custom profiles: CRUD -------------------------------------------------------------
MINE='{"video":{"codec":"libx264","width":1280,"height":720,"crf":20,"preset":"fast","gop_s":2},
       "audio":{"codec":"aac","bitrate_kbps":160},"container":"mp4","faststart":true}'
h_req POST /v1/profiles "{\"id\":\"my-720p\",\"name\":\"Mine\",\"config\":$MINE}"
h_eq 201 "$H_STATUS" "POST my-720p: $H_BODY"
valid Profile
h_eq "my-720p Mine  false 20 160" \
  "$(h_jq '[.id, .name, .description, .system, .config.video.crf, .config.audio.bitrate_kbps]
           | map(tostring) | join(" ")')" "created profile"
created=$(h_jq .created_at)
h_req GET /v1/profiles/my-720p
h_eq "200 Mine" "$H_STATUS $(h_jq .name)" "GET my-720p"
h_req GET '/v1/profiles?system=false'
h_eq "1 my-720p" "$(h_jq .total) $(ids)" "custom list"
h_req GET /v1/profiles
h_eq 8 "$(h_jq .total)" "total with a custom profile"
h_eq my-720p "$(h_jq '.items[-1].id')" "custom after the presets"

h_req POST /v1/profiles "{\"id\":\"my-720p\",\"name\":\"Again\",\"config\":$MINE}"
expect 409 WE-JOB-022 "duplicate id"
h_contains "$(h_jq .error.message)" "profile my-720p exists" "duplicate message"
h_req POST /v1/profiles "{\"id\":\"720p-h264\",\"name\":\"Shadow\",\"config\":$MINE}"
expect 409 WE-JOB-022 "id of a system preset"

sleep 0.01
h_req PUT /v1/profiles/my-720p '{"name":"Mine 2","description":"for tests"}'
h_eq 200 "$H_STATUS" "PUT name: $H_BODY"
valid Profile
h_eq "Mine 2|for tests|20" "$(h_jq '[.name, .description, (.config.video.crf | tostring)] | join("|")')" "renamed, config kept"
[ "$(h_jq .updated_at)" \> "$created" ] || h_fail "updated_at not later than created_at"
h_eq "$created" "$(h_jq .created_at)" "created_at kept"
h_req PUT /v1/profiles/my-720p '{"config":{"video":{"codec":"libx265","crf":28},"audio":null,"container":"mkv"}}'
h_eq 200 "$H_STATUS" "PUT config: $H_BODY"
h_eq "libx265 null mkv Mine 2" "$(h_jq '[.config.video.codec, (.config.audio | tostring), .config.container, .name] | join(" ")')" "config replaced"
h_req PUT /v1/profiles/my-720p "{\"config\":$MINE}"
h_eq 200 "$H_STATUS" "PUT config back"

# --- bad bodies: 422 naming the field, nothing written ------------------------------------
before=$(h_psql -c "SELECT md5(string_agg(p::text, '' ORDER BY id)) FROM profiles p")
bad() { # bad METHOD PATH BODY MESSAGE
  h_req "$1" "$2" "$3"
  expect 422 WE-JOB-020 "$1 $3"
  h_contains "$(h_jq .error.message)" "$4" "message for $3"
}
cfg() { jq -c "$1" <<<"$MINE"; }
bad POST /v1/profiles "{\"name\":\"x\",\"config\":$MINE}" "id: expected [A-Za-z0-9]"
bad POST /v1/profiles "{\"id\":\"a/b\",\"name\":\"x\",\"config\":$MINE}" "id: expected"
bad POST /v1/profiles "{\"id\":\"-x\",\"name\":\"x\",\"config\":$MINE}" "id: expected"
bad POST /v1/profiles "{\"id\":\"ok\",\"config\":$MINE}" "name: expected a string of 1 to 128 characters"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"\",\"config\":$MINE}" "name: expected a string"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"description\":5,\"config\":$MINE}" "description: expected a string"
bad POST /v1/profiles '{"id":"ok","name":"x"}' "config: expected an object"
bad POST /v1/profiles '{"id":"ok","name":"x","config":[1]}' "config: expected an object"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"system\":true,\"config\":$MINE}" "system: unknown field"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.colour = 1')}" "config.colour: unknown key"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.video.crf = 52')}" \
  "config.video.crf: expected an integer from 0 to 51"
h_eq config.video.crf "$(h_jq .error.details.field)" "details.field"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.video.width = 1281')}" "config.video.width: expected an even integer"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.video.codec = "h263"')}" "config.video.codec: expected one of"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.video.bitrate_kbps = 3000')}" "give exactly one of video.crf and video.bitrate_kbps"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.container = "webm"')}" "config.video.codec: container webm needs a VP9 or AV1 encoder"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg 'del(.audio)')}" "config.audio: required"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.audio.sample_rate = 1')}" "config.audio.sample_rate: expected one of"
bad POST /v1/profiles "{\"id\":\"ok\",\"name\":\"x\",\"config\":$(cfg '.capability = "nvidia"')}" "config.capability: libx264 runs on workers with capability cpu"
bad PUT /v1/profiles/my-720p '{}' "body: expected at least one of name, description, config"
bad PUT /v1/profiles/my-720p '{"id":"other"}' "id: unknown field"
bad PUT /v1/profiles/my-720p "{\"config\":$(cfg '.video.gop_s = 30')}" "config.video.gop_s: expected a number of seconds from 0.5 to 20"
h_req POST /v1/profiles '{"id":"ok","name":'
expect 400 WE-SYS-004 "malformed JSON"
h_contains "$(h_jq .error.message)" "malformed JSON" "malformed message"
h_req POST /v1/profiles '[1]'
expect 400 WE-SYS-004 "not an object"
H_STATUS=$(curl -sS -o "$H_DIR/resp.body" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' \
  --data-binary '{}' "$H_KERNEL_URL/v1/profiles")
H_BODY=$(cat "$H_DIR/resp.body")
expect 415 WE-SYS-008 "text/plain body"
h_eq "$before" "$(h_psql -c "SELECT md5(string_agg(p::text, '' ORDER BY id)) FROM profiles p")" "nothing written by refused requests"

# --- ladders --------------------------------------------------------------------------
bad POST /v1/profiles '{"id":"l2","name":"L","config":{"packaging":"hls","renditions":["my-720p","nope"]}}' \
  "config.renditions[1]: unknown profile nope"
bad POST /v1/profiles '{"id":"l2","name":"L","config":{"packaging":"hls","renditions":["hls-ladder"]}}' \
  "config.renditions[0]: hls-ladder is a ladder itself"
bad POST /v1/profiles '{"id":"l2","name":"L","config":{"packaging":"hls","renditions":["l2"]}}' \
  "config.renditions[0]: unknown profile l2"
bad POST /v1/profiles '{"id":"l2","name":"L","config":{"packaging":"none","renditions":["my-720p"]}}' \
  "config.packaging: a ladder needs hls or dash"
h_req POST /v1/profiles '{"id":"my-ladder","name":"Ladder","config":{"packaging":"dash","renditions":["my-720p","480p-h264"]}}'
h_eq 201 "$H_STATUS" "POST ladder: $H_BODY"
valid Profile
bad PUT /v1/profiles/my-720p '{"config":{"packaging":"hls","renditions":["480p-h264"]}}' \
  "config.renditions: my-720p is a rendition of ladder my-ladder"
bad PUT /v1/profiles/my-ladder '{"config":{"packaging":"hls","renditions":["my-ladder"]}}' \
  "config.renditions[0]: my-ladder is a ladder itself"
h_req DELETE /v1/profiles/my-720p
expect 409 WE-JOB-023 "delete a rendition of a ladder"
h_contains "$(h_jq .error.message)" "rendition of ladder my-ladder" "ladder in-use message"

# --- in use by unfinished jobs -------------------------------------------------------------
h_req DELETE /v1/profiles/my-ladder
h_eq 204 "$H_STATUS" "delete the ladder"
job=$(h_psql -c "INSERT INTO jobs (source_url, profiles) VALUES ('fs://in/a.mp4', '{480p-h264,my-720p}') RETURNING id")
h_req DELETE /v1/profiles/my-720p
expect 409 WE-JOB-023 "delete a profile a queued job uses"
h_contains "$(h_jq .error.message)" "used by 1 unfinished job(s)" "in-use message"
h_psql -c "UPDATE jobs SET status = 'completed', finished_at = now() WHERE id = '$job'"
h_req DELETE /v1/profiles/my-720p
h_eq 204 "$H_STATUS" "delete once the job finished"
h_eq "" "$H_BODY" "204 has no body"
h_req GET /v1/profiles/my-720p
expect 404 WE-JOB-003 "deleted profile"
h_req DELETE /v1/profiles/my-720p
expect 404 WE-JOB-003 "deleted twice"
h_eq 7 "$(profiles_count)" "only the presets left"

# --- responses match the spec ---------------------------------------------------------------
h_req POST /v1/profiles "{\"id\":\"spec-check\",\"name\":\"S\",\"config\":$MINE}"
h_eq 201 "$H_STATUS" "POST spec-check"
/usr/bin/python3 "$WE_SRC/tests/lib/openapi_check.py" "$WE_SRC/docs/openapi.yaml" \
  "$WE_SRC/src/kernel/routes.c" "$H_KERNEL_URL" \
  "GET /v1/profiles" "GET /v1/profiles/720p-h264" "GET /v1/profiles/hls-ladder" \
  "GET /v1/profiles/spec-check" "GET /v1/profiles/nope" "POST /v1/profiles" \
  "PUT /v1/profiles/spec-check" "PUT /v1/profiles/720p-h264" "DELETE /v1/profiles/720p-h264" \
  "DELETE /v1/profiles/nope" \
  || h_fail "openapi check failed"
h_pass
