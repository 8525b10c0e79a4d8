package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

func signGitHub(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
