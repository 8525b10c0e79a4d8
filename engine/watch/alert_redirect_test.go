package watch

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestAlertIsNotRedirected: a receiver's redirect is not followed. A 302 or 303 would turn the
// POST into a GET without its body, and the GET's 200 would count an alert nobody received as
// sent; a 307 or 308 would send the signed alert to whatever host the Location names; and
// either would carry, in the Referer net/http sets, the alert URL's path and query, which may
// be its secret (a Slack or Discord webhook's). The alert fails, naming the status.
func TestAlertIsNotRedirected(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var reached atomic.Int64
			var referer atomic.Value
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				referer.Store(r.Header.Get("Referer"))
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			defer other.Close()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+"/elsewhere", code)
			}))
			defer srv.Close()
			var logs testutil.Buffer
			w := runAlertWatcher(t, srv.URL+"/services/SECRETPATH?token=QUERYTOKEN", &logs)
			w.Observe("", "198.51.100.1", "denied", 0, forged, nil, time.Now())
			for end := time.Now().Add(5 * time.Second); w.Stats().AlertsSent+w.Stats().AlertsFailed == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatal("the alert was neither sent nor failed")
				}
			}
			if st := w.Stats(); st.AlertsSent != 0 || st.AlertsFailed != 1 {
				t.Errorf("stats %+v: want the redirected alert failed, not sent", st)
			}
			if out := logs.String(); !strings.Contains(out, "status "+strconv.Itoa(code)+" (a redirect, not followed") {
				t.Errorf("the failure does not say the redirect was not followed: %s", out)
			}
			if n := reached.Load(); n != 0 {
				t.Errorf("the redirect was followed: its target got %d requests (Referer %q)", n, referer.Load())
			}
		})
	}
}
