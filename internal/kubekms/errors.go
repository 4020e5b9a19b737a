package kubekms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nkms/nkms/client"
)

// classify tells the gRPC code of a failed call to the KMS and why it
// failed, in words that lead an operator to the fix. The words come from
// the KMS's answer or the network error, neither of which holds a
// credential (the client never puts its secret or token into an error).
//
//	the call's time ran out (Timeout or the caller's deadline) DeadlineExceeded
//	no connection to the KMS, or a 502/503/504 answer          Unavailable
//	401: the KMS refused the plugin's credentials              Unauthenticated
//	401 errorCode 210, 403: not allowed to use the key         PermissionDenied
//	404: no such key (for these credentials)                   NotFound
//	422: the key or the ciphertext's key version not enabled   FailedPrecondition
//	400, 413: the KMS refused the input (e.g. bad ciphertext)  InvalidArgument
//	429: the KMS's rate limit                                  ResourceExhausted
//	500 or anything else                                       Internal / Unknown
func classify(ctx context.Context, err error, timeout time.Duration) (codes.Code, string) {
	var ae *client.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return codes.DeadlineExceeded, fmt.Sprintf("the KMS did not answer in time (the plugin waits at most %s, less when kube-apiserver's deadline is nearer): %v", timeout, err)
	case errors.Is(err, context.Canceled):
		return codes.Canceled, "the call was cancelled"
	case errors.As(err, &ae):
		return classifyAnswer(ae)
	}
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		return codes.Unavailable, "the KMS is unreachable: " + err.Error()
	}
	return codes.Unknown, err.Error()
}

// classifyAnswer is classify for an error answer of the KMS.
func classifyAnswer(ae *client.Error) (codes.Code, string) {
	switch {
	case ae.Status == http.StatusUnauthorized && ae.ErrorCode == "210", ae.Status == http.StatusForbidden:
		return codes.PermissionDenied, "the plugin's credentials may not use this key: " + ae.Error()
	case ae.Status == http.StatusUnauthorized:
		return codes.Unauthenticated, "the KMS refused the plugin's credentials (check the access key and secret key, or the access token): " + ae.Error()
	case ae.Status == http.StatusNotFound:
		return codes.NotFound, "the KMS has no such key for these credentials: " + ae.Error()
	case ae.Status == http.StatusUnprocessableEntity:
		return codes.FailedPrecondition, "the key, or the key version of the ciphertext, is not enabled: " + ae.Error()
	case ae.Status == http.StatusBadRequest, ae.Status == http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument, "the KMS refused the input: " + ae.Error()
	case ae.Status == http.StatusTooManyRequests:
		return codes.ResourceExhausted, "the KMS's rate limit refused the call: " + ae.Error()
	case ae.Status == http.StatusBadGateway, ae.Status == http.StatusServiceUnavailable, ae.Status == http.StatusGatewayTimeout:
		return codes.Unavailable, "the KMS is unavailable: " + ae.Error()
	case ae.Status == http.StatusInternalServerError:
		return codes.Internal, "the KMS failed: " + ae.Error()
	}
	return codes.Unknown, "the KMS answered: " + ae.Error()
}

// isTimeout reports whether err is a network timeout (the HTTP client's own).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
