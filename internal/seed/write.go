package seed

import (
	"bytes"
	"encoding/base64"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nkms/nkms"
)

// FromExport is the file of an export, its values as they are (Marshal
// escapes them and writes placeholders for the secrets it lacks): the
// answer of the export route.
func FromExport(x *nkms.SeedExport) File {
	f := File{AccessKeys: []AccessKey{}, Keys: []Key{}, Skipped: x.Skipped}
	for _, a := range x.AccessKeys {
		f.AccessKeys = append(f.AccessKeys, AccessKey{AccessKey: a.AccessKey, SecretKey: a.SecretKey, Keystore: a.Keystore, Role: string(a.Role)})
	}
	for _, k := range x.Keys {
		d := Key{Keystore: k.Keystore, Name: k.Name, Type: string(k.Type), ProtectionType: string(k.Protection), Convergent: k.Convergent,
			Tag: k.Tag.String(), Memo: k.Memo,
			AutoRotation: &Rotation{Enabled: k.AutoRotation, PeriodDays: k.RotationPeriod}}
		if k.Disabled {
			d.Enabled = new(bool)
		}
		for i, m := range k.Material {
			if i == 0 {
				d.Material = base64.StdEncoding.EncodeToString(m)
			} else {
				d.Versions = append(d.Versions, Version{Material: base64.StdEncoding.EncodeToString(m)})
			}
		}
		f.Keys = append(f.Keys, d)
	}
	return f
}

// SecretVar is the environment variable that an exported file reads the
// secret of access key id from: NKMS_SECRET_ and the id, '-' written '_'.
func SecretVar(id string) string { return "NKMS_SECRET_" + strings.ReplaceAll(id, "-", "_") }

// escape writes every ${ of s as $${, which Expand reads back as ${.
func escape(s string) string { return strings.ReplaceAll(s, "${", "$${") }

// Marshal writes f as YAML that Parse reads back as f, with the lines of
// header and f.Skipped as comments above it. Every ${ in a value is written
// $${; an access key without a secret gets the placeholder
// ${NKMS_SECRET_<ID>} (SecretVar), which Parse reads from the environment.
func Marshal(f File, header ...string) ([]byte, error) {
	f.AccessKeys = append([]AccessKey(nil), f.AccessKeys...)
	for i := range f.AccessKeys {
		a := &f.AccessKeys[i]
		if a.SecretKey == "" {
			a.SecretKey = "${" + SecretVar(a.AccessKey) + "}"
		} else {
			a.SecretKey = escape(a.SecretKey)
		}
	}
	f.Keys = append([]Key(nil), f.Keys...)
	for i := range f.Keys {
		f.Keys[i].Memo = escape(f.Keys[i].Memo)
	}
	var b bytes.Buffer
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	for _, s := range f.Skipped {
		b.WriteString("# not exported: " + s + "\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
