package seed

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

const (
	exampleTag = "3a922c672183301414e0844bc9624588f62db98294dab24455107880a1fcd9d2"
	ciSecret   = "ci-secret-0123456789"
)

// TestParseExample: the example file of the documentation parses into the
// declarations it shows.
func TestParseExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/examples/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := Parse(data, env(map[string]string{"CI_SECRET": ciSecret, "CI_APP_SECRET": "app-secret-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	material, _ := base64.StdEncoding.DecodeString("BeRgH7DTs5fLhreHZcizNIan4FSLZsRlA3pTZ6/Oizc=")
	tag, _ := nkms.ParseTag(exampleTag)
	want := nkms.Seed{
		AccessKeys: []nkms.SeedAccessKey{
			{AccessKey: "CIACCESSKEY00001", SecretKey: ciSecret, Keystore: 1, Role: nkms.RoleAdmin},
			{AccessKey: "CIAPPKEY00000001", SecretKey: "app-secret-0123456789", Keystore: 1, Role: nkms.RoleCrypto},
		},
		Keys: []nkms.SeedKey{
			{Keystore: 1, Name: "orders", Type: nkms.AES256, Tag: tag, Material: [][]byte{material}, Memo: "payments",
				AutoRotation: true, RotationPeriod: 90},
			{Keystore: 1, Name: "signing", Type: nkms.ECDSA, Memo: "a new P-256 key on the first start, kept on later ones"},
		},
	}
	if diff := cmp.Diff(want, sd, cmp.Comparer(func(a, b nkms.Tag) bool { return a == b })); diff != "" {
		t.Fatalf("parsed seed (-want +got):\n%s", diff)
	}
}

// TestParseErrors: every bad input is an error that says where (line and
// declaration) and what, and never shows a secret or material.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	aes := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	short := base64.StdEncoding.EncodeToString([]byte("SHORTMATERIAL16B"))
	for _, tc := range []struct {
		name, file string
		want       []string // substrings of the error
	}{
		{"unknown field", "keys:\n  - keystore: 1\n    name: orders\n    type: AES256\n    colour: red\n",
			[]string{"line 5", "field colour not found"}},
		{"bad type of a field", "keys:\n  - keystore: one\n    name: orders\n    type: AES256\n",
			[]string{"line 2", "cannot unmarshal"}},
		{"unknown key type", "keys:\n  - {keystore: 1, name: orders, type: AES128}\n",
			[]string{"line 2: keys[0]", "type: must be AES256, RSA2048 or ECDSA"}},
		{"upper-case tag", "keys:\n  - keystore: 1\n    name: orders\n    type: AES256\n    tag: " + strings.ToUpper(exampleTag) + "\n",
			[]string{"line 5: keys[0] (keystore 1, name \"orders\"): tag: must be 64 lower-case hexadecimal characters"}},
		{"short tag", "keys:\n  - {keystore: 1, name: orders, type: AES256, tag: abc}\n", []string{"line 2", "tag: must be 64"}},
		{"material too short", "keys:\n  - keystore: 1\n    name: orders\n    type: AES256\n    material: " + short + "\n",
			[]string{"line 5: keys[0]", "material: not AES256 key material: want 32 bytes"}},
		{"material not Base64", "keys:\n  - {keystore: 1, name: orders, type: AES256, material: 'SHORTMATERIAL!'}\n",
			[]string{"material: not standard Base64"}},
		{"AES material for an RSA key", "keys:\n  - {keystore: 1, name: orders, type: RSA2048, material: " + aes + "}\n",
			[]string{"material: not RSA2048 key material"}},
		{"bad material of version 3", "keys:\n  - keystore: 1\n    name: orders\n    type: AES256\n    material: " + aes +
			"\n    versions:\n      - material: " + aes + "\n      - material: " + short + "\n",
			[]string{"line 8: keys[0]", "versions[1].material: not AES256 key material"}},
		{"versions without material", "keys:\n  - {keystore: 1, name: orders, type: AES256, versions: [{material: " + aes + "}]}\n",
			[]string{"versions: need material"}},
		{"unset variable", "accessKeys:\n  - accessKey: CIKEY\n    secretKey: \"${NOT_SET_ANYWHERE}\"\n    keystore: 1\n    role: admin\n",
			[]string{"line 3: accessKeys[0] (accessKey \"CIKEY\"): secretKey: environment variable NOT_SET_ANYWHERE is not set"}},
		{"unclosed variable", "accessKeys:\n  - {accessKey: CIKEY, secretKey: \"abc${SECRETPART\", keystore: 1, role: admin}\n",
			[]string{"secretKey: a ${ without its closing }"}},
		{"duplicate names", "keys:\n  - {keystore: 1, name: orders, type: AES256}\n  - {keystore: 1, name: ORDERS, type: ECDSA}\n",
			[]string{"line 3: keys[1]", "name: declared twice in keystore 1 (also keys[0]"}},
		{"duplicate tags", "keys:\n  - {keystore: 1, name: orders, type: AES256, tag: " + exampleTag + "}\n  - {keystore: 2, name: other, type: AES256, tag: " + exampleTag + "}\n",
			[]string{"line 3: keys[1]", "tag: declared twice (also keys[0])"}},
		{"duplicate access keys", "accessKeys:\n  - {accessKey: CIKEY, secretKey: " + ciSecret + ", keystore: 1, role: admin}\n  - {accessKey: CIKEY, secretKey: " + ciSecret + ", keystore: 2, role: admin}\n",
			[]string{"accessKeys[1]", "accessKey: declared twice"}},
		{"short secret", "accessKeys:\n  - {accessKey: CIKEY, secretKey: tooshort, keystore: 1, role: admin}\n", []string{"secretKey: must be at least 16"}},
		{"bad role and keystore", "accessKeys:\n  - {accessKey: CIKEY, secretKey: " + ciSecret + ", keystore: 0, role: root}\n",
			[]string{"keystore: must be a positive integer", "role: must be admin"}},
		{"convergent RSA", "keys:\n  - {keystore: 1, name: orders, type: RSA2048, convergent: true}\n", []string{"convergent: is allowed only for AES256"}},
		{"rotation period", "keys:\n  - keystore: 1\n    name: orders\n    type: AES256\n    autoRotation: {enabled: true, periodDays: 9999}\n",
			[]string{"line 5", "autoRotation.periodDays: must be 1-730 days"}},
		{"second document", "keys: []\n---\nkeys: []\n", []string{"second YAML document"}},
		{"not a mapping", "- a\n- b\n", []string{"cannot unmarshal"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), env(nil))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			for _, secret := range []string{ciSecret, "SHORTMATERIAL", "SECRETPART", short, aes} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows %q", err, secret)
				}
			}
		})
	}
}

// TestExpand: ${NAME} reads the environment in string values only; $${ is a
// literal ${; a variable's value is never expanded again nor read as YAML.
func TestExpand(t *testing.T) {
	t.Parallel()
	vars := env(map[string]string{"A": "x", "NESTED": "${A}", "YAML": "1, role: viewer}", "EMPTY": ""})
	for in, want := range map[string]string{
		"plain":            "plain",
		"${A}":             "x",
		"a${A}b${A}":       "axbx",
		"$${A}":            "${A}",
		"$$${A}":           "$${A}",
		"cost $5 and $A":   "cost $5 and $A",
		"${NESTED}":        "${A}",
		"${EMPTY}":         "",
		"${YAML}":          "1, role: viewer}",
		"$${ and ${A} $${": "${ and x ${",
	} {
		got, err := Expand(in, vars)
		if err != nil || got != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${B}", "${A", "${}", "${1A}", "${A-B}"} {
		if got, err := Expand(in, vars); err == nil {
			t.Errorf("Expand(%q) = %q, want an error", in, got)
		}
	}
	// A value holding YAML stays one string value.
	sd, err := Parse([]byte("accessKeys:\n  - {accessKey: CIKEY, secretKey: \"s-0123456789abcdef${YAML}\", keystore: 1, role: admin}\n"), vars)
	if err != nil {
		t.Fatal(err)
	}
	if got := sd.AccessKeys[0]; got.SecretKey != "s-0123456789abcdef1, role: viewer}" || got.Role != nkms.RoleAdmin {
		t.Fatalf("the variable changed the structure: %v", got)
	}
}

// TestExportRoundTrip: what FromExport and Marshal write, Parse reads back
// as the same declarations: material of every version, disabled keys,
// memos with ${, and placeholders for secrets that were not exported.
func TestExportRoundTrip(t *testing.T) {
	t.Parallel()
	var material [][]byte
	for range 3 {
		m, err := crypto.GenerateMaterial(crypto.RSA2048)
		if err != nil {
			t.Fatal(err)
		}
		material = append(material, m)
	}
	tag, _ := nkms.ParseTag(exampleTag)
	x := &nkms.SeedExport{
		Seed: nkms.Seed{
			AccessKeys: []nkms.SeedAccessKey{
				{AccessKey: "OPS-KEY_1", Keystore: 1, Role: nkms.RoleAdmin},
				{AccessKey: "APPKEY", SecretKey: "with ${dollar} brace 0123456789", Keystore: 2, Role: nkms.RoleViewer},
			},
			Keys: []nkms.SeedKey{
				{Keystore: 2, Name: "rsa", Type: nkms.RSA2048, Protection: nkms.ProtectionBasic, Tag: tag, Material: material,
					Memo: "costs ${5}", RotationPeriod: 30, Disabled: true},
			},
		},
		Skipped: []string{`keystore 1, name "gone", tag 00: pending deletion`},
	}
	out, err := Marshal(FromExport(x), "exported for a test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("# exported for a test\n# not exported: keystore 1")) {
		t.Fatalf("no header comments:\n%s", out)
	}
	if !bytes.Contains(out, []byte(`secretKey: ${NKMS_SECRET_OPS_KEY_1}`)) {
		t.Fatalf("no placeholder for the secret that was not exported:\n%s", out)
	}
	got, err := Parse(out, env(map[string]string{"NKMS_SECRET_OPS_KEY_1": "ops-secret-0123456789"}))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := x.Seed
	want.AccessKeys[0].SecretKey = "ops-secret-0123456789"
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b nkms.Tag) bool { return a == b })); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

func TestErrorIsAParseError(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("keys:\n  - {keystore: 1, name: x, type: AES256}\n"), env(nil))
	var pe *Error
	if !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Line != 2 || pe.Problems[0].Err.Field != "name" {
		t.Fatalf("got %#v", err)
	}
}

// FuzzParse: no input makes Parse panic, and whatever it accepts is valid.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../../docs/examples/seed.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("keys:\n  - {keystore: 1, name: orders, type: AES256, tag: " + exampleTag + "}\n"))
	f.Add([]byte("accessKeys:\n  - {accessKey: K1234, secretKey: \"$${x}${V}0123456789abcdef\", keystore: 1, role: admin}\n"))
	f.Add([]byte("keys: &a [*a]\n"))
	vars := env(map[string]string{"V": "v", "CI_SECRET": ciSecret, "CI_APP_SECRET": ciSecret})
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := Parse(data, vars)
		if err != nil {
			return
		}
		if err := sd.Validate(); err != nil {
			t.Fatalf("Parse accepted a seed that Validate refuses: %v", err)
		}
	})
}
