package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/node"
)

func TestDefaultConfigIsTheEmbeddedNode(t *testing.T) {
	nc, err := nodeConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(nc.Listeners) != 2 || strings.Join(nc.Realms, ",") != "realm1" || nc.OutboundLimit != 4<<20 {
		t.Fatalf("%+v", nc)
	}
	u, r := nc.Listeners[0], nc.Listeners[1]
	if u.Kind != node.KindUniversal || u.Address != ":8080" || u.Path != "/ws" || u.TLS != nil ||
		r.Kind != node.KindRawSocket || r.Address != ":8081" || !slices.Equal(u.Serializers, codec.Serializers()) {
		t.Fatalf("listeners %+v", nc.Listeners)
	}
	for _, l := range nc.Listeners {
		if l.MaxMessageSize != 1<<20 || l.PingInterval != 10*time.Second || l.PingTimeout != 5*time.Second {
			t.Fatalf("listener %+v", l)
		}
	}
}

func TestFlagsOverrideTheFile(t *testing.T) {
	var f startFlags
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", ":8080", "")
	fs.StringVar(&f.rawsocket, "rawsocket", ":8081", "")
	fs.Var(&f.realms, "realm", "")
	fs.IntVar(&f.loops, "loops", 0, "")
	fs.IntVar(&f.maxConns, "max-connections", 0, "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:0", "--rawsocket", "", "--realm", "a", "--realm", "b", "--max-connections", "500"}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Node.Loops = 3 // from "the file": an unset flag must not reset it
	applyStartFlags(cfg, fs, &f)
	if p := cfg.Validate(); len(p) > 0 {
		t.Fatal(p)
	}
	nc, err := nodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(nc.Listeners) != 1 || nc.Listeners[0].Address != "127.0.0.1:0" || strings.Join(nc.Realms, ",") != "a,b" || nc.Loops != 3 || nc.MaxConnections != 500 {
		t.Fatalf("%+v", nc)
	}
}

func TestWhatTheNodeCannotRunIsRefused(t *testing.T) {
	cfg := config.Default()
	cfg.Realms[0].Auth.Cookie = &config.Cookie{Name: "cbtid", MaxAge: config.Duration(time.Hour),
		File: filepath.Join(t.TempDir(), "no-such-dir", "cookies")}
	_, err := nodeConfig(cfg)
	if !errors.Is(err, errCannotRun) || !strings.Contains(err.Error(), "realms[0].auth.cookie.file") {
		t.Fatalf("want errors naming the paths, got %v", err)
	}
}

func TestRolesBecomePermissions(t *testing.T) {
	cfg := config.Default()
	nc, err := nodeConfig(cfg)
	if err != nil || nc.Roles != nil {
		t.Fatalf("the allow-all default must run without checks: %v %v", nc.Roles, err)
	}
	cfg.Realms[0].Roles[0].Permissions[0].Allow.Publish = false
	nc, err = nodeConfig(cfg)
	if err != nil || nc.Roles["realm1"]["anonymous"] == nil {
		t.Fatalf("roles not compiled: %v %v", nc.Roles, err)
	}
}

// TestPrecedenceFileEnvFlags pins what README and docs/config.md say: the environment
// overrides the file and a flag given overrides both.
func TestPrecedenceFileEnvFlags(t *testing.T) {
	t.Setenv("SWITCHYARD_LISTENERS_0_ADDRESS", "127.0.0.1:28081")
	t.Setenv("SWITCHYARD_LOG_LEVEL", "warn")
	var f startFlags
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", ":8080", "")
	fs.StringVar(&f.logLevel, "log-level", "info", "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:28082"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadStartConfig(&f, fs)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Listeners[0].Address; got != "127.0.0.1:28082" {
		t.Errorf("listener address %q: the flag must win over the environment", got)
	}
	if got := cfg.Node.LogLevel; got != "warn" {
		t.Errorf("log level %q: the environment must win over the default", got)
	}
}

// TestListenAloneOpensOnePort: `switchyard start --listen 127.0.0.1:X` opens that port
// only (it serves RawSocket too), not also the default RawSocket listener on :8081 of
// every interface; --rawsocket given, or a config file, keep their RawSocket listener.
func TestListenAloneOpensOnePort(t *testing.T) {
	for _, tc := range []struct {
		args []string
		file string
		want []string
	}{
		{[]string{"--listen", "127.0.0.1:28082"}, "", []string{"universal 127.0.0.1:28082"}},
		{[]string{"--listen", "127.0.0.1:28082", "--rawsocket", "127.0.0.1:28083"}, "", []string{"universal 127.0.0.1:28082", "rawsocket 127.0.0.1:28083"}},
		{[]string{"--realm", "a"}, "", []string{"universal :8080", "rawsocket :8081"}},
		{[]string{"--listen", "127.0.0.1:28082"}, "version: 1\n", []string{"universal 127.0.0.1:28082", "rawsocket :8081"}},
	} {
		var f startFlags
		fs := flag.NewFlagSet("start", flag.ContinueOnError)
		fs.StringVar(&f.listen, "listen", ":8080", "")
		fs.StringVar(&f.rawsocket, "rawsocket", ":8081", "")
		fs.Var(&f.realms, "realm", "")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if tc.file != "" {
			f.configFile = filepath.Join(t.TempDir(), "switchyard.yaml")
			if err := os.WriteFile(f.configFile, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := loadStartConfig(&f, fs)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range cfg.Listeners {
			got = append(got, l.Kind+" "+l.Address)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("start %s (file %q): listeners %q, want %q", strings.Join(tc.args, " "), tc.file, got, tc.want)
		}
	}
}
