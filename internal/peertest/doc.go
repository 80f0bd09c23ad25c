// Package peertest holds the mechanics that tests share for running real
// test peers: finding the repository root, finding a peer binary (in
// $XOREST_PEERS_BIN, <repo>/.peers/bin, then PATH) with an install hint when
// it is missing, and running versitygw (an S3 server) on loopback.
//
// It is for _test.go files only. Each package keeps its own lazy start and
// its own TestMain; only the shared mechanics live here.
package peertest
