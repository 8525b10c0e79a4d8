package config

import (
	"encoding"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestReadmeConfigurationTableNamesEveryKey: every key the loader accepts has a row in the
// README's configuration table, and every key a row names is one the loader accepts. The
// keys are read from Config's toml tags, the loader's own source of them: a key added
// without a row, or a row left behind by a key removed or renamed, fails here.
func TestReadmeConfigurationTableNamesEveryKey(t *testing.T) {
	documented := readmeConfigKeys(t, readmeConfigRows(t))
	accepted := map[string]bool{}
	tomlKeys(reflect.TypeFor[Config](), "", false, accepted)
	for _, k := range slices.Sorted(maps.Keys(accepted)) {
		if !documented[k] {
			t.Errorf("the loader accepts %s; the README's configuration table has no row for it", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(documented)) {
		if !accepted[k] {
			t.Errorf("the README's configuration table names %s; the loader does not accept it", k)
		}
	}
	if len(accepted) < 100 {
		t.Errorf("read %d keys from Config, want the whole configuration", len(accepted))
	}
}

// readmeConfigRows returns the rows of the README's configuration table that name a table
// or key ("| `[server] listen` | … |"), as written.
func readmeConfigRows(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "\n## Configuration (`gateway.toml`)\n")
	if !ok {
		t.Fatal("README.md has no section \"Configuration (`gateway.toml`)\"")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var rows []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| `[") {
			rows = append(rows, line)
		}
	}
	if len(rows) == 0 {
		t.Fatal("no key rows in the README's configuration table")
	}
	return rows
}

// readmeConfigKeys reads the keys the configuration table's rows name, as "[server] listen",
// "[[route]] path" or "[watch.class.NAME] ratio": a row's first cell names a table and a key,
// then more keys of the same table ("`[server] read_timeout`, `write_timeout`", "`[[route]]
// path` / `prefix`"); a cell naming a table alone ("`[watch]`") names no key.
func readmeConfigKeys(t *testing.T, rows []string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	tick := regexp.MustCompile("`([^`]+)`")
	for _, line := range rows {
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		section := ""
		for i, m := range tick.FindAllStringSubmatch(first, -1) {
			name := m[1]
			if i == 0 {
				end := strings.LastIndex(name, "]") + 1
				section, name = name[:end], strings.TrimSpace(name[end:])
			}
			if name != "" {
				keys[section+" "+name] = true
			}
		}
	}
	return keys
}

// tomlKeys adds the keys t's toml tags name, under table (a struct or a map of structs is a
// table of its own; an array of structs is written [[name]]; an embedded struct's keys are
// its container's, as the decoder reads them). A map's keys are the user's
// names: a map of values is written "[secrets] NAME", a map of tables "[watch.class.NAME]".
func tomlKeys(t reflect.Type, table string, array bool, out map[string]bool) {
	header := "[" + table + "]"
	if array {
		header = "[[" + table + "]]"
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if f.Anonymous && name == "" && isTable(f.Type) { // embedded: its keys are the table's
			tomlKeys(f.Type, table, array, out)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		sub := name
		if table != "" {
			sub = table + "." + name
		}
		ft := f.Type
		switch {
		case isTable(ft):
			tomlKeys(ft, sub, false, out)
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			tomlKeys(ft.Elem(), sub, true, out)
		case ft.Kind() == reflect.Map && isTable(ft.Elem()) && table != "":
			tomlKeys(ft.Elem(), sub+".NAME", false, out)
		case ft.Kind() == reflect.Map:
			out["["+sub+"] NAME"] = true
		default:
			out[header+" "+name] = true
		}
	}
}

// isTable reports whether a value of t is written as a TOML table: a struct that does not
// decode itself from a value.
func isTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := reflect.PointerTo(t)
	return !p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) && !p.Implements(reflect.TypeFor[toml.Unmarshaler]())
}
