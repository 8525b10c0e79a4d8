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
		if strings.HasSuffix(key, "timeout") || key == "policies.poll_interval" || strings.HasPrefix(key, "oauth.") {
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
			src = fmt.Sprintf("[[oauth]]\nname = \"a\"\njwks_url = \"https://idp.test/k\"\naudiences = [\"a\"]\n\n[[oauth]]\nname = \"b\"\njwks_url = \"https://idp.test/k\"\naudiences = [\"a\"]\n%s = %s\n%s", name, zero(key), minimal)
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
	// Keys whose 0 is a setting of its own.
	c, err := Parse("g.toml", []byte("[server]\ntimer_slack = \"0s\"\n[policies]\ncross_check = 0\ncross_check_max = 0\n[[filter]]\nname = \"f\"\nmodule = \"f.wasm\"\ntimeout = \"0\"\n"+minimal))
	if err != nil {
		t.Fatalf("zeros that mean something: %v", err)
	}
	if c.Server.TimerSlack != 0 || c.Policies.CrossCheck != 0 || c.Policies.CrossCheckMax != 0 || !c.Filters[0].NoDeadline {
		t.Errorf("zeros that mean something were not kept: %+v %+v %+v", c.Server, c.Policies, c.Filters[0])
	}
}
