package engine

// Error and close reason URIs the engine sends, as named by the WAMP spec.
const (
	ErrNoSuchRealm            = "wamp.error.no_such_realm"
	ErrNoSuchProcedure        = "wamp.error.no_such_procedure"
	ErrProcedureAlreadyExists = "wamp.error.procedure_already_exists"
	// ErrProcedureExistsOtherPolicy: a shared registration exists under another
	// invocation policy (the URI AutobahnPython, Bondy and WampSharp define).
	ErrProcedureExistsOtherPolicy = "wamp.error.procedure_exists_with_different_invocation_policy"
	ErrNoSuchSubscription         = "wamp.error.no_such_subscription"
	ErrNoSuchRegistration         = "wamp.error.no_such_registration"
	ErrInvalidURI                 = "wamp.error.invalid_uri"
	ErrInvalidArgument            = "wamp.error.invalid_argument"
	ErrProtocolViolation          = "wamp.error.protocol_violation"
	ErrCanceled                   = "wamp.error.canceled"
	ErrNotAuthorized              = "wamp.error.not_authorized"
	ErrNoAuthMethod               = "wamp.error.no_auth_method"
	ErrAuthenticationFailed       = "wamp.error.authentication_failed"
	ErrOptionNotAllowed           = "wamp.error.option_not_allowed"

	CloseSystemShutdown = "wamp.close.system_shutdown"
	CloseRealm          = "wamp.close.close_realm"
	CloseGoodbyeAndOut  = "wamp.close.goodbye_and_out"
)

// validURI reports whether u is a valid URI under the spec's loose rules: dot-separated
// components, none empty (unless allowEmpty, for wildcard patterns), no whitespace and
// no '#'. It does not allocate.
func validURI(u []byte, allowEmpty bool) bool {
	if len(u) == 0 {
		return false
	}
	start := 0
	for i := 0; i <= len(u); i++ {
		if i == len(u) || u[i] == '.' {
			if i == start && !allowEmpty {
				return false
			}
			start = i + 1
			continue
		}
		switch u[i] {
		case ' ', '\t', '\n', '\r', '\f', '\v', '#':
			return false
		}
	}
	return true
}
