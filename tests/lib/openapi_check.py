#!/usr/bin/python3
"""Checks docs/openapi.yaml against the kernel.

1. The (method, path) pairs in docs/openapi.yaml equal the route table in
   src/kernel/routes.c — no undocumented route, no documented route missing.
2. Each request given on the command line ("METHOD PATH") is sent to the
   running kernel; its status must be documented for that operation and its
   JSON body must validate against the documented schema.

Usage: openapi_check.py SPEC ROUTES_C BASE_URL "GET /v1/health" ...
Exits non-zero with a message naming the first mismatch.
"""
import json
import os
import re
import sys
import urllib.error
import urllib.request

import jsonschema
import yaml


def routes_from_c(path):
    text = open(path, encoding="utf-8").read()
    return {(m, p) for m, p in re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)"', text)}


def routes_from_spec(spec):
    out = set()
    for path, ops in spec["paths"].items():
        for method in ops:
            if method in ("get", "post", "put", "patch", "delete"):
                out.add((method.upper(), path))
    return out


def find_operation(spec, method, path):
    for pattern, ops in spec["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", pattern) + "$"
        if re.match(rx, path) and method.lower() in ops:
            return ops[method.lower()]
    return None


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"].lstrip("#/").split("/")
        node = spec
        for part in ref:
            node = node[part]
    return node


AUTH_RESPONSES = {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests"}


def check_request(spec, base, method, path):
    token = os.environ.get("WE_TOKEN")
    if path.startswith("!"):  # "GET !/v1/jobs": without a token
        path, token = path[1:], None
    req = urllib.request.Request(base + path, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, body = e.code, e.headers.get("Content-Type", ""), e.read()
    op = find_operation(spec, method, path)
    if op is None:
        # undocumented path: must be the generic error envelope
        schema = {"$ref": "#/components/schemas/ErrorEnvelope"}
    else:
        resp = op["responses"].get(str(status))
        # 401/403/429 apply to every operation that needs a token (its
        # security, or the spec's global one, is non-empty)
        if resp is None and status in AUTH_RESPONSES and op.get("security", spec.get("security")):
            resp = {"$ref": "#/components/responses/" + AUTH_RESPONSES[status]}
        if resp is None:
            sys.exit(f"{method} {path}: status {status} is not documented")
        resp = resolve(spec, resp)
        content = resp.get("content", {})
        media = ctype.split(";")[0].strip()
        if media not in content:
            sys.exit(f"{method} {path}: content type {media} not documented ({list(content)})")
        if media != "application/json":
            return
        schema = content[media]["schema"]
    doc = json.loads(body)
    validator = jsonschema.Draft202012Validator(
        schema, resolver=jsonschema.RefResolver.from_schema(spec))
    errors = sorted(validator.iter_errors(doc), key=str)
    if errors:
        sys.exit(f"{method} {path} ({status}): body does not match the spec: {errors[0].message}"
                 f" at {list(errors[0].absolute_path)}")


def main():
    spec_path, routes_c, base = sys.argv[1:4]
    spec = yaml.safe_load(open(spec_path, encoding="utf-8"))
    in_code, in_spec = routes_from_c(routes_c), routes_from_spec(spec)
    if in_code != in_spec:
        sys.exit(f"routes differ: only in code {sorted(in_code - in_spec)}, "
                 f"only in spec {sorted(in_spec - in_code)}")
    for item in sys.argv[4:]:
        method, path = item.split(" ", 1)
        check_request(spec, base, method, path)
    print(f"openapi: {len(in_code)} routes match; {len(sys.argv) - 4} responses valid")


if __name__ == "__main__":
    main()
