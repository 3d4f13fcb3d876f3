package profiles

import (
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlagsWriteTheProfile(t *testing.T) {
	for _, name := range []string{"cpuprofile", "memprofile", "trace"} {
		t.Run(name, func(t *testing.T) {
			var f Flags
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			f.Register(fs)
			out := filepath.Join(t.TempDir(), "out.prof")
			if err := fs.Parse([]string{"--" + name, out}); err != nil {
				t.Fatal(err)
			}
			stop, err := f.Start()
			if err != nil {
				t.Fatal(err)
			}
			work := 0
			for i := 0; i < 1e6; i++ {
				work += i
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(out); err != nil || st.Size() == 0 {
				t.Fatalf("profile not written: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".profile-*")); len(left) != 0 {
				t.Fatalf("temporary dirs left: %v", left)
			}
		})
	}
}

func TestFlagsOneAtATime(t *testing.T) {
	f := Flags{CPU: "a", Mem: "b"}
	if _, err := f.Start(); err == nil || !strings.Contains(err.Error(), "one profile at a time") {
		t.Fatalf("want one-at-a-time error, got %v", err)
	}
	stop, err := (&Flags{}).Start()
	if err != nil || stop() != nil {
		t.Fatal("no flags must be a no-op")
	}
}

func TestAdminServesPprof(t *testing.T) {
	srv, addr, err := ServeAdmin("127.0.0.1:0", AdminHandler(map[string]http.Handler{
		"/healthz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/goroutine?debug=1": "goroutine profile", "/healthz": "ok"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, b[:min(len(b), 200)])
		}
	}
}

// TestAdminRootIndex: the admin root lists every endpoint (it was a 404); other unknown
// paths stay 404.
func TestAdminRootIndex(t *testing.T) {
	srv, addr, err := ServeAdmin("127.0.0.1:0", AdminHandler(map[string]http.Handler{
		"/debug/stats": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "{}") }),
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `href="/debug/pprof/"`) || !strings.Contains(string(b), `href="/debug/stats"`) {
		t.Fatalf("/: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get("http://" + addr.String() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("/nope: %d", resp.StatusCode)
	}
}
