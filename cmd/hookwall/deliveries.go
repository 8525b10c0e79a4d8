package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/gateway"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

const deliveriesUsage = `usage: hookwall deliveries <list|show|replay|purge|rekey> [flags] [ID]

  list                         the newest deliveries (--route, --state, --since, --until, --limit,
                               --format text|json)
  show ID                      one delivery with its attempts
  replay ID                    deliver it again, its retry schedule restarted
  replay --route R --state S   replay every delivery the filter selects (--since, --until too)
  purge ID                     delete it
  rekey                        reseal every delivery under the first of [delivery]
                               encryption_keys, so the other keys can be retired; it also
                               seals every delivery it finds in the clear (the gateway
                               delivers none of those): run it right after setting keys

The admin API of the running gateway is found from -c gateway.toml ([admin] listen and
token), or given with --admin http://127.0.0.1:9090.
`

// cmdDeliveries talks to the admin API of a running gateway.
func cmdDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, deliveriesUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("deliveries "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlags(fs)
	adminURL := fs.String("admin", "", "admin API base URL (default: from [admin] listen, https when it has tls_cert)")
	route := fs.String("route", "", "only this route")
	state := fs.String("state", "", "only this state: pending, delivered, dead")
	since := fs.String("since", "", "received at or after: RFC 3339, or a duration ago (1h)")
	until := fs.String("until", "", "received before: RFC 3339, or a duration ago")
	limit := fs.Int("limit", 0, "at most this many (list; default 100)")
	format := fs.String("format", "text", "list output: text or json")
	// Flags may come before or after the id.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	c, err := adminTarget(*cfgPath, *adminURL)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall deliveries: %v\n", err)
		return 1
	}
	q := url.Values{}
	for k, v := range map[string]string{"route": *route, "state": *state, "since": *since, "until": *until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *limit > 0 {
		q.Set("limit", fmt.Sprint(*limit))
	}
	needID := func() (string, bool) {
		if len(pos) != 1 {
			fmt.Fprintf(stderr, "hookwall deliveries %s: one delivery id, please\n", sub)
			return "", false
		}
		return url.PathEscape(pos[0]), true
	}
	var status int
	var body []byte
	switch sub {
	case "list":
		status, body, err = c.do(ctx, "GET", "/-/deliveries?"+q.Encode())
		if err == nil && status == 200 && *format == "text" {
			return printDeliveries(stdout, stderr, body)
		}
	case "show":
		id, ok := needID()
		if !ok {
			return 2
		}
		status, body, err = c.do(ctx, "GET", "/-/deliveries/"+id)
	case "replay":
		if len(pos) == 0 {
			status, body, err = c.do(ctx, "POST", "/-/deliveries/replay?"+q.Encode())
			break
		}
		id, ok := needID()
		if !ok {
			return 2
		}
		status, body, err = c.do(ctx, "POST", "/-/deliveries/"+id+"/replay")
	case "purge":
		id, ok := needID()
		if !ok {
			return 2
		}
		status, body, err = c.do(ctx, "DELETE", "/-/deliveries/"+id)
	case "rekey":
		status, body, err = c.do(ctx, "POST", "/-/deliveries/rekey")
	default:
		fmt.Fprint(stderr, deliveriesUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "hookwall deliveries %s: %v\n", sub, err)
		return 1
	}
	if status != 200 {
		fmt.Fprintf(stderr, "hookwall deliveries %s: %d %s", sub, status, decisionlog.AppendControlsEscaped(nil, body))
		return 1
	}
	_, _ = stdout.Write(decisionlog.AppendControlsEscaped(nil, body))
	return 0
}

// adminTarget returns a client of the admin API: its base URL explicit or from the config's
// [admin] listen (https when [admin] tls_cert is set), and the config's token.
func adminTarget(cfgPath, explicit string) (adminClient, error) {
	cfg, cerr := config.Load(cfgPath)
	var c adminClient
	pin := func() error {
		if cerr != nil || cfg.Admin.TLSCert == "" {
			return nil
		}
		hc, err := pinnedClient(cfg.Admin.TLSCert)
		if err != nil {
			return fmt.Errorf("%s: admin.tls_cert: %w", cfgPath, err)
		}
		c.http = hc
		return nil
	}
	if cerr == nil {
		c.token = cfg.Admin.Token
	}
	if explicit != "" {
		c.base = strings.TrimSuffix(explicit, "/")
		// An https URL given by hand is still the config's listener, pinned; a plain one
		// needs no certificate.
		if strings.HasPrefix(c.base, "https://") {
			if err := pin(); err != nil {
				return c, err
			}
		}
		return c, nil
	}
	if cerr != nil {
		return c, fmt.Errorf("no --admin, and the config does not load: %w", cerr)
	}
	host, port, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil {
		return c, fmt.Errorf("%s: admin.listen: %w", cfgPath, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if err := pin(); err != nil {
		return c, err
	}
	scheme := "http://"
	if c.http != nil {
		scheme = "https://"
	}
	c.base = scheme + net.JoinHostPort(host, port)
	return c, nil
}

// pinnedClient is an HTTP client that accepts, over TLS, only the certificate in the PEM file
// certFile (its first certificate): the admin listener's own, which the CLI reads from the same config. A
// pin, not a chain: the CLI usually dials a loopback address the certificate does not name.
func pinnedClient(certFile string) (*http.Client, error) {
	raw, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	// The first certificate, as tls.X509KeyPair takes it: a file may hold the key too.
	var want []byte
	for rest := raw; want == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%s: no PEM certificate", certFile)
		}
		if b.Type == "CERTIFICATE" {
			want = b.Bytes
		}
	}
	tc := &tls.Config{
		MinVersion: tlsconf.MinVersion,
		// The chain and name checks are replaced by VerifyPeerCertificate's comparison with the
		// pinned certificate, which it makes on every handshake.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 || !bytes.Equal(rawCerts[0], want) {
				return fmt.Errorf("the admin listener's certificate is not the one in %s (renewed and not yet reloaded?)", certFile)
			}
			return nil
		},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

// adminClient calls the admin API; http nil means http.DefaultClient.
type adminClient struct {
	base, token string
	http        *http.Client
}

func (c adminClient) do(ctx context.Context, method, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(gateway.AdminHeader, "1")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.http
	if hc == nil {
		hc = http.DefaultClient
	}
	r, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	return r.StatusCode, b, err
}

func printDeliveries(stdout, stderr io.Writer, body []byte) int {
	var doc struct {
		Deliveries []struct {
			ID         string    `json:"id"`
			Route      string    `json:"route"`
			State      string    `json:"state"`
			Attempts   int       `json:"attempts"`
			ReceivedAt time.Time `json:"received_at"`
			LastStatus int       `json:"last_status"`
			LastError  string    `json:"last_error"`
		} `json:"deliveries"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		fmt.Fprintf(stderr, "hookwall deliveries list: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROUTE\tSTATE\tATTEMPTS\tRECEIVED\tLAST")
	for _, d := range doc.Deliveries {
		last := d.LastError
		if last == "" && d.LastStatus != 0 {
			last = fmt.Sprint(d.LastStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", printable(d.ID), printable(d.Route), printable(d.State), d.Attempts, d.ReceivedAt.Format(time.RFC3339), printable(last))
	}
	_ = tw.Flush()
	return 0
}
