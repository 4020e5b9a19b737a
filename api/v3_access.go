package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nkms/nkms"
)

// API 3.0 IP ACLs, token generators, tokens and activities
// (ncp-kms-api-v3.md §3.3-3.5, decisions.md D9). ACL entries, the
// generator and the usage log are the key's own, shared with 2.0.

// v3AccessRoutes returns the API 3.0 routes of this file's operations.
func (s *Server) v3AccessRoutes() []route {
	return []route{
		{"GET", "/kms/v3/keys/{keyTag}/acl", authAccount, smallBody, s.getKeyACLV3, v3OK},
		{"PATCH", "/kms/v3/keys/{keyTag}/acl", authAccount, smallBody, s.updateKeyACLV3, v3OK},
		{"POST", "/kms/v3/keys/{keyTag}/acl/add-allowed-ips", authAccount, smallBody, s.allowedIPsV3(s.svc.AddKeyACLAllowedIPs), v3OK},
		{"POST", "/kms/v3/keys/{keyTag}/acl/remove-allowed-ips", authAccount, smallBody, s.allowedIPsV3(s.svc.RemoveKeyACLAllowedIPs), v3OK},
		{"GET", "/kms/v3/keys/{keyTag}/token-generator", authAccount, smallBody, s.getTokenGeneratorV3, v3OK},
		{"POST", "/kms/v3/keys/{keyTag}/activate-token-generator", authAccount, smallBody, s.tokenGeneratorV3(s.svc.ActivateTokenGenerator), v3OK},
		{"POST", "/kms/v3/keys/{keyTag}/rotate-token-generator", authAccount, smallBody, s.tokenGeneratorV3(s.svc.RotateTokenGenerator), v3OK},
		{"POST", "/kms/v3/keys/{keyTag}/deactivate-token-generator", authAccount, smallBody, s.tokenGeneratorV3(s.svc.DeactivateTokenGenerator), v3OK},
		{"POST", "/kms/v3/keys/{keyTag}/issue-tokens", authAccount, smallBody, s.issueTokensV3(s.svc.IssueKeyTokens), v3OK},
		{"POST", "/kms/v3/token/keys/{keyTag}/reissue-tokens", authRefresh, smallBody, s.issueTokensV3(s.svc.ReissueKeyTokens), v3OK},
		{"POST", "/kms/v3/token/keys/{keyTag}/issue-access-token", authRefresh, smallBody, s.issueAccessTokenV3, v3OK},
		{"GET", "/kms/v3/keys/{keyTag}/activities", authAccount, smallBody, s.listKeyActivitiesV3, v3OK},
	}
}

// aclV3 is the ACL resource of every 3.0 ACL operation.
type aclV3 struct {
	Enabled    bool     `json:"enabled"`
	AllowedIPs []string `json:"allowedIps"`
}

func aclOfV3(k *nkms.Key) aclV3 {
	return aclV3{Enabled: k.ACLEnabled, AllowedIPs: nonNil(k.AllowedIPs)}
}

// aclPatchV3 is the merge patch of updateKeyAcl: enabled may be left out
// ({} changes nothing) but not set to null (it cannot be removed).
type aclPatchV3 struct {
	Enabled optBool `json:"enabled"`
}

// optBool is a boolean field that may be absent but not null.
type optBool struct {
	Set, Value bool
}

func (b *optBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", "false":
		b.Set, b.Value = true, string(data) == "true"
		return nil
	}
	return &fieldError{"enabled", "enabled must be true or false"}
}

// allowedIPsV3 is the body of add-allowed-ips and remove-allowed-ips.
type allowedIPsV3 struct {
	AllowedIPs []string `json:"allowedIps"`
}

func (s *Server) getKeyACLV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: aclOfV3(k)}, nil
}

func (s *Server) updateKeyACLV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req aclPatchV3
	if err := decodeV3(rq, &req, true); err != nil {
		return result{}, err
	}
	var enabled *bool
	if req.Enabled.Set {
		enabled = &req.Enabled.Value
	}
	k, err := s.svc.UpdateKeyACL(ctx, c, rq.tag, enabled)
	if err != nil {
		return result{}, err
	}
	return result{data: aclOfV3(k)}, nil
}

func (s *Server) allowedIPsV3(op func(context.Context, nkms.Caller, nkms.Tag, []string) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		var req allowedIPsV3
		if err := decodeV3(rq, &req, false); err != nil {
			return result{}, err
		}
		k, err := op(ctx, c, rq.tag, req.AllowedIPs)
		if err != nil {
			return result{}, err
		}
		return result{data: aclOfV3(k)}, nil
	}
}

// tokenGeneratorV3 is the token-generator resource: its status (D9 maps
// ACTIVE/INACTIVE to ENABLED/DISABLED) and, when ENABLED, its id.
type tokenGeneratorV3 struct {
	Status           string  `json:"status"`
	TokenGeneratorID *string `json:"tokenGeneratorId,omitempty"`
}

func tokenGeneratorOfV3(k *nkms.Key) tokenGeneratorV3 {
	g := k.TokenGen
	if !g.Active {
		return tokenGeneratorV3{Status: "DISABLED"}
	}
	return tokenGeneratorV3{Status: "ENABLED", TokenGeneratorID: &g.ID}
}

func (s *Server) getTokenGeneratorV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: tokenGeneratorOfV3(k)}, nil
}

func (s *Server) tokenGeneratorV3(op func(context.Context, nkms.Caller, nkms.Tag) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		if err := decodeV3(rq, &struct{}{}, false); err != nil { // no body is expected; a non-JSON one is 415
			return result{}, err
		}
		k, err := op(ctx, c, rq.tag)
		if err != nil {
			return result{}, err
		}
		return result{data: tokenGeneratorOfV3(k)}, nil
	}
}

// issueTokensV3 is the body of issue-tokens and reissue-tokens (and, its
// access half, of issue-access-token).
type issueTokensV3 struct {
	AccessTokenMinutes    strictInt `json:"accessTokenMinutes"`
	AccessTokenUnlimited  bool      `json:"accessTokenUnlimited"`
	RefreshTokenHours     strictInt `json:"refreshTokenHours"`
	RefreshTokenUnlimited bool      `json:"refreshTokenUnlimited"`
}

// UnmarshalJSON decodes the body, naming the field of a number that is not
// a JSON integer.
func (b *issueTokensV3) UnmarshalJSON(data []byte) error {
	var raw struct {
		AccessTokenMinutes    json.RawMessage `json:"accessTokenMinutes"`
		AccessTokenUnlimited  bool            `json:"accessTokenUnlimited"`
		RefreshTokenHours     json.RawMessage `json:"refreshTokenHours"`
		RefreshTokenUnlimited bool            `json:"refreshTokenUnlimited"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	b.AccessTokenUnlimited, b.RefreshTokenUnlimited = raw.AccessTokenUnlimited, raw.RefreshTokenUnlimited
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		n    *strictInt
	}{{"accessTokenMinutes", raw.AccessTokenMinutes, &b.AccessTokenMinutes}, {"refreshTokenHours", raw.RefreshTokenHours, &b.RefreshTokenHours}} {
		if f.raw == nil {
			continue
		}
		if err := f.n.UnmarshalJSON(f.raw); err != nil {
			return &fieldError{f.name, f.name + " must be a decimal integer (int32), written as a JSON integer"}
		}
	}
	return nil
}

func (b issueTokensV3) lifetimes() nkms.TokenLifetimes {
	l := nkms.TokenLifetimes{AccessUnlimited: b.AccessTokenUnlimited, RefreshUnlimited: b.RefreshTokenUnlimited}
	if b.AccessTokenMinutes.Set {
		l.AccessMinutes = &b.AccessTokenMinutes.Value
	}
	if b.RefreshTokenHours.Set {
		l.RefreshHours = &b.RefreshTokenHours.Value
	}
	return l
}

// tokensV3 answers issue-tokens and reissue-tokens; expiries are null for
// unlimited tokens.
type tokensV3 struct {
	AccessToken                string  `json:"accessToken"`
	RefreshToken               string  `json:"refreshToken"`
	AccessTokenExpireDateTime  *string `json:"accessTokenExpireDateTime"`
	RefreshTokenExpireDateTime *string `json:"refreshTokenExpireDateTime"`
}

// accessTokenV3 answers issue-access-token.
type accessTokenV3 struct {
	AccessToken               string  `json:"accessToken"`
	AccessTokenExpireDateTime *string `json:"accessTokenExpireDateTime"`
}

func (s *Server) issueTokensV3(op func(context.Context, nkms.Caller, nkms.Tag, nkms.TokenLifetimes) (*nkms.IssuedTokens, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		var req issueTokensV3
		if err := decodeV3(rq, &req, false); err != nil {
			return result{}, err
		}
		t, err := op(ctx, c, rq.tag, req.lifetimes())
		if err != nil {
			return result{}, err
		}
		return result{data: tokensV3{AccessToken: t.Access, RefreshToken: t.Refresh,
			AccessTokenExpireDateTime: dateTime(t.AccessExpires), RefreshTokenExpireDateTime: dateTime(t.RefreshExpires)}}, nil
	}
}

func (s *Server) issueAccessTokenV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req issueTokensV3
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	t, err := s.svc.IssueKeyAccessToken(ctx, c, rq.tag, req.lifetimes())
	if err != nil {
		return result{}, err
	}
	return result{data: accessTokenV3{AccessToken: t.Access, AccessTokenExpireDateTime: dateTime(t.AccessExpires)}}, nil
}

// maxActivitiesLine is the longest request line (method, a space, path and
// query) of listKeyActivities; a longer one is 414 with no body, as NAVER's
// gateway answers it (D9).
const maxActivitiesLine = 4096

// errRequestLineTooLong refuses a request line over maxActivitiesLine.
var errRequestLineTooLong = errors.New("request line too long")

// checkRequestLine is the edge's check of a 3.0 activities request line,
// before authentication (called from parseRequest).
func checkRequestLine(rt route, r *http.Request) error {
	if !rt.kind.v3() || rt.path != "/kms/v3/keys/{keyTag}/activities" {
		return nil
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	if len(r.Method)+1+len(uri) > maxActivitiesLine {
		return errRequestLineTooLong
	}
	return nil
}

// activityV3 is one item of listKeyActivities.
type activityV3 struct {
	ActivityDateTime *string `json:"activityDateTime"`
	ActionCode       string  `json:"actionCode"`
	ResultCode       string  `json:"resultCode"`
	RequestType      string  `json:"requestType"`
	RequestorID      *string `json:"requestorId"`
	RequestorIP      *string `json:"requestorIp"`
	KeyVersion       *int    `json:"keyVersion"`
	Message          *string `json:"message"`
}

type activitiesV3 struct {
	Activities []activityV3 `json:"activities"`
	PageNo     int          `json:"pageNo"`
	PageSize   int          `json:"pageSize"`
	TotalCount int          `json:"totalCount"`
}

// activityFilters are the repeatable filters of listKeyActivities.
var activityFilters = []struct {
	name string
	set  func(*nkms.ActivityQuery, []string)
}{
	{"actionCode", func(q *nkms.ActivityQuery, v []string) { q.Actions = v }},
	{"resultCode", func(q *nkms.ActivityQuery, v []string) { q.Results = v }},
	{"requestType", func(q *nkms.ActivityQuery, v []string) { q.RequestTypes = v }},
	{"requestorId", func(q *nkms.ActivityQuery, v []string) { q.Requestors = v }},
	{"requestorIp", func(q *nkms.ActivityQuery, v []string) { q.IPs = v }},
}

// parseActivityQueryV3 parses the query of listKeyActivities: 0-based
// paging, the filters (repeatable, exact) and the period (RFC 3339; 24
// hours when one end is missing, the last 24 hours when both are). It
// returns the query and the 0-based page number.
func parseActivityQueryV3(rq *request) (nkms.ActivityQuery, int, error) {
	var aq nkms.ActivityQuery
	pageNo, pageSize, err := pageV3(rq)
	if err != nil {
		return aq, 0, err
	}
	aq.PageNo, aq.PageSize = pageNo, pageSize
	q := rq.URL.Query()
	for _, f := range activityFilters {
		if vs := q[f.name]; len(vs) > 0 {
			f.set(&aq, vs)
		}
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"fromDateTime", &aq.From}, {"toDateTime", &aq.To}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return aq, 0, nkms.FieldErrorf(p.name, "%s must be an RFC 3339 date-time", p.name)
		}
		*p.t = t.UTC()
	}
	if !aq.From.IsZero() && !aq.To.IsZero() && aq.From.After(aq.To) {
		return aq, 0, nkms.FieldErrorf("fromDateTime", "fromDateTime must not be after toDateTime")
	}
	if aq.From.IsZero() && !aq.To.IsZero() {
		aq.From = aq.To.Add(-24 * time.Hour) // the 24 hours up to toDateTime (the Service defaults the rest to now)
	}
	return aq, pageNo - 1, nil
}

func (s *Server) listKeyActivitiesV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	aq, pageNo, err := parseActivityQueryV3(rq)
	if err != nil {
		return result{}, err
	}
	_, list, total, err := s.svc.Activities(ctx, c, rq.tag, aq)
	if err != nil {
		return result{}, err
	}
	out := activitiesV3{Activities: make([]activityV3, 0, len(list)), PageNo: pageNo, PageSize: aq.PageSize, TotalCount: total}
	for _, a := range list {
		out.Activities = append(out.Activities, activityOfV3(a))
	}
	return result{data: out}, nil
}

// activityOfV3 is the 3.0 wire form of a usage-log entry: keyVersion is the
// version a crypto call used (null for other calls); message is the 3.0
// errorCode of a failure (with the count of an aggregated refusal), null on
// success.
func activityOfV3(a nkms.Activity) activityV3 {
	it := activityV3{ActivityDateTime: dateTime(a.Time), ActionCode: a.Action, ResultCode: a.Result,
		RequestType: a.RequestType, RequestorID: optString(a.Requestor), RequestorIP: optString(a.IP)}
	if a.Version > 0 {
		v := a.Version
		it.KeyVersion = &v
	}
	if a.Message != "" {
		m := activityMessageV3(a.Message)
		it.Message = &m
	}
	return it
}

// activityMessageV3 shows the outcome of a usage-log entry as 3.0 callers
// know it: the errorCode their answer carried ("InvalidState"), for a
// refusal "AccessDenied" with its count ("AccessDenied (x37)"). Entries that
// keep a 2.0 code from before entries kept the domain code show it as it is.
func activityMessageV3(m string) string {
	suffix := ""
	for i := 0; i+3 < len(m); i++ {
		if m[i:i+3] == " (x" {
			m, suffix = m[:i], m[i:]
			break
		}
	}
	if e, ok := v3Codes[nkms.Code(m)]; ok {
		return e.code + suffix
	}
	if nkms.Code(m) == nkms.Unauthenticated {
		return "Unauthorized" + suffix
	}
	return m + suffix
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
