package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// This file holds the usage-log routes (ncp-kms-api.md §5 rows 37-38, §6.7).

// ActivityQuery selects the entries of Activities. A zero field is left out
// of the query string, so the server's default applies: the last day, page
// 1, 100 entries per page.
type ActivityQuery struct {
	From     time.Time // timestampFrom, sent as Unix milliseconds
	To       time.Time // timestampTo, sent as Unix milliseconds
	Keyword  string    // keyword, a free-text filter
	PageNo   int       // pageNo, from 1
	PageSize int       // pageSize, 1-200
}

// values returns the query string parameters of q.
func (q ActivityQuery) values() url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("timestampFrom", strconv.FormatInt(q.From.UnixMilli(), 10))
	}
	if !q.To.IsZero() {
		v.Set("timestampTo", strconv.FormatInt(q.To.UnixMilli(), 10))
	}
	if q.Keyword != "" {
		v.Set("keyword", q.Keyword)
	}
	if q.PageNo != 0 {
		v.Set("pageNo", strconv.Itoa(q.PageNo))
	}
	if q.PageSize != 0 {
		v.Set("pageSize", strconv.Itoa(q.PageSize))
	}
	return v
}

// ActivityList is the data of Get Key Activity Logs: one page of entries.
type ActivityList struct {
	ActivityLogList []Activity `json:"activityLogList"`
	PageSize        int        `json:"pageSize"`
	CurrentPageNo   int        `json:"currentPageNo"`
	TotalPageNo     int        `json:"totalPageNo"`
	TotalCount      int        `json:"totalCount"`
}

// Activity is one usage-log entry: an item of an ActivityList, and the data
// of Get Latest Use Info.
type Activity struct {
	Timestamp string       `json:"timestamp"` // ISO-8601, unlike the other times of the API
	Data      ActivityData `json:"data"`
	Message   string       `json:"message"`
}

// ActivityData is what an Activity is about: the key, who called and which
// API.
type ActivityData struct {
	KmsKey    ActivityKey `json:"kmsKey"`
	Requestor Requestor   `json:"requestor"`
	API       ActivityAPI `json:"api"`
}

// ActivityKey names the key of an Activity.
type ActivityKey struct {
	KeyTag  string `json:"keyTag"`
	KeyName string `json:"keyName"`
	Nrn     string `json:"nrn"`
}

// Requestor is the caller of an Activity.
type Requestor struct {
	RequestType string `json:"requestType"` // CONSOLE, API or SYSTEM (automatic rotation, scheduled deletion)
	ID          string `json:"id"`
	IP          string `json:"ip"`
}

// ActivityAPI is the operation of an Activity.
type ActivityAPI struct {
	Result string `json:"result"`
	Action string `json:"action"`
	Type   string `json:"type"` // how the caller authenticated
}

// Activities returns one page of the key's usage log
// (GET .../activities?timestampFrom=&timestampTo=&keyword=&pageNo=&pageSize=).
// The query string is built from q and signed exactly as sent.
func (c *Client) Activities(ctx context.Context, tag string, q ActivityQuery) (*ActivityList, error) {
	suffix := "/activities"
	if v := q.values(); len(v) > 0 {
		suffix += "?" + v.Encode()
	}
	return callKey[ActivityList](ctx, c, http.MethodGet, tag, suffix, nil)
}

// LastUse returns the key's latest usage-log entry (GET .../last-use-info),
// or nil for a key that was never used.
func (c *Client) LastUse(ctx context.Context, tag string) (*Activity, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, tag, "/last-use-info", nil, &raw); err != nil {
		return nil, err
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil // a key that was never used
	}
	var a Activity
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("client: last-use-info: malformed response data: %w", err)
	}
	return &a, nil
}
