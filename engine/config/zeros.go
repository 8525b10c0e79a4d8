package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
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
	"policies.poll_interval", "watch.ipv6_prefix", "watch.window", "watch.baseline",
	"watch.min_events", "watch.ratio", "watch.block_for", "watch.max_block_for",
	"watch.max_sources",
	"state.timeout", "state.max_keys", "state.max_bytes",
	"delivery.max_pending",
	"filter.memory", "filter.pool", "filter.pool_max", "filter.max_uses",
	"route.timeout", "route.max_response_body",
	"oauth.leeway", "oauth.max_stale", "oauth.max_keys",
}

// noZeroClass are the keys of a [watch.class.NAME] table whose absence takes the [watch]
// value, refused written as 0 as noZero's are.
var noZeroClass = []string{"min_events", "ratio"}

// refuseWrittenZeros reports every noZero key that the file writes and c holds as 0. It
// runs before the defaults fill the zeros in.
func (c *Config) refuseWrittenZeros(v *validator) {
	// check refuses field of table t, at path, when the file writes it and it holds 0.
	check := func(t reflect.Value, field string, path []any, instead string) {
		if f := fieldByTag(t, field); f.IsValid() && f.IsZero() && v.set.has(path...) {
			v.errAt(path, "0 is not a value here: leave the key out for %s, or give a positive one", instead)
		}
	}
	for _, key := range noZero {
		name, field, _ := strings.Cut(key, ".")
		table := fieldByTag(reflect.ValueOf(c).Elem(), name)
		if table.Kind() == reflect.Slice {
			for i := range table.Len() {
				check(table.Index(i), field, []any{name, i, field}, "its default")
			}
			continue
		}
		check(table, field, []any{name, field}, "its default")
	}
	for _, class := range slices.Sorted(maps.Keys(c.Watch.Class)) {
		wc := reflect.ValueOf(c.Watch.Class[class].WatchRule)
		for _, field := range noZeroClass {
			check(wc, field, []any{"watch", "class", class, field}, "the [watch] value")
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
		if t.Field(i).Anonymous { // an embedded struct's keys are the table's own
			if f := fieldByTag(s.Field(i), name); f.IsValid() {
				return f
			}
		}
	}
	return reflect.Value{}
}
