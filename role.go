package nkms

// Permission is what a route needs from its caller's role.
type Permission string

// Permissions, from narrowest to widest.
const (
	PermRead   Permission = "read"   // key info, list, versions and other reads
	PermCrypto Permission = "crypto" // encrypt, decrypt, re-encrypt, custom key, sign, verify, public key
	PermManage Permission = "manage" // key lifecycle and settings
	PermAdmin  Permission = "admin"  // access-key management
)

// Roles of access keys, in the spirit of NAVER's sub-account policies.
const (
	RoleAdmin   Role = "admin"   // everything, including access keys
	RoleManager Role = "manager" // key lifecycle and settings, and reads; no crypto
	RoleCrypto  Role = "crypto"  // crypto routes and reads of key info
	RoleViewer  Role = "viewer"  // reads only
)

// rolePerms is the one table of what each role may do.
var rolePerms = map[Role][]Permission{
	RoleAdmin:   {PermRead, PermCrypto, PermManage, PermAdmin},
	RoleManager: {PermRead, PermManage},
	RoleCrypto:  {PermRead, PermCrypto},
	RoleViewer:  {PermRead},
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { _, ok := rolePerms[r]; return ok }

// Can reports whether role r has permission p.
func (r Role) Can(p Permission) bool {
	for _, q := range rolePerms[r] {
		if q == p {
			return true
		}
	}
	return false
}

// errPermission is the refusal of an operation outside the caller's role.
func errPermission(what string) error {
	return Errorf(PermissionDenied, "this access key's role may not %s", what)
}
