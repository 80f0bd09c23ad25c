package cloudinit

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tool returns the path of a peer program, failing the test with the
// Debian package to install when it is missing.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		t.Fatalf("%s is needed to check FAT images: apt-get install -y %s", name, pkg)
	}
	return p
}

// run runs a peer and returns its standard output, failing the test on a
// non-zero exit.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_NO_VFAT=", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// checkImage checks img with mtools, fsck.fat and blkid: a clean FAT12
// volume labelled cidata holding exactly files.
func checkImage(t *testing.T, img []byte, files map[string]string) {
	t.Helper()
	mdir, mtype := tool(t, "mdir", "mtools"), tool(t, "mtype", "mtools")
	fsck, blkid := tool(t, "fsck.fat", "dosfstools"), tool(t, "blkid", "util-linux")
	path := filepath.Join(t.TempDir(), "drive.img")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	// fsck.fat -n exits non-zero on any inconsistency it finds.
	if out := run(t, fsck, "-n", path); bytes.Contains(out, []byte("\n  ")) {
		t.Errorf("fsck.fat reports problems:\n%s", out)
	}
	probe := string(run(t, blkid, "-p", "-o", "export", path))
	for _, want := range []string{"TYPE=vfat", "LABEL=cidata", "VERSION=FAT12"} {
		if !strings.Contains(probe, want+"\n") {
			t.Errorf("blkid: no %s in\n%s", want, probe)
		}
	}
	var want []string
	for name := range files {
		want = append(want, "::/"+name)
		for dir := filepath.Dir(name); dir != "."; dir = filepath.Dir(dir) {
			if !slices.Contains(want, "::/"+dir+"/") {
				want = append(want, "::/"+dir+"/")
			}
		}
	}
	slices.Sort(want)
	got := strings.Fields(string(run(t, mdir, "-i", path, "-/", "-b", "::")))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("mdir lists %q, want %q", got, want)
	}
	for name, content := range files {
		if got := run(t, mtype, "-i", path, "::"+name); string(got) != content {
			t.Errorf("%s: %d bytes %.60q, want %d bytes %.60q", name, len(got), got, len(content), content)
		}
	}
}

func TestImage(t *testing.T) {
	big := strings.Repeat("#cloud-config\nruncmd: [echo 0123456789abcdef]\n", 500_000) // 22 MB: a larger image
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "user-data only", cfg: Config{InstanceID: "0b4c4a7e-8b1e-4ad9-9f53-6a1f3f1c2d10", UserData: "#cloud-config\nhostname: web\n"}},
		{name: "with network-config", cfg: Config{InstanceID: "i-1", UserData: "#cloud-config\n",
			NetworkConfig: "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"}},
		{name: "empty user-data", cfg: Config{InstanceID: "i-2"}},
		{name: "one cluster exactly", cfg: Config{InstanceID: "i-3", UserData: strings.Repeat("x", 4096)}},
		{name: "unicode and a timestamp", cfg: Config{InstanceID: "i-4", UserData: "#cloud-config\nusers: [{name: \"jérôme\"}]\n",
			Time: time.Date(2024, 6, 5, 13, 14, 15, 0, time.UTC)}},
		{name: "larger than the minimum image", cfg: Config{InstanceID: "i-5", UserData: big}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Image(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(img) < MinSize || len(img)%512 != 0 {
				t.Errorf("image of %d bytes", len(img))
			}
			files := map[string]string{
				"meta-data":                       "instance-id: " + tt.cfg.InstanceID + "\n",
				"user-data":                       tt.cfg.UserData,
				"openstack/latest/meta_data.json": `{"uuid":"` + tt.cfg.InstanceID + `"}`,
				"openstack/latest/user_data":      tt.cfg.UserData,
			}
			if tt.cfg.NetworkConfig != "" {
				files["network-config"] = tt.cfg.NetworkConfig
			}
			checkImage(t, img, files)
			again, err := Image(tt.cfg)
			if err != nil || !bytes.Equal(again, img) {
				t.Errorf("a second build differs (%v)", err)
			}
		})
	}
}

func TestImageTimestamp(t *testing.T) {
	img, err := Image(Config{InstanceID: "i", UserData: "x", Time: time.Date(2024, 6, 5, 13, 14, 16, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "drive.img")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := string(run(t, tool(t, "mdir", "mtools"), "-i", path, "::user-data")); !strings.Contains(out, "2024-06-05  13:14") {
		t.Errorf("mdir:\n%s", out)
	}
}

func TestImageErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no instance id", Config{UserData: "x"}, ErrInstanceID},
		{"multi-line instance id", Config{InstanceID: "a\nb"}, ErrInstanceID},
		{"too large", Config{InstanceID: "i", UserData: strings.Repeat("x", MaxContent/2+1)}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Image(tt.cfg); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestShortNames(t *testing.T) {
	tests := []struct {
		long  string
		want  string
		exact bool
	}{
		{"user-data", "USER-D~1   ", false},
		{"meta_data.json", "META_D~1JSO", false},
		{"latest", "LATEST~1   ", false},
		{"README.TXT", "README  TXT", true},
		{"a b+c.tar.gz", "AB_CTA~1GZ ", false},
	}
	for _, tt := range tests {
		t.Run(tt.long, func(t *testing.T) {
			got, exact := shortName(tt.long, func([11]byte) bool { return false })
			if string(got[:]) != tt.want || exact != tt.exact {
				t.Errorf("got %q %v, want %q %v", got, exact, tt.want, tt.exact)
			}
		})
	}
	taken := map[[11]byte]bool{pack83("USER-D~1", ""): true}
	if got, _ := shortName("user-data", func(n [11]byte) bool { return taken[n] }); string(got[:]) != "USER-D~2   " {
		t.Errorf("second user-data: %q", got)
	}
}
