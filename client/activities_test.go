package client

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

const activityJSON = `{"timestamp":"2024-12-06T11:30:11.270+09:00",
	"data":{"kmsKey":{"keyTag":"t","keyName":"orders","nrn":"nrn:PUB:KMS::1:Key/t"},
		"requestor":{"requestType":"API","id":"AKID-test","ip":"10.0.0.1"},
		"api":{"result":"SUCCESS","action":"encrypt","type":"TOKEN"}},
	"message":"Encrypt"}`

var activity = Activity{
	Timestamp: "2024-12-06T11:30:11.270+09:00",
	Data: ActivityData{
		KmsKey:    ActivityKey{KeyTag: "t", KeyName: "orders", Nrn: "nrn:PUB:KMS::1:Key/t"},
		Requestor: Requestor{RequestType: "API", ID: "AKID-test", IP: "10.0.0.1"},
		API:       ActivityAPI{Result: "SUCCESS", Action: "encrypt", Type: "TOKEN"},
	},
	Message: "Encrypt",
}

// TestActivityRoutes is TestRoutes for the usage-log routes.
func TestActivityRoutes(t *testing.T) {
	t.Parallel()
	from := time.Date(2024, 12, 5, 2, 30, 11, 270e6, time.UTC)
	to := time.UnixMilli(1_733_452_211_270).In(time.FixedZone("KST", 9*3600))
	runRoutes(t, []routeCase{
		{
			name: "Activities all fields",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Activities(ctx, testTag, ActivityQuery{From: from, To: to, Keyword: "encrypt", PageNo: 2, PageSize: 50})
			},
			method: "GET",
			uri:    k + "/activities?keyword=encrypt&pageNo=2&pageSize=50&timestampFrom=1733365811270&timestampTo=1733452211270",
			data:   `{"activityLogList":[` + activityJSON + `],"pageSize":50,"currentPageNo":2,"totalPageNo":2,"totalCount":51}`,
			want:   &ActivityList{ActivityLogList: []Activity{activity}, PageSize: 50, CurrentPageNo: 2, TotalPageNo: 2, TotalCount: 51},
		},
		{
			name:   "Activities defaults",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Activities(ctx, testTag, ActivityQuery{}) },
			method: "GET", uri: k + "/activities",
			data: `{"activityLogList":[],"pageSize":100,"currentPageNo":1,"totalPageNo":0,"totalCount":0}`,
			want: &ActivityList{ActivityLogList: []Activity{}, PageSize: 100, CurrentPageNo: 1},
		},
		{
			name: "Activities from only",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Activities(ctx, testTag, ActivityQuery{From: from})
			},
			method: "GET", uri: k + "/activities?timestampFrom=1733365811270",
			data: `{"activityLogList":[],"pageSize":100,"currentPageNo":1,"totalPageNo":0,"totalCount":0}`,
			want: &ActivityList{ActivityLogList: []Activity{}, PageSize: 100, CurrentPageNo: 1},
		},
		{
			name: "Activities keyword escaped",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Activities(ctx, testTag, ActivityQuery{Keyword: "a b&c=d/é+%", PageSize: 1})
			},
			method: "GET", uri: k + "/activities?keyword=a+b%26c%3Dd%2F%C3%A9%2B%25&pageSize=1",
			data: `{"activityLogList":[],"pageSize":1,"currentPageNo":1,"totalPageNo":0,"totalCount":0}`,
			want: &ActivityList{ActivityLogList: []Activity{}, PageSize: 1, CurrentPageNo: 1},
		},
		{
			name:   "LastUse",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.LastUse(ctx, testTag) },
			method: "GET", uri: k + "/last-use-info",
			data: activityJSON, want: &activity,
		},
	})
}

// TestActivitiesQueryIsSigned checks that the signature covers the query
// string exactly as sent, and that the server reads back what was asked.
func TestActivitiesQueryIsSigned(t *testing.T) {
	t.Parallel()
	var creds sigv2.Credentials
	var got map[string][]string
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		creds, _ = sigv2.FromRequest(r)
		got = r.URL.Query()
		writeJSON(w, 200, `{"code":"SUCCESS","data":{"activityLogList":[]}}`)
	})
	q := ActivityQuery{From: time.UnixMilli(1), To: time.UnixMilli(1_733_452_211_270), Keyword: "key rotation & more", PageNo: 3}
	if _, err := f.client(t).Activities(t.Context(), testTag, q); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.AuthErr != nil {
		t.Fatalf("request %s did not verify: %v", r.URI, r.AuthErr)
	}
	for _, target := range []string{k + "/activities", k + "/activities?keyword=key+rotation+%26+more&pageNo=3"} {
		if sigv2.Verify([]byte(testSecret), "GET", target, creds) {
			t.Errorf("signature also verifies over %s", target)
		}
	}
	want := map[string]string{"keyword": "key rotation & more", "pageNo": "3", "timestampFrom": "1", "timestampTo": "1733452211270"}
	if len(got) != len(want) {
		t.Errorf("server read query %v, want %v", got, want)
	}
	for name, v := range want {
		if len(got[name]) != 1 || got[name][0] != v {
			t.Errorf("server read %s = %q, want %q", name, got[name], v)
		}
	}
}
