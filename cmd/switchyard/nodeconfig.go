package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-wamp/switchyard/bridge"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// applyStartFlags writes the flags the user set on the command line over cfg (a loaded
// file or the embedded default): flags win over the file, defaults of unset flags do not.
//
// An explicit --listen without --rawsocket and without --config is the whole listening
// setup: the embedded default's RawSocket-only listener (:8081 on every interface) is
// not opened; the --listen port serves RawSocket too.
func applyStartFlags(cfg *config.Config, fs *flag.FlagSet, f *startFlags) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["listen"] && !set["rawsocket"] && f.configFile == "" {
		if l := listenerOf(cfg, config.KindRawSocket, false); l != nil && l.Address == defaultAddress(config.KindRawSocket) {
			dropListeners(cfg, config.KindRawSocket)
		}
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen":
			listenerOf(cfg, config.KindUniversal, true).Address = f.listen
		case "ws-path":
			listenerOf(cfg, config.KindUniversal, true).Path = f.wsPath
		case "rawsocket":
			if f.rawsocket == "" {
				dropListeners(cfg, config.KindRawSocket)
			} else {
				listenerOf(cfg, config.KindRawSocket, true).Address = f.rawsocket
			}
		case "realm":
			cfg.Realms = nil
			for _, name := range f.realms {
				r := config.DefaultRealms()[0]
				r.Name = name
				cfg.Realms = append(cfg.Realms, r)
			}
		case "max-message-size", "ping-interval", "ping-timeout":
			for i := range cfg.Listeners {
				l := &cfg.Listeners[i]
				l.MaxMessageSize = f.maxMsg
				l.PingInterval = config.Duration(f.pingInterval)
				l.PingTimeout = config.Duration(f.pingTimeout)
			}
		case "outbound-limit":
			cfg.Node.OutboundLimit = f.outboundLimit
		case "outbound-hard-limit":
			cfg.Node.OutboundHardLimit = f.outboundHardLimit
		case "write-deadline":
			cfg.Node.WriteDeadline = config.Duration(f.writeDeadline)
		case "loops":
			cfg.Node.Loops = f.loops
		case "max-connections":
			cfg.Node.MaxConnections = f.maxConns
		case "log-level":
			cfg.Node.LogLevel = f.logLevel
		case "log-format":
			cfg.Node.LogFormat = f.logFormat
		case "drain-period":
			cfg.Node.DrainPeriod = config.Duration(f.drainPeriod)
		case "shutdown-grace":
			cfg.Node.ShutdownGrace = config.Duration(f.shutdownGrace)
		case "admin":
			cfg.Node.Admin = f.admin
		}
	})
}

// listenerOf returns the first listener of kind, adding a default one if create is set.
func listenerOf(cfg *config.Config, kind string, create bool) *config.Listener {
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Kind == kind {
			return &cfg.Listeners[i]
		}
	}
	if !create {
		return nil
	}
	for _, l := range config.DefaultListeners() {
		if l.Kind == kind {
			cfg.Listeners = append(cfg.Listeners, l)
			return &cfg.Listeners[len(cfg.Listeners)-1]
		}
	}
	panic("no default listener of kind " + kind)
}

// defaultAddress is the address of the embedded default's listener of kind ("" if none).
func defaultAddress(kind string) string {
	for _, l := range config.DefaultListeners() {
		if l.Kind == kind {
			return l.Address
		}
	}
	return ""
}

func dropListeners(cfg *config.Config, kind string) {
	kept := cfg.Listeners[:0]
	for _, l := range cfg.Listeners {
		if l.Kind != kind {
			kept = append(kept, l)
		}
	}
	cfg.Listeners = kept
}

// serializerNames maps the config's serializer names to codec serializers.
var serializerNames = func() map[string]codec.Serializer {
	m := map[string]codec.Serializer{}
	for _, s := range codec.Serializers() {
		m[s.String()] = s
	}
	return m
}()

// cookieStores keeps each realm's WAMP-Cookie store across config reloads (by realm and
// file), so that a SIGHUP does not forget who the cookies belong to.
var (
	cookieMu     sync.Mutex
	cookieStores = map[string]*proxy.CookieStore{}
)

func cookieStore(realm, file string) (*proxy.CookieStore, error) {
	cookieMu.Lock()
	defer cookieMu.Unlock()
	key := realm + "\x00" + file
	if s, ok := cookieStores[key]; ok {
		return s, nil
	}
	s, err := proxy.NewCookieStore(file)
	if err != nil {
		return nil, err
	}
	cookieStores[key] = s
	return s, nil
}

// errCannotRun marks a valid configuration the node still cannot run (a cookie file that
// cannot be written, ...).
var errCannotRun = errors.New("configuration cannot run")

// nodeConfig maps a validated config onto a standalone node. What cannot run is refused
// with its path rather than silently ignored.
func nodeConfig(cfg *config.Config) (node.Config, error) {
	var nc node.Config
	var problems []string
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		path := fmt.Sprintf("listeners[%d]", i)
		nl := node.Listener{Name: path, AuthMethods: l.Auth, Kind: l.Kind, Address: l.Address, Path: l.Path, MaxMessageSize: l.MaxMessageSize,
			PingInterval: time.Duration(l.PingInterval), PingTimeout: time.Duration(l.PingTimeout),
			HandshakeTimeout: time.Duration(l.HandshakeTimeout),
			StatusPage:       l.StatusPage, AllowedOrigins: l.AllowedOrigins}
		if c := l.Compression; c != nil {
			nl.Compression = &netpoll.Compression{ClientContextTakeover: c.ClientContextTakeover,
				ClientMaxWindowBits: c.ClientMaxWindowBits, Level: c.Level, MinSize: c.MinSize}
		}
		if l.Kind == config.KindUnix {
			nl.Kind, nl.Network = node.KindUniversal, "unix"
		}
		for _, name := range l.Serializers {
			ser, ok := serializerNames[name]
			if !ok {
				problems = append(problems, path+".serializers: unknown serializer "+name)
			}
			nl.Serializers = append(nl.Serializers, ser)
		}
		if t := l.TLS; t != nil {
			nl.TLS = &node.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, MinVersion: t.MinVersion, ClientCAFile: t.ClientCAFile}
		}
		if slices.Contains(l.Auth, config.MethodCookie) || l.Auth == nil {
			// WAMP-Cookie: hand out the cookie of the first realm that configures one.
			for _, r := range cfg.Realms {
				if ck := r.Auth.Cookie; ck != nil && l.Kind != config.KindRawSocket {
					nl.Cookie = &netpoll.Cookie{Name: ck.Name, MaxAge: time.Duration(ck.MaxAge)}
					break
				}
			}
		}
		nl.Web = webPaths(l.Web)
		nc.Listeners = append(nc.Listeners, nl)
	}
	allowAll := config.DefaultRealms()[0].Roles[0].Permissions
	nc.Auth = map[string]*proxy.RealmAuth{}
	for i, r := range cfg.Realms {
		path := fmt.Sprintf("realms[%d]", i)
		ra := &proxy.RealmAuth{Tickets: map[string]proxy.TicketPrincipal{}, CRA: map[string]proxy.CRAPrincipal{}}
		if r.Auth.Anonymous != nil {
			role := r.Auth.Anonymous.Role
			ra.Anonymous = &role
		}
		for _, t := range r.Auth.Ticket {
			ra.Tickets[t.AuthID] = proxy.TicketPrincipal{Ticket: t.Ticket, Role: t.Role}
		}
		for _, c := range r.Auth.WAMPCRA {
			ra.CRA[c.AuthID] = proxy.CRAPrincipal{Secret: c.Secret, Salt: c.Salt,
				Iterations: c.Iterations, KeyLen: c.KeyLen, Role: c.Role}
		}
		ra.Cryptosign = map[string]proxy.CryptosignPrincipal{}
		for _, c := range r.Auth.Cryptosign {
			p := proxy.CryptosignPrincipal{Role: c.Role}
			for _, k := range c.AuthorizedKeys {
				if b, err := hex.DecodeString(k); err == nil && len(b) == ed25519.PublicKeySize {
					p.AuthorizedKeys = append(p.AuthorizedKeys, ed25519.PublicKey(b))
				}
			}
			ra.Cryptosign[c.AuthID] = p
		}
		if au := r.Auth.Authenticator; au != nil {
			ra.Authenticator = &proxy.Authenticator{Realm: au.Realm, Procedure: au.Procedure,
				Methods: au.Methods, Timeout: time.Duration(au.Timeout)}
		}
		if len(r.Auth.TLS) > 0 {
			ra.TLS = map[string]proxy.TLSPrincipal{}
			for _, p := range r.Auth.TLS {
				ra.TLS[proxy.NormalizeFingerprint(p.Fingerprint)] = proxy.TLSPrincipal{AuthID: p.AuthID, Role: p.Role}
			}
		}
		if ck := r.Auth.Cookie; ck != nil {
			store, err := cookieStore(r.Name, ck.File)
			if err != nil {
				problems = append(problems, path+".auth.cookie.file: "+err.Error())
			}
			ra.Cookie = &proxy.CookieAuth{MaxAge: time.Duration(ck.MaxAge), Store: store}
		}
		// A realm whose every role may do everything runs without authorization checks.
		open := true
		roles := map[string]*engine.RolePermissions{}
		for j, role := range r.Roles {
			open = open && reflect.DeepEqual(role.Permissions, allowAll)
			var rules []engine.Rule
			for _, p := range role.Permissions {
				rules = append(rules, engine.Rule{URI: p.URI, Match: p.Match, Allow: engine.Permission{
					Call: p.Allow.Call, Register: p.Allow.Register, Publish: p.Allow.Publish, Subscribe: p.Allow.Subscribe,
					DiscloseCaller: p.Disclose.Caller, DisclosePublisher: p.Disclose.Publisher}})
			}
			perms, err := engine.NewRolePermissions(rules)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s.roles[%d]: %v", path, j, err))
				continue
			}
			roles[role.Name] = perms
		}
		if !open || r.Authorizer != nil {
			if nc.Roles == nil {
				nc.Roles = map[string]map[string]*engine.RolePermissions{}
			}
			nc.Roles[r.Name] = roles
		}
		if r.Authorizer != nil {
			if nc.Authorizers == nil {
				nc.Authorizers = map[string]*engine.Authorizer{}
			}
			nc.Authorizers[r.Name] = &engine.Authorizer{Procedure: r.Authorizer.Procedure,
				CacheSize: r.Authorizer.CacheSize, Timeout: time.Duration(r.Authorizer.Timeout)}
		}
		nc.Realms = append(nc.Realms, r.Name)
		nc.Auth[r.Name] = ra
		st := engine.StoreConfig{RetainedTopics: r.Limits.RetainedTopics, HistoryTopics: r.Limits.HistoryTopics}
		for _, h := range r.History {
			st.History = append(st.History, engine.HistoryRule{URI: h.URI, Match: h.Match, Limit: h.Limit})
		}
		if nc.Store == nil {
			nc.Store = map[string]engine.StoreConfig{}
		}
		nc.Store[r.Name] = st
	}
	nc.OutboundLimit = cfg.Node.OutboundLimit
	nc.OutboundHardLimit = cfg.Node.OutboundHardLimit
	nc.WriteDeadline = time.Duration(cfg.Node.WriteDeadline)
	nc.Loops = cfg.Node.Loops
	nc.IOUring = cfg.Node.IOUring
	nc.MaxConnections = cfg.Node.MaxConnections
	if len(problems) > 0 {
		return nc, fmt.Errorf("%w:\n  %s", errCannotRun, strings.Join(problems, "\n  "))
	}
	return nc, nil
}

// webPaths maps a listener's web path tree onto the node's.
func webPaths(ws []config.WebPath) []node.WebPath {
	var out []node.WebPath
	for _, w := range ws {
		nw := node.WebPath{Path: w.Path, Kind: w.Kind, Directory: w.Directory, Index: w.Index,
			MaxAge: time.Duration(w.MaxAge), URL: w.URL, Code: w.Code, Value: w.Value,
			Realm: w.Realm, Role: w.Role, AuthID: w.AuthID, Topic: w.Topic, Timeout: time.Duration(w.Timeout),
			Guard: bridge.GuardConfig{MaxBody: int64(w.MaxBody), Rate: float64(w.Rate), Burst: w.Burst, Ticket: w.Ticket}}
		if h := w.HMAC; h != nil {
			nw.Guard.HMACKey, nw.Guard.HMACSecret, nw.Guard.HMACWindow = h.Key, []byte(h.Secret), time.Duration(h.Window)
		}
		out = append(out, nw)
	}
	return out
}
