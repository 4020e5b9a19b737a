package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/nkms/nkms"
)

// Handlers of the usage-log routes (ncp-kms-api.md §6.7).

func (s *Server) activities(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	q := r.URL.Query()
	aq := nkms.ActivityQuery{Tag: r.PathValue("keyTag"), Keyword: q.Get("keyword")}
	var err error
	if aq.From, err = queryMillis(q.Get("timestampFrom"), "timestampFrom"); err != nil {
		return nil, err
	}
	if aq.To, err = queryMillis(q.Get("timestampTo"), "timestampTo"); err != nil {
		return nil, err
	}
	if aq.PageNo, err = queryInt(q.Get("pageNo"), "pageNo", 1); err != nil {
		return nil, err
	}
	if aq.PageSize, err = queryInt(q.Get("pageSize"), "pageSize", 100); err != nil {
		return nil, err
	}
	k, list, total, err := s.svc.Activities(ctx, c, aq)
	if err != nil {
		return nil, err
	}
	out := activityListResponse{ActivityLogList: make([]activityItem, 0, len(list)), PageSize: aq.PageSize,
		CurrentPageNo: aq.PageNo, TotalCount: total, TotalPageNo: (total + aq.PageSize - 1) / aq.PageSize}
	for _, a := range list {
		out.ActivityLogList = append(out.ActivityLogList, activityOf(k, a))
	}
	return out, nil
}

func (s *Server) lastUse(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	k, a, err := s.svc.LastUse(ctx, c, r.PathValue("keyTag"))
	if err != nil || a == nil {
		return nil, err // a key never used answers "data": null
	}
	return activityOf(k, *a), nil
}

// activityOf is the wire form of a usage-log entry of key k.
func activityOf(k *nkms.Key, a nkms.Activity) activityItem {
	var it activityItem
	it.Timestamp = a.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	it.Data.KmsKey = activityKey{KeyTag: k.Tag, KeyName: k.Name, Nrn: nrn(k)}
	it.Data.Requestor = activityRequestor{RequestType: a.RequestType, ID: a.Requestor, IP: a.IP}
	it.Data.API = activityAPI{Result: a.Result, Action: a.Action, Type: a.AuthType}
	it.Message = a.Message
	return it
}

// queryMillis parses an optional Unix-milliseconds query parameter.
func queryMillis(v, name string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || v[0] < '0' || v[0] > '9' || len(v) > 15 {
		return time.Time{}, nkms.Errorf(nkms.Invalid, "%s must be Unix milliseconds", name)
	}
	return time.UnixMilli(n), nil
}
