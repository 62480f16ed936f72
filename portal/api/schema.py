"""The error envelope in the OpenAPI schema: every operation documents the
answers every endpoint can give ({"success": false, "message", "error", "data"}),
so a client (and schemathesis) knows a 400, 401, 403, 404, 429 or 500 is not a
surprise; and the server's own 414 for a request line over its limit."""

ENVELOPE = "ErrorEnvelope"
ENVELOPE_SCHEMA = {
    "type": "object",
    "description": "Every API error has this shape.",
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "error": {"type": "string", "description": "The details (for a validation error: each field's problem)."},
        "data": {"type": "object", "nullable": True, "additionalProperties": True,
                 "description": "null, or more detail (for a validation error: {\"fields\": …})."},
    },
    "required": ["success", "message", "error", "data"],
}
ERRORS = {
    "400": "Invalid request: a bad body or query parameter.",
    "401": "Authentication required.",
    "403": "Permission denied.",
    "404": "Not found.",
    "405": "Method not allowed.",
    "409": "Conflict: the resource's current state does not allow it.",
    "413": "Request body too large.",
    "429": "Too many requests (see Retry-After).",
    "500": "Internal server error (logged).",
}
# Answered by gunicorn before the request reaches Django (its limit_request_line, 4,094
# bytes), as its own HTML page: a client sending a huge query string gets it.
URI_TOO_LONG = {"description": "URI too long: the request line is over the server's limit (4,094 bytes).",
                "content": {"text/html": {"schema": {"type": "string"}}}}
PUBLIC_SKIPS = ("401", "403")
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")


def document_error_envelope(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})[ENVELOPE] = ENVELOPE_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ENVELOPE}"}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            queued = responses.get("202", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if queued.get("$ref", "").endswith("/SyncRun") and "200" not in responses:
                # every queueing endpoint answers 200 with the run already queued or running
                # for the same operation, target and parameters (portal.operations.enqueue)
                responses["200"] = {"description": "The same run, already queued or running.",
                                    "content": {"application/json": {"schema": queued}}}
            anonymous = {} in operation.get("security", [])
            for code, description in ERRORS.items():
                if code in PUBLIC_SKIPS and anonymous and len(operation.get("security", [])) == 1:
                    continue
                if code == "413" and method in ("get", "head", "delete"):
                    continue
                responses.setdefault(code, {"description": description, "content": {"application/json": {"schema": ref}}})
            responses.setdefault("414", URI_TOO_LONG)
    return result
