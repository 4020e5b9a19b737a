// Package wycheproof runs the Wycheproof test vectors (the files embedded
// in github.com/c2sp/wycheproof) for nkms's tests: Load reads a file, Run
// checks every vector of the groups a test keeps against the vector's
// result ("valid" must pass, "invalid" must fail, "acceptable" may do
// either), counts what ran and what was skipped and why, and fails when
// fewer vectors than a floor ran or when a file's numberOfTests does not
// match what was read, so that a broken loader cannot pass silently.
package wycheproof

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/c2sp/wycheproof"
)

// Hex is a hex string in a Wycheproof file.
type Hex []byte

// UnmarshalJSON decodes the hex string.
func (h *Hex) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	b, err := hex.DecodeString(s)
	*h = b
	return err
}

// Test is one vector.
type Test struct {
	TcID    int `json:"tcId"`
	Comment string
	Flags   []string
	Result  string // "valid", "invalid" or "acceptable"
	Key     Hex
	IV      Hex
	AAD     Hex
	Msg     Hex
	CT      Hex
	Tag     Hex
	Label   Hex
	Sig     Hex
}

// Group is a group of vectors with their parameters and key.
type Group struct {
	Type            string `json:"type"`
	KeySize         int    `json:"keySize"`
	IVSize          int    `json:"ivSize"`
	TagSize         int    `json:"tagSize"`
	SLen            int    `json:"sLen"`
	SHA             string `json:"sha"`
	MGF             string `json:"mgf"`
	MGFSHA          string `json:"mgfSha"`
	PrivateKeyPKCS8 Hex    `json:"privateKeyPkcs8"`
	PublicKeyDER    Hex    `json:"publicKeyDer"`
	Tests           []Test
}

// File is one file of vectors.
type File struct {
	Algorithm     string
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []Group
}

// Load reads the file name of the module's vectors.
func Load(t testing.TB, name string) *File {
	t.Helper()
	data, err := fs.ReadFile(wycheproof.TestVectors, name)
	if err != nil {
		t.Fatalf("reading Wycheproof %s: %v", name, err)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("parsing Wycheproof %s: %v", name, err)
	}
	return &f
}

// VectorFile is one file of a family. Skip returns why a group's vectors
// cannot run, or "" to run them.
type VectorFile struct {
	Name string
	Skip func(g *Group) string
}

// Run runs check on every vector of the groups the files' skip
// functions keep, and checks the outcome against the vector's result. It
// logs the vectors run and skipped, and fails if fewer than minRun ran, if
// no valid or no invalid vector ran, or if a file's numberOfTests differs
// from the vectors its groups held.
func Run(t *testing.T, family string, minRun int, files []VectorFile,
	check func(t *testing.T, g *Group, tc *Test) bool) {
	t.Helper()
	ran := map[string]int{}
	skipped := map[string]int{}
	for _, vf := range files {
		f := Load(t, vf.Name)
		seen := 0
		for gi := range f.TestGroups {
			g := &f.TestGroups[gi]
			seen += len(g.Tests)
			if why := vf.Skip(g); why != "" {
				skipped[why] += len(g.Tests)
				continue
			}
			for ti := range g.Tests {
				tc := &g.Tests[ti]
				t.Run(fmt.Sprintf("%s/tc%d", strings.TrimSuffix(vf.Name, "_test.json"), tc.TcID), func(t *testing.T) {
					ok := check(t, g, tc)
					switch {
					case tc.Result == "valid" && !ok:
						t.Errorf("valid vector rejected (%s, flags %v)", tc.Comment, tc.Flags)
					case tc.Result == "invalid" && ok:
						t.Errorf("invalid vector accepted (%s, flags %v)", tc.Comment, tc.Flags)
					}
				})
				ran[tc.Result]++
			}
		}
		if seen != f.NumberOfTests || seen == 0 {
			t.Fatalf("%s: the loader saw %d vectors, the file says numberOfTests %d", vf.Name, seen, f.NumberOfTests)
		}
	}
	n := ran["valid"] + ran["invalid"] + ran["acceptable"]
	var why []string
	total := 0
	for _, reason := range slices.Sorted(maps.Keys(skipped)) {
		why = append(why, fmt.Sprintf("%d: %s", skipped[reason], reason))
		total += skipped[reason]
	}
	t.Logf("%s: ran %d vectors (valid %d, invalid %d, acceptable %d); skipped %d %q",
		family, n, ran["valid"], ran["invalid"], ran["acceptable"], total, why)
	if n < minRun || ran["valid"] == 0 || ran["invalid"] == 0 {
		t.Fatalf("%s: ran %v, want at least %d with both valid and invalid", family, ran, minRun)
	}
}
