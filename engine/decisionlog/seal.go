package decisionlog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Opener opens what a Sealer sealed; delivery.Keyring is one.
type Opener interface {
	Open(keyID string, sealed, aad []byte) ([]byte, error)
}

// SealedBody is where a decision-log line's body is sealed: its decision id and key id.
type SealedBody struct{ DecisionID, KeyID string }

// Unseal returns line, one decision-log line, with its sealed body opened: body_sealed and
// body_key give way to body, in the clear as a log without keys has it (invalid UTF-8 as
// U+FFFD), and body is the captured bytes exactly. A line without a sealed body comes back
// as it is, with sb and body nil. sb is set whenever the line has a sealed body, so that an
// error can name the decision and the key.
func Unseal(line []byte, o Opener) (out []byte, sb *SealedBody, body []byte, err error) {
	var l struct {
		DecisionID string `json:"decision_id"`
		Request    struct {
			BodySealed *string `json:"body_sealed"`
			BodyKey    string  `json:"body_key"`
		} `json:"request"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return nil, nil, nil, fmt.Errorf("not a decision-log line: %w", err)
	}
	if l.Request.BodySealed == nil {
		return line, nil, nil, nil
	}
	sb = &SealedBody{DecisionID: l.DecisionID, KeyID: l.Request.BodyKey}
	sealed, err := base64.StdEncoding.DecodeString(*l.Request.BodySealed)
	if err != nil {
		return nil, sb, nil, fmt.Errorf("body_sealed is not base64: %w", err)
	}
	aad := append([]byte(sealedAAD), l.DecisionID...)
	if body, err = o.Open(l.Request.BodyKey, sealed, aad); err != nil {
		return nil, sb, nil, err
	}
	// The fields as appendSealedBody wrote them: JSON strings hold no bare quote, so this
	// cannot match inside a header value or a label.
	seg := AppendString([]byte(`,"body_sealed":`), *l.Request.BodySealed)
	seg = AppendString(append(seg, `,"body_key":`...), l.Request.BodyKey)
	i := bytes.Index(line, seg)
	if i < 0 {
		return nil, sb, nil, errors.New("body_sealed and body_key are not where hookwall writes them")
	}
	out = append(append([]byte(nil), line[:i]...), `,"body":`...)
	out = AppendString(out, body)
	return append(out, line[i+len(seg):]...), sb, body, nil
}
