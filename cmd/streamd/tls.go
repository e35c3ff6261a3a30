package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"
)

// certReloader holds the certificate streamd serves, loaded from a
// certificate and key file pair, and swaps it atomically on reload: new
// handshakes get the new certificate, connections already open keep going.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// loadCertificate loads the pair once; an unreadable or mismatched pair is
// an error.
func loadCertificate(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the pair again. On any error the certificate in use stays.
func (r *certReloader) reload() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s with key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse TLS certificate %s: %w", r.certFile, err)
		}
	}
	r.cert.Store(&cert)
	return nil
}

// expiry is when the certificate in use stops being valid.
func (r *certReloader) expiry() time.Time { return r.cert.Load().Leaf.NotAfter }

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// serverConfig is the TLS configuration of the listener. ALPN offers h2
// first: a browser holds at most six HTTP/1.1 connections per origin, so
// live tailing of more streams than that from one page needs HTTP/2.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// rejectConfig is for connections refused at --max-connections: they are
// answered with a plain HTTP/1.1 503, so ALPN must not pick h2.
func (r *certReloader) rejectConfig() *tls.Config {
	c := r.serverConfig()
	c.NextProtos = []string{"http/1.1"}
	return c
}
