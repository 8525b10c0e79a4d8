package filters

import (
	"os/exec"
	"testing"
)

// TestSDKModule runs the filter SDK's own tests. The SDK is a module of its own (so a filter
// pulls in nothing of the gateway's), which the root module's `go test ./...` does not reach:
// this test keeps the README's one test command covering it.
func TestSDKModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	for _, args := range [][]string{{"vet", "./..."}, {"test", "-count=1", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = "../../sdk"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("(cd sdk && go %v): %v\n%s", args, err, out)
		}
		t.Logf("(cd sdk && go %v):\n%s", args, out)
	}
}
