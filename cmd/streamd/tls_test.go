package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testCert is a self-signed certificate for 127.0.0.1 written as PEM files.
type testCert struct {
	cert              *x509.Certificate
	certPEM           []byte
	keyPEM            []byte
	certFile, keyFile string
}

// newTestCert makes a self-signed ECDSA certificate for 127.0.0.1 with the
// given serial number and writes it to dir/cert.pem and dir/key.pem.
func newTestCert(t *testing.T, dir string, serial int64) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "streamd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
		IsCA:                  true, // so a client can trust it directly as a root
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCert{
		cert:     cert,
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		certFile: filepath.Join(dir, "cert.pem"),
		keyFile:  filepath.Join(dir, "key.pem"),
	}
	c.install(t)
	return c
}

// install writes the certificate and key to their files, each replaced by
// a rename as a certificate manager would.
func (c *testCert) install(t *testing.T) {
	t.Helper()
	replaceFile(t, c.certFile, c.certPEM)
	replaceFile(t, c.keyFile, c.keyPEM)
}

// moveTo makes c write to the files of other.
func (c *testCert) moveTo(other *testCert) { c.certFile, c.keyFile = other.certFile, other.keyFile }

func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// tlsClient trusts the given certificates, speaks HTTP/2 when ALPN picks
// it and counts the connections it dials.
func tlsClient(dials *atomic.Int32, trusted ...*testCert) (*http.Client, *http.Transport) {
	pool := x509.NewCertPool()
	for _, c := range trusted {
		pool.AddCert(c.cert)
	}
	tr := &http.Transport{
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
		TLSClientConfig:    &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, tr
}

func httpsBase(in *instance) string { return strings.Replace(in.base, "http://", "https://", 1) }

// servedSerial opens a new TLS connection and returns the serial number of
// the certificate the server presents.
func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func tlsRequest(t *testing.T, client *http.Client, method, url string, body []byte, wantStatus int, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	if res.StatusCode != wantStatus {
		t.Fatalf("%s %s: %s %d (%q); want %d", method, url, res.Proto, res.StatusCode, b, wantStatus)
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res
}

// TestTLSServesHTTP2: with --tls-cert and --tls-key streamd serves HTTPS,
// negotiates HTTP/2 by ALPN, and the protocol works over it; an HTTP/1.1
// client is served too.
func TestTLSServesHTTP2(t *testing.T) {
	cert := newTestCert(t, t.TempDir(), 1)
	in := start(t, logFile(t), "--memory", "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	var dials atomic.Int32
	client, tr := tlsClient(&dials, cert)
	defer tr.CloseIdleConnections()
	url := httpsBase(in) + "/v1/stream/tls"

	for _, step := range []struct {
		method string
		url    string
		body   string
		want   int
	}{
		{http.MethodPut, url, "hello ", http.StatusCreated},
		{http.MethodPost, url, "world", http.StatusNoContent},
		{http.MethodGet, url + "?offset=-1", "", http.StatusOK},
	} {
		res := tlsRequest(t, client, step.method, step.url, []byte(step.body), step.want, "Content-Type", "text/plain")
		if res.ProtoMajor != 2 {
			t.Errorf("%s answered over %s; want HTTP/2", step.method, res.Proto)
		}
		if step.method == http.MethodGet {
			if b, _ := io.ReadAll(res.Body); string(b) != "hello world" {
				t.Errorf("GET body %q; want %q", b, "hello world")
			}
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("3 requests dialled %d connections; want 1", n)
	}

	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs}}
	defer h1.CloseIdleConnections()
	res := tlsRequest(t, &http.Client{Transport: h1, Timeout: 20 * time.Second}, http.MethodGet, url+"?offset=-1", nil, http.StatusOK)
	if res.ProtoMajor != 1 {
		t.Errorf("HTTP/1.1-only client answered over %s", res.Proto)
	}
}

// TestTLSCertificateReload: on SIGHUP new connections get the replaced
// certificate while open connections carry on; a bad certificate file at
// reload is logged and the certificate in use is kept.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	first := newTestCert(t, dir, 1)
	second := newTestCert(t, t.TempDir(), 2)
	second.moveTo(first)
	logOut := logFile(t)
	in := start(t, logOut, "--memory", "--tls-cert", first.certFile, "--tls-key", first.keyFile)
	addr := strings.TrimPrefix(in.base, "http://")
	if got := servedSerial(t, addr); got != 1 {
		t.Fatalf("serving certificate %d; want 1", got)
	}
	var dials atomic.Int32
	client, tr := tlsClient(&dials, first, second)
	defer tr.CloseIdleConnections()
	url := httpsBase(in) + "/v1/stream/reload"
	tlsRequest(t, client, http.MethodPut, url, nil, http.StatusCreated, "Content-Type", "text/plain")

	second.install(t)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for servedSerial(t, addr) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the replaced certificate was not served after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The HTTP/2 connection opened before the reload is still in use.
	tlsRequest(t, client, http.MethodPost, url, []byte("x"), http.StatusNoContent, "Content-Type", "text/plain")
	if n := dials.Load(); n != 1 {
		t.Errorf("requests across a reload dialled %d connections; want 1", n)
	}

	replaceFile(t, first.certFile, []byte("not a certificate"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for !logContains(t, logOut, "TLS certificate not reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("a bad certificate at reload was not logged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := servedSerial(t, addr); got != 2 {
		t.Errorf("after a failed reload serving certificate %d; want 2 (kept)", got)
	}
	tlsRequest(t, client, http.MethodGet, url+"?offset=-1", nil, http.StatusOK)
}

func logContains(t *testing.T, f *os.File, s string) bool {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// TestLoadCertificateRejects: a pair that cannot serve is an error.
func TestLoadCertificateRejects(t *testing.T) {
	a := newTestCert(t, t.TempDir(), 1)
	b := newTestCert(t, t.TempDir(), 2)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	replaceFile(t, garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	cases := map[string][2]string{
		"missing certificate": {filepath.Join(t.TempDir(), "none.pem"), a.keyFile},
		"missing key":         {a.certFile, filepath.Join(t.TempDir(), "none.pem")},
		"key of another cert": {a.certFile, b.keyFile},
		"garbage certificate": {garbage, a.keyFile},
		"key as certificate":  {a.keyFile, a.keyFile},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := loadCertificate(files[0], files[1]); err == nil {
				t.Fatal("loadCertificate accepted it")
			}
		})
	}
}

// TestTLSConnectionLimit: past --max-connections a TLS client gets the
// 503 over TLS (HTTP/1.1 by ALPN), not a broken handshake.
func TestTLSConnectionLimit(t *testing.T) {
	cert := newTestCert(t, t.TempDir(), 1)
	in := start(t, logFile(t), "--memory", "--max-connections", "1", "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	addr := strings.TrimPrefix(in.base, "http://")
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	time.Sleep(100 * time.Millisecond) // let the server accept it

	pool := x509.NewCertPool()
	pool.AddCert(cert.cert)
	over, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("TLS handshake past the limit: %v; want a 503 over TLS", err)
	}
	defer over.Close()
	if p := over.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN picked %q for the refusal; want http/1.1", p)
	}
	fmt.Fprintf(over, "GET /v1/stream/none?offset=-1 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("read the refusal: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// TestAuthFileServed: --auth-file turns access control on end to end.
func TestAuthFileServed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	replaceFile(t, path, []byte(`{"tokens": [{"token": "w", "read": ["a/"], "write": ["a/"]}]}`))
	in := start(t, logFile(t), "--memory", "--auth-file", path)
	in.expect(t, http.StatusUnauthorized, http.MethodPut, "a/s", nil, "Content-Type", "text/plain")
	in.expect(t, http.StatusCreated, http.MethodPut, "a/s", nil, "Content-Type", "text/plain", "Authorization", "Bearer w")
	in.expect(t, http.StatusForbidden, http.MethodPut, "b/s", nil, "Content-Type", "text/plain", "Authorization", "Bearer w")
	r := in.expect(t, http.StatusOK, http.MethodGet, "a/s?offset=-1", nil, "Authorization", "Bearer w", "Origin", "https://app.example")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin %q with auth and no --cors-origins; want none", got)
	}
}
