package nkms

// Authorization: the role × operation table. It stands beside the state
// table (state.go): the state table says what a key's state allows, this one
// what a caller's role allows. Every Service method checks its caller
// against it first (Service.authorize); the HTTP route table decides nothing
// about roles.

// Permission is what an operation needs from its caller's role.
type Permission string

// Permissions, from narrowest to widest.
const (
	PermRead   Permission = "read"   // key info, list, versions and other reads
	PermCrypto Permission = "crypto" // encrypt, decrypt, re-encrypt, custom key, sign, verify, public key, tokens
	PermManage Permission = "manage" // key lifecycle and settings
	PermAdmin  Permission = "admin"  // access-key management, backups
)

// Roles of access keys, in the spirit of NAVER's sub-account policies
// (decisions.md D10).
const (
	RoleAdmin   Role = "admin"   // everything, including access keys
	RoleManager Role = "manager" // key lifecycle and settings, and reads; no crypto
	RoleCrypto  Role = "crypto"  // crypto operations, token sets and reads
	RoleViewer  Role = "viewer"  // reads only
)

// rolePerms is what each role may do.
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

// Action names an operation of the Service. For the operations on a key it
// is also the action name of the key's usage log (ncp-kms-api.md §6.7).
type Action string

// The operations. Those marked logged in the table enter the key's usage log.
const (
	ActCreateKey            Action = "CreateKey"
	ActListKeys             Action = "ListKeys"
	ActGetKey               Action = "GetKey"
	ActEnableKey            Action = "EnableKey"
	ActDisableKey           Action = "DisableKey"
	ActUpdateKeyName        Action = "UpdateKeyName"
	ActUpdateMemo           Action = "UpdateMemo"
	ActRotateKey            Action = "RotateKey"
	ActEnableAutoRotation   Action = "EnableAutoRotation"
	ActDisableAutoRotation  Action = "DisableAutoRotation"
	ActUpdateRotationPeriod Action = "UpdateRotationPeriod"
	ActListVersions         Action = "ListKeyVersions"
	ActEnableKeyVersion     Action = "EnableKeyVersion"
	ActDisableKeyVersion    Action = "DisableKeyVersion"
	ActRequestDeletion      Action = "RequestKeyDeletion"
	ActCancelDeletion       Action = "CancelKeyDeletion"
	ActDeleteKey            Action = "DeleteKey"

	ActEncrypt         Action = "Encrypt"
	ActDecrypt         Action = "Decrypt"
	ActReEncrypt       Action = "ReEncrypt"
	ActCreateCustomKey Action = "CreateCustomKey"
	ActSign            Action = "Sign"
	ActVerify          Action = "Verify"
	ActGetPublicKey    Action = "GetPublicKey"

	ActEnableACL            Action = "EnableIpAcl"
	ActDisableACL           Action = "DisableIpAcl"
	ActAddACLRule           Action = "AddAclRule"
	ActDeleteACLRule        Action = "DeleteAclRule"
	ActCreateTokenGenerator Action = "CreateTokenGenerator"
	ActUpdateTokenGenerator Action = "UpdateTokenGenerator"
	ActDeleteTokenGenerator Action = "DeleteTokenGenerator"
	ActCreateTokenSet       Action = "CreateTokenSet"
	ActRenewTokenSet        Action = "RenewTokenSet"     // with a refresh token
	ActCreateAccessToken    Action = "CreateAccessToken" // with a refresh token

	// API 3.0 operations that no 2.0 operation does the same way (D9: the
	// 3.0 operationId with a capital first letter).
	ActUpdateKey           Action = "UpdateKey"
	ActUpdateKeyRotation   Action = "UpdateKeyRotation"
	ActIssueKeyTokens      Action = "IssueKeyTokens"
	ActReissueKeyTokens    Action = "ReissueKeyTokens"    // with a refresh token
	ActIssueKeyAccessToken Action = "IssueKeyAccessToken" // with a refresh token
	ActBatchEncrypt        Action = "BatchEncrypt"
	ActBatchDecrypt        Action = "BatchDecrypt"
	ActBatchReEncrypt      Action = "BatchReEncrypt"

	ActListActivities Action = "ListActivities"
	ActGetLastUse     Action = "GetLastUseInfo"

	ActCreateAccessKey Action = "CreateAccessKey"
	ActListAccessKeys  Action = "ListAccessKeys"
	ActRevokeAccessKey Action = "RevokeAccessKey"
	ActBackup          Action = "Backup"
)

// operation is one row of the table.
type operation struct {
	perm Permission
	// logged: a call on a key of the caller's keystore enters the key's usage
	// log, refused or not (reads are not logged).
	logged bool
	// token: a key token may call it (only on its own key): access tokens
	// the crypto operations, refresh tokens the token renewals.
	token string
}

// operations is the role × operation table: every Service operation, the
// permission its caller's role needs, and what a key token may do.
var operations = map[Action]operation{
	ActCreateKey:            {PermManage, true, ""},
	ActListKeys:             {PermRead, false, ""},
	ActGetKey:               {PermRead, false, ""},
	ActEnableKey:            {PermManage, true, ""},
	ActDisableKey:           {PermManage, true, ""},
	ActUpdateKeyName:        {PermManage, true, ""},
	ActUpdateMemo:           {PermManage, true, ""},
	ActRotateKey:            {PermManage, true, ""},
	ActEnableAutoRotation:   {PermManage, true, ""},
	ActDisableAutoRotation:  {PermManage, true, ""},
	ActUpdateRotationPeriod: {PermManage, true, ""},
	ActListVersions:         {PermRead, false, ""},
	ActEnableKeyVersion:     {PermManage, true, ""},
	ActDisableKeyVersion:    {PermManage, true, ""},
	ActRequestDeletion:      {PermManage, true, ""},
	ActCancelDeletion:       {PermManage, true, ""},
	ActDeleteKey:            {PermManage, true, ""},

	ActEncrypt:         {PermCrypto, true, AccessToken},
	ActDecrypt:         {PermCrypto, true, AccessToken},
	ActReEncrypt:       {PermCrypto, true, AccessToken},
	ActCreateCustomKey: {PermCrypto, true, AccessToken},
	ActSign:            {PermCrypto, true, AccessToken},
	ActVerify:          {PermCrypto, true, AccessToken},
	ActGetPublicKey:    {PermCrypto, true, AccessToken},

	ActEnableACL:            {PermManage, true, ""},
	ActDisableACL:           {PermManage, true, ""},
	ActAddACLRule:           {PermManage, true, ""},
	ActDeleteACLRule:        {PermManage, true, ""},
	ActCreateTokenGenerator: {PermManage, true, ""},
	ActUpdateTokenGenerator: {PermManage, true, ""},
	ActDeleteTokenGenerator: {PermManage, true, ""},
	ActCreateTokenSet:       {PermCrypto, true, ""},
	ActRenewTokenSet:        {PermCrypto, true, RefreshToken},
	ActCreateAccessToken:    {PermCrypto, true, RefreshToken},

	ActUpdateKey:           {PermManage, true, ""},
	ActUpdateKeyRotation:   {PermManage, true, ""},
	ActIssueKeyTokens:      {PermCrypto, true, ""},
	ActReissueKeyTokens:    {PermCrypto, true, RefreshToken},
	ActIssueKeyAccessToken: {PermCrypto, true, RefreshToken},
	ActBatchEncrypt:        {PermCrypto, true, AccessToken},
	ActBatchDecrypt:        {PermCrypto, true, AccessToken},
	ActBatchReEncrypt:      {PermCrypto, true, AccessToken},

	ActListActivities: {PermRead, false, ""},
	ActGetLastUse:     {PermRead, false, ""},

	ActCreateAccessKey: {PermAdmin, false, ""},
	ActListAccessKeys:  {PermAdmin, false, ""},
	ActRevokeAccessKey: {PermAdmin, false, ""},
	ActBackup:          {PermAdmin, false, ""},
	ActExportSeed:      {PermAdmin, false, ""},
	ActAdvanceClock:    {PermAdmin, false, ""},
	ActReadClock:       {PermRead, false, ""},
}

// Allows reports whether caller c may call operation act at all (before any
// key is looked at): its role has the permission, and a key token only
// what its type allows.
func (c Caller) Allows(act Action) bool {
	op, ok := operations[act]
	if !ok {
		return false
	}
	if c.Token && (op.token == "" || op.token != c.tokenType) {
		return false
	}
	return c.Role.Can(op.perm)
}

// operates reports whether c may call act as an operator: an admin of the
// bootstrap keystore (decisions.md D10) for an operation of the whole
// server (backups, the seed export, the dev clock).
func (c Caller) operates(act Action) bool {
	return c.Keystore == BootstrapKeystore && c.Allows(act)
}

// Logged reports whether calls of act enter the key's usage log.
func (act Action) Logged() bool { return operations[act].logged }

// errPermission is the refusal of an operation outside the caller's role.
func errPermission(what string) error {
	return Errorf(PermissionDenied, "this access key's role may not %s", what)
}
