package examples.validation_test

import data.examples.validation

event := {
	"id": "evt_1a2b3c4d5e6f",
	"type": "order.paid",
	"created": 1800000000,
	"data": {"order_id": "ord_42", "amount": 1999, "currency": "EUR"},
}

req(ct, body) := {"request": {"headers": {"content-type": ct}, "json": body}}

test_valid_event if {
	validation.allow with input as req("application/json", event)
	validation.allow with input as req("Application/JSON; charset=utf-8", event)
	validation.allow with input as req("application/cloudevents+json", event)
	count(validation.deny) == 0 with input as req("application/json", event)
}

test_content_type_refused if {
	not validation.allow with input as req("text/plain", event)
	validation.status == 415 with input as req("text/plain", event)
	validation.deny == {"content-type text/plain is not accepted"} with input as req("text/plain", event)
	validation.status == 415 with input as {"request": {"headers": {}, "json": event}}
	validation.deny == {"missing content-type"} with input as {"request": {"headers": {}, "json": event}}
}

test_body_not_json if {
	not validation.allow with input as {"request": {"headers": {"content-type": "application/json"}, "body": "{oops"}}
	validation.deny == {"body is not JSON"} with input as {"request": {"headers": {"content-type": "application/json"}, "body": "{oops"}}
	validation.status == 422 with input as {"request": {"headers": {"content-type": "application/json"}, "body": "{oops"}}
}

test_schema_violations if {
	bad := [
		object.remove(event, ["id"]),
		object.union(event, {"id": "evt_short"}),
		object.union(event, {"type": "order.refunded"}),
		object.union(event, {"created": "yesterday"}),
		object.union(event, {"created": 1.5}),
		object.union(event, {"extra": true}),
		object.union(event, {"data": {"order_id": "ord_42", "amount": -1, "currency": "EUR"}}),
		object.union(event, {"data": {"order_id": "ord_42", "amount": 1, "currency": "eur"}}),
		[event],
		null,
		"a string",
		`{"id": "evt_in_a_string"}`,
		42,
	]
	every body in bad {
		not validation.allow with input as req("application/json", body)
		validation.status == 422 with input as req("application/json", body)
		count(validation.deny) > 0 with input as req("application/json", body)
	}
}

test_schema_reasons_name_the_field if {
	reasons := validation.deny with input as req("application/json", object.remove(event, ["type"]))
	some reason in reasons
	contains(reason, "type is required")
}

test_non_object_bodies if {
	validation.deny == {"body must be a JSON object"} with input as req("application/json", [event])
	validation.deny == {"body must be a JSON object"} with input as req("application/json", null)
}
