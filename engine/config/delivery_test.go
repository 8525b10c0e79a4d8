package config

import (
	"strings"
	"testing"
	"time"
)

func TestDeliveryKeys(t *testing.T) {
	c, err := Parse("/etc/hookwall/gateway.toml", []byte(policiesRoute))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Delivery
	if d.Store != "sqlite" || d.Path != "/etc/hookwall/hookwall-deliveries.db" || d.KeepDelivered.D() != DefaultKeepDelivered || d.KeepDead.D() != DefaultKeepDead || d.MaxPending != DefaultMaxPending {
		t.Fatalf("defaults: %+v", d)
	}
	if c.Routes[0].Delivery != DeliveryDirect || c.AnyQueued() {
		t.Fatal("a route is direct by default")
	}
	c, err = Parse("/etc/hookwall/gateway.toml", []byte(`
[delivery]
path = "/var/lib/hookwall/d.db"
keep_delivered = "0"
keep_dead = "1h"
max_pending = 10
`+policiesRoute+`delivery = "queued"
retry = ["1s", "0", "10m"]
max_in_flight = 4
max_rate = 2.5
ordered = true
destinations = ["https://audit.example/in", "http://127.0.0.1:9001"]
`))
	if err != nil {
		t.Fatal(err)
	}
	d = c.Delivery
	if d.Path != "/var/lib/hookwall/d.db" || d.KeepDelivered != 0 || d.KeepDead.D() != time.Hour || d.MaxPending != 10 {
		t.Fatalf("values: %+v", d)
	}
	if r := c.Routes[0]; !r.Queued() || !c.AnyQueued() || len(r.Retry) != 3 || r.Retry[2].D() != 10*time.Minute || r.Retry[1] != 0 || r.MaxInFlight != 4 || r.MaxRate != 2.5 || !r.Ordered || len(r.Destinations) != 2 {
		t.Fatalf("route: %+v", r)
	}
}

func TestDeliveryKeysInvalid(t *testing.T) {
	t.Setenv("PGSSLMODE", "") // the delivery.url cases read it
	t.Setenv("PGHOST", "")
	cases := []struct {
		name, toml string
		line       int
		key, msg   string
	}{
		{"store", "[delivery]\nstore = \"mysql\"\n" + policiesRoute, 2, "delivery.store", `must be "sqlite" or "postgres"`},
		{"postgres without url", "[delivery]\nstore = \"postgres\"\n" + policiesRoute, 1, "delivery.url", `required when store = "postgres"`},
		{"postgres url scheme", "[delivery]\nstore = \"postgres\"\nurl = \"mysql://u:p@h/db\"\n" + policiesRoute, 3, "delivery.url", "scheme must be postgres or postgresql"},
		{"postgres url unverified", "[delivery]\nstore = \"postgres\"\nurl = \"postgres://hookwall:hunter2@db.example/hooks\"\n" + policiesRoute, 3, "delivery.url", "would connect to db.example:5432 over TLS without checking the server's certificate"},
		{"postgres url require", "[delivery]\nstore = \"postgres\"\nurl = \"postgres://hookwall:hunter2@db.example/hooks?sslmode=require\"\n" + policiesRoute, 3, "delivery.url", "add sslmode=verify-full to the url"},
		{"postgres url allow", "[delivery]\nstore = \"postgres\"\nurl = \"postgres://hookwall:hunter2@10.1.2.3/hooks?sslmode=allow\"\n" + policiesRoute, 3, "delivery.url", "would connect to 10.1.2.3:5432 in clear text"},
		{"postgres with path", "[delivery]\nstore = \"postgres\"\nurl = \"postgres://h/db\"\npath = \"d.db\"\n" + policiesRoute, 4, "delivery.path", `only applies with store = "sqlite"`},
		{"sqlite with url", "[delivery]\nurl = \"postgres://h/db\"\n" + policiesRoute, 2, "delivery.url", `only applies with store = "postgres"`},
		{"max_pending", "[delivery]\nmax_pending = -1\n" + policiesRoute, 2, "delivery.max_pending", "must be > 0"},
		{"inspect_bodies without token", "[delivery]\ninspect_bodies = true\n" + policiesRoute, 2, "delivery.inspect_bodies", "needs [admin] token"},
		{"unknown encryption key", "[delivery]\nencryption_keys = [\"k2026\"]\n" + policiesRoute, 2, "delivery.encryption_keys", `unknown secret "k2026"`},
		{"sign unknown secret", policiesRoute + "delivery = \"queued\"\nsign = \"nope\"\n", 8, "route[1].sign", `unknown secret "nope"`},
		{"sign on direct", "[secrets]\nwh = {env = \"WH\"}\n" + policiesRoute + "sign = \"wh\"\n", 9, "route[1].sign", `only applies with delivery = "queued"`},
		{"max_in_flight", policiesRoute + "delivery = \"queued\"\nmax_in_flight = -1\n", 8, "route[1].max_in_flight", "must be >= 0"},
		{"max_rate", policiesRoute + "delivery = \"queued\"\nmax_rate = -0.5\n", 8, "route[1].max_rate", "must be >= 0"},
		{"max_rate on direct", policiesRoute + "max_rate = 5\n", 7, "route[1].max_rate", `only applies with delivery = "queued"`},
		{"destination scheme", policiesRoute + "delivery = \"queued\"\ndestinations = [\"ftp://u:pw@x/\"]\n", 8, "route[1].destinations", "scheme must be http or https"},
		{"destination query", policiesRoute + "delivery = \"queued\"\ndestinations = [\"http://u:pw@x/a?b\"]\n", 8, "route[1].destinations", `"http://xxxxx@x/a?xxxxx" must not carry a query`},
		{"destination port", policiesRoute + "delivery = \"queued\"\ndestinations = [\"http://u:pw@x:70000/a\"]\n", 8, "route[1].destinations", `port "70000" of "http://xxxxx@x:70000/a" is not one of 1 to 65535`},
		{"destinations on direct", policiesRoute + "destinations = [\"http://x\"]\n", 7, "route[1].destinations", `only applies with delivery = "queued"`},
		{"unknown key", "[delivery]\nretries = 3\n" + policiesRoute, 2, "delivery.retries", "unknown key"},
		{"mode", policiesRoute + "delivery = \"later\"\n", 7, "route[1].delivery", `must be "direct" or "queued"`},
		{"retry on direct", policiesRoute + "retry = [\"1s\"]\n", 7, "route[1].retry", `only applies with delivery = "queued"`},
		{"retry duration", policiesRoute + "delivery = \"queued\"\nretry = [\"soon\"]\n", 8, "route.retry", "invalid duration"},
		{"retry too long", policiesRoute + "delivery = \"queued\"\nretry = [" + strings.Repeat(`"1s",`, MaxRetries+1) + "]\n", 8, "route[1].retry", "at most 100 retries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.toml, tc.line, tc.key, tc.msg) })
	}
}

// A PostgreSQL delivery store off this machine is accepted with its certificate verified, or
// in clear text the url asks for (as a compose network's examples/fleet does); one on this
// machine (loopback, a Unix socket) whatever its sslmode, as the tests' own.
func TestDeliveryPostgresURLVerifiedOrLocal(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	t.Setenv("PGHOST", "")
	for _, u := range []string{
		"postgres://hookwall:hunter2@db.example/hooks?sslmode=verify-full",
		"postgres://hookwall:hunter2@postgres:5432/hooks?sslmode=disable",
		"postgres://hookwall:hunter2@127.0.0.1:5432/hooks?sslmode=disable",
		"postgres://hookwall:hunter2@localhost/hooks",
		"postgres://hookwall@/hooks?host=/var/run/postgresql&sslmode=disable",
	} {
		if _, err := Parse("g.toml", []byte("[delivery]\nstore = \"postgres\"\nurl = \""+u+"\"\n"+policiesRoute)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
