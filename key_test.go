package nkms_test

import (
	"reflect"
	"testing"

	"github.com/nkms/nkms"
)

func TestCloneIsDeep(t *testing.T) {
	k := &nkms.Key{
		Tag:        "t",
		Versions:   []nkms.Version{{Number: 1, Sealed: []byte("one")}, {Number: 2, Sealed: []byte("two!")}, {Number: 3}},
		AllowedIPs: []string{"10.0.0.0/8"},
	}
	k.TokenGen.SealedSecret = []byte("secret")
	c := k.Clone()
	if !reflect.DeepEqual(k, c) {
		t.Fatalf("clone differs:\n%+v\n%+v", k, c)
	}
	// Growing one cloned slice must not reach into the next one.
	c.Versions[0].Sealed = append(c.Versions[0].Sealed, 'X')
	c.Versions[1].Sealed[0] = 'T'
	c.TokenGen.SealedSecret[0] = 'S'
	c.AllowedIPs[0] = "0.0.0.0/0"
	if string(c.Versions[1].Sealed) != "Two!" || string(k.Versions[1].Sealed) != "two!" ||
		string(k.Versions[0].Sealed) != "one" || string(k.TokenGen.SealedSecret) != "secret" ||
		k.AllowedIPs[0] != "10.0.0.0/8" {
		t.Fatalf("changing the clone changed something else: original %+v clone %+v", k, c)
	}
	if (&nkms.Key{}).Clone().TokenGen.SealedSecret != nil {
		t.Fatal("an empty slice cloned to non-nil")
	}
}
