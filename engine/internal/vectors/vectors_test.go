package vectors

import "testing"

func TestLoad(t *testing.T) {
	vs := Load(t)
	if len(vs) != 46 {
		t.Fatalf("%d vectors, want the 46 published vectors", len(vs))
	}
	for _, v := range vs {
		if v.Name == "" || (v.Expect != "valid" && v.Expect != "invalid") || v.Key() == "" {
			t.Errorf("incomplete vector %+v", v)
		}
	}
}
