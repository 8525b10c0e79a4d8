package config

import (
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// noZero are the keys whose default is taken when they are left out, and for which 0 means
// nothing the gateway does. Written out as 0 ("0s", "0B") they are refused: a reader takes
// `max_conns = 0` for "no limit" or `max_body = 0` for "no body", and the loader would
// otherwise give the default in their place without a word. Keys whose 0 means something
// ([[filter]] timeout, [server] timer_slack, [policies] cross_check) are not listed.
var noZero = []string{
	"server.max_body", "server.max_header", "server.max_headers", "server.max_json_depth",
	"server.max_json_elements", "server.read_timeout", "server.write_timeout",
	"server.idle_timeout", "server.max_conns", "server.max_conns_per_ip",
	"policies.poll_interval",
	"state.timeout", "state.max_keys", "state.max_bytes",
	"delivery.max_pending",
	"filter.memory", "filter.pool", "filter.pool_max", "filter.max_uses",
	"route.timeout", "route.max_response_body",
	"oauth.leeway", "oauth.max_stale",
}

// refuseWrittenZeros reports every noZero key that md says was written and c holds as 0.
// It runs before the defaults fill the zeros in.
func (c *Config) refuseWrittenZeros(md toml.MetaData, v *validator) {
	seen := map[string]int{} // [[table]] name → tables of it read so far
	for _, k := range md.Keys() {
		if len(k) == 1 && md.Type(k...) == "ArrayHash" {
			seen[k[0]]++
			continue
		}
		if len(k) != 2 || !slices.Contains(noZero, k.String()) {
			continue
		}
		table := fieldByTag(reflect.ValueOf(c).Elem(), k[0])
		path := []any{k[0]}
		if table.Kind() == reflect.Slice {
			i := seen[k[0]] - 1
			if i < 0 || i >= table.Len() {
				continue
			}
			table, path = table.Index(i), append(path, i)
		}
		if f := fieldByTag(table, k[1]); f.IsValid() && f.IsZero() {
			v.errAt(append(path, k[1]), "0 is not a value here: leave the key out for its default, or give a positive one")
		}
	}
}

// fieldByTag is the field of struct s whose toml tag is name; the zero Value if none.
func fieldByTag(s reflect.Value, name string) reflect.Value {
	if s.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	t := s.Type()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag == name {
			return s.Field(i)
		}
	}
	return reflect.Value{}
}
