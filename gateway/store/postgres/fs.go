package postgres

import "io/fs"

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("postgres: embedded migrations: " + err.Error()) // the embed pattern names the directory
	}
	return sub
}
