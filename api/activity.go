package api

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/nkms/nkms"
)

// Handlers of the usage-log routes (ncp-kms-api.md §6.7).

func (s *Server) activities(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	q := rq.URL.Query()
	aq := nkms.ActivityQuery{Keyword: q.Get("keyword")}
	var err error
	if aq.From, err = queryMillis(q.Get("timestampFrom"), "timestampFrom"); err != nil {
		return result{}, err
	}
	if aq.To, err = queryMillis(q.Get("timestampTo"), "timestampTo"); err != nil {
		return result{}, err
	}
	if aq.PageNo, err = queryInt(q.Get("pageNo"), "pageNo", 1); err != nil {
		return result{}, err
	}
	if aq.PageSize, err = queryInt(q.Get("pageSize"), "pageSize", 100); err != nil {
		return result{}, err
	}
	k, list, total, err := s.svc.Activities(ctx, c, rq.tag, aq)
	if err != nil {
		return result{}, err
	}
	out := activityListResponse{ActivityLogList: make([]activityItem, 0, len(list)), PageSize: aq.PageSize,
		CurrentPageNo: aq.PageNo, TotalCount: total, TotalPageNo: (total + aq.PageSize - 1) / aq.PageSize}
	for _, a := range list {
		out.ActivityLogList = append(out.ActivityLogList, activityOf(k, a))
	}
	return result{data: out}, nil
}

func (s *Server) lastUse(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, a, err := s.svc.LastUse(ctx, c, rq.tag)
	if err != nil || a == nil {
		return result{}, err // a key never used answers "data": null
	}
	return result{data: activityOf(k, *a)}, nil
}

// activityOf is the wire form of a usage-log entry of key k.
func activityOf(k *nkms.Key, a nkms.Activity) activityItem {
	var it activityItem
	it.Timestamp = a.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	it.Data.KmsKey = activityKey{KeyTag: k.Tag, KeyName: k.Name, Nrn: nrn(k)}
	it.Data.Requestor = activityRequestor{RequestType: a.RequestType, ID: a.Requestor, IP: a.IP}
	it.Data.API = activityAPI{Result: a.Result, Action: a.Action, Type: a.AuthType}
	it.Message = activityMessage(a.Message)
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

// activityMessage shows the outcome of a usage-log entry as API 2.0 callers
// know it: the code their answer carried (failureCode), e.g. "210" for a
// refusal by role, and the count of an aggregated refusal ("210 (x37)").
// Entries keep the domain code (nkms.Code); entries written before they did
// keep the 2.0 code itself, shown as it is.
func activityMessage(m string) string {
	if i := strings.Index(m, " (x"); i > 0 {
		return activityMessage(m[:i]) + m[i:]
	}
	code := nkms.Code(m)
	_, known := kmsCodes[code]
	if known || code == nkms.Unauthenticated || code == nkms.PermissionDenied || code == nkms.Unavailable {
		return failureCode(&nkms.Error{Code: code})
	}
	return m
}
