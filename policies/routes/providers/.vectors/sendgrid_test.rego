# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.sendgrid and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "sendgrid" holds the provider's vector secret).
package routes.providers.vectors.sendgrid_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1600112502

# Vector sendgrid-eventwebhook-single (expect valid).
test_sendgrid_eventwebhook_single if {
	d := data.routes.providers.sendgrid with input as {"request": req_sendgrid_eventwebhook_single}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "sendgrid:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "sendgrid:ef3e4606385ea6adbc55fceb6117cf2784040cf145a010e5ef4afc2bc7c70452", "ttl": "48h"}
	d.labels.delivery == "sendgrid:ef3e4606385ea6adbc55fceb6117cf2784040cf145a010e5ef4afc2bc7c70452"
}

req_sendgrid_eventwebhook_single := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/sendgrid",
	"uri": "/hooks/sendgrid",
	"headers": {
		"x-twilio-email-event-webhook-signature": "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=",
		"x-twilio-email-event-webhook-timestamp": "1600112502",
	},
	"body": "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]\r\n",
	"remote_ip": "192.0.2.10",
}

# Vector sendgrid-eventwebhook-no-crlf (expect invalid: trailing CRLF stripped (body normalisation breaks signature)).
test_sendgrid_eventwebhook_no_crlf if {
	d := data.routes.providers.sendgrid with input as {"request": req_sendgrid_eventwebhook_no_crlf}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_sendgrid_eventwebhook_no_crlf := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/sendgrid",
	"uri": "/hooks/sendgrid",
	"headers": {
		"x-twilio-email-event-webhook-signature": "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=",
		"x-twilio-email-event-webhook-timestamp": "1600112502",
	},
	"body": "[{\"email\":\"hello@world.com\",\"event\":\"dropped\",\"reason\":\"Bounced Address\",\"sg_event_id\":\"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA\",\"sg_message_id\":\"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0\",\"smtp-id\":\"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>\",\"timestamp\":1600112492}]",
	"remote_ip": "192.0.2.10",
}
