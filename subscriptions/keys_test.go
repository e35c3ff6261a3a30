package subscriptions

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/persistence"
)

// TestKeyIDIsThumbprint checks the kid against RFC 8037's example key,
// whose JWK thumbprint (RFC 7638) is given in its appendix A.3.
func TestKeyIDIsThumbprint(t *testing.T) {
	seed, err := base64.RawURLEncoding.DecodeString("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
	if err != nil {
		t.Fatal(err)
	}
	k, err := newKeys(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ds_kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; k.KeyID() != want {
		t.Errorf("kid %q, want %q", k.KeyID(), want)
	}
	var set struct{ Keys []JWK }
	if err := json.Unmarshal(k.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", k.JWKS(), err)
	}
	if got := set.Keys[0]; got != (JWK{Kty: "OKP", Crv: "Ed25519", Kid: k.KeyID(), Use: "sig", Alg: "EdDSA", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}) {
		t.Errorf("JWK %+v", got)
	}
}

// TestKeysSurviveRestart: the key is created once and the same key is
// loaded after the store reopens; signatures verify with the published x.
func TestKeysSurviveRestart(t *testing.T) {
	fs := vfs.NewMem()
	open := func() *persistence.Store {
		s, err := persistence.Open(persistence.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	a, err := LoadKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	b, err := LoadKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() != b.KeyID() || string(a.JWKS()) != string(b.JWKS()) {
		t.Fatalf("key changed across a restart: %s vs %s", a.KeyID(), b.KeyID())
	}
	var set struct{ Keys []JWK }
	if err := json.Unmarshal(b.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	pub, err := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("1700000000.{\"wake\":1}")
	if !ed25519.Verify(ed25519.PublicKey(pub), msg, a.Sign(msg)) {
		t.Error("a signature does not verify with the published key")
	}
}
