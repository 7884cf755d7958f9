// kes-goclient: a closed-loop load client whose http.Transport is set up like
// the one of the KES Go SDK, which MinIO and every Go program on the SDK use:
// ForceAttemptHTTP2, MaxIdleConns 100, Go's default of 2 idle connections per
// host, TLS 1.2+, a client certificate from PEM files or made in memory from
// an API key. It shows what such a client costs a server: with -h2=false
// (HTTP/2 off, as against a server that offers only http/1.1) and more
// concurrent requests than idle connections per host, the transport closes
// and re-dials connections all the time.
//
// Standard library only. Prints one JSON object with -json. Never judges
// the figures.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// newTransport is the KES SDK's transport (kes-go NewClientWithConfig):
// only the TLS config differs between clients. With h2 false HTTP/2 is off
// the way Go documents it: ForceAttemptHTTP2 false and a non-nil, empty
// TLSNextProto.
func newTransport(tlsConfig *tls.Config, h2 bool) *http.Transport {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		TLSClientConfig:       tlsConfig,
	}
	if !h2 {
		t.ForceAttemptHTTP2 = false
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return t
}

// apiKeyCertificate is the SDK's GenerateCertificate (api.md §2.2): an
// in-memory self-signed Ed25519 client certificate for a kes:v1: API key.
func apiKeyCertificate(apiKey string) (tls.Certificate, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(apiKey, "kes:v1:"))
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return tls.Certificate{}, errors.New("invalid API key: invalid length")
	}
	if raw[0] != 0 {
		return tls.Certificate{}, errors.New("invalid API key: unsupported type")
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	pub := priv.Public().(ed25519.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return tls.Certificate{}, err
	}
	id := sha256.Sum256(spki)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hex.EncodeToString(id[:])},
		NotBefore:             now,
		NotAfter:              now.Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// cpuSeconds is utime + stime of process pid from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat")
	}
	return float64(utime+stime) / 100, nil // USER_HZ is 100 on Linux
}

func ownCPUSeconds() float64 {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()).Seconds()
}

// counters are updated by every worker; the window flag says whether a
// response or a new connection falls into the measured window.
type counters struct {
	inWindow    atomic.Bool
	handshakes  atomic.Int64 // TLS handshakes completed, whole run
	winHandshk  atomic.Int64 // ... inside the window
	connects    atomic.Int64 // TCP connects started, whole run
	winConnects atomic.Int64
}

type workerResult struct {
	latencies []time.Duration
	status    map[int]int
	errors    int
	firstErr  string
	proto     string
}

// worker sends requests until ctx ends; it calls first once, after its
// first answer.
func worker(ctx context.Context, client *http.Client, url string, body []byte, c *counters, first func(), out *workerResult) {
	trace := &httptrace.ClientTrace{
		ConnectStart: func(string, string) {
			c.connects.Add(1)
			if c.inWindow.Load() {
				c.winConnects.Add(1)
			}
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err != nil {
				return
			}
			c.handshakes.Add(1)
			if c.inWindow.Load() {
				c.winHandshk.Add(1)
			}
		},
	}
	tctx := httptrace.WithClientTrace(ctx, trace)
	out.status = map[int]int{}
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(tctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			out.errors++
			out.firstErr = err.Error()
			return
		}
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			// The SDK reads the whole body and closes it, so the connection
			// goes back to the pool.
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if first != nil {
			first()
			first = nil
		}
		if !c.inWindow.Load() {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			out.errors++
			if out.firstErr == "" {
				out.firstErr = err.Error()
			}
			continue
		}
		out.latencies = append(out.latencies, time.Since(start))
		out.status[resp.StatusCode]++
		out.proto = resp.Proto
	}
}

func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Nanoseconds()) / 1000
}

func main() {
	url := flag.String("url", "", "request URL, e.g. https://127.0.0.1:7373/v1/key/generate/k")
	body := flag.String("body", "", "JSON request body (POST)")
	concurrency := flag.Int("c", 16, "concurrent requests (goroutines sharing one client)")
	h2 := flag.Bool("h2", true, "allow HTTP/2 (false: HTTP/1.1 only)")
	warmup := flag.Duration("w", time.Second, "warm-up before the measured window")
	duration := flag.Duration("d", 5*time.Second, "measured window")
	certFile := flag.String("cert", "", "client certificate (PEM)")
	keyFile := flag.String("key", "", "client private key (PEM)")
	apiKey := flag.String("api-key", "", "KES API key (kes:v1:...) instead of -cert/-key")
	serverPid := flag.Int("server-pid", 0, "report this process's CPU time over the window")
	asJSON := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	if *url == "" || *concurrency < 1 {
		fmt.Fprintln(os.Stderr, "kes-goclient: -url is required and -c must be >= 1")
		os.Exit(2)
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	switch {
	case *apiKey != "":
		cert, err := apiKeyCertificate(*apiKey)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kes-goclient:", err)
			os.Exit(2)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	case *certFile != "":
		k := *keyFile
		if k == "" {
			k = *certFile
		}
		cert, err := tls.LoadX509KeyPair(*certFile, k)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kes-goclient:", err)
			os.Exit(2)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	client := &http.Client{Transport: newTransport(tlsConfig, *h2)}

	var c counters
	ctx, cancel := context.WithCancel(context.Background())
	results := make([]workerResult, *concurrency)
	var wg, answered sync.WaitGroup
	for i := range results {
		wg.Add(1)
		answered.Add(1)
		go func(r *workerResult) {
			defer wg.Done()
			worker(ctx, client, *url, []byte(*body), &c, answered.Done, r)
		}(&results[i])
	}
	// The window opens a warm-up after every worker has had an answer, so
	// the connections that the first concurrent requests dial (Go dials one
	// per waiting request while it has none) are not counted in it even on
	// a slow machine.
	allAnswered := make(chan struct{})
	go func() { answered.Wait(); close(allAnswered) }()
	select {
	case <-allAnswered:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "kes-goclient: not every worker had an answer within 30s")
	}
	time.Sleep(*warmup)
	srv0, srvErr := 0.0, error(nil)
	if *serverPid > 0 {
		srv0, srvErr = cpuSeconds(*serverPid)
	}
	cli0 := ownCPUSeconds()
	begin := time.Now()
	c.inWindow.Store(true)
	time.Sleep(*duration)
	c.inWindow.Store(false)
	window := time.Since(begin).Seconds()
	cli1 := ownCPUSeconds()
	srv1 := 0.0
	if *serverPid > 0 && srvErr == nil {
		srv1, srvErr = cpuSeconds(*serverPid)
	}
	cancel()
	wg.Wait()

	var all []time.Duration
	status := map[string]int{}
	errs, non2xx, firstErr, proto := 0, 0, "", ""
	for _, r := range results {
		all = append(all, r.latencies...)
		for code, n := range r.status {
			status[strconv.Itoa(code)] += n
			if code < 200 || code > 299 {
				non2xx += n
			}
		}
		errs += r.errors
		if firstErr == "" {
			firstErr = r.firstErr
		}
		if r.proto != "" {
			proto = r.proto
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	mean := 0.0
	if len(all) > 0 {
		mean = float64(sum.Nanoseconds()) / float64(len(all)) / 1000
	}
	out := map[string]any{
		"url":                           *url,
		"concurrency":                   *concurrency,
		"http2_allowed":                 *h2,
		"proto":                         proto,
		"duration_s":                    window,
		"requests":                      len(all),
		"rps":                           float64(len(all)) / window,
		"errors":                        errs,
		"non_2xx":                       non2xx,
		"status":                        status,
		"new_tls_connections_in_window": c.winHandshk.Load(),
		"new_tls_connections_total":     c.handshakes.Load(),
		"tcp_connects_in_window":        c.winConnects.Load(),
		"tcp_connects_total":            c.connects.Load(),
		"client_cpu_s":                  cli1 - cli0,
		"latency_us": map[string]float64{
			"p50": quantile(all, 0.5), "p90": quantile(all, 0.9), "p99": quantile(all, 0.99),
			"p999": quantile(all, 0.999), "mean": mean,
			"max": func() float64 {
				if len(all) == 0 {
					return 0
				}
				return float64(all[len(all)-1].Nanoseconds()) / 1000
			}(),
		},
	}
	if firstErr != "" {
		out["first_error"] = firstErr
	}
	if *serverPid > 0 {
		if srvErr != nil {
			out["server_cpu_error"] = srvErr.Error()
		} else {
			out["server_cpu_s"] = srv1 - srv0
			if len(all) > 0 {
				out["server_cpu_us_per_request"] = (srv1 - srv0) * 1e6 / float64(len(all))
			}
		}
	}
	if *asJSON {
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	} else {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
	}
	if len(all) == 0 {
		os.Exit(1)
	}
}
