package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// TestUsageLogs: calls that touch a key are logged, success and failure,
// account and token; the log filters by time and keyword, pages, and answers
// the latest use.
func TestUsageLogs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tag := data(t, e.call("setup_logged_key", "POST", "/kms/v1/keys", `{"keyName":"logged","keyType":"AES256"}`), "keyTag")
	k := "/kms/v1/keys/" + tag
	e.call("last_use_fresh", "GET", k+"/last-use-info", "") // Create Key is the first use
	e.clk.Add(time.Second)
	e.raw("POST", k+"/encrypt", `{"plaintext":"AA=="}`)
	e.clk.Add(time.Second)
	e.raw("POST", k+"/decrypt", `{"ciphertext":"ncpkms:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)
	e.clk.Add(time.Second)
	e.raw("POST", k+"/token-generator", "")
	_, set := e.raw("POST", k+"/token-set", `{}`)
	access := data(t, set, "accessToken")
	e.clk.Add(time.Second)
	e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, withToken(access))
	e.raw("POST", k+"/acl/enable", "")
	e.clk.Add(time.Second)
	e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, withToken(access)) // 403, logged
	viewer, err := e.svc.CreateAccessKey(ctx, nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}, 1, nkms.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Second)
	e.rawWith("POST", k+"/rotate", "", func(r *http.Request) { // 401/210, logged
		sigv2.SignRequest(r, viewer.AccessKey, []byte(viewer.SecretKey), e.clk.Now())
	})
	e.raw("GET", k, "") // reads are not logged

	e.call("activities", "GET", k+"/activities", "")
	e.call("activities_keyword", "GET", k+"/activities?keyword=decrypt", "")
	e.call("activities_page", "GET", k+"/activities?pageNo=2&pageSize=3", "")
	from := strconv.FormatInt(t0.Add(time.Second).UnixMilli(), 10)
	to := strconv.FormatInt(t0.Add(2*time.Second).UnixMilli(), 10)
	e.call("activities_range", "GET", k+"/activities?timestampFrom="+from+"&timestampTo="+to, "")
	e.call("last_use", "GET", k+"/last-use-info", "")
	for _, q := range []string{"?pageSize=201", "?pageNo=0", "?timestampFrom=x", "?timestampFrom=" + to + "&timestampTo=" + from} {
		if status, b := e.raw("GET", k+"/activities"+q, ""); status != 400 {
			t.Errorf("activities%s: got %d %s, want 400", q, status, b)
		}
	}

	// Logs of a destroyed key go with it.
	e.raw("POST", k+"/request-deletion", "")
	e.raw("DELETE", k, "")
	if _, err := e.svc.Store.LastActivity(ctx, tag); err == nil {
		t.Fatal("usage log of a deleted key survived")
	}
	var got struct {
		Data json.RawMessage `json:"data"`
	}
	_, b := e.raw("GET", k+"/activities", "")
	if json.Unmarshal(b, &got); string(got.Data) != "null" {
		t.Fatalf("activities of a deleted key: %s", b)
	}
}

// TestUsageLogsStayInTheirKeystore: calls by another keystore on a key, even
// refused ones, never appear in its usage log.
func TestUsageLogsStayInTheirKeystore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"private","keyType":"AES256"}`)
	k := "/kms/v1/keys/" + data(t, b, "keyTag")
	other := func(r *http.Request) {
		sigv2.SignRequest(r, e.creds[2].AccessKey, []byte(e.creds[2].SecretKey), e.clk.Now())
	}
	viewer, err := e.svc.CreateAccessKey(ctx, nkms.Caller{AccessKey: e.creds[2].AccessKey, Keystore: 2, Role: nkms.RoleAdmin}, 2, nkms.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	otherViewer := func(r *http.Request) {
		sigv2.SignRequest(r, viewer.AccessKey, []byte(viewer.SecretKey), e.clk.Now())
	}
	e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, other) // 404
	e.rawWith("POST", k+"/rotate", "", otherViewer)                // 401/210
	_, b = e.raw("GET", k+"/activities", "")
	var got struct {
		Data struct {
			ActivityLogList []struct {
				Data struct {
					API struct{ Action string } `json:"api"`
				} `json:"data"`
			} `json:"activityLogList"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Data.ActivityLogList); n != 1 || got.Data.ActivityLogList[0].Data.API.Action != "CreateKey" {
		t.Fatalf("the key's log holds %d entries, want only CreateKey: %s", n, b)
	}
}
