package api

// v3KeyRoutes returns the API 3.0 routes of this file's operations.
func (s *Server) v3KeyRoutes() []route {
	return nil
}
