package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// Issue 13, item 7: calls refused by role or by the IP ACL are logged, but no
// flood of them may push the key's real uses out of its usage log or take
// over last-use-info. They are kept apart and aggregated per requestor and
// minute: the message of an entry of several refused calls says how many,
// e.g. "210 (x37)".

// wireActivity is an entry of the usage log as the 2.0 wire shows it.
type wireActivity struct {
	Timestamp string `json:"timestamp"`
	Data      struct {
		Requestor struct {
			ID string `json:"id"`
		} `json:"requestor"`
		API struct {
			Result string `json:"result"`
			Action string `json:"action"`
			Type   string `json:"type"`
		} `json:"api"`
	} `json:"data"`
	Message string `json:"message"`
}

// refusedCalls is how many refused calls an entry whose message is msg
// stands for: "210" is one, "210 (x37)" 37.
func refusedCalls(msg string) int {
	if i := strings.LastIndex(msg, " (x"); i >= 0 && strings.HasSuffix(msg, ")") {
		if n, err := strconv.Atoi(msg[i+3 : len(msg)-1]); err == nil {
			return n
		}
	}
	return 1
}

// usageLog returns every entry of the key at path k in the last day, newest
// first, and its last-use-info, as the admin of keystore 1 reads them.
func usageLog(t *testing.T, e *env, k string) ([]wireActivity, wireActivity) {
	t.Helper()
	var all []wireActivity
	for page := 1; ; page++ {
		status, b := e.raw("GET", k+"/activities?pageSize=200&pageNo="+strconv.Itoa(page), "")
		var body struct {
			Data struct {
				ActivityLogList []wireActivity `json:"activityLogList"`
				TotalCount      int            `json:"totalCount"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &body); status != 200 || err != nil {
			t.Fatalf("activities page %d: %d %s (%v)", page, status, b, err)
		}
		all = append(all, body.Data.ActivityLogList...)
		if len(body.Data.ActivityLogList) == 0 || len(all) >= body.Data.TotalCount {
			break
		}
	}
	status, b := e.raw("GET", k+"/last-use-info", "")
	var last struct {
		Data wireActivity `json:"data"`
	}
	if err := json.Unmarshal(b, &last); status != 200 || err != nil {
		t.Fatalf("last-use-info: %d %s (%v)", status, b, err)
	}
	return all, last.Data
}

// splitRefusals returns the entries of log that refused calls of requestor
// made (their result FAIL and their message the code, with a count), how
// many calls they stand for, and the other entries.
func splitRefusals(log []wireActivity, requestor, code string) (refused []wireActivity, calls int, others []wireActivity) {
	for _, a := range log {
		if a.Data.Requestor.ID == requestor && a.Data.API.Result == nkms.ResultFail && strings.HasPrefix(a.Message, code) {
			refused = append(refused, a)
			calls += refusedCalls(a.Message)
		} else {
			others = append(others, a)
		}
	}
	return refused, calls, others
}

// floodCase is a key with some history and a flood of refused calls on it.
type floodCase struct {
	e            *env
	k            string // the key's path
	before       []wireActivity
	lastBefore   wireActivity
	requestor    string // who floods
	code         string // what the flood gets
	refuse       func() // sends one refused call
	clockPerCall time.Duration
}

// run sends n refused calls and checks that the log still holds every
// entry of before and its last use, and that the refused calls are in it,
// aggregated; it returns the refusal entries, newest first.
func (fc *floodCase) run(t *testing.T, n int) []wireActivity {
	t.Helper()
	for range n {
		fc.e.clk.Add(fc.clockPerCall)
		fc.refuse()
	}
	after, last := usageLog(t, fc.e, fc.k)
	refused, calls, others := splitRefusals(after, fc.requestor, fc.code)
	if diff := cmp.Diff(others, fc.before); diff != "" {
		t.Errorf("the key's other entries after %d refused calls (-got +want):\n%s", n, diff)
	}
	if diff := cmp.Diff(last, fc.lastBefore); diff != "" {
		t.Errorf("last-use-info after %d refused calls (-got +want):\n%s", n, diff)
	}
	if calls != n {
		t.Errorf("the log accounts for %d refused calls in %d entries, want %d", calls, len(refused), n)
	}
	return refused
}

// TestRefusalFloodKeepsHistory: a viewer's refused encrypts, more than the
// key's log holds, leave the admin's successful Encrypt in the log and in
// last-use-info. Before the fix, the newest 50 entries were all refusals.
func TestRefusalFloodKeepsHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.svc.ActivityPerKey = 50
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"flooded","keyType":"AES256"}`)
	k := "/kms/v1/keys/" + data(t, b, "keyTag")
	e.clk.Add(time.Second)
	if status, b := e.raw("POST", k+"/encrypt", `{"plaintext":"AA=="}`); status != 200 {
		t.Fatalf("the admin's encrypt: %d %s", status, b)
	}
	before, lastBefore := usageLog(t, e, k)
	if lastBefore.Data.API.Action != "Encrypt" || lastBefore.Data.API.Result != nkms.ResultSuccess {
		t.Fatalf("last use before the flood: %+v, want the admin's Encrypt SUCCESS", lastBefore)
	}
	viewer, err := e.svc.CreateAccessKey(context.Background(), nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}, 1, nkms.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	fc := &floodCase{e: e, k: k, before: before, lastBefore: lastBefore, requestor: viewer.AccessKey, code: "210",
		clockPerCall: time.Second, refuse: func() {
			status, b := e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, func(r *http.Request) {
				sigv2.SignRequest(r, viewer.AccessKey, []byte(viewer.SecretKey), e.clk.Now())
			})
			if status == 200 {
				t.Fatalf("a viewer's encrypt succeeded: %s", b)
			}
		}}
	// From t0+2s to t0+121s, one call a second: 58, 60 and 2 calls in three minutes.
	refused := fc.run(t, 120)
	var messages []string
	for _, a := range refused {
		messages = append(messages, a.Message)
	}
	if want := []string{"210 (x2)", "210 (x60)", "210 (x58)"}; !cmp.Equal(messages, want) {
		t.Errorf("refusal entries: messages %q, want %q (one entry per minute)", messages, want)
	}
}

// TestACLRefusalFloodKeepsHistory: token calls refused by the key's IP ACL
// (FORBIDDEN) do not push out the key's history or become its last use.
func TestACLRefusalFloodKeepsHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.svc.ActivityPerKey = 50
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"guarded","keyType":"AES256"}`)
	k := "/kms/v1/keys/" + data(t, b, "keyTag")
	e.clk.Add(time.Second)
	e.raw("POST", k+"/token-generator", "")
	_, set := e.raw("POST", k+"/token-set", `{}`)
	access := data(t, set, "accessToken")
	e.clk.Add(time.Second)
	if status, b := e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, withToken(access)); status != 200 {
		t.Fatalf("a token encrypt: %d %s", status, b)
	}
	e.raw("POST", k+"/acl/enable", "") // an empty list denies every address
	before, lastBefore := usageLog(t, e, k)
	fc := &floodCase{e: e, k: k, before: before, lastBefore: lastBefore, requestor: e.creds[1].AccessKey, code: "FORBIDDEN",
		clockPerCall: time.Second, refuse: func() {
			if status, b := e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, withToken(access)); status != 403 {
				t.Fatalf("a token encrypt from outside the ACL: %d %s, want 403", status, b)
			}
		}}
	fc.run(t, 70)
}

// TestRefusalFloodAtDefaultCap is the attack as reported: 10,400 refused
// encrypts against the default cap of 10,000 entries per key.
func TestRefusalFloodAtDefaultCap(t *testing.T) {
	if testing.Short() {
		t.Skip("10,400 requests")
	}
	t.Parallel()
	e := newEnv(t)
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"flooded","keyType":"AES256"}`)
	k := "/kms/v1/keys/" + data(t, b, "keyTag")
	e.clk.Add(time.Second)
	e.raw("POST", k+"/encrypt", `{"plaintext":"AA=="}`)
	before, lastBefore := usageLog(t, e, k)
	viewer, err := e.svc.CreateAccessKey(context.Background(), nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}, 1, nkms.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	fc := &floodCase{e: e, k: k, before: before, lastBefore: lastBefore, requestor: viewer.AccessKey, code: "210",
		clockPerCall: 10 * time.Millisecond, refuse: func() {
			e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, func(r *http.Request) {
				sigv2.SignRequest(r, viewer.AccessKey, []byte(viewer.SecretKey), e.clk.Now())
			})
		}}
	refused := fc.run(t, 10_400)
	if len(refused) > 3 {
		t.Errorf("10,400 refused calls in 104 s took %d entries, want one per minute", len(refused))
	}
}
