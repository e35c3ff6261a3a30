package subscriptions

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header carrying a webhook's signature (§7.1).
const SignatureHeader = "Webhook-Signature"

// ErrBadSignature reports a Webhook-Signature that is malformed, made
// with another key, outside the replay window, or wrong for the body.
var ErrBadSignature = errors.New("invalid webhook signature")

// SignWebhook returns the Webhook-Signature value for body sent at t:
// "t=<unix seconds>,kid=<key id>,ed25519=<unpadded base64url signature>",
// the signature being over "<t>.<body>".
func (k *Keys) SignWebhook(body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	sig := k.Sign(signedMessage(ts, body))
	return "t=" + ts + ",kid=" + k.kid + ",ed25519=" + base64.RawURLEncoding.EncodeToString(sig)
}

func signedMessage(ts string, body []byte) []byte {
	msg := make([]byte, 0, len(ts)+1+len(body))
	return append(append(append(msg, ts...), '.'), body...)
}

// VerifyWebhook checks a Webhook-Signature value against body, as a
// receiver does: the key is chosen by kid from keys (the JWK Set's public
// keys), and the timestamp must lie within window of now.
func VerifyWebhook(header string, body []byte, keys map[string]ed25519.PublicKey, now time.Time, window time.Duration) error {
	var ts, kid, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: %q is not key=value", ErrBadSignature, part)
		}
		switch k {
		case "t":
			ts = v
		case "kid":
			kid = v
		case "ed25519":
			sig = v
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, ts)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > window || d < -window {
		return fmt.Errorf("%w: timestamp %s is outside the replay window", ErrBadSignature, ts)
	}
	pub, ok := keys[kid]
	if !ok {
		return fmt.Errorf("%w: unknown key %q", ErrBadSignature, kid)
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !ed25519.Verify(pub, signedMessage(ts, body), raw) {
		return fmt.Errorf("%w: signature does not match the body", ErrBadSignature)
	}
	return nil
}
