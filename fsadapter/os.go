package fsadapter

import "github.com/spf13/afero"

// NewOS returns the real filesystem with every path taken relative to root,
// so "/spool/a" names root/spool/a. root is used as given; pass an absolute
// path if the process may change its working directory.
//
// Directory fsync works through Open(dir) then Sync: the handle wraps an
// *os.File, whose Sync calls fsync on the directory's descriptor.
func NewOS(root string) afero.Fs {
	return afero.NewBasePathFs(afero.NewOsFs(), root)
}
