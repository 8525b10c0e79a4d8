package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/policy"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	lang string
	line int    // of the opening fence
	text string // between the fences
	skip string // why the doc test does not run it ("<!-- readme-test: skip: … -->" above it)
	// output is the plain block that follows this one with only prose between, if any: what
	// the README says the commands print.
	output string
}

var skipMarker = regexp.MustCompile(`<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->`)

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []readmeBlock
		cur    *readmeBlock
		body   strings.Builder
		skip   string
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: n, skip: skip}
			body.Reset()
			skip = ""
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.text = body.String()
			if cur.lang == "" && len(blocks) > 0 && blocks[len(blocks)-1].lang == "sh" && blocks[len(blocks)-1].output == "" {
				blocks[len(blocks)-1].output = cur.text
			}
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		default:
			if m := skipMarker.FindStringSubmatch(line); m != nil {
				skip = m[1]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("README.md:%d: a code fence is never closed", cur.line)
	}
	return blocks
}

// commands splits a shell block into commands: continuation lines joined, comments dropped.
func commands(text string) []string {
	var out []string
	var cmd strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cmd.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if before, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cmd.WriteString(before + " ")
			continue
		}
		cmd.WriteString(trimmed)
		c := cmd.String()
		if i := strings.Index(c, "  #"); i >= 0 { // a trailing comment
			c = strings.TrimSpace(c[:i])
		}
		out = append(out, c)
		cmd.Reset()
	}
	return out
}

// TestReadmeBlocks runs what README.md shows, so a false line fails the build: every shell
// command against the real binary (the gateway on the shipped gateway.toml for the curl
// examples, their answers compared with the output the README prints), every Rego block
// compiled, every JSON block parsed. A block the test cannot run says why in a
// `<!-- readme-test: skip: … -->` comment above it.
func TestReadmeBlocks(t *testing.T) {
	bin := hookwallBinary(t)
	blocks := readmeBlocks(t)
	var gw *readmeGateway
	ran := 0
	goExample := ""
	for _, b := range blocks {
		where := fmt.Sprintf("README.md:%d", b.line)
		switch {
		case b.skip != "":
			t.Logf("%s: skipped: %s", where, b.skip)
			continue
		case b.lang == "rego":
			if _, err := policy.LoadModules(context.Background(), map[string]string{"readme.rego": b.text}, nil, policy.Options{}); err != nil {
				t.Errorf("%s: the Rego example does not compile: %v", where, err)
			}
		case b.lang == "go":
			goExample = b.text // the filter the next shell block builds as ./myfilter
		case b.lang == "json":
			var v any
			if err := json.Unmarshal([]byte(b.text), &v); err != nil {
				t.Errorf("%s: the JSON example does not parse: %v", where, err)
			}
		case b.lang == "sh":
			dir := "../.."
			if strings.Contains(b.text, "./myfilter") {
				dir = myFilterModule(t, goExample)
			}
			for _, c := range commands(b.text) {
				if gw == nil && strings.Contains(c, "127.0.0.1:8080") {
					gw = startReadmeGateway(t, bin)
				}
				runReadmeCommand(t, where, dir, bin, gw, c, b.output)
			}
		default:
			continue
		}
		ran++
	}
	if ran < 5 {
		t.Fatalf("only %d README blocks ran: the parser lost them", ran)
	}
}

// runReadmeCommand runs one README command and checks it.
func runReadmeCommand(t *testing.T, where, dir, bin string, gw *readmeGateway, c, output string) {
	t.Helper()
	fields := strings.Fields(c)
	switch {
	case c == "go test ./...":
		return // this very suite
	case fields[0] == "go" && len(fields) > 1 && (fields[1] == "test" || fields[1] == "build"):
		// As written: a package's tests, or a build.
	case c == "go run ./cmd/hookwall":
		// The gateway on the shipped config: the curl examples below run against it.
		return
	case strings.HasPrefix(c, "go run ./cmd/hookwall "):
		c = bin + " " + strings.TrimPrefix(c, "go run ./cmd/hookwall ")
	case fields[0] == "hookwall":
		c = bin + strings.TrimPrefix(c, "hookwall")
	case fields[0] == "curl":
		if gw == nil {
			t.Errorf("%s: %s: no gateway to send to", where, c)
			return
		}
		c = gw.rewrite(c)
	default:
		t.Errorf("%s: the doc test does not know how to run %q: teach it, or mark the block with <!-- readme-test: skip: why -->", where, c)
		return
	}
	cmd := exec.Command("bash", "-c", c)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s: %s: %v\n%s", where, c, err, out)
		return
	}
	if fields[0] == "curl" && output != "" {
		compareHTTP(t, where, string(out), output)
	}
}

// compareHTTP checks a curl -si answer against the README's: the status line, and the JSON
// body's fields that do not change from one request to the next.
func compareHTTP(t *testing.T, where, got, want string) {
	t.Helper()
	gotStatus, _, _ := strings.Cut(strings.ReplaceAll(got, "\r", ""), "\n")
	wantStatus, _, _ := strings.Cut(want, "\n")
	if strings.TrimSpace(gotStatus) != strings.TrimSpace(wantStatus) {
		t.Errorf("%s: status %q, the README says %q\n%s", where, gotStatus, wantStatus, got)
		return
	}
	gotBody, wantBody := lastLine(got), lastLine(want)
	var g, w map[string]any
	if json.Unmarshal([]byte(wantBody), &w) != nil {
		return // the README shows no JSON body
	}
	if err := json.Unmarshal([]byte(gotBody), &g); err != nil {
		t.Errorf("%s: the body is not JSON: %q", where, gotBody)
		return
	}
	for k, v := range w {
		if k == "request_id" {
			continue // new on every request
		}
		if fmt.Sprint(g[k]) != fmt.Sprint(v) {
			t.Errorf("%s: body %s = %v, the README says %v", where, k, g[k], v)
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r", ""))
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// myFilterModule lays out the README's Go filter as a user would: ./myfilter in a module of
// the user's own, which takes the SDK from this checkout with the two lines the README gives.
func myFilterModule(t *testing.T, src string) string {
	t.Helper()
	if !strings.HasPrefix(src, "package main") {
		t.Fatalf("README.md: the Go filter example is not a whole file (package main first):\n%s", src)
	}
	sdk, err := filepath.Abs("../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod := "module example.com/filters\n\ngo 1.24\n\nrequire github.com/hookwall/hookwall/sdk v0.0.0\n\nreplace github.com/hookwall/hookwall/sdk => " + sdk + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "myfilter"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "myfilter", "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readmeGateway is the binary serving a copy of the shipped gateway.toml on free ports.
type readmeGateway struct {
	public, admin, sink string
}

// rewrite points a README command at the test's gateway.
func (g *readmeGateway) rewrite(c string) string {
	return strings.NewReplacer("127.0.0.1:8080", g.public, "127.0.0.1:9090", g.admin, "127.0.0.1:8081", g.sink).Replace(c)
}

func startReadmeGateway(t *testing.T, bin string) *readmeGateway {
	t.Helper()
	g := &readmeGateway{public: freePort(t), admin: freePort(t), sink: freePort(t)}
	raw, err := os.ReadFile("../../gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.0.1:8080", "127.0.0.1:9090", "127.0.0.1:8081"} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("gateway.toml no longer uses %s, which the README's commands name", want)
		}
	}
	// Beside the shipped file, so its relative paths resolve as they do for a user.
	cfg := filepath.Join("..", "..", fmt.Sprintf(".readme-test-%d.toml", os.Getpid()))
	if err := os.WriteFile(cfg, []byte(g.rewrite(string(raw))), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(cfg) })
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + g.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway on the shipped config did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The demo sink answers too.
	if c, err := net.DialTimeout("tcp", g.sink, 5*time.Second); err == nil {
		c.Close()
	} else {
		t.Fatalf("demo sink: %v", err)
	}
	return g
}
