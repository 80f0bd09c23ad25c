package auth

import "context"

// Store keeps tokens. Implementations must be safe for concurrent use.
//
// Contract (checked by storetest.Run):
//   - Create stores t as given. It returns an error matching ErrExists when a
//     token with the same ID or Hash is stored already.
//   - Lookup returns the token whose Hash equals hash. It returns an error
//     matching ErrNotFound when there is none or when it has expired; it
//     never returns an expired token. Implementations compare hashes in
//     constant time where they compare them at all (HashEqual).
//   - List returns every unexpired token, oldest Created first (ties by ID).
//   - Delete removes the token with that ID and returns an error matching
//     ErrNotFound when there is none (expired tokens count as absent).
//   - A store may drop expired tokens at any time.
//   - Every method returns an error wrapping ctx.Err() when ctx is already
//     done, without doing anything.
//   - Changes are visible at once to every other Store value opened on the
//     same backing storage (another process, another Lambda instance).
type Store interface {
	Create(ctx context.Context, t Token) error
	Lookup(ctx context.Context, hash string) (Token, error)
	List(ctx context.Context) ([]Token, error)
	Delete(ctx context.Context, id string) error
}
