//go:build !race

package webhook

import "testing"

// allocBudget is the per-call allocation ceiling of each scheme on a 2 KB
// body, as measured (hmac.New alone is 5); a change that allocates per body
// byte or per header item shows up here.
var allocBudget = map[string]float64{
	"github": 6, "shopify": 6, "linear": 6, "pagerduty": 7, "square": 8, "hmac": 8,
	"stripe": 9, "slack": 9, "zoom": 9, "paddle": 9, "standard": 13,
	"discord": 4, "sendgrid": 30, "twilio": 30,
}

func TestAllocs(t *testing.T) {
	for _, c := range benchCases(t) {
		k := c.newKey(t)
		r := c.signed(t, k, testNow)
		o := c.options(k)
		got := testing.AllocsPerRun(50, func() {
			if res, _ := Verify(c.scheme, r, o); !res.Valid {
				t.Fatalf("%s: %s", c.scheme, res.Reason)
			}
		})
		budget, ok := allocBudget[c.scheme]
		if !ok {
			t.Errorf("%s: no allocation budget", c.scheme)
			continue
		}
		if got > budget {
			t.Errorf("%s: %.0f allocs per Verify, budget %.0f", c.scheme, got, budget)
		}
		t.Logf("%s: %.0f allocs", c.scheme, got)
	}
}
