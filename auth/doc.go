// Package auth holds xorest's authentication tokens: how they are minted,
// how long they live, and the Store interface that keeps them.
//
// A token is 32 random bytes in unpadded base64url (43 characters), like Xen
// Orchestra's. The plaintext is shown to its owner once, when it is minted;
// stores keep only its SHA-256 hash (see Hash), so a leaked store does not
// leak usable credentials. Tokens expire: 30 days by default, at least 60
// seconds and at most half a year, as in Xen Orchestra.
//
// FileStore keeps tokens in a local JSON file. Other stores (S3 for Lambda)
// implement Store outside this package and prove it with the conformance
// suite in package auth/storetest.
package auth
