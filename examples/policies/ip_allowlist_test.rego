package examples.ip_allowlist_test

import data.examples.ip_allowlist

# Behaviour is tested against fixed ranges, so `hookwall ranges update` never breaks a test;
# the shipped file is only checked for its shape.
ranges := {
	"github": {"hooks": ["192.30.252.0/22", "140.82.112.0/20", "2606:50c0::/32"]},
	"stripe": {"webhooks": ["3.18.12.63/32", "54.187.216.72/32"]},
}

req(ip) := {"request": {"remote_ip": ip}}

test_github_ipv4_ranges if {
	ip_allowlist.allow with input as req("192.30.252.1") with data.ranges as ranges
	ip_allowlist.allow with input as req("140.82.127.254") with data.ranges as ranges
	ip_allowlist.labels.sender == "github" with input as req("140.82.112.10") with data.ranges as ranges
}

test_github_ipv6_range if {
	ip_allowlist.allow with input as req("2606:50c0:8000::154") with data.ranges as ranges
}

test_stripe_addresses if {
	ip_allowlist.allow with input as req("3.18.12.63") with data.ranges as ranges
	ip_allowlist.labels.sender == "stripe" with input as req("54.187.216.72") with data.ranges as ranges
}

test_others_denied if {
	not ip_allowlist.allow with input as req("203.0.113.7") with data.ranges as ranges
	not ip_allowlist.allow with input as req("127.0.0.1") with data.ranges as ranges
	not ip_allowlist.allow with input as req("2001:db8::1") with data.ranges as ranges
	# One past the end of 192.30.252.0/22 (192.30.252.0 - 192.30.255.255).
	not ip_allowlist.allow with input as req("192.31.0.0") with data.ranges as ranges
	# A Stripe entry is a single address: its neighbour is not a sender.
	not ip_allowlist.allow with input as req("3.18.12.64") with data.ranges as ranges
	ip_allowlist.deny == {"address 203.0.113.7 is not a published GitHub or Stripe webhook sender"} with input as req("203.0.113.7")
		with data.ranges as ranges
}

# The shipped (or updated) data must be dated, sourced and non-empty; each entry a CIDR.
test_ranges_data_is_well_formed if {
	regex.match(`^\d{4}-\d{2}-\d{2}$`, data.ranges.updated)
	startswith(data.ranges.github.source, "https://")
	startswith(data.ranges.stripe.source, "https://")
	count(data.ranges.github.hooks) > 0
	count(data.ranges.stripe.webhooks) > 0
	every cidr in array.concat(data.ranges.github.hooks, data.ranges.stripe.webhooks) {
		net.cidr_is_valid(cidr)
	}
}

# Every shipped range admits its own first address: the policy reads the real file.
test_shipped_ranges_admit_their_addresses if {
	every cidr in array.concat(data.ranges.github.hooks, data.ranges.stripe.webhooks) {
		ip := split(cidr, "/")[0]
		ip_allowlist.allow with input as req(ip)
	}
}
