package api

// v3AccessRoutes returns the API 3.0 routes of this file's operations.
func (s *Server) v3AccessRoutes() []route {
	return nil
}
