package cloudinit_test

import (
	"fmt"
	"log"

	"github.com/xorest/xorest/transfer/cloudinit"
)

// A config drive for a new VM: write the image into a VDI of its size
// (PUT /import_raw_vdi?format=raw) and attach it to the VM.
func ExampleImage() {
	img, err := cloudinit.Image(cloudinit.Config{
		InstanceID: "0b4c4a7e-8b1e-4ad9-9f53-6a1f3f1c2d10", // the VM's uuid
		UserData:   "#cloud-config\nhostname: web\n",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(img), string(img[43:49]), string(img[54:59]))
	// Output: 10485760 cidata FAT12
}
