// Package storetest is the conformance suite for auth.Store
// implementations: every store (the file store, the S3 store) must pass Run.
package storetest
