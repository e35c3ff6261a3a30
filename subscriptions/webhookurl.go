package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// ErrWebhookURL reports a webhook URL streamd refuses to call (PROTOCOL.md
// §6.2, §12.8): not https (outside the development exception), or aimed
// at a private, loopback, link-local or otherwise local address, directly,
// through DNS or through a redirect.
var ErrWebhookURL = errors.New("webhook URL not allowed")

// maxWebhookURLBytes bounds a webhook URL.
const maxWebhookURLBytes = 2048

// maxWebhookRedirects bounds the redirects a delivery follows.
const maxWebhookRedirects = 3

// WebhookPolicy decides which webhook URLs streamd may call, and makes
// the HTTP client that keeps to it when it connects.
type WebhookPolicy struct {
	// AllowLocalDev permits the development exception of §6.2:
	// http://localhost and http://127.0.0.x (and https to them).
	AllowLocalDev bool
	// Resolve looks up a host's addresses; nil uses the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// CheckURL parses raw and reports whether it may be a webhook URL, before
// any lookup: the scheme, the form, and a literal address's range.
func (p WebhookPolicy) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > maxWebhookURLBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrWebhookURL, maxWebhookURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q is not an absolute http(s) URL", ErrWebhookURL, raw)
	}
	if err := p.checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (p WebhookPolicy) checkURL(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL", ErrWebhookURL)
	}
	host := u.Hostname()
	dev := p.devHost(host)
	switch u.Scheme {
	case "https":
	case "http":
		if !dev {
			return fmt.Errorf("%w: %s must use https (http only for localhost or 127.0.0.x in development)", ErrWebhookURL, host)
		}
	default:
		return fmt.Errorf("%w: scheme %q, want https", ErrWebhookURL, u.Scheme)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !dev && !publicAddr(ip) {
		return fmt.Errorf("%w: %s is a private or local address", ErrWebhookURL, host)
	}
	return nil
}

// devHost reports whether host falls under the development exception.
func (p WebhookPolicy) devHost(host string) bool {
	if !p.AllowLocalDev {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Is4() && netip.MustParsePrefix("127.0.0.0/24").Contains(ip)
}

// Special-purpose ranges that are not public although Go's predicates
// (IsPrivate, IsLoopback, ...) do not say so.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // this network
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may reach private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: may embed private IPv4
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// publicAddr reports whether ip is a public unicast address: not
// loopback, private (RFC 1918, fc00::/7), link-local (cloud metadata
// endpoints such as 169.254.169.254 included), multicast, unspecified or
// one of the special ranges above.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Client returns an HTTP client for webhook deliveries to URLs that passed
// CheckURL (when the subscription was created): each connection
// goes to an address checked after resolution (so a name that resolves,
// or later rebinds, to a local address is refused), redirects are checked
// like the first URL and bounded, and every request times out.
func (p WebhookPolicy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	tr := &http.Transport{
		Proxy: nil, // a proxy would hide where the request goes
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return p.dial(ctx, dialer, network, addr)
		},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxWebhookRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrWebhookURL, maxWebhookRedirects)
			}
			return p.checkURL(req.URL)
		},
	}
}

// dial resolves addr's host, refuses it unless every address it has may
// be called, and connects to one of those checked addresses.
func (p WebhookPolicy) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWebhookURL, err)
	}
	ips, err := p.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve webhook host %q: %w", host, err)
	}
	dev := p.devHost(host)
	for _, ip := range ips {
		if dev && strings.EqualFold(host, "localhost") && !ip.Unmap().IsLoopback() {
			return nil, fmt.Errorf("%w: localhost resolves to %s, not a loopback address", ErrWebhookURL, ip)
		}
		if !dev && !publicAddr(ip) {
			return nil, fmt.Errorf("%w: %s resolves to %s, a private or local address", ErrWebhookURL, host, ip)
		}
	}
	var last error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, fmt.Errorf("connect to webhook host %q: %w", host, last)
}

func (p WebhookPolicy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	var ips []netip.Addr
	var err error
	if p.Resolve != nil {
		ips, err = p.Resolve(ctx, host)
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	if err == nil && len(ips) == 0 {
		err = errors.New("no addresses")
	}
	return ips, err
}
