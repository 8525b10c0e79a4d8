package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

const (
	hdrSendGridSig  = "x-twilio-email-event-webhook-signature"
	hdrSendGridTS   = "x-twilio-email-event-webhook-timestamp"
	hdrDiscordSig   = "x-signature-ed25519"
	hdrDiscordTS    = "x-signature-timestamp"
	maxECDSASigB64  = 256
	discordSigBytes = ed25519.SignatureSize
)

var (
	errECDSAKey   = errors.New("not a base64 DER or PEM P-256 public key")
	errEd25519Key = errors.New("not a hex Ed25519 public key")
)

// sendgrid: the Event Webhook signs sha256(ts body) with ECDSA P-256; the
// signature header is base64 ASN.1 DER, the key base64 DER (or PEM)
// SubjectPublicKeyInfo. The body is used byte for byte: SendGrid's trailing
// CRLF is part of what it signed.
func (v *verifier) sendgrid() (Result, error) {
	keys, err := ecdsaKeys(v.o.Secrets)
	if err != nil {
		return Result{}, err
	}
	if len(keys) == 0 {
		return invalid(reasonNoSecret), nil
	}
	sv := v.h.Get(hdrSendGridSig)
	if sv == "" {
		return missing(hdrSendGridSig), nil
	}
	ts := v.h.Get(hdrSendGridTS)
	if ts == "" {
		return missing(hdrSendGridTS), nil
	}
	if len(sv) > maxECDSASigB64 {
		return malformed(hdrSendGridSig), nil
	}
	sig, err := base64.StdEncoding.DecodeString(sv)
	if err != nil || len(sig) == 0 {
		return malformed(hdrSendGridSig), nil
	}
	if res, ok := v.checkUnixSeconds(ts, hdrSendGridTS, defaultTolerance); !ok {
		return res, nil
	}
	d := sha256.New()
	writeString(d, ts)
	_, _ = d.Write(v.r.Body)
	digest := d.Sum(nil)
	for _, k := range keys {
		if ecdsa.VerifyASN1(k, digest, sig) {
			return validResult(), nil
		}
	}
	return invalid(reasonMismatch), nil
}

func ecdsaKeys(secrets [][]byte) ([]*ecdsa.PublicKey, error) {
	keys := make([]*ecdsa.PublicKey, 0, len(secrets))
	for i, s := range secrets {
		k, err := parseECDSAKey(bytes.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parseECDSAKey(s []byte) (*ecdsa.PublicKey, error) {
	var der []byte
	if bytes.HasPrefix(s, []byte("-----BEGIN")) {
		blk, _ := pem.Decode(s)
		if blk == nil {
			return nil, errECDSAKey
		}
		der = blk.Bytes
	} else {
		der = make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(der, s)
		if err != nil {
			return nil, errECDSAKey
		}
		der = der[:n]
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errECDSAKey
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, errECDSAKey
	}
	return k, nil
}

// discord: X-Signature-Ed25519 = hex(Ed25519(ts body)) with the application's
// hex public key.
//
// # Notes
//
// An absent X-Signature-Timestamp reads as "" (Header cannot tell absent from
// empty), which signs as an empty prefix and stands for Unix time 0 in the
// freshness check. Against any real clock that is stale, and the request gets
// "missing header x-signature-timestamp"; the reading only matters for the
// RFC 8032 primitive vector verified at Now = Unix 0. Giving an empty
// timestamp no freshness check at all would let a replayed ts‖body be resent
// with the timestamp moved into the body.
func (v *verifier) discord() (Result, error) {
	keys, err := ed25519Keys(v.o.Secrets)
	if err != nil {
		return Result{}, err
	}
	if len(keys) == 0 {
		return invalid(reasonNoSecret), nil
	}
	sv := v.h.Get(hdrDiscordSig)
	if sv == "" {
		return missing(hdrDiscordSig), nil
	}
	var sig [discordSigBytes]byte
	if !decodeHex(sig[:], sv) {
		return malformed(hdrDiscordSig), nil
	}
	ts := v.h.Get(hdrDiscordTS)
	if ts == "" {
		if !v.fresh(time.Unix(0, 0), defaultTolerance) {
			return missing(hdrDiscordTS), nil
		}
	} else if res, ok := v.checkUnixSeconds(ts, hdrDiscordTS, defaultTolerance); !ok {
		return res, nil
	}
	msg := make([]byte, 0, len(ts)+len(v.r.Body))
	msg = append(append(msg, ts...), v.r.Body...)
	for _, k := range keys {
		if ed25519.Verify(k, msg, sig[:]) {
			return validResult(), nil
		}
	}
	return invalid(reasonMismatch), nil
}

func ed25519Keys(secrets [][]byte) ([]ed25519.PublicKey, error) {
	keys := make([]ed25519.PublicKey, 0, len(secrets))
	for i, s := range secrets {
		k := make([]byte, ed25519.PublicKeySize)
		if !decodeHex(k, string(bytes.TrimSpace(s))) {
			return nil, fmt.Errorf("secret %d: %w", i, errEd25519Key)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
