# Payload validation before anything reaches the backend: a content-type allowlist and a JSON
# Schema for the body.
#
# input.request.json is the parsed body when it is JSON; the gateway parses it only when a
# policy refers to it. json.match_schema takes the schema as an object (here) or a string;
# keep it self-contained: a "$ref" must be "#" or "#/definitions/NAME" ("#/$defs/NAME"); a
# remote or file reference, an "id" below the root, or references going round in a circle
# fail the call.
package examples.validation

default allow := false

allow if {
	content_type_ok
	schema_ok
}

allowed_types := {"application/json", "application/cloudevents+json"}

# "application/json; charset=utf-8" → "application/json"
media_type := lower(trim_space(split(input.request.headers["content-type"], ";")[0]))

content_type_ok if media_type in allowed_types

has_json if "json" in object.keys(input.request)

# json.match_schema reads a string argument as JSON text and fails on arrays, numbers and
# null (an evaluation error, so a 500): only an object is handed to it.
schema_result := json.match_schema(input.request.json, schema) if is_object(input.request.json)

schema_ok if schema_result[0]

schema := {
	"type": "object",
	"required": ["id", "type", "created", "data"],
	"additionalProperties": false,
	"properties": {
		"id": {"type": "string", "pattern": "^evt_[A-Za-z0-9]{8,56}$"},
		"type": {"enum": ["order.created", "order.paid", "order.cancelled"]},
		"created": {"type": "integer", "minimum": 0},
		"data": {
			"type": "object",
			"required": ["order_id", "amount", "currency"],
			"properties": {
				"order_id": {"type": "string", "minLength": 1, "maxLength": 64},
				"amount": {"type": "integer", "minimum": 0},
				"currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
			},
		},
	},
}

deny contains "missing content-type" if not input.request.headers["content-type"]

deny contains sprintf("content-type %s is not accepted", [media_type]) if {
	media_type
	not content_type_ok
}

deny contains "body is not JSON" if {
	content_type_ok
	not has_json
}

deny contains "body must be a JSON object" if {
	content_type_ok
	has_json
	not is_object(input.request.json)
}

deny contains sprintf("body: %s", [e.error]) if {
	content_type_ok
	some e in schema_result[1]
}

status := 415 if not content_type_ok
else := 422 if not schema_ok
