package subscriptions

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/streamd/streamd/persistence"
)

// Keys is the server's webhook signing key (§6.5, §12.10): an Ed25519
// key created at the first start and kept in the store, so receivers that
// pinned its public key keep verifying after restarts.
type Keys struct {
	private ed25519.PrivateKey
	kid     string
	jwks    []byte
}

// JWK is one public key of a JWK Set (RFC 7517, RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	X   string `json:"x"`
}

// LoadKeys returns the store's signing key, creating and storing one (in a
// synced batch of its own) if it has none. Call it before serving, from one
// goroutine.
func LoadKeys(store *persistence.Store) (*Keys, error) {
	seed, err := store.SigningKeySeed()
	if err != nil {
		return nil, fmt.Errorf("load the webhook signing key: %w", err)
	}
	if seed == nil {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, fmt.Errorf("create a webhook signing key: %w", err)
		}
		b := store.NewBatch()
		defer b.Close()
		if err := b.PutSigningKeySeed(seed); err != nil {
			return nil, fmt.Errorf("store the webhook signing key: %w", err)
		}
		if err := b.Commit(); err != nil {
			return nil, fmt.Errorf("store the webhook signing key: %w", err)
		}
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("stored webhook signing key has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return newKeys(ed25519.NewKeyFromSeed(seed))
}

func newKeys(private ed25519.PrivateKey) (*Keys, error) {
	x := base64.RawURLEncoding.EncodeToString(private.Public().(ed25519.PublicKey))
	// The kid is the key's JWK thumbprint (RFC 7638): stable for the key's
	// life and derived from it, as §6.5 recommends. The members are in
	// lexicographic order, without whitespace.
	thumb := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	kid := "ds_" + base64.RawURLEncoding.EncodeToString(thumb[:])
	jwks, err := json.Marshal(struct {
		Keys []JWK `json:"keys"`
	}{[]JWK{{Kty: "OKP", Crv: "Ed25519", Kid: kid, Use: "sig", Alg: "EdDSA", X: x}}})
	if err != nil {
		return nil, fmt.Errorf("encode the JWK Set: %w", err)
	}
	return &Keys{private: private, kid: kid, jwks: jwks}, nil
}

// KeyID is the active key's kid.
func (k *Keys) KeyID() string { return k.kid }

// JWKS is the JWK Set publishing the public key, as served at
// __ds/jwks.json.
func (k *Keys) JWKS() []byte { return k.jwks }

// Sign signs message with the active key.
func (k *Keys) Sign(message []byte) []byte { return ed25519.Sign(k.private, message) }
