package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"github.com/open-policy-agent/opa/v1/ast"
)

func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

var (
	ast_remote_ip  = ast.StringTerm("remote_ip")
	ast_remote_val = ast.StringTerm("192.0.2.1")
)
