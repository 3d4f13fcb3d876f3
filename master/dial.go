package master

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/switchyard-wamp/switchyard/client"
)

// Dial joins the management realm at url (ws://, rs://, ...) as authid with WAMP-CRA
// on secret: a node's name and its key (or the cluster secret), or OperatorAuthID and
// the operator key. The nodes' member package, `switchyard cluster` and the tests use
// it. log may be nil. Safe for concurrent use.
func Dial(ctx context.Context, url, authid, secret string, log *slog.Logger) (*client.Session, error) {
	s, err := client.Connect(ctx, client.Config{
		URL:         url,
		Realm:       Realm,
		AuthID:      authid,
		AuthMethods: []string{"wampcra"},
		OnChallenge: func(method string, extra map[string]any) (string, error) {
			if method != "wampcra" {
				return "", fmt.Errorf("master: unexpected %q challenge", method)
			}
			return SignCRA(secret, extra)
		},
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("master: join %s at %s as %q: %w", Realm, url, authid, err)
	}
	return s, nil
}

// SignCRA answers a WAMP-CRA challenge (CHALLENGE.Extra) with secret: the base64
// HMAC-SHA256 of the challenge string, keyed by the secret or, when the challenge
// carries a salt, by the base64 of its PBKDF2-SHA256 derivation. Safe for concurrent use.
func SignCRA(secret string, extra map[string]any) (string, error) {
	challenge, _ := extra["challenge"].(string)
	if challenge == "" {
		return "", fmt.Errorf("master: wampcra challenge without a challenge string")
	}
	key := []byte(secret)
	if salt, _ := extra["salt"].(string); salt != "" {
		iters, keylen := intOf(extra["iterations"], 1000), intOf(extra["keylen"], 32)
		dk, err := pbkdf2.Key(sha256.New, secret, []byte(salt), iters, keylen)
		if err != nil {
			return "", fmt.Errorf("master: derive wampcra key: %w", err)
		}
		key = []byte(base64.StdEncoding.EncodeToString(dk))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(challenge))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

func intOf(v any, def int) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int64:
		return int(n)
	case uint64:
		return int(n)
	case int:
		return n
	case json.Number:
		i, err := n.Int64()
		if err == nil {
			return int(i)
		}
	}
	return def
}

// Call calls procedure on s with req's JSON form as keyword arguments and decodes
// the keyword arguments of the result into res (nil: ignored). A WAMP error comes
// back as a *client.Error (errors.As), e.g. ErrNotLeader with kwargs["leader"]. Safe
// for concurrent use.
func Call(ctx context.Context, s *client.Session, procedure string, req, res any) error {
	var kw map[string]any
	if req != nil {
		var err error
		if kw, err = toKwargs(req); err != nil {
			return fmt.Errorf("master: %s: %w", procedure, err)
		}
	}
	r, err := s.Call(ctx, procedure, nil, kw, nil)
	if err != nil {
		return fmt.Errorf("master: %s: %w", procedure, err)
	}
	if res == nil {
		return nil
	}
	if err := fromKwargs(r.Kwargs, res); err != nil {
		return fmt.Errorf("master: %s result: %w", procedure, err)
	}
	return nil
}

// toKwargs returns v's JSON form as a dict.
func toKwargs(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var kw map[string]any
	if err := json.Unmarshal(b, &kw); err != nil {
		return nil, err
	}
	return kw, nil
}

// fromKwargs decodes a dict into v by its JSON form.
func fromKwargs(kw map[string]any, v any) error {
	if kw == nil {
		kw = map[string]any{}
	}
	b, err := json.Marshal(kw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// LeaderOf returns the leader URL an ErrNotLeader error names ("" if err is not one
// or names none). Safe for concurrent use.
func LeaderOf(err error) (string, bool) {
	var e *client.Error
	if !errors.As(err, &e) || e.URI != ErrNotLeader {
		return "", false
	}
	l, _ := e.Kwargs["leader"].(string)
	return l, true
}
