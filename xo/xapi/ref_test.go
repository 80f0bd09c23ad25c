package xapi

import (
	"net/url"
	"testing"
)

func TestRefIsNull(t *testing.T) {
	tests := []struct {
		ref  Ref
		null bool
	}{
		{"", true},
		{"OpaqueRef:NULL", true},
		{"Ref:12", true},
		{"OpaqueRef:3c5f7b0e-0d3a-4b8e-9d6a-1a2b3c4d5e6f", false},
		{"DummyRef:|x|y", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.ref), func(t *testing.T) {
			if got := tc.ref.IsNull(); got != tc.null {
				t.Fatalf("IsNull(%q) = %v", tc.ref, got)
			}
		})
	}
}

func TestMasterURL(t *testing.T) {
	tests := []struct {
		name, base, master, want string
	}{
		{"ip keeps the default port", "https://10.0.0.2/", "10.0.0.1", "https://10.0.0.1/"},
		{"ip keeps an explicit port", "http://10.0.0.2:8080/x", "10.0.0.1", "http://10.0.0.1:8080/x"},
		{"address with port", "http://127.0.0.1:1234/", "127.0.0.1:5678", "http://127.0.0.1:5678/"},
		{"ipv6", "https://[fd00::2]/", "fd00::1", "https://[fd00::1]/"},
		{"ipv6 with port kept", "https://[fd00::2]:8443/", "fd00::1", "https://[fd00::1]:8443/"},
		{"hostname", "https://member.example/", "master.example", "https://master.example/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := url.Parse(tc.base)
			if got := masterURL(base, tc.master).String(); got != tc.want {
				t.Fatalf("masterURL(%s, %s) = %s, want %s", tc.base, tc.master, got, tc.want)
			}
		})
	}
}
