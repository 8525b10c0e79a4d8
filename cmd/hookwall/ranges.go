package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The providers' published lists of webhook sender addresses.
const (
	defaultRangesFile = "policies/ranges/data.json"
	defaultGitHubMeta = "https://api.github.com/meta"
	defaultStripeIPs  = "https://stripe.com/files/ips/ips_webhooks.json"
	// rangesMaxBody bounds a provider's answer (GitHub's /meta is a few hundred KiB).
	rangesMaxBody = 16 << 20
)

// rangesFile is policies/ranges/data.json, loaded by the gateway as data.ranges.
type rangesFile struct {
	Updated string     `json:"updated"`
	Method  string     `json:"method"`
	GitHub  githubData `json:"github"`
	Stripe  stripeData `json:"stripe"`
}

type githubData struct {
	Source string   `json:"source"`
	Field  string   `json:"field"`
	Hooks  []string `json:"hooks"`
}

type stripeData struct {
	Source   string   `json:"source"`
	Field    string   `json:"field"`
	Webhooks []string `json:"webhooks"`
}

const rangesUsage = `usage: hookwall ranges update [-o FILE] [--github-url URL] [--stripe-url URL] [--timeout D]

Fetches GitHub's webhook ranges (the "hooks" field of /meta) and Stripe's webhook IPs
(ips_webhooks.json), and rewrites FILE (default policies/ranges/data.json), the policy data
read as data.ranges. Nothing is written unless both lists are fetched and valid. Reload the
gateway afterwards (SIGHUP or POST /-/reload) unless it watches the policy directory.
`

// cmdRanges implements `hookwall ranges update`.
func cmdRanges(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "update" {
		fmt.Fprint(stderr, rangesUsage)
		return 2
	}
	fs := flag.NewFlagSet("ranges update", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rangesUsage); fs.PrintDefaults() }
	out := fs.String("o", defaultRangesFile, "data file to write")
	ghURL := fs.String("github-url", defaultGitHubMeta, "GitHub meta endpoint")
	stURL := fs.String("stripe-url", defaultStripeIPs, "Stripe webhook IP list")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each fetch")
	if err := fs.Parse(args[1:]); err != nil || !noArgs(fs, stderr) {
		return 2
	}
	if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
		fmt.Fprintf(stderr, "hookwall ranges update: -o %s is a directory: name the file (e.g. %s)\n", *out, filepath.Join(*out, "data.json"))
		return 2
	}
	// The default is relative to the working directory: run elsewhere, it would make a
	// policies tree there that no gateway reads, and say it updated the ranges.
	if root := filepath.Dir(filepath.Dir(defaultRangesFile)); !flagSet(fs, "o") {
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			fmt.Fprintf(stderr, "hookwall ranges update: no %s directory here: run it from the directory of gateway.toml, or name the file with -o (e.g. -o /etc/hookwall/%s)\n", root, defaultRangesFile)
			return 2
		}
	}
	for _, u := range []string{*ghURL, *stURL} {
		if err := fetchableURL(u); err != nil {
			fmt.Fprintf(stderr, "hookwall ranges update: %v\n", err)
			return 2
		}
	}
	client := &http.Client{Timeout: *timeout, CheckRedirect: checkRangesRedirect}
	hooks, err := fetchRanges(ctx, client, *ghURL, githubHooks)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall ranges update: github: %v\n", err)
		return 1
	}
	webhooks, err := fetchRanges(ctx, client, *stURL, stripeWebhooks)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall ranges update: stripe: %v\n", err)
		return 1
	}
	doc := rangesFile{
		Updated: time.Now().UTC().Format(time.DateOnly),
		Method:  "fetched by `hookwall ranges update`",
		GitHub:  githubData{Source: *ghURL, Field: "hooks", Hooks: hooks},
		Stripe:  stripeData{Source: *stURL, Field: "WEBHOOKS", Webhooks: webhooks},
	}
	if err := writeJSONAtomic(*out, doc); err != nil {
		fmt.Fprintf(stderr, "hookwall ranges update: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: github hooks %d ranges, stripe webhooks %d addresses (updated %s)\n", *out, len(hooks), len(webhooks), doc.Updated)
	return 0
}

// checkRangesRedirect holds a redirect to what fetchableURL allows, never from https to http,
// and to three hops: the first URL's checks would mean nothing if a redirect could leave them.
func checkRangesRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
		return fmt.Errorf("redirect from https to %s", req.URL.Scheme)
	}
	return fetchableURL(req.URL.String())
}

// fetchableURL allows https, and plain http to loopback only (tests, a local mirror): the
// ranges decide who may send webhooks, so they must not be open to tampering in transit.
func fetchableURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q: want an https URL (plain http only to a loopback address)", raw)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// githubHooks reads the "hooks" list of GitHub's /meta document.
func githubHooks(body []byte) ([]string, error) {
	var m struct {
		Hooks []string `json:"hooks"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("not the JSON of /meta: %w", err)
	}
	return m.Hooks, nil
}

// stripeWebhooks reads ips_webhooks.json ({"WEBHOOKS": [...]}), or its text twin
// ips_webhooks.txt (one address per line).
func stripeWebhooks(body []byte) ([]string, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var m struct {
			Webhooks []string `json:"WEBHOOKS"`
		}
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, fmt.Errorf("not the JSON of ips_webhooks.json: %w", err)
		}
		return m.Webhooks, nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

func fetchRanges(ctx context.Context, client *http.Client, u string, parse func([]byte) ([]string, error)) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "hookwall/"+version+" (ranges update)")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, rangesMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > rangesMaxBody {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", u, rangesMaxBody)
	}
	list, err := parse(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return normalizeRanges(list)
}

// normalizeRanges turns each entry into a CIDR (a bare address becomes /32 or /128, as
// net.cidr_contains wants), drops duplicates and keeps the provider's order. An invalid entry
// or an empty list is an error: better the old file than a wrong or empty allowlist.
func normalizeRanges(in []string) ([]string, error) {
	seen := map[netip.Prefix]bool{}
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			pp, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR: %w", s, err)
			}
			p = pp.Masked()
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address: %w", s, err)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p.String())
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the list is empty")
	}
	return out, nil
}

// writeJSONAtomic writes v to path through a temporary file in the same directory, so a
// gateway watching the directory never loads half a file.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".ranges-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return werr
	}
	return nil
}
