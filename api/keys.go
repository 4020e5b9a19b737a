package api

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nkms/nkms"
)

// Handlers of the key lifecycle routes (ncp-kms-api.md §6.1, §6.2).

func (s *Server) createKey(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req createKeyRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	if req.KeyName == "" || req.KeyType == "" {
		return result{}, nkms.Errorf(nkms.Invalid, "keyName and keyType are required")
	}
	k, err := s.svc.CreateKey(ctx, c, nkms.CreateKeyInput{
		Name: req.KeyName, Type: nkms.KeyType(req.KeyType), Protection: nkms.Protection(req.ProtectionType),
		Memo: req.Memo, Convergent: req.IsConvergent, AutoRotation: req.IsAutoRotation, RotationPeriod: req.RotationPeriod,
	})
	if err != nil {
		return result{}, err
	}
	return result{tag: k.KeyTag(), version: 1, data: createKeyResponse{
		KeyID: k.ID, KeyTag: k.Tag, KeyName: k.Name, KeyType: string(k.Type), Status: string(k.State),
		KeystoreID: k.Keystore, ProtectionType: string(k.Protection), Memo: k.Memo, IsConvergent: k.Convergent,
		IsAutoRotation: k.AutoRotation, RotationPeriod: k.RotationPeriod, NextRotationDate: optMS(k.NextRotation()),
		RegisterDate: ms(k.Registered),
	}}, nil
}

func (s *Server) listKeys(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	q := rq.URL.Query()
	pageNo, err := queryInt(q.Get("pageNo"), "pageNo", 1)
	if err != nil {
		return result{}, err
	}
	pageSize, err := queryInt(q.Get("pageSize"), "pageSize", 100)
	if err != nil {
		return result{}, err
	}
	keys, total, err := s.svc.ListKeys(ctx, c, pageNo, pageSize)
	if err != nil {
		return result{}, err
	}
	out := keyListResponse{KeyList: make([]keyListItem, 0, len(keys)), CurrentPageNo: pageNo, TotalCount: total,
		TotalPageNo: (total + pageSize - 1) / pageSize}
	for _, k := range keys {
		out.KeyList = append(out.KeyList, keyListItem{
			KeyID: k.ID, KeyTag: k.Tag, KeyName: k.Name, KeyType: string(k.Type), Status: string(k.State),
			ProtectionType: string(k.Protection), IsConvergent: k.Convergent, RegisterDate: ms(k.Registered),
			DestroyDate: destroyDate(k),
		})
	}
	return result{data: out}, nil
}

// nrn is the NAVER resource name of k (decisions.md D4).
func nrn(k *nkms.Key) string { return fmt.Sprintf("nrn:PUB:KMS::%d:Key/%s", k.Keystore, k.Tag) }

// queryInt parses an optional decimal query parameter.
func queryInt(v, name string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || len(v) > 9 || (v[0] < '0' || v[0] > '9') {
		return 0, nkms.Errorf(nkms.Invalid, "%s must be a decimal integer", name)
	}
	return n, nil
}

func (s *Server) keyInfo(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: keyInfoResponse{
		KeyID: k.ID, KeyTag: k.Tag, KeyName: k.Name, Nrn: nrn(k),
		BaseURL: s.cfg.PublicURL, KeyType: string(k.Type), Status: string(k.State), KeystoreID: k.Keystore,
		CurrentVersion: k.Current(), ProtectionType: string(k.Protection), Memo: k.Memo, IsConvergent: k.Convergent,
		IsAutoRotation: k.AutoRotation, RotationPeriod: k.RotationPeriod, NextRotationDate: optMS(k.NextRotation()),
		RegisterDate: ms(k.Registered), DestroyDate: destroyDate(k),
	}}, nil
}

// statusChange adapts a Service state operation to a route answering keyTag, status, statusDate.
func (s *Server) statusChange(op func(context.Context, nkms.Caller, nkms.Tag) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		k, err := op(ctx, c, rq.tag)
		if err != nil {
			return result{}, err
		}
		return result{data: statusResponse{KeyTag: k.Tag, Status: string(k.State), StatusDate: ms(k.StatusDate)}}, nil
	}
}

func (s *Server) deleteKey(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	return result{}, s.svc.DeleteKey(ctx, c, rq.tag)
}

func (s *Server) updateName(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req nameRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	if req.KeyName == nil {
		return result{}, nkms.Errorf(nkms.Invalid, "keyName is required")
	}
	k, err := s.svc.UpdateName(ctx, c, rq.tag, *req.KeyName)
	if err != nil {
		return result{}, err
	}
	return result{data: nameResponse{KeyTag: k.Tag, KeyName: k.Name}}, nil
}

func (s *Server) updateMemo(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req memoRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	if req.Memo == nil {
		return result{}, nkms.Errorf(nkms.Invalid, "memo is required")
	}
	k, err := s.svc.UpdateMemo(ctx, c, rq.tag, *req.Memo)
	if err != nil {
		return result{}, err
	}
	return result{data: memoResponse{KeyTag: k.Tag, Memo: k.Memo}}, nil
}

func (s *Server) rotate(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.Rotate(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	v := k.Versions[k.Current()-1]
	return result{version: v.Number, data: rotateResponse{KeyTag: k.Tag, Version: v.Number, RotatedDate: ms(v.Created)}}, nil
}

func (s *Server) enableAutoRotation(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.EnableAutoRotation(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: autoRotationResponse{KeyTag: k.Tag, IsAutoRotation: k.AutoRotation, RotationPeriod: k.RotationPeriod,
		NextRotationDate: optMS(k.NextRotation())}}, nil
}

func (s *Server) disableAutoRotation(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.DisableAutoRotation(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: autoRotationOffResponse{KeyTag: k.Tag, IsAutoRotation: k.AutoRotation}}, nil
}

func (s *Server) rotationPeriod(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req rotationPeriodRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	if req.RotationPeriod == nil {
		return result{}, nkms.Errorf(nkms.Invalid, "rotationPeriod is required")
	}
	k, err := s.svc.UpdateRotationPeriod(ctx, c, rq.tag, *req.RotationPeriod)
	if err != nil {
		return result{}, err
	}
	return result{data: rotationPeriodResponse{KeyTag: k.Tag, RotationPeriod: k.RotationPeriod, NextRotationDate: optMS(k.NextRotation())}}, nil
}

func (s *Server) versions(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.ListVersions(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	out := versionListResponse{KeyTag: k.Tag, CurrentVersion: k.Current(), VersionList: make([]versionItem, 0, len(k.Versions))}
	for _, v := range k.Versions {
		out.VersionList = append(out.VersionList, versionItem{Version: v.Number, Status: string(v.State),
			StatusDate: ms(v.StatusDate), RotatedDate: ms(v.Created)})
	}
	return result{data: out}, nil
}

func (s *Server) enableVersion(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	return s.versionState(ctx, c, rq, nkms.StateEnable)
}

func (s *Server) disableVersion(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	return s.versionState(ctx, c, rq, nkms.StateDisable)
}

func (s *Server) versionState(ctx context.Context, c nkms.Caller, rq *request, st nkms.State) (result, error) {
	v, err := s.svc.SetVersionState(ctx, c, rq.tag, rq.version, st)
	if err != nil {
		return result{}, err
	}
	return result{data: versionStatusResponse{Version: v.Number, Status: string(v.State), StatusDate: ms(v.StatusDate)}}, nil
}

func (s *Server) createAccessKey(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req createAccessKeyRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	cred, err := s.svc.CreateAccessKey(ctx, c, req.KeystoreID, nkms.Role(req.Role))
	if err != nil {
		return result{}, err
	}
	return result{data: accessKeyResponse{AccessKey: cred.AccessKey, SecretKey: cred.SecretKey, KeystoreID: cred.Keystore, Role: string(cred.Role)}}, nil
}

func (s *Server) listAccessKeys(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	all, err := s.svc.ListAccessKeys(ctx, c)
	if err != nil {
		return result{}, err
	}
	out := accessKeyListResponse{AccessKeyList: make([]accessKeyItem, 0, len(all))}
	for _, a := range all {
		out.AccessKeyList = append(out.AccessKeyList, accessKeyItem{AccessKey: a.AccessKey, KeystoreID: a.Keystore,
			Role: string(a.Role), CreatedDate: ms(a.Created)})
	}
	return result{data: out}, nil
}

func (s *Server) revokeAccessKey(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	return result{}, s.svc.RevokeAccessKey(ctx, c, rq.PathValue("accessKey"))
}
