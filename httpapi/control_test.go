package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/subscriptions"
)

// TestReservedNamespace: paths under __ds/ are control endpoints, routed
// before streams: the signing keys are published, the subscription APIs
// are not served yet, and no stream can live there.
func TestReservedNamespace(t *testing.T) {
	store, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := subscriptions.LoadKeys(store)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	e := newEnv(t, withAPI(func(c *httpapi.Config) { c.SigningKeys = keys }))
	r := e.expect(t, http.StatusOK, http.MethodGet, sp("__ds/jwks.json"), nil)
	wantHeader(t, r, "Content-Type", "application/jwk-set+json")
	wantHeader(t, r, "Cache-Control", "public, max-age=300")
	var set struct {
		Keys []subscriptions.JWK `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Kid != keys.KeyID() || set.Keys[0].Crv != "Ed25519" {
		t.Errorf("jwks.json = %s (%v)", r.body, err)
	}
	e.expect(t, http.StatusOK, http.MethodHead, sp("__ds/jwks.json"), nil)
	if r := e.expect(t, http.StatusMethodNotAllowed, http.MethodPut, sp("__ds/jwks.json"), nil, "Content-Type", "text/plain"); r.get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", r.get("Allow"))
	}
	json := []string{"Content-Type", "application/json"}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPut, "__ds/subscriptions/sub-1", http.StatusNotFound},
		{http.MethodGet, "__ds/subscriptions/sub-1", http.StatusNotFound},
		{http.MethodPost, "__ds/subscriptions/sub-1/claim", http.StatusNotFound},
		{http.MethodPut, "__ds/events", http.StatusNotFound},
		{http.MethodPut, "__ds", http.StatusNotFound},
		{http.MethodGet, "__ds/anything/else", http.StatusNotFound},
		{http.MethodPut, "__dsx/ok", http.StatusCreated}, // only the exact segment is reserved
		{http.MethodPut, "a/__ds/ok", http.StatusCreated},
	} {
		if r := e.do(t, tc.method, sp(tc.path), []byte("{}"), json...); r.status != tc.want {
			t.Errorf("%s %s: %d %s; want %d", tc.method, tc.path, r.status, r.body, tc.want)
		}
	}
	// Nothing was created under the namespace.
	e.expect(t, http.StatusNotFound, http.MethodGet, sp("__ds/events")+"?offset=-1", nil)
}
