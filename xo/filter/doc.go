// Package filter implements the Xen Orchestra filter language, the ?filter=
// query parameter of the XO REST API, exactly as the npm package
// complex-matcher 1.1.1 parses and matches it.
//
// # Syntax
//
// A filter is a sequence of terms separated by white space; all must match.
//
//	foo                  a string anywhere in the object (case-insensitive substring)
//	"foo bar"            a quoted string; \ escapes the next character
//	32                   a number: the number 32, or a string containing "32"
//	chi*go               a glob: * is any run of characters (not line breaks)
//	/^MRA/i              a JavaScript regular expression; i is the only flag
//	name_label:foo       a property of the object, then any term for its value
//	snapshots:length:>2  arrays and strings have a length
//	auto_poweron?        a property with a truthy value
//	>5  >=5  <5  <=5     a numeric comparison
//	!term                negation
//	(a b)                all of a and b
//	|(a b)               any of a and b
//
// Unquoted words ("raw strings") are made of digits, cased letters (any
// script) and _ - . $; anything else must be quoted: tags:"xo:no-bak".
//
// Parse errors are *SyntaxError values whose messages are complex-matcher's,
// e.g. "parse error: expected end of input at position 3" for "foo)": its PEG
// parser backtracks, so the reported position is where the last complete
// top-level term ended. Positions count UTF-16 code units, as JavaScript does.
//
// # Matching
//
// Node.Match takes a decoded JSON value: map[string]any, []any, string,
// float64 (or any Go integer or float type, or json.Number), bool and nil;
// a time.Time compares like a JavaScript Date (its time in milliseconds).
// []string and map[string]string are accepted as arrays and objects too; any
// other type behaves like a JavaScript object that is not a plain object
// (it has no properties, and strings and globs do not look into it).
// The semantics are complex-matcher 1.1.1's:
//
//   - And, Or and Not combine the results for the same value.
//   - Property requires a value other than null and matches its child
//     against value[name]; a missing property is JavaScript's undefined,
//     which is not null. On arrays and strings, name may be "length" or an
//     index. Object.prototype members (constructor, toString, ...) are not
//     emulated: they are missing properties here.
//   - TruthyProperty uses JavaScript truthiness: undefined, null, false, 0,
//     NaN and "" are false; everything else, including [] and {}, is true.
//   - A string, number, glob or regex term searches strings and recurses
//     into arrays and objects (lodash some): a bare term at the top level
//     finds the text anywhere in the object. Strings match by
//     String.prototype.toLowerCase and substring search; a number term also
//     matches the number itself (32 matches 32 and "x32y"; "32" quoted
//     matches only strings). Following lodash, an object with a numeric
//     "length" property is searched like an array (only its index keys).
//   - A comparison applies JavaScript's relational operator, with its
//     coercion of the value to a number: null is 0, true is 1, a string is
//     parsed as Number(string) would (so "2" > 1, and "" is 0), an array
//     goes through its join (so [] is 0 and [5] is 5), an object is NaN and
//     undefined is NaN; any comparison with NaN is false. Thus
//     "startTime:>-1" matches startTime: null, as it does in XO.
//
// Globs ignore case with the rules of a JavaScript /i regular expression.
// Regular expressions are translated from JavaScript's syntax to Go's RE2 at
// parse time, keeping JavaScript's meaning of ., \s, [^], escapes, /i case
// folding and UTF-16 code units (so /./ matches half of an emoji, as in
// JavaScript). A pattern that JavaScript rejects is a *SyntaxError wrapping
// ErrRegExp with V8's message; a valid one that RE2 cannot run
// (backreferences, lookahead, lookbehind, repeats above 1000) wraps
// ErrUnsupportedRegExp: this is the one place where Parse rejects a filter
// that complex-matcher accepts.
//
// # Formatting
//
// Node.String formats a tree as complex-matcher's toString does, so the
// formatted filter parses back to an equivalent tree, with these known
// exceptions inherited from complex-matcher: a comparison with a number of
// 1e21 or more is written with an exponent "1e+21", and "+" is not a raw
// character; and a quoted string made of letters outside the Basic
// Multilingual Plane is written unquoted although the parser does not take
// such letters unquoted.
//
// Nesting is limited to MaxDepth levels (ErrTooDeep) where JavaScript
// would overflow its stack.
//
// # Performance
//
// All the work that does not depend on the value is done by Parse: needles
// are lowered, globs split, regular expressions translated and compiled
// (plain-text ones such as /^MRA/i are matched without the regexp engine).
// Match does not allocate for ASCII strings; strings with other characters
// are lowered or canonicalised into a temporary copy. A Node is immutable
// and safe for concurrent use.
package filter
