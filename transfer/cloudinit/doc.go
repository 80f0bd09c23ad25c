// Package cloudinit builds cloud-init config drives: small disk images
// that a new VM reads its first-boot configuration from, the way Xen
// Orchestra's createCloudInitConfigDrive makes them.
//
// Image returns a FAT12 filesystem labelled "cidata" (cloud-init's NoCloud
// datasource looks for a filesystem with that label, in either case) that
// holds:
//
//	meta-data                       "instance-id: <InstanceID>\n"
//	user-data                       Config.UserData
//	network-config                  Config.NetworkConfig, when set
//	openstack/latest/meta_data.json {"uuid": "<InstanceID>"}
//	openstack/latest/user_data      Config.UserData
//
// The openstack tree is XO's fallback for guests that only look for a
// ConfigDrive v2 layout. The image is at least 10 MiB, as XO's, and grows
// with the content (up to MaxContent bytes of files).
//
// # Why FAT and not ISO 9660
//
// The NoCloud file names (user-data, meta-data, network-config) are not
// valid ISO 9660 names: level 1 and 2 only allow A-Z, 0-9 and "_", so an
// ISO needs the Joliet or Rock Ridge extensions (a second directory tree in
// UCS-2, or SUSP records in every directory entry) for the guest to see
// them. FAT only needs VFAT long-name entries next to each short 8.3 entry,
// which is a fixed 32-byte record per 13 characters. FAT12 is also what XO
// writes, so a guest sees the same drive from xorest as from XO, and it is
// one fixed layout: boot sector, two copies of the allocation table, a
// 512-entry root directory, then the data clusters.
//
// The layout, all in 512-byte sectors: 1 reserved sector (the boot sector
// with the BIOS parameter block, volume label and serial), two FATs, the
// root directory (32 sectors; its first entry is the volume label), then
// the clusters of the directories and files in depth-first order, each
// file contiguous. Every name gets VFAT long-name entries and a unique
// short name (USER-D~1, ...). Timestamps come from Config.Time. The output
// is deterministic: the same Config gives the same bytes.
//
// The tests check every image with real FAT implementations: mtools
// (mdir, mtype, mlabel), dosfstools' fsck.fat and util-linux's blkid
// (Debian packages mtools, dosfstools, util-linux).
package cloudinit
