package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The client commands find their server and credentials like other cloud
// CLIs do: a flag wins over the environment, which wins over the profile
// file, which wins over the defaults. Choosing a profile with --profile is
// a flag, so its settings then win over the environment too (as with the
// AWS CLI); NKMS_PROFILE only names the profile.
//
// The profile file (default ~/.config/nkms/config, or $NKMS_CONFIG) holds
// named sections of settings:
//
//	# comments start with # or ;
//	[default]
//	endpoint   = https://kms.example:8383
//	access_key = AK...
//	secret_key = ...
//	ca_cert    = /etc/nkms/ca.pem
//
// It holds secret keys, so a file that others can read is refused.

const defaultEndpoint = "http://127.0.0.1:8383"

// profileSettings are the settings a profile may have, in the order
// `nkms config show` prints them.
var profileSettings = []string{"endpoint", "access_key", "secret_key", "ca_cert"}

// profile is one named section of the profile file.
type profile map[string]string

// parseProfiles reads the text of a profile file. Errors name the line and
// the setting, never a value (values may be secret keys).
func parseProfiles(text []byte) (map[string]profile, error) {
	profiles := map[string]profile{}
	var cur profile
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			name, ok := strings.CutSuffix(line[1:], "]")
			name = strings.TrimSpace(name)
			if !ok || !validProfileName(name) {
				return nil, fmt.Errorf("line %d: a profile header is [name], with letters, digits, '-', '_' or '.'", n)
			}
			if _, dup := profiles[name]; dup {
				return nil, fmt.Errorf("line %d: profile %q appears twice", n, name)
			}
			cur = profile{}
			profiles[name] = cur
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected setting = value", n)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !slices.Contains(profileSettings, key) {
			return nil, fmt.Errorf("line %d: unknown setting %q (known: %s)", n, clip(key, 40), strings.Join(profileSettings, ", "))
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: setting %s comes before any [profile] header", n, key)
		}
		if _, dup := cur[key]; dup {
			return nil, fmt.Errorf("line %d: setting %s appears twice in the profile", n, key)
		}
		cur[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("profile file: %w", err)
	}
	return profiles, nil
}

// formatProfiles is the text of a profile file; parseProfiles reads it back.
func formatProfiles(profiles map[string]profile) []byte {
	var b bytes.Buffer
	b.WriteString("# nkms profiles: see `nkms config --help`. Holds secret keys: keep it mode 0600.\n")
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "\n[%s]\n", name)
		for _, key := range profileSettings {
			if v, ok := profiles[name][key]; ok {
				fmt.Fprintf(&b, "%s = %s\n", key, v)
			}
		}
	}
	return b.Bytes()
}

func validProfileName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// configPath is where the profile file lives: $NKMS_CONFIG, else
// $XDG_CONFIG_HOME/nkms/config, else ~/.config/nkms/config.
func configPath(getenv func(string) string) (string, error) {
	if p := getenv("NKMS_CONFIG"); p != "" {
		return p, nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "nkms", "config"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("find the profile file: $HOME is not set (set NKMS_CONFIG)")
	}
	return filepath.Join(home, ".config", "nkms", "config"), nil
}

// loadProfiles reads the profile file at path; a missing file has no
// profiles. A file others can read or write is refused: it holds secrets.
func loadProfiles(path string) (map[string]profile, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]profile{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("profile file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, &hintError{
			fmt.Errorf("profile file %s has mode %04o: it holds secret keys and must not be open to others", path, perm),
			"chmod 600 " + path,
		}
	}
	text, err := readAllLimit(f, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("profile file %s: %w", path, err)
	}
	profiles, err := parseProfiles(text)
	if err != nil {
		return nil, fmt.Errorf("profile file %s: %w", path, err)
	}
	return profiles, nil
}

// saveProfiles writes the profile file with mode 0600, atomically.
func saveProfiles(path string, profiles map[string]profile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeOutput(path, nil, func(w io.Writer) error {
		_, err := w.Write(formatProfiles(profiles))
		return err
	})
}

// setting is one resolved value and where it came from.
type setting struct {
	value, source string
}

// clientSettings are the resolved connection settings of a client command.
type clientSettings struct {
	endpoint, accessKey, secretKey, caCert setting
	profile                                string // profile that was read, "" for none
}

// resolve applies flags, then environment, then the profile file, then
// the defaults. getenv is os.Getenv outside tests.
func (f *clientFlags) resolve(getenv func(string) string) (*clientSettings, error) {
	name, explicit := f.profile, f.profile != ""
	if !explicit {
		name = getenv("NKMS_PROFILE")
	}
	if name == "" {
		name = "default"
	}
	path, err := configPath(getenv)
	if err != nil {
		return nil, err
	}
	profiles, err := loadProfiles(path)
	if err != nil {
		return nil, err
	}
	p, found := profiles[name]
	if !found && (explicit || getenv("NKMS_PROFILE") != "") {
		return nil, &hintError{fmt.Errorf("no profile %q in %s", name, path), "nkms config set --profile " + name + " endpoint URL"}
	}
	s := &clientSettings{}
	if found {
		s.profile = name
	}
	fromProfile := func(key string) setting {
		if v := p[key]; v != "" {
			return setting{v, "profile " + name}
		}
		return setting{}
	}
	first := func(all ...setting) setting {
		for _, v := range all {
			if v.value != "" {
				return v
			}
		}
		return setting{}
	}
	env := func(key string) setting {
		if v := getenv(key); v != "" {
			return setting{v, "env " + key}
		}
		return setting{}
	}
	flag := func(v, name string) setting {
		if v != "" {
			return setting{v, "flag --" + name}
		}
		return setting{}
	}

	if explicit {
		s.endpoint = first(flag(f.endpoint, "endpoint"), fromProfile("endpoint"), env("NKMS_ENDPOINT"), env("NKMS_URL"))
		s.caCert = first(flag(f.caCert, "ca-cert"), fromProfile("ca_cert"), env("NKMS_CA_CERT"))
	} else {
		s.endpoint = first(flag(f.endpoint, "endpoint"), env("NKMS_ENDPOINT"), env("NKMS_URL"), fromProfile("endpoint"))
		s.caCert = first(flag(f.caCert, "ca-cert"), env("NKMS_CA_CERT"), fromProfile("ca_cert"))
	}
	if s.endpoint.value == "" {
		s.endpoint = setting{defaultEndpoint, "default"}
	}

	// Credentials resolve as pairs: an id from one place and a secret from
	// another would be a confusing failure.
	pairs := [][2]string{{"NKMS_ACCESS_KEY", "NKMS_SECRET_KEY"}, {"NCP_ACCESS_KEY", "NCP_SECRET_KEY"}}
	for _, pr := range pairs {
		if id, secret := getenv(pr[0]), getenv(pr[1]); (id == "") != (secret == "") {
			set, unset := pr[0], pr[1]
			if id == "" {
				set, unset = unset, set
			}
			return nil, fmt.Errorf("%s is set but %s is not", set, unset)
		}
	}
	fileID, fileSecret := fromProfile("access_key"), fromProfile("secret_key")
	if (fileID.value == "") != (fileSecret.value == "") {
		return nil, fmt.Errorf("profile %s in %s has only one of access_key and secret_key", name, path)
	}
	if explicit && fileID.value != "" {
		s.accessKey, s.secretKey = fileID, fileSecret
		return s, nil
	}
	for _, pr := range pairs {
		if id := env(pr[0]); id.value != "" {
			s.accessKey, s.secretKey = id, env(pr[1])
			return s, nil
		}
	}
	s.accessKey, s.secretKey = fileID, fileSecret
	return s, nil
}
