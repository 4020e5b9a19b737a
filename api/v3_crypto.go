package api

// v3CryptoRoutes returns the API 3.0 routes of this file's operations.
func (s *Server) v3CryptoRoutes() []route {
	return nil
}
