package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/config"
)

func TestDefaultConfigIsTheEmbeddedNode(t *testing.T) {
	nc, err := nodeConfig(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if nc.Listen != ":8080" || nc.RawSocket != ":8081" || nc.WSPath != "/ws" ||
		strings.Join(nc.Realms, ",") != "realm1" || nc.MaxMessageSize != 1<<20 ||
		nc.PingInterval != 10*time.Second || nc.PingTimeout != 5*time.Second || nc.OutboundLimit != 4<<20 {
		t.Fatalf("%+v", nc)
	}
}

func TestFlagsOverrideTheFile(t *testing.T) {
	var f startFlags
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", ":8080", "")
	fs.StringVar(&f.rawsocket, "rawsocket", ":8081", "")
	fs.Var(&f.realms, "realm", "")
	fs.IntVar(&f.loops, "loops", 0, "")
	if err := fs.Parse([]string{"--listen", "127.0.0.1:0", "--rawsocket", "", "--realm", "a", "--realm", "b"}); err != nil {
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
	if nc.Listen != "127.0.0.1:0" || nc.RawSocket != "" || strings.Join(nc.Realms, ",") != "a,b" || nc.Loops != 3 {
		t.Fatalf("%+v", nc)
	}
}

func TestWhatTheNodeCannotRunIsRefused(t *testing.T) {
	cfg := config.Default()
	cfg.Listeners[0].TLS = &config.TLS{CertFile: "c", KeyFile: "k", MinVersion: "1.2"}
	cfg.Realms[0].Auth.Cookie = &config.Cookie{Name: "cbtid"}
	_, err := nodeConfig(cfg)
	if !errors.Is(err, errNotYet) || !strings.Contains(err.Error(), "listeners[0].tls") ||
		!strings.Contains(err.Error(), "realms[0].auth") {
		t.Fatalf("want not-yet errors naming the paths, got %v", err)
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
