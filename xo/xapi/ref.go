package xapi

import "strings"

// Ref is an XAPI object reference such as "OpaqueRef:5f1c…". Refs are opaque
// and may change across toolstack restarts; UUIDs are the stable identifiers.
type Ref string

// NullRef is XAPI's null reference.
const NullRef Ref = "OpaqueRef:NULL"

// IsNull reports whether r names no object. XAPI uses "OpaqueRef:NULL";
// "" appears in some records (e.g. CD VBDs created by XenCenter) and
// "Ref:<n>" strings leak from XVA import ids (xen-api issue #4338): all three
// mean "no object".
func (r Ref) IsNull() bool {
	return r == "" || r == NullRef || strings.HasPrefix(string(r), "Ref:")
}

// String returns the reference as sent on the wire.
func (r Ref) String() string { return string(r) }
