package policy

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkDefaultGitHubPolicy evaluates the shipped routes.github policy on a signed 2 KB push,
// with the compiled evaluator and with OPA's topdown, in the same run.
func BenchmarkDefaultGitHubPolicy(b *testing.B) {
	set, err := Load(context.Background(), "../../policies", Options{Secrets: secretMap{"github": []byte("hookwall-demo-secret")}})
	if err != nil {
		b.Fatal(err)
	}
	q, err := set.Prepare(context.Background(), "routes.github")
	if err != nil {
		b.Fatal(err)
	}
	body := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 2000) + `"}`
	req := requestValue("POST", "/hooks/github", map[string]string{
		"X-Hub-Signature-256": "sha256=" + hmacHex("hookwall-demo-secret", body),
		"X-GitHub-Event":      "push",
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"Content-Type":        "application/json",
	}, body)
	req.Insert(ast_remote_ip, ast_remote_val)
	in := doc(req)
	d, err := q.Eval(context.Background(), in, nil)
	if err != nil || !d.Allow || d.Denied() || d.Dedupe == nil || d.RateLimit == nil {
		b.Fatalf("the benchmark request must be allowed with obligations: %+v %v", d, err)
	}
	for _, c := range []struct {
		name string
		o    *EvalOption
	}{{"compiled", nil}, {"opa", &EvalOption{OPA: true}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Eval(context.Background(), in, c.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
