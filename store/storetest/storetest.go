// Package storetest is the conformance suite that every nkms.Store passes.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) nkms.Store { ... })
//	}
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nkms/nkms"
)

// Run runs the conformance suite. newStore returns a fresh, empty store for
// one subtest and registers its cleanup (closing it) with t.Cleanup; subtests
// run in parallel, each with its own store. One subtest closes its store
// itself, so the cleanup must accept a second Close.
func Run(t *testing.T, newStore func(t *testing.T) nkms.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s nkms.Store)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"IDsAssigned", testIDsAssigned},
		{"IDsPerKeystore", testIDsPerKeystore},
		{"ConcurrentCreateIDs", testConcurrentCreateIDs},
		{"ManyVersions", testManyVersions},
		{"VersionState", testVersionState},
		{"VersionNumbering", testVersionNumbering},
		{"VersionsPage", testVersionsPage},
		{"VersionsGoWithKey", testVersionsGoWithKey},
		{"ConcurrentRotations", testConcurrentRotations},
		{"NotFound", testNotFound},
		{"DuplicateTag", testDuplicateTag},
		{"NameConflictOnCreate", testNameConflictOnCreate},
		{"NameConflictOnRename", testNameConflictOnRename},
		{"DeleteFreesName", testDeleteFreesName},
		{"Paging", testPaging},
		{"CopiesOnCreateAndGet", testCopiesOnCreateAndGet},
		{"CopiesOnUpdate", testCopiesOnUpdate},
		{"CopiesOnList", testCopiesOnList},
		{"UpdateFnError", testUpdateFnError},
		{"UpdateKeepsIdentity", testUpdateKeepsIdentity},
		{"DeleteFnError", testDeleteFnError},
		{"Delete", testDelete},
		{"Due", testDue},
		{"DueFollowsUpdatesAndDeletes", testDueFollowsUpdatesAndDeletes},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"ConcurrentCreateSameName", testConcurrentCreateSameName},
		{"AccessKeyCreate", testAccessKeyCreate},
		{"AccessKeyPutReplaces", testAccessKeyPutReplaces},
		{"AccessKeyNotFound", testAccessKeyNotFound},
		{"AccessKeyList", testAccessKeyList},
		{"AccessKeyCopies", testAccessKeyCopies},
		{"AccessKeyDelete", testAccessKeyDelete},
		{"ActivityRoundTrip", testActivityRoundTrip},
		{"ActivityNewestFirst", testActivityNewestFirst},
		{"ActivityTimeRange", testActivityTimeRange},
		{"ActivityKeyword", testActivityKeyword},
		{"ActivityFilters", testActivityFilters},
		{"ActivityPaging", testActivityPaging},
		{"ActivityUnknownKey", testActivityUnknownKey},
		{"ActivityMaxPerKey", testActivityMaxPerKey},
		{"ActivityMaxPerKeyUntouched", testActivityMaxPerKeyUntouched},
		{"PruneActivities", testPruneActivities},
		{"LastActivity", testLastActivity},
		{"ActivityGoesWithKey", testActivityGoesWithKey},
		{"ActivityCopies", testActivityCopies},
		{"ConcurrentAppendActivities", testConcurrentAppendActivities},
		{"ActivityRefusals", testActivityRefusals},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStore(t))
		})
	}
}

// t0 is the suite's reference time: not UTC and with nanoseconds, so that a
// store that rounds or drops the zone's instant is caught.
var t0 = time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.FixedZone("KST", 9*60*60))

// keyOpts compares keys: times with Equal (cmp uses the Equal method), and a
// nil slice equal to an empty one.
var keyOpts = cmp.Options{cmpopts.EquateEmpty()}

// randomTag returns a fresh keyTag (64 lower-case hex digits).
func randomTag(t *testing.T) string {
	t.Helper()
	return hex.EncodeToString(randomBytes(t, 32))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newKey returns a valid key of a keystore, not yet stored, with every field
// set and two versions.
func newKey(t *testing.T, keystore int64, name string) *nkms.Key {
	t.Helper()
	return &nkms.Key{
		Tag: randomTag(t), Keystore: keystore, Name: name, Type: nkms.AES256,
		Protection: nkms.ProtectionBasic, Memo: "memo of " + name, Convergent: true,
		State: nkms.StateEnable, StatusDate: t0.Add(time.Minute), Registered: t0,
		RotationPeriod: nkms.DefaultRotationPeriod,
		Versions: []nkms.Version{
			{Number: 1, State: nkms.StateDisable, StatusDate: t0.Add(time.Minute), Created: t0, Sealed: randomBytes(t, 60)},
			{Number: 2, State: nkms.StateEnable, StatusDate: t0.Add(time.Minute), Created: t0.Add(time.Minute), Sealed: randomBytes(t, 60)},
		},
		ACLEnabled: true, AllowedIPs: []string{"203.0.113.7", "10.0.0.0/8"},
		TokenGen: nkms.TokenGenerator{ID: "gen-" + name, Active: true, SealedSecret: randomBytes(t, 48),
			Enabled: t0.Add(2 * time.Minute), Issued: 3},
	}
}

// create stores k and fails the test on error.
func create(t *testing.T, s nkms.Store, k *nkms.Key) *nkms.Key {
	t.Helper()
	got, err := s.Create(t.Context(), k)
	if err != nil {
		t.Fatalf("Create(%s): %v", k.Name, err)
	}
	return got
}

// createN stores n keys named prefix0, prefix1, … in keystore, in that order.
func createN(t *testing.T, s nkms.Store, keystore int64, prefix string, n int) []*nkms.Key {
	t.Helper()
	keys := make([]*nkms.Key, n)
	for i := range keys {
		keys[i] = create(t, s, newKey(t, keystore, fmt.Sprintf("%s%d", prefix, i)))
	}
	return keys
}

// get reads a key and fails the test on error.
func get(t *testing.T, s nkms.Store, tag string) *nkms.Key {
	t.Helper()
	got, err := s.Get(t.Context(), tag)
	if err != nil {
		t.Fatalf("Get(%s): %v", tag, err)
	}
	return got
}

// checkKey compares a stored key with what is expected.
func checkKey(t *testing.T, what string, got, want *nkms.Key) {
	t.Helper()
	if diff := cmp.Diff(got, want, keyOpts); diff != "" {
		t.Errorf("%s (-got +want):\n%s", what, diff)
	}
}

// setMemo returns an Update fn that sets the memo.
func setMemo(memo string) func(*nkms.Key) error {
	return func(k *nkms.Key) error { k.Memo = memo; return nil }
}
