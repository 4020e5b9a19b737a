package nkms

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"time"
)

// Usage-log vocabulary (ncp-kms-api.md §6.7).
const (
	RequestAPI    = "API"
	RequestSystem = "SYSTEM"
	AuthAccount   = "ACCOUNT"
	AuthToken     = "TOKEN"
	AuthSystem    = "SYSTEM"
	ResultSuccess = "SUCCESS"
	ResultFail    = "FAIL"
)

// recordCall logs one call of act by c on key tag, which used key version
// version (0: none), in the key's usage log: err nil is a success; otherwise the entry carries the error's code. A
// refusal by role or IP ACL is recorded as a refusal (RefusalActivity): kept
// apart and aggregated, so that no number of them removes a real use or
// shows as the key's last use. With a Recorder the entry is written in the
// background; without one, at once.
func (s *Service) recordCall(ctx context.Context, c Caller, act Action, tag Tag, version int, err error) {
	if !act.Logged() {
		return
	}
	if err != nil && (errors.Is(err, &Error{Code: PermissionDenied}) || errors.Is(err, errOutsideACL)) { // err != nil: no target to allocate for a success
		s.record(ctx, RefusalActivity(tag.s, s.now(), c, string(act), string(ErrorCode(err))))
		return
	}
	a := Activity{Tag: tag.s, Time: s.now(), RequestType: RequestAPI, Requestor: c.AccessKey, IP: c.IP,
		Result: ResultSuccess, Action: string(act), AuthType: AuthAccount, Version: version}
	if c.Token {
		a.AuthType = AuthToken
	}
	if err != nil {
		a.Result, a.Message = ResultFail, string(ErrorCode(err))
	}
	s.record(ctx, a)
}

// recordSystem logs a scheduler action on a key.
func (s *Service) recordSystem(ctx context.Context, tag, action string, err error) {
	a := Activity{Tag: tag, Time: s.now(), RequestType: RequestSystem, Result: ResultSuccess, Action: action, AuthType: AuthSystem}
	if err != nil {
		a.Result, a.Message = ResultFail, string(ErrorCode(err))
	}
	s.record(ctx, a)
}

func (s *Service) record(ctx context.Context, a Activity) {
	if s.Recorder != nil {
		s.Recorder.Record(a)
		return
	}
	if err := s.Store.AppendActivities(ctx, []Activity{a}, cmp.Or(s.ActivityPerKey, DefaultActivityPerKey)); err != nil {
		s.log().ErrorContext(ctx, "usage log: write failed", "keyTag", a.Tag, "err", err)
	}
}

// MaxActivityPageSize is the largest page of Get Key Activity Logs.
const MaxActivityPageSize = 200

// Activities returns one page of a key's usage log, newest first, and the
// number of matching entries. A zero From is now - 1 day, a zero To is now.
func (s *Service) Activities(ctx context.Context, c Caller, tag Tag, q ActivityQuery) (*Key, []Activity, int, error) {
	if err := s.authorize(ctx, c, ActListActivities, tag); err != nil {
		return nil, nil, 0, err
	}
	k, err := s.get(ctx, c, tag)
	if err != nil {
		return nil, nil, 0, err
	}
	now := s.now()
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = now.Add(-24 * time.Hour)
	}
	if q.PageNo < 1 {
		return nil, nil, 0, invalid("pageNo must be at least 1")
	}
	if q.PageSize < 1 || q.PageSize > MaxActivityPageSize {
		return nil, nil, 0, invalid("pageSize must be 1-%d", MaxActivityPageSize)
	}
	if q.From.After(q.To) {
		return nil, nil, 0, invalid("timestampFrom must not be after timestampTo")
	}
	q.Keyword = strings.TrimSpace(q.Keyword)
	if len(q.Keyword) > 100 {
		return nil, nil, 0, invalid("keyword must be at most 100 characters")
	}
	q.Tag = k.Tag
	list, total, err := s.Store.Activities(ctx, q)
	if err != nil {
		return nil, nil, 0, err
	}
	return k, list, total, nil
}

// LastUse returns the key's newest usage-log entry that is not a refusal, or
// nil when there is none.
func (s *Service) LastUse(ctx context.Context, c Caller, tag Tag) (*Key, *Activity, error) {
	if err := s.authorize(ctx, c, ActGetLastUse, tag); err != nil {
		return nil, nil, err
	}
	k, err := s.get(ctx, c, tag)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.Store.LastActivity(ctx, k.Tag)
	if errors.Is(err, ErrNoActivity) {
		return k, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return k, a, nil
}
