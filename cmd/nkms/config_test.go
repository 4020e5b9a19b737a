package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProfiles(t *testing.T) {
	text := `# a comment
; another
[default]
endpoint = http://127.0.0.1:8383
access_key=AK1
secret_key = s = with equals

[staging]
  endpoint   =   https://staging.example:8383  
`
	got, err := parseProfiles([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]profile{
		"default": {"endpoint": "http://127.0.0.1:8383", "access_key": "AK1", "secret_key": "s = with equals"},
		"staging": {"endpoint": "https://staging.example:8383"},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Fatalf("got %v, want %v", got, want)
	}
	again, err := parseProfiles(formatProfiles(got))
	if err != nil || !maps.EqualFunc(again, want, maps.Equal) {
		t.Fatalf("format then parse: %v, %v", again, err)
	}
}

func TestParseProfilesErrors(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"endpoint = x", "line 1: setting endpoint comes before any [profile] header"},
		{"[a]\nregion = x", `line 2: unknown setting "region"`},
		{"[a]\njust words", "line 2: expected setting = value"},
		{"[a b]", "line 1: a profile header is [name]"},
		{"[a", "line 1: a profile header is [name]"},
		{"[a]\n[a]", `line 2: profile "a" appears twice`},
		{"[a]\nsecret_key = one\nsecret_key = two", "line 3: setting secret_key appears twice"},
	} {
		_, err := parseProfiles([]byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.text, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "two") {
			t.Errorf("%q: the error shows a value: %v", tt.text, err)
		}
	}
}

// TestResolveOrder checks flags → environment → profile file → default,
// and that --profile (a flag) puts its profile above the environment.
func TestResolveOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := saveProfiles(path, map[string]profile{
		"default": {"endpoint": "http://file-default", "access_key": "FILEAK", "secret_key": "filesecret"},
		"other":   {"endpoint": "http://file-other", "access_key": "OTHERAK", "secret_key": "othersecret"},
		"bare":    {},
	}); err != nil {
		t.Fatal(err)
	}
	type want struct{ endpoint, ak, sk, source string }
	for _, tt := range []struct {
		name  string
		flags clientFlags
		env   map[string]string
		want  want
	}{
		{"file only", clientFlags{}, nil, want{"http://file-default", "FILEAK", "filesecret", "profile default"}},
		{"env beats file", clientFlags{}, map[string]string{"NKMS_ENDPOINT": "http://env", "NKMS_ACCESS_KEY": "ENVAK", "NKMS_SECRET_KEY": "envsecret"},
			want{"http://env", "ENVAK", "envsecret", "env NKMS_ACCESS_KEY"}},
		{"NKMS_URL is the older name", clientFlags{}, map[string]string{"NKMS_URL": "http://old"}, want{"http://old", "FILEAK", "filesecret", "profile default"}},
		{"NCP names", clientFlags{}, map[string]string{"NCP_ACCESS_KEY": "NCPAK", "NCP_SECRET_KEY": "ncpsecret"},
			want{"http://file-default", "NCPAK", "ncpsecret", "env NCP_ACCESS_KEY"}},
		{"NKMS names beat NCP names", clientFlags{}, map[string]string{"NCP_ACCESS_KEY": "NCPAK", "NCP_SECRET_KEY": "ncpsecret", "NKMS_ACCESS_KEY": "ENVAK", "NKMS_SECRET_KEY": "envsecret"},
			want{"http://file-default", "ENVAK", "envsecret", "env NKMS_ACCESS_KEY"}},
		{"flag beats env", clientFlags{endpoint: "http://flag"}, map[string]string{"NKMS_ENDPOINT": "http://env"}, want{"http://flag", "FILEAK", "filesecret", "profile default"}},
		{"--profile beats env", clientFlags{profile: "other"}, map[string]string{"NKMS_ENDPOINT": "http://env", "NKMS_ACCESS_KEY": "ENVAK", "NKMS_SECRET_KEY": "envsecret"},
			want{"http://file-other", "OTHERAK", "othersecret", "profile other"}},
		{"NKMS_PROFILE only names it", clientFlags{}, map[string]string{"NKMS_PROFILE": "other", "NKMS_ENDPOINT": "http://env", "NKMS_ACCESS_KEY": "ENVAK", "NKMS_SECRET_KEY": "envsecret"},
			want{"http://env", "ENVAK", "envsecret", "env NKMS_ACCESS_KEY"}},
		{"empty profile falls back to env and default", clientFlags{profile: "bare"}, map[string]string{"NKMS_ACCESS_KEY": "ENVAK", "NKMS_SECRET_KEY": "envsecret"},
			want{defaultEndpoint, "ENVAK", "envsecret", "env NKMS_ACCESS_KEY"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"NKMS_CONFIG": path}
			maps.Copy(env, tt.env)
			s, err := tt.flags.resolve(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			got := want{s.endpoint.value, s.accessKey.value, s.secretKey.value, s.accessKey.source}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	write := func(text string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(f clientFlags, env map[string]string) error {
		env["NKMS_CONFIG"] = path
		_, err := f.resolve(func(k string) string { return env[k] })
		return err
	}
	write("[default]\nsecret_key = topsecret\n", 0o644)
	err := resolve(clientFlags{}, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "has mode 0644") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("a 0644 file: %v", err)
	}
	write("[default]\nsecret_key = topsecret\n", 0o600)
	if err := resolve(clientFlags{}, map[string]string{}); err == nil || !strings.Contains(err.Error(), "only one of access_key and secret_key") {
		t.Fatalf("half a pair in the file: %v", err)
	}
	write("[default]\n", 0o600)
	if err := resolve(clientFlags{profile: "nope"}, map[string]string{}); err == nil || !strings.Contains(err.Error(), `no profile "nope"`) {
		t.Fatalf("unknown --profile: %v", err)
	}
	if err := resolve(clientFlags{}, map[string]string{"NKMS_PROFILE": "nope"}); err == nil || !strings.Contains(err.Error(), `no profile "nope"`) {
		t.Fatalf("unknown NKMS_PROFILE: %v", err)
	}
	if err := resolve(clientFlags{}, map[string]string{"NCP_SECRET_KEY": "x"}); err == nil || err.Error() != "NCP_SECRET_KEY is set but NCP_ACCESS_KEY is not" {
		t.Fatalf("half an NCP pair: %v", err)
	}
	os.Remove(path)
	if err := resolve(clientFlags{}, map[string]string{}); err != nil {
		t.Fatalf("no file and no profile named is fine: %v", err)
	}
}

// FuzzParseProfiles: the parser never panics, and what it accepts survives
// formatProfiles and a second parse unchanged.
func FuzzParseProfiles(f *testing.F) {
	f.Add([]byte("[default]\nendpoint = http://x\naccess_key = A\nsecret_key = s\n"))
	f.Add([]byte("# c\n[a]\n[b]\nca_cert=/x\n"))
	f.Add([]byte("[a]\nendpoint ==\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		p, err := parseProfiles(text)
		if err != nil {
			return
		}
		again, err := parseProfiles(formatProfiles(p))
		if err != nil {
			t.Fatalf("formatted profiles do not parse: %v", err)
		}
		if !maps.EqualFunc(p, again, maps.Equal) {
			t.Fatalf("round trip: %q → %q", p, again)
		}
	})
}
