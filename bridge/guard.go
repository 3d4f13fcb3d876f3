package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signature headers of a signed request (see GuardConfig.HMACSecret).
const (
	HeaderKey       = "X-Switchyard-Key"
	HeaderTimestamp = "X-Switchyard-Timestamp"
	HeaderNonce     = "X-Switchyard-Nonce"
	HeaderSignature = "X-Switchyard-Signature"
)

const (
	defaultMaxBody    = 64 << 10
	defaultHMACWindow = 5 * time.Minute
	maxNonces         = 1 << 16
	maxNonceLen       = 128
)

// GuardConfig says what a bridge endpoint accepts. Plain data.
type GuardConfig struct {
	// MaxBody bounds the request body in bytes (413 over it); 0: 64 KiB.
	MaxBody int64
	// Rate bounds the requests per second the endpoint takes (all clients together;
	// 429 with Retry-After past it); 0: unbounded. Burst requests may come at once
	// (0: max(1, Rate)).
	Rate  float64
	Burst int
	// HMACKey and HMACSecret, when HMACSecret is set, require every request to be
	// signed: the headers X-Switchyard-Key (= HMACKey), X-Switchyard-Timestamp (unix
	// seconds), X-Switchyard-Nonce (1..128 characters, never reused) and
	// X-Switchyard-Signature = lowercase hex of HMAC-SHA256(HMACSecret, key "\n"
	// timestamp "\n" nonce "\n" method "\n" path "\n" body). A timestamp further than
	// HMACWindow (0: 5 minutes) from the node's clock, or a nonce seen within the
	// window, is refused (401).
	HMACKey    string
	HMACSecret []byte
	HMACWindow time.Duration
	// Ticket, when set, requires "Authorization: Bearer <Ticket>" (401 without it).
	Ticket string
}

// Guard applies a GuardConfig to the requests of one endpoint. Safe for concurrent use.
type Guard struct {
	cfg GuardConfig

	mu     sync.Mutex // rate bucket and nonces; the HTTP side only, never the WAMP path
	tokens float64
	last   time.Time
	nonces map[string]int64 // nonce -> unix seconds after which it may be forgotten
	now    func() time.Time
}

// NewGuard checks cfg and returns its guard. Safe for concurrent use.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if cfg.MaxBody < 0 || cfg.Rate < 0 || cfg.Burst < 0 || cfg.HMACWindow < 0 {
		return nil, errors.New("bridge: negative limit")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = defaultMaxBody
	}
	if cfg.Rate > 0 && cfg.Burst == 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.Rate)))
	}
	if cfg.HMACWindow == 0 {
		cfg.HMACWindow = defaultHMACWindow
	}
	if len(cfg.HMACSecret) > 0 && cfg.HMACKey == "" {
		return nil, errors.New("bridge: hmac secret without a key name")
	}
	if len(cfg.HMACSecret) > 0 && cfg.Ticket != "" {
		return nil, errors.New("bridge: hmac and ticket are exclusive")
	}
	return &Guard{cfg: cfg, tokens: float64(cfg.Burst), nonces: map[string]int64{}, now: time.Now}, nil
}

// wrap runs the checks (method, rate, size, ticket or signature) and calls h with the
// body.
func (g *Guard) wrap(log *slog.Logger, h func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "wamp.error.invalid_argument", "use POST")
			return
		}
		if wait, ok := g.allow(); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "wamp.error.not_authorized", "rate limit")
			return
		}
		if r.ContentLength > g.cfg.MaxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "wamp.error.invalid_argument", "body over "+strconv.FormatInt(g.cfg.MaxBody, 10)+" bytes")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, "wamp.error.invalid_argument", "body over "+strconv.FormatInt(g.cfg.MaxBody, 10)+" bytes")
				return
			}
			writeError(w, http.StatusBadRequest, "wamp.error.invalid_argument", "reading the body failed")
			return
		}
		if err := g.authenticate(r, body); err != nil {
			log.Info("bridge: request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err)
			w.Header().Set("WWW-Authenticate", g.scheme())
			writeError(w, http.StatusUnauthorized, "wamp.error.not_authorized", err.Error())
			return
		}
		h(w, r, body)
	})
}

func (g *Guard) scheme() string {
	if len(g.cfg.HMACSecret) > 0 {
		return "X-Switchyard-Signature"
	}
	return "Bearer"
}

// allow takes a token from the rate bucket; when empty it says how long until one.
func (g *Guard) allow() (time.Duration, bool) {
	if g.cfg.Rate <= 0 {
		return 0, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !g.last.IsZero() {
		g.tokens = min(float64(g.cfg.Burst), g.tokens+now.Sub(g.last).Seconds()*g.cfg.Rate)
	}
	g.last = now
	if g.tokens < 1 {
		return time.Duration((1 - g.tokens) / g.cfg.Rate * float64(time.Second)), false
	}
	g.tokens--
	return 0, true
}

// authenticate checks the ticket or the signature of r with body.
func (g *Guard) authenticate(r *http.Request, body []byte) error {
	if t := g.cfg.Ticket; t != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(t)) != 1 {
			return errors.New("missing or wrong bearer ticket")
		}
		return nil
	}
	if len(g.cfg.HMACSecret) == 0 {
		return nil
	}
	key, ts, nonce, sig := r.Header.Get(HeaderKey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if key == "" || ts == "" || nonce == "" || sig == "" {
		return errors.New("unsigned request (signature headers missing)")
	}
	if key != g.cfg.HMACKey {
		return errors.New("unknown signing key")
	}
	if len(nonce) > maxNonceLen {
		return errors.New("nonce too long")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("timestamp is not unix seconds")
	}
	want := Sign(g.cfg.HMACSecret, key, ts, nonce, r.Method, r.URL.Path, body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return errors.New("bad signature")
	}
	now := g.now().Unix()
	win := int64(g.cfg.HMACWindow / time.Second)
	if sec < now-win || sec > now+win {
		return fmt.Errorf("stale timestamp (window %s)", g.cfg.HMACWindow)
	}
	return g.useNonce(nonce, now, sec+win)
}

// useNonce records nonce until forget (unix seconds); a nonce already recorded is a
// replay.
func (g *Guard) useNonce(nonce string, now, forget int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until, ok := g.nonces[nonce]; ok && until >= now {
		return errors.New("replayed nonce")
	}
	if len(g.nonces) >= maxNonces {
		for n, until := range g.nonces {
			if until < now {
				delete(g.nonces, n)
			}
		}
		if len(g.nonces) >= maxNonces {
			return errors.New("too many signed requests in the replay window")
		}
	}
	g.nonces[nonce] = forget
	return nil
}

// Sign returns the signature a client sends in X-Switchyard-Signature (see
// GuardConfig.HMACSecret). Safe for concurrent use.
func Sign(secret []byte, key, timestamp, nonce, method, path string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	for _, s := range []string{key, timestamp, nonce, method, path} {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
