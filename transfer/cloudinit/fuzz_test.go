package cloudinit

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzImage builds drives from arbitrary content: Image must not panic,
// refuses only what it documents, and every image is a whole number of
// sectors with a boot signature, FAT12 media entries in both FATs and the
// user-data stored in it.
func FuzzImage(f *testing.F) {
	f.Add("0b4c4a7e-8b1e-4ad9-9f53-6a1f3f1c2d10", "#cloud-config\nhostname: web\n", "")
	f.Add("i", "", "version: 2\n")
	f.Add("a\nb", "x", "y")
	f.Add("", "x", "")
	f.Fuzz(func(t *testing.T, id, userData, network string) {
		img, err := Image(Config{InstanceID: id, UserData: userData, NetworkConfig: network})
		if err != nil {
			if !errors.Is(err, ErrInstanceID) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(img) < MinSize || len(img)%sectorSize != 0 || img[510] != 0x55 || img[511] != 0xAA {
			t.Fatalf("image of %d bytes, signature %x", len(img), img[510:512])
		}
		fatSecs := int(img[22]) | int(img[23])<<8
		for i := range numFATs {
			fat := img[(reservedSecs+i*fatSecs)*sectorSize:]
			if !bytes.Equal(fat[:3], []byte{0xF8, 0xFF, 0xFF}) {
				t.Fatalf("FAT %d starts with %x", i, fat[:3])
			}
		}
		if !bytes.Contains(img, []byte(userData)) {
			t.Fatal("user-data not in the image")
		}
	})
}
