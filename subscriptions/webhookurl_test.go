package subscriptions

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheckWebhookURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		dev, ok bool
	}{
		{"https://worker.example/hooks", false, true},
		{"https://worker.example:8443/hooks?x=1", false, true},
		{"http://worker.example/hooks", true, false}, // http only for local development
		{"http://localhost:9000/h", true, true},
		{"http://LOCALHOST/h", true, true},
		{"http://127.0.0.1:9000/h", true, true},
		{"http://127.0.0.7/h", true, true},
		{"http://127.0.1.1/h", true, false},
		{"http://localhost/h", false, false},
		{"https://127.0.0.1/h", false, false},
		{"https://10.1.2.3/h", true, false},
		{"https://192.168.1.1/h", false, false},
		{"https://172.16.0.1/h", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://[::1]/h", false, false},
		{"https://[fd00::1]/h", false, false},
		{"https://[fe80::1]/h", false, false},
		{"https://[::ffff:10.0.0.1]/h", false, false},
		{"https://100.64.0.1/h", false, false},
		{"https://0.0.0.0/h", false, false},
		{"https://8.8.8.8/h", false, true},
		{"https://[2606:4700::1111]/h", false, true},
		{"https://user:pw@worker.example/h", false, false},
		{"ftp://worker.example/h", false, false},
		{"/relative", false, false},
		{"https://", false, false},
		{"https://worker.example/" + strings.Repeat("a", 2048), false, false},
	} {
		_, err := WebhookPolicy{AllowLocalDev: tc.dev}.CheckURL(tc.url)
		if ok := err == nil; ok != tc.ok {
			t.Errorf("CheckURL(%.60q, dev %v) = %v; want allowed %v", tc.url, tc.dev, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrWebhookURL) {
			t.Errorf("CheckURL(%.60q): %v does not wrap ErrWebhookURL", tc.url, err)
		}
	}
}

// TestWebhookClientChecksResolvedAddresses: a name that resolves to a
// local address is refused when connecting, and so is a redirect to one;
// the development exception reaches a local receiver.
func TestWebhookClientChecksResolvedAddresses(t *testing.T) {
	hits := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://10.0.0.1/h", http.StatusFound)
			return
		}
		hits++
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()
	port := receiver.URL[strings.LastIndex(receiver.URL, ":"):]
	resolveTo := func(addr string) func(context.Context, string) ([]netip.Addr, error) {
		return func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr(addr)}, nil
		}
	}
	post := func(p WebhookPolicy, url string) error {
		resp, err := p.Client(5*time.Second).Post(url, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	dev := WebhookPolicy{AllowLocalDev: true}
	if err := post(dev, receiver.URL+"/h"); err != nil || hits != 1 {
		t.Fatalf("development receiver at %s: %v, %d hits", receiver.URL, err, hits)
	}
	if err := post(WebhookPolicy{}, receiver.URL+"/h"); !errors.Is(err, ErrWebhookURL) {
		t.Errorf("local receiver without the development exception: %v; want ErrWebhookURL", err)
	}
	rebinding := WebhookPolicy{Resolve: resolveTo("127.0.0.1")}
	if err := post(rebinding, "http://hooks.example"+port+"/h"); !errors.Is(err, ErrWebhookURL) {
		t.Errorf("name resolving to loopback: %v; want ErrWebhookURL", err)
	}
	private := WebhookPolicy{Resolve: resolveTo("192.168.0.10")}
	if err := post(private, "https://hooks.example/h"); !errors.Is(err, ErrWebhookURL) {
		t.Errorf("name resolving to a private address: %v; want ErrWebhookURL", err)
	}
	if err := post(dev, receiver.URL+"/redirect"); !errors.Is(err, ErrWebhookURL) {
		t.Errorf("redirect to a private address: %v; want ErrWebhookURL", err)
	}
	if hits != 1 {
		t.Errorf("receiver hit %d times; want only the allowed delivery", hits)
	}
}
