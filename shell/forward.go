package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/bitville/apmd/core"
	"github.com/klauspost/pgzip"
)

// forwarder POSTs batches to the central listener (DESIGN 4.2). It only
// does HTTP: what an answer means is core's delivery policy.
type forwarder struct {
	cfg     ForwardConfig
	client  *http.Client
	agentID string
	key     *apiKey
	bufs    sync.Pool // *bytes.Buffer bodies
	gzips   sync.Pool // *pgzip.Writer at cfg.GzipLevel
}

func newForwarder(cfg ForwardConfig, agentID string, key *apiKey) (*forwarder, error) {
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	transport.MaxIdleConnsPerHost = 2
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout.Duration,
		// Never follow a redirect: a POST turned into a GET to a login page
		// would look like an ack. The 3xx itself reaches the policy.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &forwarder{cfg: cfg, client: client, agentID: agentID, key: key}, nil
}

func tlsConfig(cfg ForwardConfig) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("forward.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("forward.ca_file %s: no PEM certificate in it", cfg.CAFile)
		}
		t.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("forward.cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// send POSTs one batch and reports the outcome. The records go verbatim,
// one per line, in sequence order.
func (f *forwarder) send(ctx context.Context, bt core.Batch) core.Outcome {
	body := f.body(bt)
	defer f.bufs.Put(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL, bytes.NewReader(body.Bytes()))
	if err != nil {
		return core.Outcome{Kind: core.OutcomeError}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if f.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("X-Bitville-Agent", f.agentID)
	req.Header.Set("X-Bitville-Seq", strconv.FormatUint(bt.First(), 10)+"-"+strconv.FormatUint(bt.Last(), 10))
	req.Header.Set("User-Agent", "bitville-apmd/"+version)
	if k := f.key.get(); k != "" {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return classify(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	return core.Outcome{Kind: core.OutcomeHTTP, Code: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
}

// body builds the request body, gzipped when configured.
func (f *forwarder) body(bt core.Batch) *bytes.Buffer {
	buf, _ := f.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	var w io.Writer = buf
	var zw *pgzip.Writer
	if f.cfg.Gzip {
		// pgzip compresses blocks on every core and still writes one
		// standard gzip stream: single-core gzip bounded the drain rate.
		zw, _ = f.gzips.Get().(*pgzip.Writer)
		if zw == nil {
			zw, _ = pgzip.NewWriterLevel(buf, f.cfg.GzipLevel) // level validated
		} else {
			zw.Reset(buf)
		}
		zw.SetConcurrency(gzipBlockBytes, runtime.GOMAXPROCS(0))
		w = zw
	}
	for _, r := range bt.Records {
		w.Write(r.Data)
		w.Write(newline)
	}
	if zw != nil {
		zw.Close()
		f.gzips.Put(zw)
	}
	return buf
}

var newline = []byte{'\n'}

// gzipBlockBytes splits a batch of a few MiB into blocks compressed in
// parallel; each block is primed with the previous one's tail, so the ratio
// stays close to single-stream gzip.
const gzipBlockBytes = 512 << 10

// classify names a transport error for the policy and the metrics.
func classify(err error) core.Outcome {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return core.Outcome{Kind: core.OutcomeTimeout}
	case errors.Is(err, syscall.ECONNREFUSED):
		return core.Outcome{Kind: core.OutcomeRefused}
	default:
		return core.Outcome{Kind: core.OutcomeError}
	}
}

// apiKey holds the bearer token by the precedence of DESIGN 4.2: the
// environment, then api_key_file (re-read on SIGHUP and after a 401), then
// api_key. It is never logged.
type apiKey struct {
	env, file, inline string
	cur               atomic.Pointer[string]
}

func newAPIKey(cfg ForwardConfig) (*apiKey, error) {
	k := &apiKey{env: os.Getenv("BITVILLE_APMD_API_KEY"), file: cfg.APIKeyFile, inline: cfg.APIKey}
	return k, k.reload()
}

// reload re-reads the key file; on failure the previous key stays.
func (k *apiKey) reload() error {
	v := k.inline
	switch {
	case k.env != "":
		v = k.env
	case k.file != "":
		data, err := os.ReadFile(k.file)
		if err != nil {
			return fmt.Errorf("read forward.api_key_file: %w", err)
		}
		v = strings.TrimSpace(string(data))
	}
	k.cur.Store(&v)
	return nil
}

// source names where the key comes from, for logs (never the key).
func (k *apiKey) source() string {
	switch {
	case k.env != "":
		return "environment BITVILLE_APMD_API_KEY"
	case k.file != "":
		return "forward.api_key_file"
	case k.inline != "":
		return "forward.api_key"
	}
	return "none"
}

func (k *apiKey) get() string {
	if p := k.cur.Load(); p != nil {
		return *p
	}
	return ""
}
