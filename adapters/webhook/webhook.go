// Package webhook delivers events as HTTP POSTs signed as Standard
// Webhooks specifies (https://www.standardwebhooks.com): webhook-id is the
// event id, webhook-timestamp the send time, webhook-signature
// "v1,<base64 HMAC-SHA256>" over "id.timestamp.body" with the shared
// secret, so that receivers verify with the Standard Webhooks libraries.
package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/gatehouse-id/gatehouse/gateway"
)

// minKeyBytes is the shortest signing key accepted (Standard Webhooks
// asks for 24 to 64 random bytes).
const minKeyBytes = 24

// Config is the webhook adapter's configuration.
type Config struct {
	// URL receives the POSTs.
	URL string `yaml:"url"`
	// Secret is the signing key in the Standard Webhooks form
	// whsec_<base64>, typically env:NAME or file:PATH.
	Secret gateway.Secret `yaml:"secret"`
	// Headers are added to every request (e.g. a routing header of the
	// app's gateway); they cannot replace the webhook-* ones.
	Headers map[string]string `yaml:"headers"`
}

// Validate reports every problem with its key path.
func (c *Config) Validate() []gateway.ConfigProblem {
	var ps []gateway.ConfigProblem
	add := func(path, format string, args ...any) {
		ps = append(ps, gateway.ConfigProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if c.URL == "" {
		add("url", "is required: where events are POSTed, e.g. https://app.example/hooks/gatehouse")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("url", "%q must be an absolute http or https URL", c.URL)
	} else if u.User != nil {
		add("url", "must not carry credentials; the signature authenticates the request")
	}
	switch {
	case !c.Secret.IsConfigured():
		add("secret", "is required: the signing key, whsec_ followed by base64 of 24 to 64 random bytes (e.g. env:HOOK_SECRET)")
	case c.Secret.IsSet():
		if key, err := signingKey(c.Secret.Value()); err != nil {
			add("secret", "%v", err)
		} else if len(key) < minKeyBytes {
			add("secret", "the key is %d bytes; use at least %d random bytes (e.g. whsec_$(openssl rand -base64 32))", len(key), minKeyBytes)
		}
	}
	for name := range c.Headers {
		if h := strings.ToLower(name); strings.HasPrefix(h, "webhook-") || h == "content-type" || h == "content-length" || h == "host" {
			add("headers."+name, "is set by the adapter and cannot be configured")
		}
	}
	return ps
}

func signingKey(secret string) ([]byte, error) {
	if !strings.HasPrefix(secret, "whsec_") {
		return nil, errors.New("must have the Standard Webhooks form whsec_<base64>")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errors.New("the part after whsec_ is not valid base64")
	}
	return key, nil
}

// Open builds the adapter.
func (c *Config) Open(_ context.Context, env gateway.AdapterEnv) (gateway.Adapter, error) {
	signer, err := standardwebhooks.NewWebhook(c.Secret.Value())
	if err != nil {
		return nil, fmt.Errorf("webhook signing key: %w", err)
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
	}
	return &adapter{
		url:     c.URL,
		signer:  signer,
		headers: c.Headers,
		client: &http.Client{
			Transport: transport,
			// A redirected webhook is a misconfiguration; following it
			// would send signed user data somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}, nil
}

type adapter struct {
	url     string
	signer  *standardwebhooks.Webhook
	headers map[string]string
	client  *http.Client
	now     func() time.Time
}

// Deliver POSTs the event. 2xx is delivered; 408, 409, 425, 429, 5xx and
// network errors are retried (Retry-After honoured); any other answer is
// permanent.
func (a *adapter) Deliver(ctx context.Context, e gateway.WireEvent) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %v: %w", err, gateway.ErrPermanent)
	}
	at := a.now()
	sig, err := a.signer.Sign(e.ID, at, body)
	if err != nil {
		return fmt.Errorf("sign event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %v: %w", err, gateway.ErrPermanent)
	}
	for k, v := range a.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Gatehouse-Webhooks/1")
	req.Header.Set("webhook-id", e.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", redact(a.url), unwrapURLError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	failure := fmt.Errorf("POST %s answered %d: %s", redact(a.url), code, strings.TrimSpace(string(snippet)))
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500:
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), at); ok {
			return &gateway.RetryAfterError{After: after, Err: failure}
		}
		return failure
	}
	return fmt.Errorf("%w: %w", failure, gateway.ErrPermanent)
}

func (a *adapter) Close() error {
	a.client.CloseIdleConnections()
	return nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text repeats
// the whole URL, query (and any token in it) included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact drops the query of a URL for logs and dead letters: receivers
// sometimes carry a token there.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(webhook url)"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}
