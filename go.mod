module github.com/xorest/xorest

go 1.26.8

require (
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/klauspost/compress v1.20.4
	github.com/kolo/xmlrpc v0.0.0-20220921171641-a4b6fa1dd06b
)
