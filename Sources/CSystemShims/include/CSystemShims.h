#ifndef REGKEEPER_CSYSTEMSHIMS_H
#define REGKEEPER_CSYSTEMSHIMS_H

#include <stddef.h>

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

/// memmem(3) and memrchr(3), GNU extensions the Glibc module does not export: the pull-log
/// parser searches lines in place with them.
void *regkeeper_memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen);
void *regkeeper_memrchr(const void *s, int c, size_t n);

#endif
