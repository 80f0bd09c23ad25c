package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/xorest/xorest/xo/xapi"
	"github.com/xorest/xorest/xo/xapisim"
)

// addLVMSR adds to pool 0 an SM driver of type lvm with the SR_TRIM
// capability (as sm's LVHD drivers have) and an SR of that type, and
// returns the SR's id.
func (sf *simFixture) addLVMSR(t testing.TB) string {
	t.Helper()
	var uuid string
	if err := sf.sims[0].DB.Write(func(tx *xapisim.Tx) error {
		sm := xapisim.NewRecord("SM")
		sm["type"], sm["name_label"] = "lvm", "Local LVM"
		sm["capabilities"] = []string{"SR_PROBE", "VDI_CREATE", "VDI_DELETE", "SR_TRIM"}
		tx.Create("SM", sm)
		sr := xapisim.NewRecord("SR")
		sr["name_label"], sr["type"], sr["content_type"] = "lvm0", "lvm", "user"
		ref := tx.Create("SR", sr)
		rec, _ := tx.GetClass("SR", ref)
		uuid = rec["uuid"].(string)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return uuid
}

func TestSRReclaimSpace(t *testing.T) {
	sf := newSimFixture(t, []xapisim.Model{xapisim.Default()})
	lvm := sf.addLVMSR(t)
	rec := sf.send(t, "POST", BasePath+"/srs/"+lvm+"/actions/reclaim_space?sync", "")
	if rec.Code != http.StatusNoContent {
		t.Fatalf("LVM SR: status %d: %s", rec.Code, rec.Body)
	}
	var oc map[string]string
	if err := sf.clients[0].CallInto(t.Context(), &oc, "SR.get_other_config", sf.ref(t, "SR", lvm)); err != nil {
		t.Fatal(err)
	}
	if oc["trim_last_triggered"] == "" {
		t.Errorf("the trim plugin did not run: other_config %v", oc)
	}

	nfs := sf.idOf(t, "srs", "sr0")
	rec = sf.send(t, "POST", BasePath+"/srs/"+nfs+"/actions/reclaim_space?sync", "")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("NFS SR: status %d: %s", rec.Code, rec.Body)
	}
	body := errorOf(t, rec)
	if body.Data["code"] != "UnsupportedSRForTrim" || !sameJSON(body.Data["params"], []any{"Trim on [" + nfs + "] not supported"}) {
		t.Errorf("NFS SR: error %v", body)
	}
	if rec := sf.send(t, "POST", BasePath+"/srs/"+nfs+"/actions/reclaim_space?sync", `{"force": true}`); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("with a parameter: status %d", rec.Code)
	}
}

func TestTrimError(t *testing.T) {
	tests := []struct {
		name, doc string
		want      *xapi.Error
	}{
		{name: "unsupported SR",
			doc:  `<?xml version="1.0" ?><trim_response><key_value_pair><key>errcode</key><value>UnsupportedSRForTrim</value></key_value_pair><key_value_pair><key>errmsg</key><value>Trim on [u] not supported</value></key_value_pair></trim_response>`,
			want: &xapi.Error{Code: "UnsupportedSRForTrim", Params: []string{"Trim on [u] not supported"}}},
		{name: "indented, escaped",
			doc: "<trim_response>\n  <key_value_pair>\n    <key>errmsg</key>\n    <value>blkdiscard: a &amp; b</value>\n  </key_value_pair>\n" +
				"  <key_value_pair><key>errcode</key><value>TrimException</value></key_value_pair>\n</trim_response>",
			want: &xapi.Error{Code: "TrimException", Params: []string{"blkdiscard: a & b"}}},
		{name: "no errcode", doc: `<trim_response><key_value_pair><key>errmsg</key><value>x</value></key_value_pair></trim_response>`},
		{name: "other document", doc: `<other><key_value_pair><key>errcode</key><value>X</value></key_value_pair></other>`},
		{name: "not XML", doc: `False`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := trimError(tt.doc)
			if tt.want == nil {
				if ok {
					t.Fatalf("got %v, want none", got)
				}
				return
			}
			if !ok || got.Code != tt.want.Code || strings.Join(got.Params, "|") != strings.Join(tt.want.Params, "|") {
				t.Fatalf("got %v %v, want %v", got, ok, tt.want)
			}
		})
	}
}

// FuzzTrimError feeds arbitrary plugin answers to trimError: it must not
// panic, and an error it finds has a code.
func FuzzTrimError(f *testing.F) {
	for _, seed := range []string{
		`<?xml version="1.0" ?><trim_response><key_value_pair><key>errcode</key><value>UnsupportedSRForTrim</value></key_value_pair><key_value_pair><key>errmsg</key><value>m</value></key_value_pair></trim_response>`,
		`True`, `<trim_response>`, `<trim_response><key_value_pair><key>errcode</key></key_value_pair></trim_response>`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if e, ok := trimError(doc); ok && (e.Code == "" || len(e.Params) != 1) {
			t.Fatalf("%q: %v", doc, e)
		}
	})
}
