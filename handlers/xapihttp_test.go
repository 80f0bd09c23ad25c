package handlers

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

func TestPutRawVDI(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	c := sf.clients[0]
	var sr xapi.Ref
	if err := c.CallInto(t.Context(), &sr, "pool.get_default_SR", sf.ref(t, "pool", sf.anyID(t, "pools"))); err != nil {
		t.Fatal(err)
	}
	newVDI := func(t *testing.T, size int64) xapi.Ref {
		var vdi xapi.Ref
		if err := c.CallInto(t.Context(), &vdi, "VDI.create", map[string]any{
			"name_label": "target", "SR": sr, "virtual_size": size, "type": "user", "sharable": false, "read_only": false,
			"other_config": map[string]string{},
		}); err != nil {
			t.Fatal(err)
		}
		return vdi
	}
	tests := []struct {
		name     string
		size     int64
		vdi      xapi.Ref // default: a new VDI of size
		data     []byte
		wantCode string // XAPI's error, "" for success
	}{
		{name: "smaller than the disk", size: 1 << 20, data: []byte("hello config drive")},
		{name: "the whole disk", size: 4096, data: bytes.Repeat([]byte{0xA5}, 4096)},
		{name: "empty body", size: 4096, data: nil},
		{name: "larger than the disk", size: 512, data: make([]byte, 1024), wantCode: "VDI_IO_ERROR"},
		{name: "unknown VDI", vdi: "OpaqueRef:00000000-0000-0000-0000-000000000000", data: []byte("x"), wantCode: "HANDLE_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vdi := tt.vdi
			if vdi == "" {
				vdi = newVDI(t, tt.size)
			}
			tasksBefore := sf.taskCount(t)
			err := putRawVDI(t.Context(), &http.Client{}, c, vdi, tt.data)
			if got := sf.taskCount(t); got != tasksBefore {
				t.Errorf("%d tasks, %d before: the transfer's task remains", got, tasksBefore)
			}
			if tt.wantCode != "" {
				var xe *xapi.Error
				if !errors.As(err, &xe) || xe.Code != tt.wantCode {
					t.Fatalf("got %v, want %s", err, tt.wantCode)
				}
				if strings.Contains(err.Error(), string(c.Session())) {
					t.Errorf("the error shows the session: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tt.data))
			if _, err := sf.sims[0].ReadVDIAt(string(vdi), got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("the disk holds %.40q, want %.40q", got, tt.data)
			}
		})
	}
}
