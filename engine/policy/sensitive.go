package policy

import (
	"context"
	"slices"
	"strings"
)

// SensitiveKey is the context key under which an evaluation's context carries a *Sensitive:
// context.WithValue(ctx, SensitiveKey{}, s), or a context of the caller's whose Value answers
// it without an allocation.
type SensitiveKey struct{}

// Sensitive collects the credentials an evaluation handed to hookwall's builtins: the key
// given to hookwall.apikey.verify, the token given to hookwall.oauth.verify, the signature a
// generic "hmac" check read from its header. They came from the request under names the
// decision log's default mask may not know (a policy reads its key from any header it
// likes), so the log masks every request header that carries one. The headers a policy
// names as such calls' arguments are noted before every evaluation, so that their values
// are masked when the policy decides without reaching the call. One evaluation fills it at
// a time; the values are the request's own, valid while the request is.
type Sensitive struct {
	Values []string
}

// Reset empties s for the next request, keeping its storage.
func (s *Sensitive) Reset() {
	clear(s.Values)
	s.Values = s.Values[:0]
}

// noteSensitive adds v to the Sensitive that ctx carries, if it carries one.
func noteSensitive(ctx context.Context, v string) {
	if ctx == nil || v == "" {
		return
	}
	if s, ok := ctx.Value(SensitiveKey{}).(*Sensitive); ok && s != nil {
		// A value is noted once: a query notes its credential headers before the evaluation,
		// and the builtin that reads one notes it again.
		if slices.Contains(s.Values, v) {
			return
		}
		s.Values = append(s.Values, v)
		// A header sent twice reaches the policy as its values joined with ", ": each of
		// them is logged apart, and each is the credential.
		if strings.Contains(v, ", ") {
			for piece := range strings.SplitSeq(v, ", ") {
				if piece = strings.TrimSpace(piece); piece != "" && piece != v && !slices.Contains(s.Values, piece) {
					s.Values = append(s.Values, piece)
				}
			}
		}
	}
}
