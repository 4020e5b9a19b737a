package api

import (
	"context"

	"github.com/nkms/nkms"
)

// Handlers of the IP ACL, token generator and token routes (ncp-kms-api.md §6.4-6.6).

func (s *Server) setACL(on bool) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		k, err := s.svc.SetACL(ctx, c, rq.tag, on)
		if err != nil {
			return result{}, err
		}
		return result{data: aclStateResponse{KeyTag: k.Tag, IsACLEnabled: k.ACLEnabled}}, nil
	}
}

func (s *Server) listACL(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	return result{data: aclListResponse{KeyTag: k.Tag, IsACLEnabled: k.ACLEnabled, AllowedIPList: nonNil(k.AllowedIPs)}}, nil
}

func (s *Server) changeACL(op func(context.Context, nkms.Caller, nkms.Tag, []string) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		var req aclRequest
		if err := decode(rq, &req); err != nil {
			return result{}, err
		}
		k, err := op(ctx, c, rq.tag, req.IPList)
		if err != nil {
			return result{}, err
		}
		return result{data: aclChangeResponse{KeyTag: k.Tag, AllowedIPList: nonNil(k.AllowedIPs)}}, nil
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tokenGenerator adapts a token-generator change; these routes answer "data": null.
func (s *Server) tokenGenerator(op func(context.Context, nkms.Caller, nkms.Tag) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
		_, err := op(ctx, c, rq.tag)
		return result{}, err
	}
}

func (s *Server) getTokenGenerator(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	k, err := s.svc.GetKey(ctx, c, rq.tag)
	if err != nil {
		return result{}, err
	}
	g := k.TokenGen
	out := tokenGeneratorResponse{Status: "INACTIVE", IssuedTokenCount: g.Issued,
		EnabledDate: optMS(g.Enabled, !g.Enabled.IsZero()), DisabledDate: optMS(g.Disabled, !g.Disabled.IsZero())}
	if g.ID != "" {
		out.TokenGeneratorID = &g.ID
	}
	if g.Active {
		out.Status = "ACTIVE"
	}
	return result{data: out}, nil
}

func (s *Server) tokenSet(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req tokenSetRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	set, err := s.svc.IssueTokenSet(ctx, c, rq.tag, nkms.Lifetime(req.AccessTokenHours), nkms.Lifetime(req.RefreshTokenHours))
	if err != nil {
		return result{}, err
	}
	return result{data: tokenSetResponse{RefreshToken: set.Refresh, AccessToken: set.Access}}, nil
}

func (s *Server) accessToken(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req accessTokenRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	tok, err := s.svc.IssueAccessToken(ctx, c, rq.tag, nkms.Lifetime(req.AccessTokenHours))
	if err != nil {
		return result{}, err
	}
	return result{data: accessTokenResponse{AccessToken: tok}}, nil
}
