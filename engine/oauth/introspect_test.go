package oauth

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
)

// TestIntrospectionRefusalsLeaveActiveAnswersCached: a flood of made-up opaque tokens, each
// refused by the endpoint and cached as a refusal, fills no room an active answer needs: a
// valid token seen before the flood and one first seen after it are each asked about once,
// then served from the cache; the refusals' cache stays within its bound.
func TestIntrospectionRefusalsLeaveActiveAnswersCached(t *testing.T) {
	p := oauthtest.NewIDP(t)
	exp := time.Now().Add(time.Hour).Unix()
	p.SetIntrospect(func(r *http.Request) (int, string) {
		_ = r.ParseForm()
		if strings.HasPrefix(r.PostForm.Get("token"), "legit") {
			return 200, fmt.Sprintf(`{"active":true,"sub":"svc-42","aud":%q,"exp":%d}`, audience, exp)
		}
		return 200, `{"active":false}`
	})
	is := startIssuer(t, p, Config{IntrospectionURL: p.Server.URL + "/introspect", ClientID: "c",
		ClientSecret: []byte("s"), Audiences: []string{audience}})
	ctx := context.Background()
	verify := func(tok string, n int) (calls int64) {
		t.Helper()
		before := p.IntroHits.Load()
		for range n {
			if r := is.Verify(ctx, "Bearer "+tok, time.Now()); !r.Valid {
				t.Fatalf("%s: %+v", tok, r)
			}
		}
		return p.IntroHits.Load() - before
	}
	if calls := verify("legit-1", 3); calls != 1 {
		t.Fatalf("before the flood: 3 verifications of a valid token made %d calls, want 1", calls)
	}
	// More made-up tokens than the cache holds, within the refusals' 10 s.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < maxIntrospectCache+500; i += 4 {
				if r := is.Verify(ctx, fmt.Sprintf("Bearer made-up-%d", i), time.Now()); r.Valid {
					t.Errorf("made-up-%d accepted", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := is.introRefused.len(); n > maxIntrospectCache {
		t.Errorf("%d refusals cached, bound %d", n, maxIntrospectCache)
	}
	if calls := verify("legit-1", 3); calls != 0 {
		t.Errorf("after the flood: the valid token seen before it made %d calls, want 0 (its answer was pushed out)", calls)
	}
	if calls := verify("legit-2", 5); calls != 1 {
		t.Errorf("after the flood: 5 verifications of a new valid token made %d calls, want 1 (its answer was not cached)", calls)
	}
}
