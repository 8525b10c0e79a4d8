package filter

import (
	"iter"
	"sort"

	"github.com/valyala/fasthttp"
)

// Message is what a filter may change in a request or a response, copied out of it: its
// method and URI (requests), status (responses), headers by name (repeated values joined with
// ", ") and body. Tools that show what a filter did (hookwall filter test, eval) take one
// before and one after the call and compare them with Diff.
type Message struct {
	Method, URI string
	Status      int
	Headers     map[string]string
	Body        string
}

// RequestMessage copies what a filter may change in r.
func RequestMessage(r *fasthttp.Request) Message {
	return Message{Method: string(r.Header.Method()), URI: string(r.Header.RequestURI()), Headers: headerMap(r.Header.All()), Body: string(r.Body())}
}

// ResponseMessage copies what a filter may change in r.
func ResponseMessage(r *fasthttp.Response) Message {
	return Message{Status: r.StatusCode(), Headers: headerMap(r.Header.All()), Body: string(r.Body())}
}

func headerMap(all iter.Seq2[[]byte, []byte]) map[string]string {
	m := map[string]string{}
	for k, v := range all {
		name := string(k)
		if prev, ok := m[name]; ok {
			m[name] = prev + ", " + string(v)
		} else {
			m[name] = string(v)
		}
	}
	return m
}

// Changes is the difference between two Messages; every field is empty when nothing changed.
type Changes struct {
	Method  *Change           `json:"method,omitempty"`
	URI     *Change           `json:"uri,omitempty"`
	Status  *Change           `json:"status,omitempty"`
	Set     map[string]string `json:"headers_set,omitempty"`
	Removed []string          `json:"headers_removed,omitempty"`
	Body    *Change           `json:"body,omitempty"`
}

// Change is one value before and after.
type Change struct {
	From any `json:"from"`
	To   any `json:"to"`
}

// Empty reports whether nothing changed.
func (c *Changes) Empty() bool {
	return c.Method == nil && c.URI == nil && c.Status == nil && len(c.Set) == 0 && len(c.Removed) == 0 && c.Body == nil
}

// Diff returns what changed from a to b.
func Diff(a, b Message) *Changes {
	c := &Changes{}
	if a.Method != b.Method {
		c.Method = &Change{a.Method, b.Method}
	}
	if a.URI != b.URI {
		c.URI = &Change{a.URI, b.URI}
	}
	if a.Status != b.Status {
		c.Status = &Change{a.Status, b.Status}
	}
	for k, v := range b.Headers {
		if old, ok := a.Headers[k]; !ok || old != v {
			if c.Set == nil {
				c.Set = map[string]string{}
			}
			c.Set[k] = v
		}
	}
	for k := range a.Headers {
		if _, ok := b.Headers[k]; !ok {
			c.Removed = append(c.Removed, k)
		}
	}
	sort.Strings(c.Removed)
	if a.Body != b.Body {
		c.Body = &Change{a.Body, b.Body}
	}
	return c
}
