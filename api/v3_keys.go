package api

import (
	"context"
	"encoding/json"

	"github.com/nkms/nkms"
)

// API 3.0 keys and key versions (ncp-kms-api-v3.md §3.1-3.2, D9).

// v3KeyRoutes returns the API 3.0 routes of this file's operations.
func (s *Server) v3KeyRoutes() []route {
	const k = "/kms/v3/keys/{keyTag}"
	return []route{
		{"POST", "/kms/v3/keys", authAccount, smallBody, s.createKeyV3, v3Created},
		{"GET", "/kms/v3/keys", authAccount, smallBody, s.listKeysV3, v3OK},
		{"GET", k, authAccount, smallBody, s.getKeyV3, v3OK},
		{"PATCH", k, authAccount, smallBody, s.updateKeyV3, v3OK},
		{"DELETE", k, authAccount, smallBody, s.deleteKey, v3NoContent},
		{"POST", k + "/request-deletion", authAccount, smallBody, s.keyChangeV3(s.svc.RequestDeletion), v3OK},
		{"POST", k + "/cancel-deletion", authAccount, smallBody, s.keyChangeV3(s.svc.CancelDeletion), v3OK},
		{"GET", k + "/rotation", authAccount, smallBody, s.getKeyRotationV3, v3OK},
		{"PATCH", k + "/rotation", authAccount, smallBody, s.updateKeyRotationV3, v3OK},
		{"POST", k + "/versions", authAccount, smallBody, s.createKeyVersionV3, v3Created},
		{"GET", k + "/versions", authAccount, smallBody, s.listKeyVersionsV3, v3OK},
		{"GET", k + "/versions/{version}", authAccount, smallBody, s.getKeyVersionV3, v3OK},
		{"PATCH", k + "/versions/{version}", authAccount, smallBody, s.updateKeyVersionV3, v3OK},
	}
}

// v3Key is the Key of D9.
type v3Key struct {
	KeyTag                   string  `json:"keyTag"`
	KeyName                  string  `json:"keyName"`
	Nrn                      string  `json:"nrn"`
	KeyType                  string  `json:"keyType"`
	ProtectionType           string  `json:"protectionType"`
	Status                   string  `json:"status"`
	Memo                     *string `json:"memo"`
	Convergent               bool    `json:"convergent"`
	CurrentVersion           int     `json:"currentVersion"`
	CreatedDateTime          *string `json:"createdDateTime"`
	StatusChangedDateTime    *string `json:"statusChangedDateTime"`
	ScheduledDestroyDateTime *string `json:"scheduledDestroyDateTime"`
}

func keyV3(k *nkms.Key) v3Key {
	out := v3Key{
		KeyTag: k.Tag, KeyName: k.Name, Nrn: nrn(k), KeyType: string(k.Type), ProtectionType: string(k.Protection),
		Status: stateV3(k.State), Convergent: k.Convergent, CurrentVersion: k.Current(),
		CreatedDateTime: dateTime(k.Registered), StatusChangedDateTime: dateTime(k.StatusDate),
	}
	if k.Memo != "" {
		out.Memo = &k.Memo
	}
	if k.State == nkms.StateRevoke {
		out.ScheduledDestroyDateTime = dateTime(k.DestroyDate)
	}
	return out
}

type v3KeyList struct {
	Keys       []v3Key `json:"keys"`
	PageNo     int     `json:"pageNo"`
	PageSize   int     `json:"pageSize"`
	TotalCount int     `json:"totalCount"`
}

// v3Rotation is the Rotation of D9.
type v3Rotation struct {
	Enabled              bool    `json:"enabled"`
	PeriodDays           int     `json:"periodDays"`
	NextRotationDateTime *string `json:"nextRotationDateTime"`
}

func rotationV3(k *nkms.Key) v3Rotation {
	out := v3Rotation{Enabled: k.AutoRotation, PeriodDays: k.PeriodDaysV3()}
	if next, ok := k.NextRotation(); ok {
		out.NextRotationDateTime = dateTime(next)
	}
	return out
}

// v3Version is the Version of D9.
type v3Version struct {
	Version               int     `json:"version"`
	Status                string  `json:"status"`
	Current               bool    `json:"current"`
	CreatedDateTime       *string `json:"createdDateTime"`
	StatusChangedDateTime *string `json:"statusChangedDateTime"`
}

func versionV3(v nkms.KeyVersion) v3Version {
	return v3Version{Version: v.Number, Status: stateV3(v.State), Current: v.Current,
		CreatedDateTime: dateTime(v.Created), StatusChangedDateTime: dateTime(v.StatusDate)}
}

type v3VersionList struct {
	Versions   []v3Version `json:"versions"`
	PageNo     int         `json:"pageNo"`
	PageSize   int         `json:"pageSize"`
	TotalCount int         `json:"totalCount"`
}

func (s *Server) createKeyV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	m, err := decodeObjectV3(rq, false)
	if err != nil {
		return result{}, err
	}
	in, err := parseCreateKeyV3(m)
	if err != nil {
		return result{}, err
	}
	k, err := s.svc.CreateKeyV3(ctx, c, in)
	if err != nil {
		return result{}, err
	}
	return result{tag: k.KeyTag(), version: 1, data: keyV3(k)}, nil
}

// parseCreateKeyV3 reads the members of a createKey body.
func parseCreateKeyV3(m jsonObject) (nkms.CreateKeyV3Input, error) {
	var in nkms.CreateKeyV3Input
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"keyName", &in.Name}, {"keyType", (*string)(&in.Type)}, {"protectionType", (*string)(&in.Protection)}} {
		v, _, err := m.str(f.name)
		if err != nil {
			return in, err
		}
		if v == nil {
			return in, nkms.FieldErrorf(f.name, "%s is required", f.name)
		}
		*f.dst = *v
	}
	if in.Memo, _, err = m.str("memo"); err != nil { // null: no memo
		return in, err
	}
	if conv, err := m.boolean("convergent"); err != nil {
		return in, err
	} else if conv != nil {
		in.Convergent = *conv
	}
	rot, err := m.object("rotation")
	if err != nil {
		return in, err
	}
	if rot == nil {
		return in, nkms.FieldErrorf("rotation", "rotation is required (send {\"enabled\": false} to create the key without auto rotation)")
	}
	enabled, err := rot.boolean("rotation.enabled")
	if err != nil {
		return in, err
	}
	if enabled == nil {
		return in, nkms.FieldErrorf("rotation.enabled", "rotation.enabled is required")
	}
	in.Rotation = *enabled
	period, err := rot.integer("rotation.periodDays")
	if err != nil {
		return in, err
	}
	if period != nil {
		in.PeriodDays, in.PeriodDaysSent = *period, true
	}
	return in, nil
}

func (s *Server) listKeysV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	pageNo, pageSize, err := pageV3(rq)
	if err != nil {
		return result{}, err
	}
	keys, total, err := s.svc.ListKeys(ctx, c, pageNo, pageSize)
	if err != nil {
		return result{}, err
	}
	out := v3KeyList{Keys: make([]v3Key, 0, len(keys)), PageNo: pageNo - 1, PageSize: pageSize, TotalCount: total}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyV3(k))
	}
	return result{data: out}, nil
}

func (s *Server) getKeyV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: keyV3(k)}, nil
}

// keyChangeV3 adapts a Service state operation to a route answering the Key.
func (s *Server) keyChangeV3(op func(context.Context, nkms.Caller, nkms.Tag) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		k, err := op(ctx, c, rq.tag)
		if err != nil {
			return result{}, err
		}
		return result{data: keyV3(k)}, nil
	}
}

func (s *Server) updateKeyV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	m, err := decodeObjectV3(rq, true)
	if err != nil {
		return result{}, err
	}
	p, err := parseKeyPatch(m)
	if err != nil {
		return result{}, err
	}
	k, err := s.svc.UpdateKeyV3(ctx, c, rq.tag, p)
	if err != nil {
		return result{}, err
	}
	return result{data: keyV3(k)}, nil
}

// parseKeyPatch reads an updateKey merge-patch: keyName and status may not
// be null; memo null clears the memo.
func parseKeyPatch(m jsonObject) (nkms.KeyPatch, error) {
	var p nkms.KeyPatch
	var null bool
	var err error
	if p.Name, null, err = m.str("keyName"); err != nil {
		return p, err
	} else if null {
		return p, nkms.FieldErrorf("keyName", "keyName may not be null")
	}
	if p.Memo, p.ClearMemo, err = m.str("memo"); err != nil {
		return p, err
	}
	st, err := statusMember(m)
	if err != nil {
		return p, err
	}
	p.Status = st
	return p, nil
}

// statusMember reads the status member of a merge-patch: absent, or
// ENABLED or DISABLED.
func statusMember(m jsonObject) (*nkms.State, error) {
	v, null, err := m.str("status")
	switch {
	case err != nil:
		return nil, err
	case null:
		return nil, nkms.FieldErrorf("status", "status may not be null")
	case v == nil:
		return nil, nil
	}
	var st nkms.State
	switch *v {
	case "ENABLED":
		st = nkms.StateEnable
	case "DISABLED":
		st = nkms.StateDisable
	default:
		return nil, nkms.FieldErrorf("status", "status must be ENABLED or DISABLED")
	}
	return &st, nil
}

func (s *Server) getKeyRotationV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: rotationV3(k)}, nil
}

func (s *Server) updateKeyRotationV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	m, err := decodeObjectV3(rq, true)
	if err != nil {
		return result{}, err
	}
	p, err := parseRotationPatch(m)
	if err != nil {
		return result{}, err
	}
	k, err := s.svc.UpdateKeyRotationV3(ctx, c, rq.tag, p)
	if err != nil {
		return result{}, err
	}
	return result{data: rotationV3(k)}, nil
}

// parseRotationPatch reads an updateKeyRotation merge-patch: enabled a
// boolean, periodDays a JSON integer, neither null.
func parseRotationPatch(m jsonObject) (nkms.RotationPatch, error) {
	var p nkms.RotationPatch
	var err error
	if p.Enabled, err = m.boolean("enabled"); err != nil {
		return p, err
	}
	p.PeriodDays, err = m.integer("periodDays")
	return p, err
}

func (s *Server) createKeyVersionV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	v, err := s.svc.CreateKeyVersion(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{version: v.Number, data: versionV3(v)}, nil
}

func (s *Server) listKeyVersionsV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	pageNo, pageSize, err := pageV3(rq)
	if err != nil {
		return result{}, err
	}
	vs, total, err := s.svc.ListKeyVersions(ctx, c, rq.tag, pageNo, pageSize)
	if err != nil {
		return result{}, err
	}
	out := v3VersionList{Versions: make([]v3Version, 0, len(vs)), PageNo: pageNo - 1, PageSize: pageSize, TotalCount: total}
	for _, v := range vs {
		out.Versions = append(out.Versions, versionV3(v))
	}
	return result{data: out}, nil
}

func (s *Server) getKeyVersionV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	v, err := s.svc.GetKeyVersion(ctx, c, rq.tag, rq.version)
	if err != nil {
		return result{}, err
	}
	return result{data: versionV3(v)}, nil
}

func (s *Server) updateKeyVersionV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	m, err := decodeObjectV3(rq, true)
	if err != nil {
		return result{}, err
	}
	st, err := statusMember(m)
	if err != nil {
		return result{}, err
	}
	v, err := s.svc.UpdateKeyVersion(ctx, c, rq.tag, rq.version, st)
	if err != nil {
		return result{}, err
	}
	return result{data: versionV3(v)}, nil
}

// jsonObject is a JSON object body (or member) with its members kept raw,
// so that a member sent as null is told from one not sent (merge-patch,
// RFC 7396). A body that is null or not an object is InvalidParameter.
type jsonObject map[string]json.RawMessage

func (o *jsonObject) UnmarshalJSON(b []byte) error {
	if string(b) == "null" || len(b) == 0 || b[0] != '{' {
		return &fieldError{"", "the body must be a JSON object"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*o = m
	return nil
}

// decodeObjectV3 reads a 3.0 body that is a JSON object (decodeV3: 415 for
// a body that is not JSON, strict JSON); an empty body is {}.
func decodeObjectV3(rq *request, patch bool) (jsonObject, error) {
	var m jsonObject
	if err := decodeV3(rq, &m, patch); err != nil {
		return nil, err
	}
	if m == nil {
		m = jsonObject{}
	}
	return m, nil
}

// str reads string member name: nil and null false when absent, nil and
// null true when null.
func (o jsonObject) str(name string) (v *string, null bool, err error) {
	raw, ok := o[name]
	if !ok {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return nil, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false, nkms.FieldErrorf(name, "%s must be a string", name)
	}
	return &s, false, nil
}

// boolean reads boolean member name (nil when absent; null is refused).
func (o jsonObject) boolean(name string) (*bool, error) {
	raw, ok := o[name]
	if !ok {
		return nil, nil
	}
	var b bool
	if string(raw) == "null" || json.Unmarshal(raw, &b) != nil {
		return nil, nkms.FieldErrorf(name, "%s must be true or false", name)
	}
	return &b, nil
}

// integer reads integer member name, a JSON integer (strictInt; nil when
// absent, null is refused).
func (o jsonObject) integer(name string) (*int, error) {
	raw, ok := o[name]
	if !ok {
		return nil, nil
	}
	var n strictInt
	if err := n.UnmarshalJSON(raw); err != nil {
		return nil, nkms.FieldErrorf(name, "%s must be a decimal integer (int32), written as a JSON integer", name)
	}
	return &n.Value, nil
}

// object reads object member name (nil when absent or null); its members
// are named with name and a dot in front ("rotation.enabled"), as in errors.
func (o jsonObject) object(name string) (jsonObject, error) {
	raw, ok := o[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, nkms.FieldErrorf(name, "%s must be an object", name)
	}
	out := make(jsonObject, len(m))
	for k, v := range m {
		out[name+"."+k] = v
	}
	return out, nil
}
