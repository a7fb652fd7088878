#ifndef REGKEEPER_CSYSTEMSHIMS_H
#define REGKEEPER_CSYSTEMSHIMS_H

/// Opens `path` relative to `dirfd` without ever resolving a symlink or leaving `dirfd`.
/// Uses openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); on kernels without it, walks the
/// components with O_NOFOLLOW. Returns a descriptor, or -1 with errno set (ELOOP or EXDEV
/// when a symlink or an escape was refused).
int regkeeper_open_beneath(int dirfd, const char *path, int flags, unsigned int mode);

struct stat;

/// fstat of `path` beneath `dirfd` under the same rules, without opening the file for reading
/// (O_PATH), so that a file without read permission still reports its size and kind.
int regkeeper_stat_beneath(int dirfd, const char *path, struct stat *info);

/// renameat2(RENAME_NOREPLACE): fails with EEXIST instead of replacing the destination.
int regkeeper_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/// syncfs(2): flushes the filesystem holding `fd` in one call (a restore's staging area).
int regkeeper_syncfs(int fd);

/// sync_file_range(2) with SYNC_FILE_RANGE_WRITE: starts writeback of a range and returns.
int regkeeper_start_writeback(int fd, long long offset, long long count);

#endif
