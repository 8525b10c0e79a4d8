package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestWrittenZerosAreRefused: a key whose default fills its absence, written as 0, is an
// error naming the file, line and key (the table's index too), not a silent default; keys
// whose 0 means something keep it.
func TestWrittenZerosAreRefused(t *testing.T) {
	zero := func(key string) string {
		switch key {
		case "watch.window", "watch.baseline", "watch.block_for", "watch.max_block_for", "oauth.leeway", "oauth.max_stale":
			return `"0s"`
		}
		if strings.HasSuffix(key, "timeout") || key == "policies.poll_interval" {
			return `"0s"`
		}
		return "0"
	}
	for _, key := range noZero {
		table, name, _ := strings.Cut(key, ".")
		var src string
		// Line numbers: the written zero is always on line 4 of a table, or of the second
		// [[table]] for the tables that repeat, so the error must name the index too.
		switch table {
		case "filter":
			src = fmt.Sprintf("[[filter]]\nname = \"f\"\nmodule = \"f.wasm\"\n\n[[filter]]\nname = \"g\"\nmodule = \"g.wasm\"\n%s = %s\n%s", name, zero(key), minimal)
		case "route":
			src = minimal + fmt.Sprintf("\n[[route]]\nname = \"b\"\npath = \"/b\"\nupstream = \"http://127.0.0.1:9000\"\npolicy = \"p\"\n%s = %s\n", name, zero(key))
		case "oauth":
			src = fmt.Sprintf("[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\n\n[[oauth]]\nname = \"b\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\n%s = %s\n%s", name, zero(key), minimal)
		case "policies":
			src = fmt.Sprintf("[policies]\nbundle_url = \"https://bundles.example/b.tar.gz\"\n%s = %s\n%s", name, zero(key), minimal)
		default:
			src = fmt.Sprintf("[%s]\n%s = %s\n%s", table, name, zero(key), minimal)
		}
		want := map[string]string{
			"filter":   "g.toml:8: filter[2]." + name + ": 0 is not a value here",
			"route":    "g.toml:13: route[2]." + name + ": 0 is not a value here",
			"policies": "g.toml:3: policies." + name + ": 0 is not a value here",
			"oauth":    "g.toml:10: oauth[2]." + name + ": 0 is not a value here",
		}[table]
		if want == "" {
			want = "g.toml:2: " + key + ": 0 is not a value here"
		}
		_, err := Parse("g.toml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s = %s: err = %v\nwant it to contain %q", key, zero(key), err, want)
		}
	}
	// A class's thresholds, whose absence takes the [watch] values.
	for _, field := range noZeroClass {
		src := fmt.Sprintf("[watch]\nmin_events = 5\n[watch.class.signature]\n%s = 0\n%s", field, minimal)
		want := "g.toml:3: watch.class.signature." + field + ": 0 is not a value here"
		if _, err := Parse("g.toml", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("[watch.class.signature] %s = 0: err = %v\nwant it to contain %q", field, err, want)
		}
	}
	// Keys whose 0 is a setting of its own.
	c, err := Parse("g.toml", []byte("[server]\ntimer_slack = \"0s\"\n[policies]\ncross_check = 0\ncross_check_max = 0\n[[filter]]\nname = \"f\"\nmodule = \"f.wasm\"\ntimeout = \"0\"\n"+minimal))
	if err != nil {
		t.Fatalf("zeros that mean something: %v", err)
	}
	if c.Server.TimerSlack != 0 || c.Policies.CrossCheck != 0 || c.Policies.CrossCheckMax != 0 || !c.Filters[0].NoDeadline {
		t.Errorf("zeros that mean something were not kept: %+v %+v %+v", c.Server, c.Policies, c.Filters[0])
	}
}

// TestKeysAreReadWhateverTheirSpelling: whether a key was written decides a default, a
// "0 means" setting and an "only applies with" error, so it is asked of the decoded file,
// not of its lines: a dotted key, an inline table or a quoted key counts, and a line
// inside a multi-line string does not.
func TestKeysAreReadWhateverTheirSpelling(t *testing.T) {
	const route = "[[route]]\nname = \"q\"\npath = \"/q\"\nupstream = \"http://127.0.0.1:9\"\npolicy = \"r.q\"\n"

	// A filter's config text that holds a line like a timeout leaves the deadline on.
	c, err := Parse("g.toml", []byte("[[filter]]\nname = \"f\"\nmodule = \"f.wasm\"\nconfig = \"\"\"\nendpoint = \"https://example.com\"\ntimeout = \"2s\"\n\"\"\"\n"+route+"filters = [\"f\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Filters[0]; f.NoDeadline || f.Timeout.D() != DefaultFilterTimeout {
		t.Errorf("a filter with no timeout key: NoDeadline %v, timeout %v; want the default deadline %v", f.NoDeadline, f.Timeout.D(), DefaultFilterTimeout)
	}

	// keep_dead and keep_delivered written as 0 (kept until purged) in every spelling.
	for name, head := range map[string]string{
		"dotted": "delivery.keep_dead = \"0\"\ndelivery.keep_delivered = \"0\"\n",
		"inline": "delivery = { keep_dead = \"0\", keep_delivered = \"0\" }\n",
		"quoted": "[delivery]\n'keep_dead' = \"0\"\n\"keep_delivered\" = \"0\"\n",
	} {
		c, err := Parse("g.toml", []byte(head+route+"delivery = \"queued\"\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Delivery.KeepDead != 0 || c.Delivery.KeepDelivered != 0 {
			t.Errorf("%s: keep_dead %v, keep_delivered %v; the file says 0", name, c.Delivery.KeepDead.D(), c.Delivery.KeepDelivered.D())
		}
	}

	// A filter's timeout of 0 written in an inline table still means no deadline.
	c, err = Parse("g.toml", []byte("filter = [{ name = \"f\", module = \"f.wasm\", timeout = \"0\" }]\n"+route))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Filters[0].NoDeadline {
		t.Error(`an inline filter's timeout = "0" was not read as no deadline`)
	}

	for name, src := range map[string]string{
		"queued keys on an inline direct route": `route = [{name = "a", path = "/a", upstream = "http://127.0.0.1:9", policy = "a.b", ordered = true, retry = ["1s"]}]` + "\n",
		"a written zero in an inline route":     `route = [{name = "a", path = "/a", upstream = "http://127.0.0.1:9", policy = "a.b", timeout = "0s"}]` + "\n",
		"a written zero as a dotted key":        "server.max_body = 0\n" + route,
		"max_rate = nan":                        route + "delivery = \"queued\"\nmax_rate = nan\n",
		"max_rate = inf":                        route + "delivery = \"queued\"\nmax_rate = inf\n",
	} {
		if _, err := Parse("g.toml", []byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestStateURLIsCheckedBeforeStart: a Redis URL the gateway cannot use is refused by the
// loader (and so by check), naming the key, not at start; a password in it is not quoted.
func TestStateURLIsCheckedBeforeStart(t *testing.T) {
	for u, want := range map[string]string{
		"not a url":                    "scheme must be redis or rediss",
		"http://cache:6379":            `scheme must be redis or rediss, not "http"`,
		"redis://:s3cret@/0":           "missing host",
		"redis://:s3cret@cache:6379/%": "invalid URL",
		"redis://:s3cret":              "invalid URL: invalid port",
	} {
		_, err := Parse("g.toml", []byte("[state]\nbackend = \"redis\"\nurl = \""+u+"\"\n"+minimal))
		if err == nil || !strings.Contains(err.Error(), "g.toml:3: state.url: "+want) {
			t.Errorf("url %q: %v, want %q", u, err, want)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("url %q: the error quotes the password: %v", u, err)
		}
	}
	for _, u := range []string{"redis://cache:6379/0", "rediss://u:p@cache:6380"} {
		if _, err := Parse("g.toml", []byte("[state]\nbackend = \"redis\"\nurl = \""+u+"\"\n"+minimal)); err != nil {
			t.Errorf("url %q: %v", u, err)
		}
	}
}
