package watch

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Alert delivery bounds: the queue a burst of anomalies waits in, and the attempts (with the
// waits before each retry) one alert gets.
const (
	alertQueue   = 256
	alertTimeout = 5 * time.Second
)

var alertRetries = []time.Duration{time.Second, 4 * time.Second}

// AlertType is the Standard Webhooks event type of an alert.
const AlertType = "hookwall.anomaly"

// alerter POSTs anomalies to the alert URL from one goroutine.
type alerter struct {
	url, secretName string
	shown           string // scheme and host of url: its path or query may carry a secret (a Slack webhook's)
	secret          func(string) ([]byte, bool)
	client          *http.Client
	log             *slog.Logger
	q               chan Anomaly

	sent, failed, dropped atomic.Uint64
}

// CheckAlertSecret reports whether the [secrets] entry name, read with secret, is a
// Standard Webhooks key, as New requires of alert_secret. The error never quotes the value.
func CheckAlertSecret(name string, secret func(string) ([]byte, bool)) error {
	if secret == nil {
		return errorf("alert_secret %q: no secrets to read it from", name)
	}
	raw, ok := secret(name)
	if !ok {
		return errorf("alert_secret %q: no such [secrets] entry", name)
	}
	if _, err := signingKey(raw); err != nil {
		return errorf("alert_secret %q: %w", name, err)
	}
	return nil
}

func newAlerter(url, secretName string, secret func(string) ([]byte, bool), client *http.Client, log *slog.Logger) (*alerter, error) {
	if err := CheckAlertSecret(secretName, secret); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: alertTimeout, CheckRedirect: noRedirect}
	}
	shown := "(invalid URL)"
	if u, err := neturl.Parse(url); err == nil {
		shown = u.Scheme + "://" + u.Host
	}
	return &alerter{url: url, shown: shown, secretName: secretName, secret: secret, client: client, log: log, q: make(chan Anomaly, alertQueue)}, nil
}

// noRedirect makes a receiver's redirect the alert's answer (a final failure naming its
// status) rather than following it: a 301, 302 or 303 would turn the POST into a GET without
// its body, whose 2xx would count an alert nobody received as sent; a 307 or 308 would send
// the signed alert to any host the Location names; and both would carry the alert URL, path
// and query included (a Slack or Discord webhook's secret), in the Referer net/http sets.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// signingKey decodes a Standard Webhooks secret: "whsec_" (optional) and base64.
func signingKey(raw []byte) ([]byte, error) {
	s := strings.TrimPrefix(strings.TrimSpace(string(raw)), "whsec_")
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) == 0 {
		return nil, errors.New("not a Standard Webhooks key (whsec_ followed by base64)")
	}
	return key, nil
}

// sign returns the Standard Webhooks signature header value for body under key (decoded).
func sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// enqueue queues a without waiting; a full queue drops it (counted).
func (a *alerter) enqueue(an Anomaly) {
	select {
	case a.q <- an:
	default:
		a.dropped.Add(1)
		a.log.Warn("anomaly alert dropped: the alert queue is full", "anomaly", an.ID)
	}
}

func (a *alerter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case an := <-a.q:
			a.deliver(ctx, an)
		}
	}
}

// deliver sends one alert, retrying on a transport error, 408, 429 and 5xx. Each attempt has
// a fresh webhook-id timestamp and signature; the id stays, so the receiver can dedupe.
func (a *alerter) deliver(ctx context.Context, an Anomaly) {
	body, err := json.Marshal(struct {
		Type      string  `json:"type"`
		Timestamp string  `json:"timestamp"`
		Data      Anomaly `json:"data"`
	}{AlertType, an.At.UTC().Format(time.RFC3339Nano), an})
	if err != nil {
		a.failed.Add(1)
		return
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	id := "msg_" + hex.EncodeToString(rnd[:])
	var last string
	for attempt := 0; attempt <= len(alertRetries); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				a.failed.Add(1)
				return
			case <-time.After(alertRetries[attempt-1]):
			}
		}
		final, why := a.post(ctx, id, body)
		if why == "" {
			a.sent.Add(1)
			return
		}
		last = why
		if final {
			break
		}
	}
	a.failed.Add(1)
	a.log.Error("anomaly alert not delivered", "anomaly", an.ID, "url", a.shown, "err", last)
}

// post makes one attempt; why is "" on success, final says a retry cannot help.
func (a *alerter) post(ctx context.Context, id string, body []byte) (final bool, why string) {
	raw, ok := a.secret(a.secretName)
	if !ok {
		return true, "alert_secret " + a.secretName + " is no longer in [secrets]"
	}
	key, err := signingKey(raw)
	if err != nil {
		return true, "alert_secret " + a.secretName + ": " + err.Error()
	}
	ts := time.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return true, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookwall-alert")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sign(key, id, ts, body))
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *neturl.Error // it quotes the whole URL
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, ""
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return false, "status " + strconv.Itoa(resp.StatusCode)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return true, "status " + strconv.Itoa(resp.StatusCode) + " (a redirect, not followed: set alert_url to where it points)"
	}
	return true, "status " + strconv.Itoa(resp.StatusCode)
}
