package api

import (
	"context"
	"net/http"

	"github.com/nkms/nkms"
)

// Handlers of the IP ACL, token generator and token routes (ncp-kms-api.md §6.4-6.6).

func (s *Server) setACL(on bool) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
		k, err := s.svc.SetACL(ctx, c, r.PathValue("keyTag"), on)
		if err != nil {
			return nil, err
		}
		return aclStateResponse{KeyTag: k.Tag, IsACLEnabled: k.ACLEnabled}, nil
	}
}

func (s *Server) listACL(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	k, err := s.svc.GetKey(ctx, c, r.PathValue("keyTag"))
	if err != nil {
		return nil, err
	}
	return aclListResponse{KeyTag: k.Tag, IsACLEnabled: k.ACLEnabled, AllowedIPList: nonNil(k.AllowedIPs)}, nil
}

func (s *Server) changeACL(op func(context.Context, nkms.Caller, string, []string) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
		var req aclRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		k, err := op(ctx, c, r.PathValue("keyTag"), req.IPList)
		if err != nil {
			return nil, err
		}
		return aclChangeResponse{KeyTag: k.Tag, AllowedIPList: nonNil(k.AllowedIPs)}, nil
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tokenGenerator adapts a token-generator change; these routes answer "data": null.
func (s *Server) tokenGenerator(op func(context.Context, nkms.Caller, string) (*nkms.Key, error)) handlerFunc {
	return func(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
		_, err := op(ctx, c, r.PathValue("keyTag"))
		return nil, err
	}
}

func (s *Server) getTokenGenerator(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	k, err := s.svc.GetKey(ctx, c, r.PathValue("keyTag"))
	if err != nil {
		return nil, err
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
	return out, nil
}

func (s *Server) tokenSet(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req tokenSetRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	set, err := s.svc.IssueTokenSet(ctx, c, r.PathValue("keyTag"), nkms.Lifetime(req.AccessTokenHours), nkms.Lifetime(req.RefreshTokenHours))
	if err != nil {
		return nil, err
	}
	return tokenSetResponse{RefreshToken: set.Refresh, AccessToken: set.Access}, nil
}

func (s *Server) accessToken(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req accessTokenRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	tok, err := s.svc.IssueAccessToken(ctx, c, r.PathValue("keyTag"), nkms.Lifetime(req.AccessTokenHours))
	if err != nil {
		return nil, err
	}
	return accessTokenResponse{AccessToken: tok}, nil
}
