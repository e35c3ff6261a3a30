package subscriptions

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWebhookSignature: a signature made with the server's key verifies
// with the public key its JWK Set publishes, and fails for any change to
// the body, the timestamp or the key, and outside the replay window.
func TestWebhookSignature(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	k, err := newKeys(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []JWK }
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	x, err := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]ed25519.PublicKey{set.Keys[0].Kid: x}
	body := []byte(`{"subscription_id":"sub-1","wake_id":"w_1","generation":7}`)
	sent := time.Unix(1_790_000_000, 0)
	h := k.SignWebhook(body, sent)
	prefix := "t=1790000000,kid=" + k.KeyID() + ",ed25519="
	if !strings.HasPrefix(h, prefix) || strings.ContainsAny(h[len(prefix):], "+/= ") {
		t.Fatalf("header %q", h)
	}
	if err := VerifyWebhook(h, body, keys, sent.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("verify: %v", err)
	}
	other, _ := newKeys(ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 1)))
	for name, tc := range map[string]struct {
		header string
		body   []byte
		now    time.Time
	}{
		"changed body":         {h, append([]byte(nil), append(body[:len(body)-1], ' ', '}')...), sent},
		"changed timestamp":    {strings.Replace(h, "t=1790000000", "t=1790000001", 1), body, sent},
		"replayed late":        {h, body, sent.Add(6 * time.Minute)},
		"from the future":      {h, body, sent.Add(-6 * time.Minute)},
		"another key, our kid": {strings.Replace(other.SignWebhook(body, sent), other.KeyID(), k.KeyID(), 1), body, sent},
		"unknown kid":          {other.SignWebhook(body, sent), body, sent},
		"garbage":              {"nonsense", body, sent},
		"no signature":         {"t=1790000000,kid=" + k.KeyID(), body, sent},
	} {
		if err := VerifyWebhook(tc.header, tc.body, keys, tc.now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v; want ErrBadSignature", name, err)
		}
	}
}
