package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// WAMP-Cookie authentication, as Crossbar offers it: a WebSocket listener with a cookie
// option hands every browser a random cookie on its first upgrade (netpoll does that);
// when a session on such a connection authenticates with any other method, the realm's
// CookieStore remembers who the cookie belongs to; later connections that bring the
// cookie and offer the "cookie" authmethod join as that principal without a
// handshake, until the cookie expires. Only WebSocket connections carry cookies.

// CookieAuth enables WAMP-Cookie on a realm. Read-only once in use.
type CookieAuth struct {
	MaxAge time.Duration // how long an authenticated cookie stays valid
	Store  *CookieStore
}

// cookieEntry is what a cookie authenticates as (one JSON line in the store's file, and
// what proxies share through the routers).
type cookieEntry = wire.Cookie

// CookieStore maps cookies to the principal they authenticated as, in memory and
// optionally in a file (JSON lines, appended on each login, compacted on open) so that
// cookies survive a restart. Its methods are safe for concurrent use.
type CookieStore struct {
	m    *xsync.MapOf[string, cookieEntry] // by realm + "\x00" + cookie
	mu   sync.Mutex                        // guards f
	f    *os.File                          // nil: memory only
	path string
}

// NewCookieStore opens the store; path "" keeps cookies in memory only. An existing file
// is read (expired and malformed lines are dropped) and rewritten compacted. The file
// holds bearer credentials: it is created with mode 0600.
func NewCookieStore(path string) (*CookieStore, error) {
	s := &CookieStore{m: xsync.NewMapOf[string, cookieEntry](), path: path}
	if path == "" {
		return s, nil
	}
	now := time.Now()
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e cookieEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Cookie != "" && e.Expires.After(now) {
				s.m.Store(e.Realm+"\x00"+e.Cookie, e)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("cookie store %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cookie store: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cookies-*")
	if err != nil {
		return nil, fmt.Errorf("cookie store: %w", err)
	}
	w := bufio.NewWriter(tmp)
	s.m.Range(func(_ string, e cookieEntry) bool {
		b, _ := json.Marshal(e)
		w.Write(append(b, '\n'))
		return true
	})
	if err := errors.Join(w.Flush(), tmp.Chmod(0o600), tmp.Close(), os.Rename(tmp.Name(), path)); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("cookie store %s: %w", path, err)
	}
	if s.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("cookie store: %w", err)
	}
	return s, nil
}

// lookup returns the live principal of cookie in realm.
func (s *CookieStore) lookup(realm, cookie string) (cookieEntry, bool) {
	e, ok := s.m.Load(realm + "\x00" + cookie)
	if !ok || time.Now().After(e.Expires) {
		return cookieEntry{}, false
	}
	return e, true
}

// remember records that cookie authenticated in e.Realm as e's principal.
func (s *CookieStore) remember(e cookieEntry) {
	s.m.Store(e.Realm+"\x00"+e.Cookie, e)
	if s.f == nil {
		return
	}
	b, _ := json.Marshal(e)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.f.Write(append(b, '\n'))
}

// Close closes the store's file. Safe for concurrent use; the store keeps working in
// memory afterwards.
func (s *CookieStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// cookieLogin joins a connection whose cookie authenticated in realm before (st.mu
// held); it reports false when there is no such cookie (the next method is tried).
func (f *Frontend) cookieLogin(c *netpoll.Conn, st *conn, ra *RealmAuth, realm string, features engine.Features) bool {
	id := c.CookieID()
	if ra.Cookie == nil || id == "" || c.CookieIsNew() {
		return false
	}
	e, ok := ra.Cookie.Store.lookup(realm, id)
	if !ok {
		return false
	}
	f.welcome(c, st, realm, engine.AuthInfo{AuthID: e.AuthID, AuthRole: e.AuthRole, AuthMethod: "cookie",
		AuthProvider: e.AuthProvider}, features)
	return true
}

// rememberCookie records a successful login on a connection with a cookie, for realms
// with WAMP-Cookie.
func (f *Frontend) rememberCookie(c *netpoll.Conn, realm string, info engine.AuthInfo) {
	ra := (*f.auth.Load())[realm]
	if ra == nil || ra.Cookie == nil || info.AuthMethod == "cookie" || c.CookieID() == "" {
		return
	}
	e := cookieEntry{Cookie: c.CookieID(), Realm: realm, AuthID: info.AuthID,
		AuthRole: info.AuthRole, AuthMethod: info.AuthMethod, AuthProvider: info.AuthProvider,
		Expires: time.Now().Add(ra.Cookie.MaxAge)}
	ra.Cookie.Store.remember(e)
	if f.cluster != nil {
		f.cluster.ShareCookie(e)
	}
}
